"""engine/runtime.py and the train keys it reads: sink mode, jit level, AMP loss scaling, sync/frozen BatchNorm."""

import mindspore as ms
import numpy as np
import pytest
from helpers import tiny_aunet
from mindspore import nn

from mindface_au.config import TrainConfig, load_config
from mindface_au.engine.distributed import freeze_batchnorm, parameter_digest, swap_batchnorm
from mindface_au.engine.runtime import FIXED_LOSS_SCALE, resolve_runtime
from mindface_au.errors import UserError


def _resolve(device="CPU", world=1, **train):
    return resolve_runtime(TrainConfig(**train), device, world, 8)


def test_sink_mode_auto_true_false_and_yaml_booleans(tmp_path):
    assert _resolve("CPU").sink_mode is False
    assert _resolve("GPU").sink_mode is True and _resolve("Ascend").sink_mode is True  # auto
    assert _resolve("Ascend", sink_mode="false").sink_mode is False
    assert _resolve("CPU", sink_mode="true").sink_mode is False  # Model.train never sinks on CPU
    for text, want in (("true", "true"), ("false", "false"), ("auto", "auto"), ("on", "true")):
        path = tmp_path / "c.yaml"
        path.write_text(f"train:\n  sink_mode: {text}\n")
        assert load_config(str(path)).train.sink_mode == want
    with pytest.raises(UserError, match="train.sink_mode: got 'sometimes', expected auto, true or false"):
        load_config(None, ["train.sink_mode=sometimes"])


def test_jit_level_o2_is_ascend_only():
    assert _resolve("CPU", jit_level="O0").jit_level == "O0"
    assert _resolve("Ascend", jit_level="O2").jit_level == "O2"
    with pytest.raises(UserError, match="train.jit_level: O2 .* Ascend only, this run is on CPU"):
        _resolve("CPU", jit_level="O2")
    with pytest.raises(UserError, match="train.jit_level"):
        load_config(None, ["train.jit_level=O3"])
    assert load_config(None, ["train.jit_level=o1"]).train.jit_level == "O1"


def test_adamw_with_amp_is_refused_where_the_loss_scale_is_fixed_only():
    """AdamWeightDecay takes no loss scale: fine at O0, and on GPU/Ascend where the dynamic loss scale is removed
    from the gradients before the optimiser; refused on CPU at O1-O3 (a fixed scale the optimiser must divide by)."""
    for amp in ("O1", "O2", "O3"):
        with pytest.raises(UserError, match=f"train.optimizer: adamw takes no loss scale, and amp_level {amp} on CPU"):
            _resolve("CPU", optimizer="adamw", amp_level=amp)
        for device in ("GPU", "Ascend"):
            assert _resolve(device, optimizer="adamw", amp_level=amp).loss_scale == "dynamic"
    assert _resolve("CPU", optimizer="adamw").optimizer_loss_scale == 1.0


def test_jit_level_goes_on_the_network_and_o2_carries_a_deprecation_note():
    from mindface_au.engine.runtime import apply_jit_level

    net = _Net()
    apply_jit_level("O0", net)
    assert net.jit_config_dict["jit_level"] == "O0"
    apply_jit_level("", net)
    assert net.jit_config_dict["jit_level"] == "O0"
    assert "note: jit level O2 is deprecated since MindSpore 2.9" in _resolve("Ascend", jit_level="O2").describe()
    assert "note:" not in _resolve("Ascend", jit_level="O1").describe()


def test_amp_loss_scale_fixed_on_cpu_dynamic_on_accelerators():
    from mindspore.train import DynamicLossScaleManager, FixedLossScaleManager

    plain = _resolve("CPU")
    assert plain.loss_scale == "none" and plain.loss_scale_manager() is None and plain.optimizer_loss_scale == 1.0
    cpu = _resolve("CPU", amp_level="O2")
    manager = cpu.loss_scale_manager()
    assert isinstance(manager, FixedLossScaleManager) and not manager.get_drop_overflow_update()
    assert cpu.optimizer_loss_scale == FIXED_LOSS_SCALE
    for device in ("GPU", "Ascend"):
        acc = _resolve(device, amp_level="O3")
        assert acc.loss_scale == "dynamic" and acc.optimizer_loss_scale == 1.0
        assert isinstance(acc.loss_scale_manager(), DynamicLossScaleManager)
    with pytest.raises(UserError, match="train.amp_level"):
        _resolve("CPU", amp_level="O4")
    line = _resolve("GPU", world=4, amp_level="O2", jit_level="O1").describe()
    assert "device GPU, mode GRAPH, sink mode on, jit level O1, AMP O2, loss scale dynamic" in line
    assert "global batch 32 (8 per device x 4)" in line


