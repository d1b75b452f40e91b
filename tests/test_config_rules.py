"""One home per rule: the data-format records, the one model-section validator, the config read without MindSpore."""

import subprocess
import sys

import pytest

from mindface_au.au_sets import ABAW_AUS, BP4D_AUS, DISFA_AUS, default_rare_aus
from mindface_au.config import (
    DATA_FORMATS,
    FORMAT_CROPS,
    RANGES,
    ModelConfig,
    load_config,
    section_from_dict,
    validate_model_config,
)
from mindface_au.data import affwild2, bp4d, disfa, listfiles
from mindface_au.data.registry import FORMATS
from mindface_au.data.video import Video
from mindface_au.errors import UserError


def test_each_format_is_one_record_read_by_the_config():
    assert list(FORMATS) == ["affwild2", "bp4d", "disfa", "list"]
    expected = {
        "affwild2": (ABAW_AUS, "arcface5", 4, (), affwild2.load_split),
        "bp4d": (BP4D_AUS, "box", 3, bp4d.PARTS, bp4d.load_bp4d),
        "disfa": (DISFA_AUS, "box", 3, disfa.PARTS, disfa.load_disfa),
        "list": ((), "other", 0, (), listfiles.load_list),
    }
    for name, (aus, crop, folds, parts, reader) in expected.items():
        fmt = FORMATS[name]
        assert (fmt.au_names, fmt.crop, fmt.num_folds, fmt.reader) == (aus, crop, folds, reader), name
        assert [list(p) for p in fmt.subject_parts] == [list(p) for p in parts], name
        assert fmt.rare_aus == (default_rare_aus(aus) if aus else ()), name
    assert DATA_FORMATS == {"affwild2": 4, "bp4d": 3, "disfa": 3, "list": 0}
    assert FORMAT_CROPS == {"affwild2": "arcface5", "bp4d": "box", "disfa": "box", "list": "other"}
    cfg = load_config(None, ["data.format=disfa"])  # the config's defaults come from the record
    assert (tuple(cfg.model.au_names), cfg.data.crop, tuple(cfg.data.rare_aus)) == (
        DISFA_AUS,
        "box",
        FORMATS["disfa"].rare_aus,
    )
    assert affwild2.Video is Video  # the record moved; the old import keeps working


def test_ranges_hold_every_bound_that_was_checked_by_hand():
    for key in [
        ("data", "intensity_threshold"),
        ("model", "fusion_weight"),
        ("train", "warmup_epochs"),
        ("train", "val_interval"),
        ("train", "save_every_steps"),
    ]:
        assert key in RANGES, key
    for override, key in [
        ("data.intensity_threshold=6", "data.intensity_threshold"),
        ("model.fusion_weight=1.5", "model.fusion_weight"),
        ("train.warmup_epochs=-0.5", "train.warmup_epochs"),
    ]:
        with pytest.raises(UserError, match=f"config key {key}: got"):
            load_config(None, [override])


def test_one_model_validator_holds_the_aunet_name_and_unknown_key_rules():
    backbone = ModelConfig(name="iresnet18")
    validate_model_config(backbone)  # a bare backbone is a valid model section
    with pytest.raises(UserError, match="model.name: got 'iresnet18', expected one of aunet_iresnet100, aunet_"):
        validate_model_config(backbone, aunet=True)
    with pytest.raises(UserError, match=r"^m.ckpt: stored model config has unknown key model.colour \(and zz\)"):
        section_from_dict("model", {"name": "aunet_iresnet18", "colour": 1, "zz": 2}, "m.ckpt")
    with pytest.raises(UserError, match="^m.ckpt: config key model.widths"):
        section_from_dict("model", {"widths": [8, 8]}, "m.ckpt")


def test_config_and_tables_import_without_mindspore():
    code = (
        "import sys\nimport mindface_au.config, mindface_au.data.registry, mindface_au.models.specs\n"
        "mindface_au.config.load_config('quick')\nprint('mindspore' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "False", proc.stderr
