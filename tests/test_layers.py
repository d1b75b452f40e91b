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


def test_every_built_in_model_is_registered_with_the_face_input_the_registry_knows_unregistered():
    """registry.face_input does not import the models (they import the registry): its table of built-in names
    (specs.BUILTIN_MODELS, ArcFace mean/std) must match what the model modules register."""
    from mindface_au.config import ModelConfig
    from mindface_au.data.transforms import ARCFACE_MEAN, ARCFACE_STD
    from mindface_au.models import get_default_cfg, list_models
    from mindface_au.models.specs import BUILTIN_MODELS

    assert sorted(BUILTIN_MODELS) == list_models()
    for name in BUILTIN_MODELS:
        cfg = get_default_cfg(name)
        assert (tuple(cfg["mean"]), tuple(cfg["std"])) == (ARCFACE_MEAN, ARCFACE_STD), name
    code = (
        "import sys; from mindface_au.config import ModelConfig; from mindface_au.models.registry import face_input; "
        "s = face_input(ModelConfig(input_size=48)); print(s.size, s.mean, 'mindface_au.models.aunet' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["48", "(0.5,", "0.5,", "0.5)", "False"]
    with pytest.raises(UserError, match=r"^unknown model 'nope'; registered models: aunet_iresnet100, "):
        from mindface_au.models import face_input

        face_input(ModelConfig(name="nope"))
