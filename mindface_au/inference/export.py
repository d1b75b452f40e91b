"""Export a network to MindIR or ONNX for deployment (`mindface-au export`), optionally int8-quantised (ONNX), or
as a model-zoo release checkpoint (CKPT).

What is exported is what `load_inference_model` runs for a checkpoint: BatchNorm folded, batch-agnostic
(mindface_au.inference.fold), sigmoid probabilities for AU networks, the embedding for bare `iresnet*` backbones.
The input is float32 (B, 3, S, S) RGB normalised as mindface_au.data.transforms says. Both formats carry the same
JSON metadata (`loader.model_metadata`: model config, input size, mean/std, crop, the evaluation settings the
source checkpoint was validated with, batch size, output) under `loader.MODEL_INFO_KEY` (MindIR user_info, ONNX
metadata_props), so the file alone is enough to run it. The source checkpoint is read once
(`model_file.read_model_file`).

- MINDIR: fixed batch (`--batch-size`); the loader pads and slices.
- ONNX: `mindspore.onnx.export` (opset 11) with a dynamic batch axis; the export is checked against MindSpore
  on a random batch.
- ONNX + `quantize="int8"`: static quantisation with onnxruntime.quantization, QDQ format, per-channel int8
  weights and uint8 activations, calibrated on aligned face crops (a folder, or SynthAU frames rendered on the
  fly). Per-channel DequantizeLinear needs opset 13, so the float32 graph is converted first. The result reports
  the int8 file's speed against the float32 file and its largest probability difference on crops that were not
  used for calibration.
- CKPT: a model-zoo release file as mindcv names them, `{model}_{spec}-{sha256[:8]}.ckpt` in the folder `out`
  (spec: the recipe's name), with the recipe (the resolved config YAML, `{model}_{spec}.yaml`) beside it. It holds
  the network's parameters only (float32; no optimiser moments, learning rate or step counters) and the embedded
  ModelConfig, so `create_model`, `load_inference_model`, `eval` and `detect` load it like a training checkpoint.
  The hash is of the file's bytes as written.
"""

import dataclasses
import os
import re
import shutil
import tempfile
import time
from typing import Optional, Union

import numpy as np

from mindface_au.config import Config, ModelConfig
from mindface_au.errors import UserError
from mindface_au.inference.loader import (
    MODEL_INFO_KEY,
    ONNX_EXTRA,
    inference_network,
    model_metadata,
    output_width,
)
from mindface_au.utils import guard
from mindface_au.utils.cpus import available_cpus
from mindface_au.utils.io import atomic_path, mindspore_safe_path

__all__ = ["FORMATS", "QUANTIZE", "export_network", "export_model", "calibration_crops"]
__all__ += ["release_name", "default_spec", "export_release"]

FORMATS = ("MINDIR", "ONNX", "CKPT")
EXTENSIONS = {"MINDIR": ".mindir", "ONNX": ".onnx"}  # CKPT: `out` is a folder, the file name is derived
QUANTIZE = ("int8",)
QUANT_OPSET = 13  # per-channel QDQ (DequantizeLinear with an axis) needs opset 13
HELD_OUT = 32  # crops kept out of calibration to compare int8 with float32


def _checked_diff(got: np.ndarray, reference: np.ndarray, out: str) -> float:
    """The largest difference between the exported file's outputs and MindSpore's; not a number is an error."""
    diff = float(np.abs(np.asarray(got, np.float64) - np.asarray(reference, np.float64)).max())
    if not np.isfinite(diff):
        raise UserError(f"{out}: the export check gives {diff} (the model outputs NaN/Inf); file not written")
    return diff


