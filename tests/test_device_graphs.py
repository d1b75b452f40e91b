"""What Ascend and GPU will receive, checked on CPU: every accepted training setting compiles one step, and the
compiled graphs use only operators documented for Ascend and GPU, with static shapes.

Layer 1 (in process): each value of train.amp_level, sync_bn, freeze_bn, prelu_form and optimizer, and each
packaged recipe at tiny widths, compiles and runs one training step as engine/trainer.py sets it up (each value
once, carried by one recipe; not every combination). Where MindSpore or this project refuses a value on CPU, the
refusal is checked to be for its documented reason only, and the value still compiles by the same code path.

Layer 2 (IR dump): MindSpore writes its final frontend graph (`MS_DEV_SAVE_GRAPHS=1`, `MS_DEV_SAVE_GRAPHS_PATH`,
`MS_DEV_DUMP_IR_PASSES=validate`) for the forward graph, the O0 and O2 training steps (one process) and the
data-parallel step (2 CPU workers under msrun). Every primitive on a node line must have "Supported Platforms"
listing Ascend and GPU in the installed MindSpore's documentation, or be on UNDECLARED below; no output shape
may be dynamic (-1 or -2).
"""

import glob
import importlib
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
from device_graphs_worker import train_one_step  # noqa: I100 - tests/ is on sys.path under pytest
from helpers import load_tiny_config

from mindface_au.config import TRAIN_PRELU_FORMS, packaged_configs
from mindface_au.engine.optim import OPTIMIZERS
from mindface_au.engine.runtime import AMP_LEVELS, resolve_runtime
from mindface_au.errors import UserError

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "device_graphs_worker.py")

# Each accepted value once, each carried by one packaged recipe (tiny widths), on top of that recipe's own settings.
RECIPE_SETTINGS = {
    "synthau_demo": ["train.prelu_form=relu"],
    "affwild2/table3_1_baseline": ["train.amp_level=O1"],
    "affwild2/table3_2_circle": ["train.amp_level=O3"],
    "affwild2/table3_3_glint360k": ["train.freeze_bn=true"],
    "affwild2/table3_4_arl": ["train.optimizer=adamw"],
    "affwild2/table3_5_lrp": ["train.sync_bn=true"],
    "affwild2/table3_6_ff": ["train.prelu_form=native", "train.amp_level=O0"],
    "affwild2/ascend_o2": [],  # its own amp_level O2
    "affwild2/fixed_fusion": ["train.optimizer=sgd", "train.sync_bn=false", "train.freeze_bn=false"],
    "bp4d/full_network": [],  # the paper's full network on the BP4D AU set (12 outputs, its own rare AUs)
    "disfa/full_network": [],  # and on the DISFA set (8 outputs)
    "bp4d/intensity": [],  # with the intensity head on 5 of its 12 AUs (two outputs)
    "disfa/intensity": [],  # occurrence and intensity on DISFA's 12 AUs
    "quick": [],  # the demo network, 6 epochs
}
# amp O0 and O2 are also compiled by the IR-dump test below (default config at tiny widths)

# Primitives whose documentation in MindSpore 2.10 declares no platforms, reviewed: autodiff's gradient kernels
# (the backward of documented forward operators, no public API) and internal forms of documented operators.
UNDECLARED = {
    "BatchNormGrad": "backward of BatchNorm",
    "BiasAddGrad": "backward of BiasAdd",
    "Conv2DBackpropFilter": "backward of Conv2D (weights)",
    "Conv2DBackpropInput": "backward of Conv2D (input); its docstring is a deprecation note with an empty list",
    "LayerNormGrad": "backward of LayerNorm",
    "ReluGrad": "backward of ReLU",
    "SigmoidGrad": "backward of Sigmoid",
    "SoftmaxBackward": "backward of Softmax",
    "StridedSliceGrad": "backward of StridedSlice",
    "SplitWithSize": "internal form of ops.split, used by the StridedSlice/Concat backward",
    "SumExt": "internal form of ops.sum (Tensor.sum)",
    "Muls": "internal form of tensor * Python scalar",
    "AllFinite": "MindSpore's own loss-scale overflow check (not emitted on CPU with a fixed scale)",
}
# Declared, but not for Ascend and GPU both: only from MindSpore's own device-specific branches.
DEVICE_BRANCH = {"FloatStatus": "GPU only, MindSpore's GPU loss-scale overflow branch"}
STRUCTURAL = {"Load", "TupleGetItem", "MakeTuple", "UpdateState", "Depend", "Return", "MakeList", "ListGetItem"}
NODE = re.compile(r"^\s+%\d+\([^)]*\) = ([A-Za-z_][A-Za-z0-9_]*)\(")
DYNAMIC = re.compile(r"[(, ]-[12][,)]")
DOC_MODULES = (
    "mindspore.ops.operations",
    "mindspore.ops.auto_generate.gen_ops_prim",
    "mindspore.ops.operations._grad_ops",
    "mindspore.ops.operations._inner_ops",
    "mindspore.ops.operations.comm_ops",
)


