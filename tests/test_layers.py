"""Layering: a model's FaceInput is resolved in models, the weight-file readers sit below models, guard gathers its
three modules. The import contract itself is `lint-imports` (setup.cfg [importlinter], run by `make lint`)."""

import subprocess
import sys

import pytest

from mindface_au.errors import UserError


def test_face_input_is_the_registered_models_mean_and_std():
    from mindface_au.config import ModelConfig
    from mindface_au.data import transforms
    from mindface_au.models import face_input, get_default_cfg

    cfg = get_default_cfg(ModelConfig().name)
    spec = face_input(ModelConfig(input_size=64))
    assert (spec.size, spec.mean, spec.std) == (64, tuple(cfg["mean"]), tuple(cfg["std"]))
    assert not hasattr(transforms, "face_input")  # the data layer knows no model: models.face_input is the one home
    assert transforms.make_face_input(64, cfg["mean"], cfg["std"]) == spec


def test_make_face_input_refuses_a_side_below_one():
    from mindface_au.data.transforms import make_face_input

    with pytest.raises(UserError, match=r"^config key model.input_size: got 0, expected a positive integer$"):
        make_face_input(0, (0.5,) * 3, (0.5,) * 3)


def test_weights_and_convert_import_without_models_or_mindspore():
    code = (
        "import sys, mindface_au.convert, mindface_au.weights.layouts, mindface_au.data.transforms; "
        "print(sorted(m for m in sys.modules if m.startswith('mindface_au.models') or m == 'mindspore'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    # config validates depths against the MindSpore-free layer table (models.specs, beside the models): the only
    # models modules loaded are that table and its lazy package
    assert out.strip() == "['mindface_au.models', 'mindface_au.models.specs']"


def test_guard_gathers_outputs_signals_and_messages():
    from mindface_au.utils import guard, messages, outputs, signals

    homes = {name: module for module in (outputs, signals, messages) for name in module.__all__}
    assert set(guard.__all__) <= set(homes)
    for name in guard.__all__:
        assert getattr(guard, name) is getattr(homes[name], name), name
