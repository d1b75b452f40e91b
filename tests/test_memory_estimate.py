"""The activation-memory estimate `train` prints at start (utils/memory.py, engine/runtime.py), against a hand count."""

import numpy as np
import pytest
from mindspore import nn

from mindface_au.config import TrainConfig
from mindface_au.engine import runtime
from mindface_au.engine.runtime import estimate_memory, resolve_runtime
from mindface_au.utils.memory import activation_bytes, count_activations


class HandCounted(nn.Cell):
    """conv 3->4 (3x3, same) on 8x8: 4*8*8 = 256 values; BatchNorm 256; ReLU 256; Identity and Flatten hold no
    memory of their own (left out); Dense 256->5: 5. One image: 773 values."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, pad_mode="same")
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.ident = nn.Identity()
        self.flat = nn.Flatten()
        self.dense = nn.Dense(256, 5)

    def construct(self, x):
        return self.dense(self.flat(self.ident(self.relu(self.bn(self.conv(x))))))


# bytes per image by AMP level, by hand: O0 all float32; O1 float16 conv and Dense; O2 float16 except BatchNorm;
# O3 all float16
HAND_BYTES = {
    "O0": 773 * 4,
    "O1": 256 * 2 + 256 * 4 + 256 * 4 + 5 * 2,
    "O2": 256 * 2 + 256 * 4 + 256 * 2 + 5 * 2,
    "O3": 773 * 2,
}


def test_activation_count_matches_a_hand_count_and_leaves_the_network_as_it_was():
    import mindspore as ms

    net = HandCounted()
    net.set_train(True)
    moving = net.bn.moving_mean.asnumpy().copy()
    rows = count_activations(net, (1, 3, 8, 8))
    assert [(kind, size) for _, kind, size in rows] == [("Conv2d", 256), ("BatchNorm2d", 256), ("ReLU", 256),
                                                        ("Dense", 5)]  # fmt: skip
    for amp, per_image in HAND_BYTES.items():
        assert activation_bytes(rows, 3, amp) == 3 * per_image, amp
    assert ms.get_context("mode") == ms.GRAPH_MODE and net.training
    np.testing.assert_array_equal(net.bn.moving_mean.asnumpy(), moving)


@pytest.mark.parametrize("total_gib, expected", [(1.0, "left for workspace"), (1e-6, "short by")])
def test_estimate_compares_with_the_device_memory_mindspore_reports(monkeypatch, total_gib, expected):
    from mindface_au.utils import device

    monkeypatch.setattr(
        device, "device_memory", lambda target: {"name": "Ascend910B4", "total_bytes": int(total_gib * 2**30)}
    )
    settings = resolve_runtime(TrainConfig(amp_level="O2"), "CPU", 1, 16)
    estimate = estimate_memory(HandCounted(), 8, settings)
    params = 4 * 3 * 3 * 3 + 4 + 4 + 256 * 5 + 5  # conv weight (no bias by default), BatchNorm gamma, beta, Dense
    assert estimate.activation_bytes == 16 * HAND_BYTES["O2"] and estimate.parameters == params
    assert estimate.state_bytes == 3 * 4 * params  # weights, gradients, momentum (sgd)
    line = estimate.describe()
    assert line.startswith("memory estimate: activations 0.00 M values per image (4 layer outputs at 8 px) x batch 16 ")
    assert "(Ascend910B4)" in line and expected in line
    assert estimate.fits is (expected == "left for workspace")
    if expected == "short by":
        assert runtime.FIT_ADVICE in line


def test_cpu_reports_no_device_memory():
    settings = resolve_runtime(TrainConfig(), "CPU", 1, 2)
    estimate = estimate_memory(HandCounted(), 8, settings)
    assert estimate.device_memory is None and estimate.fits is None
    assert estimate.describe().endswith(
        "device memory: not reported by MindSpore on this device (workspace not included)"
    )


def test_train_prints_the_estimate_at_start(trained_tiny_run):
    lines = trained_tiny_run.proc.stderr.splitlines()  # the log goes to stderr (and train.log)
    estimate = [i for i, line in enumerate(lines) if line.startswith("memory estimate: activations ")]
    epochs = [i for i, line in enumerate(lines) if line.startswith("epoch ")]
    assert estimate and (not epochs or estimate[0] < epochs[0]), lines[:30]
    assert " px) x batch " in lines[estimate[0]] and "device memory: not reported" in lines[estimate[0]]