# ---------------------------------------------------------------- layer 1: each accepted value compiles a step


def test_every_accepted_value_is_carried_by_a_recipe_and_every_recipe_is_listed():
    values = {s for settings in RECIPE_SETTINGS.values() for s in settings}
    assert sorted(RECIPE_SETTINGS) == sorted(packaged_configs())
    for key, accepted in (
        ("amp_level", AMP_LEVELS),
        ("prelu_form", TRAIN_PRELU_FORMS),
        ("optimizer", OPTIMIZERS),
        ("sync_bn", ("true", "false")),
        ("freeze_bn", ("true", "false")),
    ):
        for value in accepted:
            assert f"train.{key}={value}" in values or (key == "amp_level" and value in ("O0", "O2")), (key, value)


@pytest.mark.parametrize("recipe", sorted(RECIPE_SETTINGS))
def test_recipe_compiles_one_training_step_on_cpu(recipe):
    cfg = load_tiny_config(recipe, RECIPE_SETTINGS[recipe])
    if cfg.train.sync_bn:
        # refused on CPU (and GPU) for its documented reason only: nn.SyncBatchNorm declares Ascend
        with pytest.raises(UserError, match=r"^config key train.sync_bn: nn.SyncBatchNorm runs on Ascend only"):
            resolve_runtime(cfg.train, "CPU", 1, 4)
        assert resolve_runtime(cfg.train, "Ascend", 8, 4).device == "Ascend"
        # the same set-up with the swap: one process, so nn.SyncBatchNorm normalises like BatchNorm here
        loss, net = train_one_step(cfg, device="Ascend")
        assert sum(type(c).__name__.endswith("SyncBatchNorm") for _, c in net.cells_and_names()) > 0
    elif cfg.train.optimizer == "adamw" and cfg.train.amp_level != "O0":
        raise AssertionError("adamw is carried at O0; on CPU it is refused with AMP (fixed loss scale)")
    else:
        loss, net = train_one_step(cfg)
    assert np.isfinite(loss) and loss > 0


def test_adamw_with_amp_on_cpu_is_refused_for_the_fixed_loss_scale_only():
    cfg = load_tiny_config("affwild2/table3_4_arl", ["train.optimizer=adamw", "train.amp_level=O2"])
    with pytest.raises(UserError, match=r"^config key train.optimizer: adamw takes no loss scale, and amp_level O2"):
        resolve_runtime(cfg.train, "CPU", 1, 4)
    assert resolve_runtime(cfg.train, "GPU", 1, 4).loss_scale == "dynamic"


# ---------------------------------------------------------------- layer 2: the compiled graphs


def _primitives(paths):
    """{primitive: [output type/shape text of each node]} over the node lines of IR files."""
    found = {}
    for path in paths:
        with open(path) as handle:
            lines = handle.read().splitlines()
        for i, line in enumerate(lines):
            match = NODE.match(line)
            if not match:
                continue
            name = match.group(1)
            name = name[len("PrimFunc_") :] if name.startswith("PrimFunc_") else name
            if name in STRUCTURAL:
                continue
            shape = lines[i + 1].split("->", 1)[1] if i + 1 < len(lines) and "->" in lines[i + 1] else ""
            found.setdefault(name, []).append(shape)
    return found


def _declared_platforms(name):
    """Platforms in the "Supported Platforms" of `name`'s documentation (following its "Refer to" link), or None."""
    for module in DOC_MODULES:
        obj = getattr(importlib.import_module(module), name, None)
        if obj is None:
            continue
        doc = obj.__doc__ or ""
        for _ in range(3):
            if "Supported Platforms" in doc:
                part = doc.split("Supported Platforms", 1)[1].split("Examples", 1)[0]
                return set(re.findall(r"``(Ascend|GPU|CPU)``", part)) or None
            ref = re.search(r"Refer to :(?:func|class):`([\w.]+)`", doc)
            if not ref:
                return None
            module_name, _, attr = ref.group(1).rpartition(".")
            doc = getattr(getattr(importlib.import_module(module_name), attr, None), "__doc__", None) or ""
        return None
    return None