def test_sync_bn_needs_ascend_and_save_every_steps_needs_no_sink():
    for device in ("CPU", "GPU"):  # nn.SyncBatchNorm's Supported Platforms: Ascend (MindSpore 2.10)
        with pytest.raises(UserError, match=f"train.sync_bn: nn.SyncBatchNorm runs on Ascend only .* on {device};"):
            _resolve(device, sync_bn=True, world=2)
    assert _resolve("Ascend", sync_bn=True, world=8).device == "Ascend"
    with pytest.raises(UserError, match="train.save_every_steps needs train.sink_mode false"):
        _resolve("Ascend", save_every_steps=100)
    assert _resolve("Ascend", save_every_steps=100, sink_mode="false").sink_mode is False
    with pytest.raises(UserError, match="sync_bn and train.freeze_bn"):
        load_config(None, ["train.sync_bn=true", "train.freeze_bn=true"])
    for key in ("warmup_epochs=-1", "save_every_steps=-2", "val_interval=-1", "prelu_form=fast"):
        with pytest.raises(UserError, match=key.split("=")[0]):
            load_config(None, [f"train.{key}"])


class _Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.block = nn.SequentialCell([nn.Conv2d(3, 4, 1, has_bias=True), nn.BatchNorm2d(4), nn.ReLU()])
        self.head = nn.Dense(4, 2)
        self.bn = nn.BatchNorm1d(2)

    def construct(self, x):
        return self.bn(self.head(self.block(x).mean(axis=(2, 3))))


def test_swap_batchnorm_keeps_names_and_values():
    """The sync_bn swap (nn.SyncBatchNorm needs GPU/Ascend; a BatchNorm subclass stands in for it here)."""

    class Swapped(nn.BatchNorm2d):
        pass

    net = _Net()
    for p in net.get_parameters():
        p.set_data(ms.Tensor(np.random.default_rng(0).standard_normal(p.shape).astype(np.float32)))
    before = {p.name: p.asnumpy().copy() for p in net.get_parameters()}
    assert swap_batchnorm(net, lambda bn: Swapped(bn.num_features, eps=bn.eps, momentum=1.0 - bn.momentum)) == 2
    assert isinstance(net.block[1], Swapped) and isinstance(net.bn, Swapped)
    after = {p.name: p.asnumpy() for p in net.get_parameters()}
    assert sorted(after) == sorted(before) == sorted(name for name, _ in net.parameters_and_names())
    for name, value in before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    assert net.bn.momentum == pytest.approx(1.0 - 0.9)


def test_freeze_batchnorm_uses_running_statistics_in_training():
    net = _Net()
    assert freeze_batchnorm(net) == 2
    net.set_train(True)
    x = ms.Tensor(np.random.default_rng(1).standard_normal((4, 3, 5, 5)).astype(np.float32))
    one = net(x).asnumpy()[:1]
    alone = net(x[:1]).asnumpy()  # no batch statistics: a frame's output does not depend on the rest of its batch
    np.testing.assert_allclose(one, alone, rtol=1e-5, atol=1e-6)
    digest = parameter_digest(net)
    assert len(digest) == 16 and digest == parameter_digest(net)
    net.head.weight.set_data(ms.Tensor(net.head.weight.asnumpy() + 1e-3))
    assert parameter_digest(net) != digest


# ---------------------------------------------------------------- sync_bn and amp_level O1


def test_sync_bn_swapped_network_has_no_duplicate_parameters():
    """train.sync_bn's swap on the real network: the SequentialCells run only the new layers.

    With one process nn.SyncBatchNorm is a plain BatchNorm (no group of size > 1), so this runs the swapped
    network's graph on CPU; the cross-device kernel itself needs Ascend. Before the fix the old BatchNorms stayed in
    the SequentialCells' cell lists: "parameter 'backbone.layer1.0.downsample.1.gamma' already exists" at the first
    compile. The swapped network's training step is compiled and run in tests/test_device_graphs.py (recipe
    table3_5_lrp, through the trainer's set-up).
    """
    from mindface_au.engine.distributed import sync_batchnorm

    net = tiny_aunet()
    names = sorted(p.name for p in net.get_parameters())
    swapped = sync_batchnorm(net)
    assert swapped > 0
    assert sorted(p.name for p in net.get_parameters()) == names  # same names, nothing added
    for _, cell in net.cells_and_names():
        if isinstance(cell, nn.SequentialCell):
            assert all(a is b for a, b in zip(cell.cell_list, cell.name_cells().values()))
            assert not any(type(c) in (nn.BatchNorm1d, nn.BatchNorm2d) for c in cell.cell_list)
    cell = net.backbone.layer1[0].downsample
    assert isinstance(cell.cell_list[1], nn.SyncBatchNorm) and cell.cell_list[1].gamma.name.endswith(
        "downsample.1.gamma"
    )