def _check_out(out: str, fmt: str) -> None:
    if fmt == "CKPT":
        if os.path.exists(out) and not os.path.isdir(out):
            raise UserError(f"--out {out}: is a file; --format CKPT writes into a folder (the file name is derived)")
        if out.lower().endswith((".ckpt", ".yaml")):
            raise UserError(f"--out {out}: --format CKPT takes a folder (the file name is derived), not a file name")
        return
    ext = EXTENSIONS[fmt]
    if not out.lower().endswith(ext):
        raise UserError(f"--out {out}: expected a file name ending in {ext} for --format {fmt}")
    if os.path.isdir(out):
        raise UserError(f"--out {out}: is a folder; give a {ext} file name")


def _onnx_modules():
    try:
        import onnx
        import onnxruntime  # noqa: F401 - the export is checked with it
    except ImportError as exc:
        raise UserError(f"--format ONNX needs the onnx and onnxruntime packages: {ONNX_EXTRA}") from exc
    return onnx


def _set_metadata(model, info: dict) -> None:
    import json

    for prop in list(model.metadata_props):
        if prop.key == MODEL_INFO_KEY:
            model.metadata_props.remove(prop)
    entry = model.metadata_props.add()
    entry.key, entry.value = MODEL_INFO_KEY, json.dumps(info)


