"""`convert_checkpoint`: a model-zoo IResNet checkpoint (any layout in `layouts.ACCEPTED`) -> strict MindSpore .ckpt."""

import contextlib
import dataclasses
import os
import time
from typing import Any, Dict, Optional, Sequence

import numpy as np

from mindface_au.errors import UserError, param
from mindface_au.utils.memory import peak_rss_mb
from mindface_au.weights.layouts import read_backbone_state, select_state_dict
from mindface_au.weights.mapping import IRESNET_ARCHS, guess_iresnet_layers

__all__ = ["convert_checkpoint", "verify_conversion", "peak_rss_mb", "VERIFY_RTOL"]

VERIFY_RTOL = 1e-4  # max |torch - mindspore| allowed, relative to max |torch embedding|


def _arch_hint(torch_names, arch: str, layers: Sequence[int]) -> str:
    found = guess_iresnet_layers(torch_names)
    if tuple(found) == tuple(layers):
        return ""
    names = [name for name, blocks in IRESNET_ARCHS.items() if blocks == found]
    guess = f"{names[0]}, " if names else ""
    return f"; the file has {guess}blocks per stage {list(found)}, {param('arch')} {arch} expects {list(layers)}"


def _build_iresnet(arch: str, widths, layers, embedding_size: int, input_size: int):
    from mindface_au.models.iresnet import IRESNET_LAYERS, create_iresnet

    if arch not in IRESNET_LAYERS:
        raise UserError(f"{param('arch')}: unknown architecture {arch!r}; expected one of {', '.join(IRESNET_LAYERS)}")
    try:
        return create_iresnet(arch, widths=widths, layers=layers, embedding_size=embedding_size, input_size=input_size)
    except ValueError as exc:
        raise UserError(f"{param('arch')} {arch}: {exc}") from exc


def _parameter_shapes(arch: str, widths, layers, embedding_size: int, input_size: int) -> Dict[str, tuple]:
    """{name: shape} of the MindSpore IResNet, built without allocating its weights where MindSpore allows."""
    try:
        from mindspore.nn.utils import no_init_parameters
    except ImportError:  # older MindSpore: build normally
        no_init_parameters = contextlib.nullcontext
    with no_init_parameters():
        net = _build_iresnet(arch, widths, layers, embedding_size, input_size)
    return {name: tuple(p.shape) for name, p in net.parameters_and_names()}


def verify_conversion(
    src: str,
    ckpt: str,
    arch: str,
    widths: Sequence[int] = (64, 128, 256, 512),
    layers: Sequence[int] = (),
    embedding_size: int = 512,
    input_size: int = 112,
    batch: int = 2,
    seed: int = 0,
) -> Dict[str, float]:
    """Run the PyTorch reference on `src` and the MindSpore IResNet on `ckpt` (eval mode, same random batch).

    Returns max_abs_diff, scale (max |torch embedding|) and tolerance; raises UserError above the tolerance.
    """
    from mindface_au.reference import require_torch

    torch = require_torch("--verify")
    import mindspore as ms

    from mindface_au.models.checkpoint import load_checkpoint_strict
    from mindface_au.reference.torch_iresnet import iresnet

    ref = iresnet(arch, widths=widths, layers=layers, num_features=embedding_size, input_size=input_size)
    state = select_state_dict(torch.load(src, map_location="cpu", weights_only=True), src, torch.is_tensor)[0]
    try:
        ref.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UserError(
            f"{src}: {param('verify')}: PyTorch refuses the state_dict ({str(exc).splitlines()[0]})"
        ) from exc
    del state
    ref.eval()
    x = np.random.RandomState(seed).uniform(-1.0, 1.0, (batch, 3, input_size, input_size)).astype(np.float32)
    with torch.no_grad():
        expected = ref(torch.from_numpy(x)).numpy()
    if not np.isfinite(expected).all():
        raise UserError(
            f"{src}: {param('verify')}: the PyTorch reference gives non-finite embeddings for these weights"
        )
    net = _build_iresnet(arch, widths, layers, embedding_size, input_size)
    load_checkpoint_strict(net, ckpt)
    net.set_train(False)
    got = net(ms.Tensor(x)).asnumpy()
    diff = float(np.abs(expected.astype(np.float64) - got).max())
    scale = float(np.abs(expected).max())
    result = {"max_abs_diff": diff, "scale": scale, "tolerance": VERIFY_RTOL * scale, "batch": batch}
    if not diff <= result["tolerance"]:
        raise UserError(
            f"{src}: {param('verify')} failed: max |torch - mindspore| = "
            f"{diff:.3g} exceeds {VERIFY_RTOL:g} x {scale:.3g}"
        )
    return result


