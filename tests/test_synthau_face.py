"""SynthAU faces (mindface_au.data.synthau.face): the geometry each AU moves and the drawing agree with the labels."""

import numpy as np

from mindface_au.config import AU_NAMES
from mindface_au.data.synthau.dataset import synth_video
from mindface_au.data.synthau.face import face_geometry, render_face, sample_identity


def _video(seed, frames=200):
    return synth_video(np.random.SeedSequence([seed, 99]), frames)


def test_labels_match_the_drawing():
    """Per identity: AU26 frames open the mouth wider, AU1 raises the inner brow, AU12 lifts the corners."""
    checked = 0
    for seed in range(6):
        video = _video(seed)
        labels = video["labels"]
        keep = [i for i, g in enumerate(video["geometry"]) if g is not None]
        geo = {k: np.array([video["geometry"][i][k] for i in keep]) for k in ("mouth_open", "brow_inner_y", "corner_y")}
        lab = labels[keep]
        for au, key, sign in (("AU26", "mouth_open", 1), ("AU1", "brow_inner_y", -1), ("AU12", "corner_y", -1)):
            on = lab[:, AU_NAMES.index(au)] == 1
            if on.sum() >= 3 and (~on).sum() >= 3:
                assert sign * (geo[key][on].mean() - geo[key][~on].mean()) > 0, (seed, au)
                checked += 1
        # the pixels agree: the open mouth (dark interior, teeth) changes the mouth region more
        on = lab[:, AU_NAMES.index("AU26")] == 1
        if on.sum() >= 3:
            ident = video["identity"]
            y0, y1 = int(ident.mouth_y - 4), int(ident.mouth_y + 8)
            neutral, _ = render_face(ident, np.zeros(12))
            diff = [np.abs(video["frames"][i][y0:y1, 40:72].astype(float) - neutral[y0:y1, 40:72]).mean() for i in keep]
            diff = np.array(diff)
            assert diff[on].mean() > diff[~on].mean() + 5
            checked += 1
    assert checked >= 8


def test_geometry_follows_each_au():
    ident = sample_identity(np.random.default_rng(0))
    zero = face_geometry(ident, np.zeros(12))

    def moved(au, key):
        a = np.zeros(12)
        a[AU_NAMES.index(au)] = 1.0
        return face_geometry(ident, a)[key] - zero[key]

    assert moved("AU1", "brow_inner_y") < -3 and moved("AU2", "brow_outer_y") < -3 and moved("AU4", "brow_inner_y") > 2
    assert moved("AU7", "eye_aperture") < -1 and moved("AU6", "eye_lower") < -0.5 and moved("AU6", "cheek_y") < -3
    assert moved("AU10", "upper_lip_y") < -2 and moved("AU12", "corner_y") < -2 and moved("AU15", "corner_y") > 2
    assert moved("AU23", "mouth_w") < -2 and moved("AU24", "lip_up") < -1
    assert 0 < moved("AU25", "mouth_open") < moved("AU26", "mouth_open") and moved("AU26", "jaw_drop") > 5
    # every AU changes the picture, and in its own region
    base, _ = render_face(ident, np.zeros(12))
    rows = {"AU1": (20, 48), "AU4": (30, 50), "AU6": (44, 70), "AU25": (80, 100), "AU26": (80, 112)}
    for i, au in enumerate(AU_NAMES):
        a = np.zeros(12)
        a[i] = 1.0
        img, _ = render_face(ident, a)
        diff = np.abs(img.astype(float) - base).sum(axis=2)
        assert diff.max() > 40, au
        if au in rows:
            y0, y1 = rows[au]
            assert diff[y0:y1].sum() > 0.8 * diff.sum(), au