def _check_graph(paths, label):
    assert paths, f"no *_validate_*.ir for {label}"
    found = _primitives(paths)
    for name, shapes in sorted(found.items()):
        dynamic = [s for s in shapes if DYNAMIC.search(s)]
        assert not dynamic, f"{label}: {name} has a dynamic output shape: {dynamic[0]}"
        declared = _declared_platforms(name)
        if declared is None:
            assert name in UNDECLARED, f"{label}: {name} declares no platforms and is not on the reviewed list"
        elif not {"Ascend", "GPU"} <= declared:
            assert name in DEVICE_BRANCH, f"{label}: {name} declares {sorted(declared)} only"
    return found


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """IR of the forward graph, the O0 and O2 steps (one process) and the data-parallel step (msrun, 2 CPU
    workers, running at the same time)."""
    out = tmp_path_factory.mktemp("ir")
    env = dict(
        os.environ,
        GLOG_v="3",
        MS_DEV_SAVE_GRAPHS="1",
        MS_DEV_SAVE_GRAPHS_PATH=str(out),
        MS_DEV_DUMP_IR_PASSES="validate",
        PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),  # msrun runs `python`
    )
    single = subprocess.Popen(
        [sys.executable, WORKER, str(out), "forward", "O0", "O2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(out),
    )  # fmt: skip
    msrun = os.path.join(os.path.dirname(sys.executable), "msrun")
    dp_cmd = [
        msrun, "--worker_num=2", "--local_worker_num=2", f"--master_port={_free_port()}",
        f"--log_dir={out / 'logs'}", "--join=True", WORKER, str(out), "dp",
    ]  # fmt: skip
    dp = subprocess.run(dp_cmd, capture_output=True, text=True, env=env, cwd=str(out), timeout=600)
    stdout, stderr = single.communicate(timeout=600)
    assert single.returncode == 0, stdout[-2000:] + stderr[-2000:]
    logs = {n: open(out / "logs" / n).read()[-1500:] for n in os.listdir(out / "logs")}
    assert dp.returncode == 0, dp.stderr[-1500:] + str(logs)
    return {
        kind: sorted(glob.glob(str(out / folder / "*_validate_*.ir")))
        for kind, folder in (("forward", "forward"), ("O0", "O0"), ("O2", "O2"), ("dp", "rank_0"), ("dp1", "rank_1"))
    }


def test_compiled_graphs_use_ascend_and_gpu_operators_with_static_shapes(graphs):
    found = {kind: _check_graph(paths, kind) for kind, paths in graphs.items()}
    # the review's counts (reference.md section 7): 27 primitives forward, 56 in the training step
    assert len(found["forward"]) == 27, sorted(found["forward"])
    assert len(found["O0"]) == 56, sorted(found["O0"])
    # O2 adds casts only (Cast is already in the O0 step, for the loss); BatchNorm and LayerNorm stay float32
    assert set(found["O2"]) == set(found["O0"])
    assert "Float16" in "".join(found["O2"]["Conv2D"]) and "Float16" not in "".join(found["O0"]["Conv2D"])
    for norm in ("BatchNorm", "LayerNorm"):
        assert all("Float32" in s and "Float16" not in s for s in found["O2"][norm]), norm
    # data parallel: the O0 step plus the gradient AllReduce, on both ranks
    for rank in ("dp", "dp1"):
        assert set(found[rank]) == set(found["O0"]) | {"AllReduce"}, sorted(set(found[rank]) ^ set(found["O0"]))
    assert "TopK" in found["forward"]  # the ARL graph's neighbours: constant k, static output (checked above)


# ---------------------------------------------------------------- float16 checkpoints on CPU


def test_float16_checkpoint_loads_for_eval_detect_and_export_on_cpu(tmp_path):
    """A checkpoint with float16 weights (BatchNorm float32, as a network cast for AMP O2/O3 saves them, e.g.
    MindFace's) loads as float32 for eval (load_model), detect/predict (load_inference_model) and export. This
    project's own O2/O3 training keeps float32 parameters (MindSpore casts inside the graph), measured above by the
    O2/O3 steps; the float16 file is the case a user brings."""
    import dataclasses

    from helpers import randomise_params

    from mindface_au.engine.evaluator import load_model
    from mindface_au.inference.export import export_model
    from mindface_au.inference.loader import load_inference_model
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    cfg = load_tiny_config()
    net = randomise_params(create_model_from_config(cfg.model), seed=3)
    norm = ("moving_mean", "moving_variance", "gamma", "beta")  # BatchNorm / LayerNorm stay float32
    half = {
        p.name: p.asnumpy() if p.name.endswith(norm) else p.asnumpy().astype(np.float16) for p in net.get_parameters()
    }
    assert sum(v.dtype == np.float16 for v in half.values()) >= 40
    model_cfg = dataclasses.asdict(cfg.model)
    save_checkpoint_atomic(half, str(tmp_path / "half.ckpt"), model_cfg)
    # the independent reference: the same values, saved as float32
    save_checkpoint_atomic({k: v.astype(np.float32) for k, v in half.items()}, str(tmp_path / "full.ckpt"), model_cfg)

    loaded, _ = load_model(str(tmp_path / "half.ckpt"))
    for p in loaded.get_parameters():
        assert p.dtype == ms_float32()
        np.testing.assert_array_equal(p.asnumpy(), half[p.name].astype(np.float32), err_msg=p.name)

    x = np.random.default_rng(4).uniform(-1, 1, (3, 3, 32, 32)).astype(np.float32)
    got = load_inference_model(str(tmp_path / "half.ckpt"), device="CPU").predict(x)
    want = load_inference_model(str(tmp_path / "full.ckpt"), device="CPU").predict(x)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)

    info = export_model(
        str(tmp_path / "half.ckpt"), str(tmp_path / "half.mindir"), "MINDIR", batch_size=1, device="CPU"
    )
    assert os.path.getsize(tmp_path / "half.mindir") > 0 and info


def ms_float32():
    import mindspore as ms

    return ms.float32
