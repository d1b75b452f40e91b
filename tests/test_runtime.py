"""engine/runtime.py and the train keys it reads: sink mode, jit level, AMP loss scaling, sync/frozen BatchNorm."""

import mindspore as ms
import numpy as np
import pytest
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


def test_sync_bn_needs_gpu_or_ascend_and_save_every_steps_needs_no_sink():
    with pytest.raises(UserError, match="train.sync_bn: nn.SyncBatchNorm runs on GPU and Ascend only"):
        _resolve("CPU", sync_bn=True)
    assert _resolve("Ascend", sync_bn=True, world=8).device == "Ascend"
    with pytest.raises(UserError, match="train.save_every_steps needs train.sink_mode false"):
        _resolve("Ascend", save_every_steps=100)
    assert _resolve("Ascend", save_every_steps=100, sink_mode="false").sink_mode is False
    with pytest.raises(UserError, match="sync_bn and train.freeze_bn"):
        load_config(None, ["train.sync_bn=true", "train.freeze_bn=true"])
    for key in ("warmup_epochs=-1", "save_every_steps=-2", "val_interval=0", "prelu_form=fast"):
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