def convert_checkpoint(
    src: str,
    arch: str,
    out: str,
    widths: Optional[Sequence[int]] = None,
    layers: Optional[Sequence[int]] = None,
    verify: bool = False,
    *,
    embedding_size: int = 512,
    input_size: int = 112,
    device: Optional[str] = None,
) -> Dict[str, Any]:
    """Convert the IResNet checkpoint `src` to a MindSpore checkpoint `out` for `create_iresnet(arch)`.

    `src` is any layout in `layouts.ACCEPTED` (torch.save files are read without PyTorch by a restricted
    unpickler); the backbone is taken out, renamed, cast to float32, checked name by name and shape by shape
    both ways against the MindSpore network, and written to `out` atomically with its ModelConfig embedded.
    With `verify`, PyTorch and MindSpore embeddings of one random batch must agree before `out` appears.
    `widths`/`layers` override the stage widths and block counts (tiny networks in tests). `device`, when
    given, sets up the MindSpore context (`init_context`) once the file has been read, so bad input fails fast.
    Returns a summary dict (layout, tensors, values, dropped and ignored names, seconds, peak_rss_mb, verify).
    """
    from mindface_au.config import ModelConfig, config_to_dict
    from mindface_au.utils.io import atomic_path

    start = time.perf_counter()
    if arch not in IRESNET_ARCHS:
        raise UserError(f"{param('arch')}: unknown architecture {arch!r}; expected one of {', '.join(IRESNET_ARCHS)}")
    widths = list(widths or (64, 128, 256, 512))
    layers = list(layers or IRESNET_ARCHS[arch])
    if os.path.isdir(out):
        raise UserError(f"{out}: is a folder, expected a .ckpt file name")
    if not out.endswith(".ckpt"):
        raise UserError(f"{out}: MindSpore checkpoints must end with .ckpt")
    state = read_backbone_state(src)
    if verify and not state.torch_names:
        raise UserError(f"{src}: {param('verify')} compares with the PyTorch reference, so it needs a torch.save file")
    converted = state.arrays
    if device is not None:
        from mindface_au.utils.device import init_context

        init_context(device, "graph")
    expected = _parameter_shapes(arch, widths, layers, embedding_size, input_size)
    target = f"{arch} (widths {widths}, layers {layers}, embedding {embedding_size})"
    state.check(expected, src, target, hint=_arch_hint(state.origin.values(), arch, layers))

    import mindspore as ms

    from mindface_au.models.checkpoint import save_checkpoint_atomic

    model_cfg = dataclasses.replace(
        ModelConfig(), name=arch, widths=widths, layers=layers, embedding_size=embedding_size, input_size=input_size
    )
    # the network's own parameter order; Tensor.from_numpy shares memory (no second copy of a 65 M model)
    ordered = [
        {"name": name, "data": ms.Tensor.from_numpy(np.array(converted[name], order="C", copy=False))}
        for name in expected
    ]
    values = int(sum(converted[name].size for name in expected))
    verify_result = None
    with atomic_path(out) as tmp:
        extra = {"source": os.path.basename(src)}
        save_checkpoint_atomic(ordered, tmp, model_config=config_to_dict(model_cfg), extra=extra)
        del ordered, converted
        state.arrays = {}  # free the source copy before the (optional) verify run
        if verify:
            verify_result = verify_conversion(src, tmp, arch, widths, layers, embedding_size, input_size)
    return {
        "src": src,
        "out": out,
        "arch": arch,
        "layout": state.layout,
        "tensors": len(expected),
        "values": values,
        "dropped": state.dropped,
        "ignored": state.ignored,
        "seconds": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
        "verify": verify_result,
    }