def test_sync_batchnorm_momentum_keeps_the_batchnorm_meaning():
    """Pins the installed nn.SyncBatchNorm's momentum convention: running = m * running + (1 - m) * batch with m the
    nn.BatchNorm2d momentum given by the user (0.9 here). Its docstring announces PyTorch's convention (momentum is
    the weight of the batch); when that lands this test fails and distributed.sync_batchnorm must change."""
    from mindface_au.engine.distributed import sync_batchnorm

    class One(nn.Cell):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm2d(3, momentum=0.9)

        def construct(self, x):
            return self.bn(x)

    net = One()
    assert sync_batchnorm(net) == 1 and isinstance(net.bn, nn.SyncBatchNorm)
    net.set_train(True)
    x = np.random.default_rng(2).normal(1.0, 2.0, (4, 3, 5, 5)).astype(np.float32)
    net(ms.Tensor(x))
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(net.bn.moving_mean.asnumpy(), 0.9 * 0.0 + 0.1 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.bn.moving_variance.asnumpy(), 0.9 * 1.0 + 0.1 * var, rtol=1e-4, atol=1e-5)


def test_registering_the_same_factory_again_is_harmless_another_function_is_an_error():
    """AMP O1's generated modules import the model modules again under their bare names (`from aunet import
    AUNet`), which re-runs every @register_model: that must not fail; a different function under a taken name
    still does."""
    import importlib.util
    import sys

    import mindface_au.models.aunet as aunet
    from mindface_au.models.registry import get_model_factory, register_model

    first = get_model_factory("aunet_iresnet18")
    spec = importlib.util.spec_from_file_location("aunet", aunet.__file__)
    again = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(again)  # raised "model 'aunet_iresnet18' is registered twice"
    finally:
        sys.modules.pop("aunet", None)
    assert get_model_factory("aunet_iresnet18") is first

    def aunet_iresnet18():
        return None

    with pytest.raises(ValueError, match="'aunet_iresnet18' is registered twice"):
        register_model(aunet_iresnet18)
    with pytest.raises(ValueError, match="'aunet_iresnet18' is registered twice"):
        register_model(get_model_factory("aunet_iresnet34"), name="aunet_iresnet18")  # same loop, other depth


def test_amp_o1_writes_its_generated_modules_to_a_temporary_folder(tmp_path, monkeypatch):
    """`train.amp_level: O1`: MindSpore's rewritten_network/ goes to a temporary folder, not the working folder, and
    that folder is removed when the process exits."""
    import os
    import subprocess
    import sys

    from mindface_au.engine.runtime import amp_rewrite_folder

    monkeypatch.chdir(tmp_path)
    net = tiny_aunet()
    with amp_rewrite_folder("O1") as folder:
        from mindspore.train.amp import auto_mixed_precision

        rewritten = auto_mixed_precision(net, "O1")  # what Model(amp_level="O1") does to the network
    assert os.getcwd() == str(tmp_path) and os.listdir(tmp_path) == []
    assert os.listdir(os.path.join(folder, "rewritten_network"))
    assert type(rewritten).__name__.startswith("AUNetOpt")  # a step of it: tests/test_device_graphs.py (table3_1 at O1)
    with amp_rewrite_folder("O0") as none:
        assert none is None and os.getcwd() == str(tmp_path)

    code = "from mindface_au.engine.runtime import amp_rewrite_folder as f\nwith f('O1') as d:\n    print(d)\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    made = proc.stdout.strip()
    assert "mindface_au_amp_o1_" in made and not os.path.exists(made)


@pytest.mark.parametrize("amp_level", ["O2", "O3"])
def test_sync_bn_stays_float32_under_amp(amp_level):
    """MindSpore's AMP black list keeps BatchNorm float32 at O2 but does not list nn.SyncBatchNorm: train.sync_bn's
    layers keep float32 at O2 and O3 (their output cast to float16, as MindSpore does for black-listed layers),
    while the convolutions turn float16. Read from the flags AMP sets, without compiling."""
    import mindspore as ms
    from mindspore.amp import auto_mixed_precision

    from mindface_au.engine.distributed import sync_batchnorm

    net = tiny_aunet()
    assert sync_batchnorm(net) > 0
    auto_mixed_precision(net, amp_level)
    syncs = [c for _, c in net.cells_and_names() if isinstance(c, nn.SyncBatchNorm)]
    convs = [c for _, c in net.cells_and_names() if isinstance(c, nn.Conv2d)]
    assert syncs and convs
    for cell in syncs:
        flags = cell.get_flags()
        assert flags.get("fp32") is True and not flags.get("fp16"), flags
        assert cell.output_dtype == ms.float16
    assert all(c.get_flags().get("fp16") is True for c in convs)