def _onnx_session(path: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = available_cpus()
    options.log_severity_level = 3
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def _write_onnx_float(inference_net, size: int, batch: int, path: str, output_name: str) -> None:
    import mindspore as ms

    dummy = ms.Tensor(np.zeros((batch, 3, size, size), np.float32))
    try:
        ms.onnx.export(
            inference_net,
            dummy,
            file_name=path,
            input_names=["input"],
            output_names=[output_name],
            dynamic_axes={"input": {0: "batch"}},
        )
    except Exception as exc:  # noqa: BLE001 - MindSpore raises RuntimeError/TypeError for unsupported ops
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"--format ONNX: MindSpore could not export the network ({first[:200]})") from exc
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        raise UserError("--format ONNX: MindSpore wrote no ONNX file")


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
        raise UserError(f"--calib-frames: got {frames}, expected a positive integer")
    if calib:
        from mindface_au.inference.detect import IMAGE_EXTENSIONS

        if not os.path.isdir(calib):
            raise UserError(f"--calib {calib}: not a folder of aligned face crops")
        names = sorted(n for n in os.listdir(calib) if n.lower().endswith(IMAGE_EXTENSIONS))
        images = [cv2.imread(os.path.join(calib, n), cv2.IMREAD_COLOR) for n in names]
        images = [im for im in images if im is not None]
        if len(images) < 2:
            raise UserError(f"--calib {calib}: found {len(images)} readable images, expected at least 2")
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
    import mindspore as ms

    fmt = fmt.upper()
    if fmt not in FORMATS or fmt == "CKPT":  # CKPT needs the recipe: export_release
        raise UserError(f"--format: got {fmt!r}, expected one of {', '.join(f for f in FORMATS if f != 'CKPT')}")
    _check_out(out, fmt)
    if batch_size < 1:
        raise UserError(f"--batch-size: got {batch_size}, expected a positive integer")
    if quantize is not None and quantize not in QUANTIZE:
        raise UserError(f"--quantize: got {quantize!r}, expected one of {', '.join(QUANTIZE)}")
    if quantize and fmt != "ONNX":
        raise UserError(f"--quantize {quantize}: only with --format ONNX")
    size = int(model_cfg.input_size)
    run_net = inference_network(net, model_cfg)
    if fmt == "MINDIR":
        info = model_metadata(model_cfg, int(batch_size), source, card=card, settings=settings)
        dummy = ms.Tensor(np.zeros((batch_size, 3, size, size), np.float32))

        def add_info(proto) -> None:
            import json

            proto.user_info[MODEL_INFO_KEY] = json.dumps(info)

        with atomic_path(out) as tmp, mindspore_safe_path(tmp) as written:  # MindSpore: no spaces, ASCII only
            ms.export(run_net, dummy, file_name=written, file_format="MINDIR", custom_func=add_info)
            if not os.path.isfile(written) or os.path.getsize(written) == 0:
                raise UserError(f"--out {out}: MindSpore wrote no MindIR file")
            # the file's own check: the graph read back gives the network's outputs (a NaN model fails here)
            check = np.random.default_rng(0).normal(0, 1, (batch_size, 3, size, size)).astype(np.float32)
            got = ms.nn.GraphCell(ms.load(written))(ms.Tensor(check)).asnumpy()
            info["max_abs_diff_vs_mindspore"] = _checked_diff(got, run_net(ms.Tensor(check)).asnumpy(), out)
            if written != tmp:
                shutil.move(written, tmp)
        return info

    onnx = _onnx_modules()
    output_name = "embedding" if output_width(model_cfg) != model_cfg.num_classes else "probs"
    info = model_metadata(model_cfg, None, source, card=card, settings=settings)
    check = np.random.default_rng(0).normal(0, 1, (min(batch_size, 4), 3, size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="mindface_au_export_") as work:
        float_path = os.path.join(work, "float32.onnx")
        with guard.writing(float_path):  # the temporary folder may be on another (full) disk
            _write_onnx_float(run_net, size, batch_size, float_path, output_name)
            model = onnx.load(float_path)
            _set_metadata(model, info)
            onnx.save(model, float_path)
        reference = run_net(ms.Tensor(check)).asnumpy()
        float_session = _onnx_session(float_path)
        got = float_session.run(None, {"input": check})[0]
        info["max_abs_diff_vs_mindspore"] = _checked_diff(got, reference, out)
        if not quantize:
            with atomic_path(out) as tmp:
                onnx.save(model, tmp)
            return info
        if calib_images is None or len(calib_images) == 0:
            raise UserError("--quantize int8: no calibration crops")
        quant_tmp = os.path.join(work, "int8.onnx")
        _quantize(float_path, quant_tmp, calib_images, work)
        held = held_out_images if held_out_images is not None and len(held_out_images) else check
        int8_session = _onnx_session(quant_tmp)
        int8_out = int8_session.run(None, {"input": held})[0]
        diff = float(np.abs(int8_out - float_session.run(None, {"input": held})[0]).max())
        timing = np.ascontiguousarray(held[: max(1, min(batch_size, len(held)))])
        t_float, t_int8 = _median_seconds(float_session, timing), _median_seconds(int8_session, timing)
        info["int8"] = {
            "scheme": "static QDQ, per-channel int8 weights, uint8 activations (onnxruntime.quantization)",
            "opset": QUANT_OPSET,
            "calibration": calib_source or f"{len(calib_images)} crops",
            "compared_on": f"{len(held)} crops not used for calibration",
            "max_diff": round(diff, 6),  # probabilities for AU models, embedding values for backbones
            "float32_seconds": round(t_float, 5),
            "int8_seconds": round(t_int8, 5),
            "time_ratio_int8_vs_float32": round(t_int8 / t_float, 3) if t_float > 0 else None,
            "timed_batch": int(timing.shape[0]),
        }
        quantized = onnx.load(quant_tmp)
        _set_metadata(quantized, info)
        with atomic_path(out) as tmp:
            onnx.save(quantized, tmp)
    return info


def _check_source(ckpt: str) -> None:
    kinds = {".mindir": "MindIR", ".onnx": "ONNX"}
    ext = os.path.splitext(ckpt)[1].lower()
    if ext in kinds:
        raise UserError(f"{ckpt}: already an exported {kinds[ext]} file; export needs a training checkpoint (.ckpt)")
    if ext != ".ckpt":
        raise UserError(f"{ckpt}: export needs a training checkpoint (.ckpt)")


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
        raise UserError(f"--format: got {fmt!r}, expected one of {', '.join(FORMATS)}")
    _check_out(out, fmt)
    if batch_size < 1:
        raise UserError(f"--batch-size: got {batch_size}, expected a positive integer")
    if quantize and fmt != "ONNX":
        raise UserError(f"--quantize {quantize}: only with --format ONNX")
    _check_source(ckpt)
    if fmt != "CKPT":
        guard.check_outputs([out], [ckpt, calib], overwrite)
    if fmt == "CKPT":
        if isinstance(config, ModelConfig):
            raise UserError("--format CKPT: the recipe is a whole config (YAML path or Config), not a model section")
        return export_release(ckpt, out, config, spec, device)
    if fmt == "ONNX":
        _onnx_modules()
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


# ------------------------------------------------------------------------------------------------ release files
SPEC_CHARS = "letters, digits, _ and ."
_SPEC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*$")
# where a run read its data and wrote its files, not how it trained: ignored when matching packaged recipes
_WHERE_KEYS = {"data": ("root", "folds_file", "num_workers", "eval_batch_size"), "train": ("out_dir", "device")}


def release_name(model: str, spec: str, sha256: str) -> str:
    """mindcv's release file name: `{model}_{spec}-{sha256[:8]}.ckpt`."""
    return f"{model}_{spec}-{sha256[:8]}.ckpt"


def _recipe_key(cfg: Config) -> dict:
    from mindface_au.config import config_to_dict

    data = config_to_dict(cfg)
    for section, keys in _WHERE_KEYS.items():
        for key in keys:
            data[section].pop(key, None)
    return data


def default_spec(recipe: Config, name_or_path: str = "") -> str:
    """The recipe's name, filename-safe: the packaged config `name_or_path` names; else the packaged config that
    `recipe` equals apart from the `_WHERE_KEYS` (data root, output folder, ...); else the YAML file's stem (its
    folder's name for a run's `config.yaml`). "" when none applies."""
    from mindface_au.config import load_config, packaged_configs

    packaged = packaged_configs()
    if name_or_path and not os.path.isfile(name_or_path):
        name = name_or_path[: -len(".yaml")] if name_or_path.endswith(".yaml") else name_or_path
        full = [n for n in packaged if n == name or n.rsplit("/", 1)[-1] == name]
        if full:
            return full[0].rsplit("/", 1)[-1]
    wanted = _recipe_key(recipe)
    matches = [n for n, path in packaged.items() if _recipe_key(load_config(path)) == wanted]
    if len(matches) == 1:
        return matches[0].rsplit("/", 1)[-1]
    if not name_or_path:
        return ""
    stem = os.path.splitext(os.path.basename(name_or_path))[0]
    if stem == "config":  # a run's config.yaml: the run folder names the recipe
        stem = os.path.basename(os.path.dirname(os.path.abspath(name_or_path)))
    return re.sub(r"[^A-Za-z0-9_.]+", "_", stem).strip("_.")


def _release_weights(net, params: dict, path: str) -> dict:
    """{name: float32 array} of `net`'s parameters, loaded strictly from `params` read from checkpoint `path`.

    Optimiser slots (`moments.X`, `adam_m.X`, ... for a parameter X of `net`) and top-level scalars (learning
    rate, momentum, global_step, epoch_num) are dropped; any other entry that is not a parameter of `net` is an
    error (load_params_strict), so nothing unknown is silently left behind.
    """
    import mindspore as ms

    from mindface_au.models.checkpoint import load_params_strict

    own = {name for name, _ in net.parameters_and_names()}
    kept = {}
    for name, value in params.items():
        if not isinstance(value, ms.Parameter):
            continue  # embedded strings: the model config, resume's best-epoch record
        rest = name.partition(".")[2]
        if name not in own and (not rest or rest in own):
            continue  # optimiser state or a counter
        array = value.asnumpy()
        if np.issubdtype(array.dtype, np.floating) and array.dtype != np.float32:
            array = array.astype(np.float32)  # AMP float16 weights
        kept[name] = ms.Parameter(ms.Tensor(array), name=name)
    load_params_strict(net, kept, path)
    return {name: p.asnumpy().astype(np.float32, copy=False) for name, p in net.parameters_and_names()}


def export_release(
    ckpt: str,
    out_dir: str,
    recipe: Union[None, str, Config],
    spec: Optional[str] = None,
    device: str = "auto",
) -> dict:
    """Write the model-zoo release of training checkpoint `ckpt` into folder `out_dir`:
    `{model}_{spec}-{sha256[:8]}.ckpt` (network parameters only, float32, ModelConfig embedded) and the recipe
    `{model}_{spec}.yaml` beside it.

    `recipe`: the config the run was trained with (a YAML path or packaged name, or a Config); its model section
    must be the checkpoint's. `spec` defaults to `default_spec(recipe)`. Everything is checked before anything is
    written; the checkpoint goes to a temporary file that is hashed and then renamed. Returns {"out", "recipe",
    "sha256", "model", "spec", "tensors", "bytes", "source_bytes"}.
    """
    from mindface_au.config import load_config, save_config
    from mindface_au.inference.model_file import read_model_file
    from mindface_au.model_card import run_settings
    from mindface_au.models import build_network
    from mindface_au.models.checkpoint import save_checkpoint_atomic, sha256_file
    from mindface_au.utils.device import init_context

    _check_out(out_dir, "CKPT")
    _check_source(ckpt)
    init_context(device)
    recipe_cfg = load_config(recipe) if isinstance(recipe, str) else recipe
    mf = read_model_file(ckpt, recipe_cfg)
    model_cfg = mf.model_config
    if recipe_cfg is None:
        raise UserError(
            f"{ckpt}: no recipe: not in a run folder's checkpoints/ beside its config.yaml; give the config "
            "the run was trained with (recipe)"
        )
    trained = dataclasses.asdict(dataclasses.replace(recipe_cfg.model, backbone_checkpoint=""))
    differ = [k for k, v in dataclasses.asdict(model_cfg).items() if trained[k] != v]
    if differ:
        key = differ[0]
        raise UserError(
            f"--config: model.{key} is {trained[key]!r} but {ckpt} was trained with {getattr(model_cfg, key)!r}; "
            "give the config the run was trained with"
        )
    if spec is None or spec == "":
        spec = default_spec(recipe_cfg, recipe if isinstance(recipe, str) else "")
        if not spec:
            raise UserError(
                f"--spec: the recipe's name could not be derived from the config; give --spec ({SPEC_CHARS})"
            )
    elif not _SPEC.match(spec):
        raise UserError(f"--spec {spec!r}: expected a name of {SPEC_CHARS}, starting with a letter or digit")
    net = build_network(model_cfg, load_backbone=False)
    weights = _release_weights(net, mf.params, ckpt)
    stem = f"{model_cfg.name}_{spec}"
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out_dir}: cannot create the folder ({exc.strerror})") from exc
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp.ckpt", dir=out_dir)
    os.close(fd)
    try:
        card = mf.card  # the model card travels into the release file; a card from before it held the settings
        if card is not None and "eval" not in card:  # gets the recipe's (what the run was validated with)
            card = {**card, **run_settings(model_cfg, recipe_cfg.eval, recipe_cfg.data.crop)}
        save_checkpoint_atomic(weights, tmp, model_config=dataclasses.asdict(model_cfg), card=card)
        sha256 = sha256_file(tmp)
        final = os.path.join(out_dir, release_name(model_cfg.name, spec, sha256))
        yaml_path = os.path.join(out_dir, f"{stem}.yaml")
        save_config(recipe_cfg, yaml_path)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # MindSpore leaves checkpoints owner-read-only; a release is shared
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return {
        "out": final,
        "recipe": yaml_path,
        "sha256": sha256,
        "model": model_cfg.name,
        "spec": spec,
        "tensors": len(weights),
        "bytes": os.path.getsize(final),
        "source_bytes": os.path.getsize(ckpt),
    }
