"""Export a network to MindIR or ONNX for deployment (`mindface-au export`), optionally int8-quantised (ONNX), or
as a model-zoo release checkpoint (CKPT). One module per format:

- `mindir`: a fixed-batch graph (`--batch-size`); the loader pads and slices.
- `onnx`: `mindspore.onnx.export` (opset 11) with a dynamic batch axis; with `quantize="int8"`, static QDQ
  quantisation calibrated on aligned face crops (a folder, or SynthAU frames), reported against float32.
- `ckpt`: a model-zoo release file `{model}_{spec}-{sha256[:8]}.ckpt` (named by mindface_au.release) and its
  recipe, parameters only.
- `checks`: what every format checks (the output path, the source file, the graph's outputs against MindSpore).

What is exported is what `load_inference_model` runs for a checkpoint: BatchNorm folded, batch-agnostic
(mindface_au.inference.fold), sigmoid probabilities for AU networks, the embedding for bare `iresnet*` backbones.
The input is float32 (B, 3, S, S) RGB normalised as mindface_au.data.transforms says. MindIR and ONNX files carry
the same JSON metadata (mindface_au.inference.metadata: model config, input size, mean/std, crop, the evaluation
settings the source checkpoint was validated with, batch size, output), so the file alone is enough to run it.
The source checkpoint is read once (`model_file.read_model_file`).
"""

from typing import Optional, Union

import numpy as np

from mindface_au.config import Config, ModelConfig
from mindface_au.errors import UserError, param
from mindface_au.inference.export.checks import FORMATS, check_out, check_source
from mindface_au.inference.export.ckpt import default_spec, export_release
from mindface_au.inference.export.onnx import QUANTIZE, calibration_crops, onnx_modules
from mindface_au.release import SPEC_CHARS, release_name
from mindface_au.utils import guard

__all__ = ["FORMATS", "QUANTIZE", "export_network", "export_model", "calibration_crops"]
__all__ += ["release_name", "default_spec", "export_release", "SPEC_CHARS"]


def export_network(
    net,
    model_cfg: ModelConfig,
    out: str,
    fmt: str,
    batch_size: int = 8,
    quantize: Optional[str] = None,
    calib_images: Optional[np.ndarray] = None,
    held_out_images: Optional[np.ndarray] = None,
    source: str = "",
    calib_source: str = "",
    card: Optional[dict] = None,
    settings: Optional[dict] = None,
) -> dict:
    """Write `net` (built from `model_cfg`, weights loaded) to `out` in format `fmt` (FORMATS); returns its metadata.

    The metadata carries the AU set (`au_names`), the face crop, the model card `card` of the source checkpoint
    and how to run it, `settings` (ModelFile.settings(): preprocessing and evaluation settings).

    `quantize="int8"` (ONNX only) calibrates on `calib_images` (normalised float32 (N, 3, S, S)) and compares with
    float32 on `held_out_images`; the returned dict then has "int8": {speedup, max_prob_diff, ...}. The network is
    prepared for inference in place (BatchNorm folded).
    """
    from mindface_au.inference.export.mindir import write_mindir
    from mindface_au.inference.export.onnx import write_onnx
    from mindface_au.inference.loader import inference_network

    fmt = fmt.upper()
    if fmt not in FORMATS or fmt == "CKPT":  # CKPT needs the recipe: export_release
        raise UserError(f"{param('fmt')}: got {fmt!r}, expected one of {', '.join(f for f in FORMATS if f != 'CKPT')}")
    check_out(out, fmt)
    if batch_size < 1:
        raise UserError(f"{param('batch_size')}: got {batch_size}, expected a positive integer")
    if quantize is not None and quantize not in QUANTIZE:
        raise UserError(f"{param('quantize')}: got {quantize!r}, expected one of {', '.join(QUANTIZE)}")
    if quantize and fmt != "ONNX":
        raise UserError(f"{param('quantize')} {quantize}: only with {param('fmt')} ONNX")
    run_net = inference_network(net, model_cfg)
    meta = {"source": source, "card": card, "settings": settings}
    if fmt == "MINDIR":
        return write_mindir(run_net, model_cfg, out, batch_size, **meta)
    calibration = (calib_images, held_out_images, calib_source)
    return write_onnx(run_net, model_cfg, out, batch_size, quantize, calibration, **meta)


def export_model(
    ckpt: str,
    out: str,
    fmt: str = "MINDIR",
    batch_size: int = 8,
    quantize: Optional[str] = None,
    calib: Optional[str] = None,
    calib_frames: int = 256,
    device: str = "auto",
    config: Union[None, str, Config, ModelConfig] = None,
    spec: Optional[str] = None,
    overwrite: bool = False,
) -> dict:
    """Rebuild the network of training checkpoint `ckpt` (embedded or given config), load it strictly and write
    `out` (see export_network). Returns the metadata stored in the file (plus the int8 report).

    `fmt="CKPT"` writes a release checkpoint into folder `out` instead (export_release: `config` is the recipe,
    `spec` its name). An existing `out` file is replaced only with `overwrite`; `out` is never an input. The
    checkpoint is read once (model_file.read_model_file); a Config whose given values contradict its input size or
    AU set is refused, and the export carries the file's preprocessing and evaluation settings."""
    from mindface_au.inference.model_file import check_config, read_model_file
    from mindface_au.models import build_network
    from mindface_au.utils.device import init_context

    fmt = fmt.upper()
    if fmt not in FORMATS:
        raise UserError(f"{param('fmt')}: got {fmt!r}, expected one of {', '.join(FORMATS)}")
    check_out(out, fmt)
    if batch_size < 1:
        raise UserError(f"{param('batch_size')}: got {batch_size}, expected a positive integer")
    if quantize and fmt != "ONNX":
        raise UserError(f"{param('quantize')} {quantize}: only with {param('fmt')} ONNX")
    check_source(ckpt)
    if fmt != "CKPT":
        guard.check_outputs([out], [ckpt, calib], overwrite)
    if fmt == "CKPT":
        if isinstance(config, ModelConfig):
            raise UserError(
                f"{param('fmt')} CKPT: the recipe is a whole config (YAML path or Config), not a model section"
            )
        return export_release(ckpt, out, config, spec, device)
    if fmt == "ONNX":
        onnx_modules()
    init_context(device)
    mf = read_model_file(ckpt, config)
    if isinstance(config, Config):
        check_config(mf, config)
    model_cfg = mf.model_config
    calib_x = held = None
    calib_source = ""
    if quantize:
        calib_x, held, calib_source = calibration_crops(mf.preprocessing, calib, calib_frames)
    net = build_network(model_cfg, load_backbone=False)
    mf.load_into(net)
    return export_network(
        net,
        model_cfg,
        out,
        fmt,
        batch_size,
        quantize,
        calib_x,
        held,
        source=ckpt,
        calib_source=calib_source,
        card=mf.card,
        settings=mf.settings(),
    )
