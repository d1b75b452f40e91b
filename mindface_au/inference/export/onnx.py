"""ONNX export: float32, or int8 by static quantisation.

- float32: `mindspore.onnx.export` (opset 11) with a dynamic batch axis, the metadata in metadata_props; checked
  against MindSpore on a random batch.
- int8 (`quantize="int8"`): onnxruntime.quantization, QDQ format, per-channel int8 weights and uint8
  activations, calibrated on aligned face crops (`calibration_crops`: a folder, or SynthAU frames rendered on the
  fly). Per-channel DequantizeLinear needs opset 13, so the float32 graph is converted first. The result reports
  the int8 file's speed against the float32 file and its largest difference on crops not used for calibration
  (`max_diff`; with the intensity head also `max_intensity_diff`, on the 0-5 scale).
"""

import os
import tempfile
import time
from typing import Optional, Tuple

import numpy as np

from mindface_au.config import ModelConfig
from mindface_au.errors import UserError, param
from mindface_au.inference.export.checks import record_diffs
from mindface_au.inference.metadata import (
    MODEL_INFO_KEY,
    OUTPUT_NAMES,
    encode_metadata,
    intensity_names,
    model_metadata,
    output_width,
)
from mindface_au.inference.model_file import ONNX_EXTRA, onnx_session
from mindface_au.utils import guard
from mindface_au.utils.io import atomic_path

__all__ = ["QUANTIZE", "HELD_OUT", "onnx_modules", "calibration_crops", "write_onnx"]

QUANTIZE = ("int8",)
QUANT_OPSET = 13  # per-channel QDQ (DequantizeLinear with an axis) needs opset 13
HELD_OUT = 32  # crops kept out of calibration to compare int8 with float32


def onnx_modules():
    """The onnx module; a one-line error when onnx or onnxruntime (which checks the export) is missing."""
    try:
        import onnx
        import onnxruntime  # noqa: F401 - the export is checked with it
    except ImportError as exc:
        raise UserError(f"{param('fmt')} ONNX needs the onnx and onnxruntime packages: {ONNX_EXTRA}") from exc
    return onnx


def _set_metadata(model, info: dict) -> None:
    for prop in list(model.metadata_props):
        if prop.key == MODEL_INFO_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = MODEL_INFO_KEY, encode_metadata(info)


def _session(path: str):
    """The ONNX Runtime session the checks and int8 timings run: CPU, every core this process may use."""
    return onnx_session(path, 0, "CPU")


def _write_float(inference_net, size: int, batch: int, path: str, output_names: list) -> None:
    import mindspore as ms

    dummy = ms.Tensor(np.zeros((batch, 3, size, size), np.float32))
    try:
        ms.onnx.export(
            inference_net,
            dummy,
            file_name=path,
            input_names=["input"],
            output_names=list(output_names),
            dynamic_axes={"input": {0: "batch"}},
        )
    except Exception as exc:  # noqa: BLE001 - MindSpore raises RuntimeError/TypeError for unsupported ops
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{param('fmt')} ONNX: MindSpore could not export the network ({first[:200]})") from exc
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise UserError(f"{param('fmt')} ONNX: MindSpore wrote no ONNX file")


def _median_seconds(session, x: np.ndarray, repeats: int = 5) -> float:
    name = session.get_inputs()[0].name
    session.run(None, {name: x})  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - t)
    return float(np.median(times))


