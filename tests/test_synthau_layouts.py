"""SynthAU: the Aff-Wild2 layout unchanged by the new AUs; the BP4D, DISFA and list layouts read by their readers."""

import hashlib
import json
import os

import cv2
import numpy as np
import pytest

from mindface_au.au_sets import BP4D_AUS, DISFA_AUS
from mindface_au.config import load_config
from mindface_au.data import formats
from mindface_au.data.folds import get_split
from mindface_au.data.synthau import generate, write_synthau
from mindface_au.data.synthau.face import render_face, sample_identity
from mindface_au.errors import UserError

# sha256 of generate(out, videos=3, frames=12, seed=5, test_videos=1, workers=1) made by the code before AU9, AU14
# and AU17 existed (every file's relative path and bytes, synthau.json without its "seconds")
AFFWILD2_HASH = "58a01e41e3567b41e6e8dcfb6fc50c5d1da02f3357ed2c46e907637a91b9b98f"


def tree_hash(out):
    digest = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(out)):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                data = handle.read()
            if name == "synthau.json":
                summary = json.loads(data)
                summary.pop("seconds", None)
                data = json.dumps(summary, sort_keys=True).encode()
            digest.update(os.path.relpath(path, out).encode() + b"\0" + data)
    return digest.hexdigest()


def test_affwild2_layout_is_byte_identical_to_before(tmp_path):
    generate(str(tmp_path / "a"), videos=3, frames=12, seed=5, test_videos=1, workers=1)
    assert tree_hash(str(tmp_path / "a")) == AFFWILD2_HASH


def test_extra_aus_are_visible_at_64_px():
    rng = np.random.default_rng(4)
    ident = sample_identity(rng)
    neutral = np.zeros(12)
    base, _ = render_face(ident, neutral)
    same, _ = render_face(ident, neutral, extra=np.zeros(3))
    np.testing.assert_array_equal(base, same)  # intensity 0 draws nothing
    small = cv2.resize(base, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float64)
    for k in range(3):
        extra = np.zeros(3)
        extra[k] = 1.0
        image, _ = render_face(ident, neutral, extra=extra)
        diff = np.abs(cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA) - small).max(axis=2)
        assert (diff > 25).sum() >= 6, f"extra AU {k} barely changes the 64 px face"


def config(fmt, root, names):
    over = [f"data.format={fmt}", f"data.root={root}", "data.split=fold1", "data.rare_aus=[AU2]"]
    return load_config(None, over + [f"model.au_names=[{', '.join(names)}]"])


def test_bp4d_layout_has_the_awkward_parts_and_three_folds(tmp_path):
    write_synthau(str(tmp_path / "b"), format="bp4d", frames=40, seed=2, subjects_per_part=1)
    cfg = config("bp4d", tmp_path / "b", BP4D_AUS)
    train, val = get_split(cfg.data)
    assert [v.name for v in val] == ["F007_T1"] and sorted(v.name for v in train) == ["F001_T1", "M011_T1"]
    videos = train + val
    assert any((v.labels == -1).any() for v in videos)  # uncoded 9s, masked per AU
    assert sum(v.missing_images for v in videos) > 0
    numbers = [int(os.path.basename(p)[:-4]) for p in videos[0].image_paths]
    assert np.diff(numbers).max() > 1  # gaps in the frame numbers (and missing images)
    assert set(formats.check_format(cfg.data)) == {"fold1_test", "fold2_test", "fold3_test"}


def test_disfa_and_list_layouts(tmp_path):
    write_synthau(str(tmp_path / "d"), format="disfa", frames=30, seed=2, subjects_per_part=1)
    cfg = config("disfa", tmp_path / "d", DISFA_AUS)
    train, val = get_split(cfg.data)
    assert [v.name for v in val] == ["SN003"] and sum(v.missing_images for v in train + val) > 0
    assert all(v.frame_number_mismatch == 0 for v in train + val)
    write_synthau(str(tmp_path / "l"), format="list", frames=30, seed=2, subjects_per_part=1)
    cfg = config("list", tmp_path / "l", BP4D_AUS)
    assert formats.num_folds(cfg.data) == 3
    train, val = get_split(cfg.data)
    assert [v.name for v in val] == ["img/F007_T1"] and any((v.labels == -1).any() for v in train + val)
    with pytest.raises(UserError, match="SynthAU format 'celeba'"):
        write_synthau(str(tmp_path / "x"), format="celeba")
