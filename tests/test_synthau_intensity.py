"""SynthAU intensities (mindface_au.data.synthau.intensity): AU rates, co-occurrence and episodes like Aff-Wild2."""

import numpy as np

from mindface_au.config import AU_NAMES
from mindface_au.data.synthau.intensity import au_intensities, labels_from_intensity


def test_au_statistics_like_affwild2():
    labels = np.concatenate([labels_from_intensity(au_intensities(np.random.default_rng(s), 300)) for s in range(150)])
    rate = dict(zip(AU_NAMES, labels.mean(axis=0)))
    for au in ("AU2", "AU15", "AU23", "AU24", "AU26"):
        assert 0.01 < rate[au] < 0.1, (au, rate[au])
    assert max(rate, key=rate.get) == "AU25" and rate["AU25"] > 0.45

    def given(a, b):
        return labels[labels[:, AU_NAMES.index(b)] == 1, AU_NAMES.index(a)].mean()

    assert given("AU6", "AU12") > 2 * rate["AU6"] and given("AU1", "AU2") > 3 * rate["AU1"]
    assert given("AU25", "AU26") > 0.95
    # episodes: labels come in runs (onset/apex/offset), not frame-wise noise
    changes = np.abs(np.diff(labels[:300].astype(int), axis=0)).sum()
    assert changes < 0.1 * labels[:300].sum()