class _CalibrationReader:
    """onnxruntime.quantization CalibrationDataReader over normalised crops, in batches."""

    def __init__(self, name: str, x: np.ndarray, batch: int = 8) -> None:
        self._batches = iter([{name: x[i : i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self._batches, None)

    def rewind(self) -> None:  # pragma: no cover - not called by quantize_static
        pass


def _quantize(float_path: str, out_tmp: str, calib: np.ndarray, workdir: str) -> None:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.registry import QDQRegistry
    from onnxruntime.quantization.shape_inference import quant_pre_process

    model = onnx.load(float_path)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < QUANT_OPSET:
        model = version_converter.convert_version(model, QUANT_OPSET)
    converted = os.path.join(workdir, "opset13.onnx")
    onnx.save(model, converted)
    prepared = os.path.join(workdir, "prepared.onnx")
    quant_pre_process(converted, prepared, skip_symbolic_shape=True)
    name = model.graph.input[0].name
    quantize_static(
        prepared,
        out_tmp,
        _CalibrationReader(name, calib),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        weight_type=QuantType.QInt8,
        activation_type=QuantType.QUInt8,
        # the BatchNorms left unfolded (before padded convolutions) stay float: their 1-D weights have no channel axis
        op_types_to_quantize=[op for op in QDQRegistry if op != "BatchNormalization"],
    )


def calibration_crops(spec, calib: Optional[str] = None, frames: int = 256, held_out: int = HELD_OUT):
    """(calibration, held_out) normalised crops: images of folder `calib` (sorted), or SynthAU frames rendered
    on the fly (several identities). The held-out crops come after the calibration ones and are never used for
    calibration. Returns (np.ndarray, np.ndarray, description)."""
    import cv2

    from mindface_au.data.transforms import preprocess_faces

    if frames < 1:
        raise UserError(f"{param('calib_frames')}: got {frames}, expected a positive integer")
    if calib:
        from mindface_au.inference.detect import IMAGE_EXTENSIONS

        if not os.path.isdir(calib):
            raise UserError(f"{param('calib')} {calib}: not a folder of aligned face crops")
        names = sorted(n for n in os.listdir(calib) if n.lower().endswith(IMAGE_EXTENSIONS))
        images = [cv2.imread(os.path.join(calib, n), cv2.IMREAD_COLOR) for n in names]
        images = [im for im in images if im is not None]
        if len(images) < 2:
            raise UserError(f"{param('calib')} {calib}: found {len(images)} readable images, expected at least 2")
        held = min(held_out, max(1, len(images) // 5))
        use = images[: min(frames, len(images) - held)]
        rest = images[len(images) - held :]
        source = f"{len(use)} crops of {calib}"
    else:
        from mindface_au.data.synthau import synth_video

        need = frames + held_out
        root = np.random.SeedSequence(20240613)
        images = []
        while len(images) < need:  # 16 frames per identity; a few frames of a video have no face
            images += [f for f in synth_video(root.spawn(1)[0], 16)["frames"] if f is not None]
        use, rest = images[:frames], images[frames:need]
        source = f"{len(use)} SynthAU frames rendered for calibration"
    return preprocess_faces(use, spec), preprocess_faces(rest, spec), source


def _int8_report(float_session, int8_session, held: np.ndarray, batch_size: int, calibration: str) -> dict:
    """The int8 file against the float32 one: largest difference on `held` (of each output: probabilities or
    embedding, and the intensity head's), median time of one batch each."""
    int8_outs = int8_session.run(None, {"input": held})
    float_outs = float_session.run(None, {"input": held})
    diffs = [float(np.abs(a - b).max()) for a, b in zip(int8_outs, float_outs)]
    diff = diffs[0]
    timing = np.ascontiguousarray(held[: max(1, min(batch_size, len(held)))])
    t_float, t_int8 = _median_seconds(float_session, timing), _median_seconds(int8_session, timing)
    report = {
        "scheme": "static QDQ, per-channel int8 weights, uint8 activations (onnxruntime.quantization)",
        "opset": QUANT_OPSET,
        "calibration": calibration,
        "compared_on": f"{len(held)} crops not used for calibration",
        "max_diff": round(diff, 6),  # probabilities for AU models, embedding values for backbones
        "float32_seconds": round(t_float, 5),
        "int8_seconds": round(t_int8, 5),
        "time_ratio_int8_vs_float32": round(t_int8 / t_float, 3) if t_float > 0 else None,
        "timed_batch": int(timing.shape[0]),
    }
    if len(diffs) > 1:  # the intensity head's output, on the 0-5 scale
        report["max_intensity_diff"] = round(diffs[1], 6)
    return report


def write_onnx(
    run_net,
    model_cfg: ModelConfig,
    out: str,
    batch_size: int,
    quantize: Optional[str] = None,
    calibration: Optional[Tuple[Optional[np.ndarray], Optional[np.ndarray], str]] = None,
    **meta,
) -> dict:
    """Write inference network `run_net` (loader.inference_network) to ONNX file `out` (dynamic batch axis,
    traced at `batch_size`); returns its metadata (`meta`: source, card, settings, as `model_metadata` takes
    them) plus `max_abs_diff_vs_mindspore`. A model with the intensity head has two outputs, "probabilities"
    and "intensity" (metadata.OUTPUT_NAMES), both checked (`max_abs_diff_intensity_vs_mindspore`); a model
    without it keeps its one output "probs" ("embedding" for a bare backbone).

    `quantize="int8"` takes `calibration` = (calibration crops, held-out crops, their description), as
    `calibration_crops` returns them (normalised float32 (N, 3, S, S)): it calibrates on the first and compares
    with float32 on the second; the returned dict then has "int8": {time ratio, max_diff, ...}.
    """
    import mindspore as ms

    onnx = onnx_modules()
    size = int(model_cfg.input_size)
    output_names = ["embedding" if output_width(model_cfg) != model_cfg.num_classes else "probs"]
    if intensity_names(model_cfg):  # the intensity head: a second output, both named as the metadata says
        output_names = list(OUTPUT_NAMES)
    info = model_metadata(model_cfg, None, **meta)
    calib_images, held_out_images, calib_source = calibration or (None, None, "")
    check = np.random.default_rng(0).normal(0, 1, (min(batch_size, 4), 3, size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="mindface_au_export_") as work:
        float_path = os.path.join(work, "float32.onnx")
        with guard.writing(float_path):  # the temporary folder may be on another (full) disk
            _write_float(run_net, size, batch_size, float_path, output_names)
            model = onnx.load(float_path)
            _set_metadata(model, info)
            onnx.save(model, float_path)
        reference = run_net(ms.Tensor(check))
        float_session = _session(float_path)
        record_diffs(info, float_session.run(None, {"input": check}), reference, out)  # every output
        if not quantize:
            with atomic_path(out) as tmp:
                onnx.save(model, tmp)
            return info
        if calib_images is None or len(calib_images) == 0:
            raise UserError(f"{param('quantize')} int8: no calibration crops")
        quant_tmp = os.path.join(work, "int8.onnx")
        _quantize(float_path, quant_tmp, calib_images, work)
        held = held_out_images if held_out_images is not None and len(held_out_images) else check
        calibration = calib_source or f"{len(calib_images)} crops"
        info["int8"] = _int8_report(float_session, _session(quant_tmp), held, batch_size, calibration)
        quantized = onnx.load(quant_tmp)
        _set_metadata(quantized, info)
        with atomic_path(out) as tmp:
            onnx.save(quantized, tmp)
    return info
