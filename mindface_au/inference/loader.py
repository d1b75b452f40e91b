"""One loader for every model file: `load_inference_model(path)` -> `InferenceModel` (any batch in, outputs out).

    model = load_inference_model("best.ckpt")        # MindSpore GRAPH mode, BatchNorm folded
    model = load_inference_model("model.mindir")     # nn.GraphCell (fixed batch inside: padded and sliced)
    model = load_inference_model("model.onnx")       # ONNX Runtime (pip install "mindface-au[onnx]")
    probs = model.predict(x)                          # float32 (N, 3, S, S) normalised -> (N, C)

AU models output sigmoid probabilities (N, C), one column per AU of `model.au_names` (a file without them: the ABAW
12); bare `iresnet*` backbones their embedding (N, E). `model.card` is the model card (mindface_au.model_card:
what it was trained on) and `model.crop` the face crop it expects; exports carry both in their metadata. The input is
described by `model.face_input` (mindface_au.data.transforms: side from the model config, mean/std from the
model's default config), the same for every format.

Model configs, one strict rule: a training checkpoint embeds its ModelConfig (JSON), an exported MindIR or ONNX
file carries it in its metadata (`MODEL_INFO_KEY`, with the input size, batch size and output). An unknown key
in any of them is a one-line error naming the key; a `config` given by the caller is used only for a checkpoint
without an embedded one (the embedded config is what the weights were trained with).
"""

import dataclasses
import json
import os
from typing import Optional, Union

import numpy as np

from mindface_au.config import AU_NAMES, Config, ModelConfig, load_config, validate_model_config
from mindface_au.errors import UserError
from mindface_au.model_card import default_crop, format_card, parse_crop
from mindface_au.utils.cpus import available_cpus
from mindface_au.utils.guard import reclaim_signal_handlers

__all__ = [
    "MODEL_INFO_KEY",
    "ONNX_EXTRA",
    "BACKENDS",
    "InferenceModel",
    "load_inference_model",
    "AUProbabilities",
    "parse_model_config",
    "checkpoint_model_config",
    "is_backbone",
    "output_width",
    "build_network",
    "inference_network",
    "model_metadata",
]

MODEL_INFO_KEY = "mindface_au"  # MindIR user_info / ONNX metadata_props key of the JSON metadata
FORMAT_VERSION = 1
ONNX_EXTRA = 'pip install "mindface-au[onnx]"'
BACKENDS = {".ckpt": "mindspore", ".mindir": "mindir", ".onnx": "onnxruntime"}
_KINDS = {"mindspore": "ckpt", "mindir": "mindir", "onnxruntime": "onnx"}


# ------------------------------------------------------------------------------------------------ model configs
def parse_model_config(data, source: str) -> ModelConfig:
    """A ModelConfig from a stored dict (checkpoint, MindIR or ONNX metadata); unknown keys are an error."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: stored model config is not a mapping ({type(data).__name__})")
    valid = [f.name for f in dataclasses.fields(ModelConfig)]
    unknown = sorted(set(data) - set(valid))
    if unknown:
        raise UserError(
            f"{source}: stored model config has unknown key model.{unknown[0]}"
            f"{' (and ' + ', '.join(unknown[1:]) + ')' if unknown[1:] else ''}; valid keys: {', '.join(valid)}"
        )
    cfg = ModelConfig(**data)
    check_model_config_any(cfg, source)
    return cfg


def is_backbone(model_cfg: ModelConfig) -> bool:
    """True for a bare IResNet (outputs its embedding), False for an AU network (outputs probabilities)."""
    return model_cfg.name.startswith("iresnet")


def output_width(model_cfg: ModelConfig) -> int:
    return int(model_cfg.embedding_size if is_backbone(model_cfg) else model_cfg.num_classes)


def check_model_config_any(model_cfg: ModelConfig, source: str = "") -> None:
    """config.validate_model_config (the one validator: AU network or bare backbone), errors prefixed by `source`."""
    try:
        validate_model_config(model_cfg)
    except UserError as exc:
        raise UserError(f"{source}: {exc}" if source else str(exc)) from exc


def _given_config(config) -> Optional[ModelConfig]:
    if config is None or config == "":
        return None
    if isinstance(config, ModelConfig):
        return dataclasses.replace(config)
    if isinstance(config, Config):
        return dataclasses.replace(config.model)
    if isinstance(config, str):
        return load_config(config).model
    raise TypeError(f"config: expected None, a YAML path, Config or ModelConfig, got {type(config).__name__}")


def checkpoint_model_config(path: str, config=None) -> ModelConfig:
    """The ModelConfig of a training checkpoint: the embedded one (strictly parsed), else `config` (YAML path,
    Config or ModelConfig); `backbone_checkpoint` cleared (the trained checkpoint holds the backbone)."""
    from mindface_au.models.checkpoint import read_model_config

    embedded = read_model_config(path)
    if embedded is not None:
        model_cfg = parse_model_config(embedded, f"{path}: embedded")
    else:
        model_cfg = _given_config(config)
        if model_cfg is None:
            raise UserError(f"{path}: checkpoint has no embedded model config; pass --config with its model section")
        check_model_config_any(model_cfg)
    return dataclasses.replace(model_cfg, backbone_checkpoint="")


# ------------------------------------------------------------------------------------------------ networks
def AUProbabilities(net):  # noqa: N802 - reads like the class it builds; keeps mindspore out of import time
    """Wrap a logits network: (B, 3, S, S) -> (B, C) sigmoid probabilities (what evaluation and exports run).

    The wrapper keeps the network's parameter names (auto_prefix off), so checkpoints saved through it load.
    """
    return _probabilities_class()(net)


_CLASSES = {}


def _probabilities_class():
    if "probs" not in _CLASSES:
        from mindspore import nn, ops

        class _AUProbabilities(nn.Cell):
            def __init__(self, logits_net) -> None:
                super().__init__(auto_prefix=False)
                self.net = logits_net

            def construct(self, x):
                return ops.sigmoid(self.net(x))

        _CLASSES["probs"] = _AUProbabilities
    return _CLASSES["probs"]


def build_network(model_cfg: ModelConfig):
    """The untrained network a ModelConfig describes, without its backbone checkpoint: models.build_network."""
    from mindface_au.models import build_network as build

    return build(model_cfg, load_backbone=False)


def inference_network(net, model_cfg: ModelConfig):
    """BatchNorm folded, batch-agnostic, eval mode; AU networks wrapped in the sigmoid (what every backend runs)."""
    from mindface_au.inference.fold import prepare_for_inference

    prepare_for_inference(net)
    out = net if is_backbone(model_cfg) else AUProbabilities(net)
    out.set_train(False)
    return out


def model_metadata(model_cfg: ModelConfig, batch_size: Optional[int], source: str = "", **extra) -> dict:
    """The JSON metadata stored in exported MindIR and ONNX files (one layout for both)."""
    from mindface_au.data.transforms import face_input

    spec = face_input(model_cfg)
    backbone = is_backbone(model_cfg)
    info = {
        "format_version": FORMAT_VERSION,
        "input_size": spec.size,
        "batch_size": batch_size,  # None: dynamic batch axis
        "mean": list(spec.mean),
        "std": list(spec.std),
        "input": f"float32 (B, 3, {spec.size}, {spec.size}) RGB, (x / 255 - mean) / std",
        "output": "embedding" if backbone else "probabilities",
        "out_dim": output_width(model_cfg),
        "model": dataclasses.asdict(dataclasses.replace(model_cfg, backbone_checkpoint="")),
        "source_checkpoint": os.path.basename(source) if source else "",
    }
    if not backbone:
        info["au_names"] = list(model_cfg.au_names or AU_NAMES)
    card = extra.pop("card", None)
    info["card"] = card  # the model card (model_card.py) of the source checkpoint; None for an older one
    info["crop"] = (card or {}).get("crop") or default_crop(spec.size)
    info.update(extra)
    return info


def _parse_info(raw, path: str, kind: str) -> dict:
    if not raw:
        raise UserError(f"{path}: {kind} file has no mindface-au metadata; export it with `mindface-au export`")
    try:
        info = json.loads(raw)
    except ValueError as exc:
        raise UserError(f"{path}: {kind} metadata is not valid JSON ({exc})") from exc
    if not isinstance(info, dict) or "model" not in info or "input_size" not in info:
        raise UserError(f"{path}: {kind} metadata lacks the model config or input size")
    return info


# ------------------------------------------------------------------------------------------------ the model
class InferenceModel:
    """A loaded model: `predict` maps float32 (N, 3, S, S) normalised faces, any N >= 1, to (N, out_dim).

    Attributes: path, backend ("mindspore" | "mindir" | "onnxruntime"), kind ("ckpt" | "mindir" | "onnx"),
    model_config, face_input (size, mean, std), input_size, out_dim, batch_size (largest forward pass),
    fixed_batch (True when the graph has one batch size: inputs are padded and sliced), device, au_names (the
    AUs of the output columns; [] for a backbone), card (the model card dict, None for a file from before cards),
    crop (the face crop it expects, "<method>@<size>": arcface5 = five-point ArcFace alignment, box, other).
    """

    def __init__(
        self,
        path: str,
        backend: str,
        model_config: ModelConfig,
        batch_size: int,
        fixed_batch: bool,
        card: Optional[dict] = None,
    ):
        from mindface_au.data.transforms import face_input

        self.path = path
        self.backend = backend
        self.kind = _KINDS[backend]
        self.model_config = model_config
        self.face_input = face_input(model_config)
        self.input_size = self.face_input.size
        self.mean, self.std = self.face_input.mean, self.face_input.std
        self.out_dim = output_width(model_config)
        self.batch_size = int(batch_size)
        self.fixed_batch = bool(fixed_batch)
        self.device = "CPU"
        self.au_names = [] if is_backbone(model_config) else list(model_config.au_names or AU_NAMES)
        self.card = card if isinstance(card, dict) else None  # what the model was trained on (model_card.py)
        self.crop = (self.card or {}).get("crop") or default_crop(self.input_size)  # e.g. "arcface5@112"
        self._checked = False

    def crop_problem(self, aligned: bool = False) -> Optional[str]:
        """None when faces can be cropped the way the model expects (five-point ArcFace alignment, or `aligned`
        input taken as such crops); else one line saying why not (e.g. a model trained on detector boxes)."""
        method, _ = parse_crop(self.crop)
        if aligned or method == "arcface5":
            return None
        return (
            f"{self.path}: the model was trained on {self.crop} face crops; only five-point ArcFace alignment "
            "(arcface5) can be redone here: give face crops made the same way as aligned input"
        )

    def card_text(self) -> str:
        """The model card as printed on start by eval, detect and Predictor (stderr)."""
        return format_card(self.card, self.au_names, self.crop)

    def _run(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - implemented by each backend
        raise NotImplementedError

    def predict(self, x: np.ndarray, pad: bool = False) -> np.ndarray:
        """(N, 3, S, S) float32 -> (N, out_dim) float32, in forward passes of at most `batch_size`.

        A fixed-batch graph (MindIR) pads every pass to its batch; a checkpoint pads too when more than one pass is
        needed or `pad` is set (streams), so its GRAPH-mode network compiles for one shape only; ONNX Runtime
        runs any batch as is.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 4 or x.shape[1:] != (3, self.input_size, self.input_size):
            raise UserError(
                f"{self.path}: input of shape {x.shape}, expected (N, 3, {self.input_size}, {self.input_size})"
            )
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, self.out_dim), dtype=np.float32)
        padded = self.fixed_batch or (self.backend == "mindspore" and (pad or n > self.batch_size))
        step = self.batch_size if (padded or n > self.batch_size) else n
        outs = []
        for start in range(0, n, step):
            chunk = x[start : start + step]
            real = chunk.shape[0]
            if padded and real < step:
                chunk = np.concatenate([chunk, np.zeros((step - real,) + chunk.shape[1:], np.float32)])
            out = np.asarray(self._run(chunk), dtype=np.float32)
            if not self._checked:
                if out.ndim != 2 or out.shape[1] != self.out_dim:
                    raise UserError(
                        f"{self.path}: the graph outputs shape {out.shape}, expected (N, {self.out_dim}) for "
                        f"{self.model_config.name}; the file does not match its metadata"
                    )
                self._checked = True
            outs.append(out[:real])
        return np.concatenate(outs)

    def describe(self) -> str:
        extra = f", batch {self.batch_size} fixed" if self.fixed_batch else ""
        return (
            f"{self.model_config.name} from {os.path.basename(self.path)} ({self.backend} on {self.device}, "
            f"input {self.input_size}{extra})"
        )


class _MindSporeModel(InferenceModel):
    def __init__(self, path: str, net, model_config: ModelConfig, batch_size: int, fixed: bool, backend: str, card):
        super().__init__(path, backend, model_config, batch_size, fixed, card)
        self.net = net

    def _run(self, batch: np.ndarray) -> np.ndarray:
        import mindspore as ms

        out = self.net(ms.Tensor(batch)).asnumpy()
        reclaim_signal_handlers()  # MindSpore re-arms its own SIGINT handler at every graph run (utils/guard.py)
        return out


class _OnnxModel(InferenceModel):
    def __init__(self, path: str, session, model_config: ModelConfig, batch_size: int, fixed: bool, card=None):
        super().__init__(path, "onnxruntime", model_config, batch_size, fixed, card)
        self.session = session
        self.input_name = session.get_inputs()[0].name
        self.device = session.get_providers()[0].replace("ExecutionProvider", "")
        options = session.get_session_options()
        self.threads = int(options.intra_op_num_threads)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def describe(self) -> str:
        return super().describe()[:-1] + f", {self.threads} threads)"


def _load_ckpt(path: str, config, batch_size: int, device: str) -> InferenceModel:
    from mindface_au.models.checkpoint import load_checkpoint_strict
    from mindface_au.utils.device import init_context

    device = init_context(device)
    model_cfg = checkpoint_model_config(path, config)
    net = build_network(model_cfg)
    load_checkpoint_strict(net, path)
    from mindface_au.model_card import read_card

    net = inference_network(net, model_cfg)
    model = _MindSporeModel(path, net, model_cfg, batch_size, False, "mindspore", read_card(path))
    model.device = device
    return model


def _load_mindir(path: str, device: str) -> InferenceModel:
    import mindspore as ms
    from mindspore import nn

    from mindface_au.utils.device import init_context
    from mindface_au.utils.io import mindspore_safe_path

    device = init_context(device)
    try:
        with mindspore_safe_path(path, copy_in=True) as readable:  # MindSpore refuses spaces / non-ASCII paths
            proto = ms.load_mindir(readable)
            raw = dict(proto.user_info).get(MODEL_INFO_KEY, "")
            graph = ms.load(readable)
    except Exception as exc:  # noqa: BLE001 - MindSpore raises RuntimeError/ValueError for bad files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{path}: not a readable MindIR file ({first})") from exc
    info = _parse_info(raw, path, "MindIR")
    model_cfg = parse_model_config(info["model"], f"{path}: metadata")
    _check_info_size(info, model_cfg, path)
    graph_cell = nn.GraphCell(graph)
    model = _MindSporeModel(path, graph_cell, model_cfg, int(info["batch_size"]), True, "mindir", info.get("card"))
    model.device = device
    return model


def _check_info_size(info: dict, model_cfg: ModelConfig, path: str) -> None:
    if int(info["input_size"]) != model_cfg.input_size:
        raise UserError(
            f"{path}: metadata input_size {info['input_size']} differs from its model config's "
            f"model.input_size {model_cfg.input_size}"
        )


def _onnx_session(path: str, threads: int, device: str):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise UserError(f"{path}: ONNX models need ONNX Runtime: {ONNX_EXTRA}") from exc
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads < 0:
        raise UserError(f"--threads: got {threads}, expected 0 (all cores) or a positive integer")
    options.intra_op_num_threads = int(threads) or available_cpus()
    options.log_severity_level = 3
    target = (device or "auto").lower()
    available = ort.get_available_providers()
    if target in ("auto", "cpu"):
        providers = ["CPUExecutionProvider"]
        if target == "auto" and "CUDAExecutionProvider" in available:
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    elif target == "gpu":
        if "CUDAExecutionProvider" not in available:
            raise UserError(f"--device GPU: this onnxruntime has no CUDA provider (has {', '.join(available)})")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    else:
        raise UserError(f"--device {device}: ONNX Runtime runs .onnx files on auto, CPU or GPU")
    try:
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own exception types for bad files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{path}: not a readable ONNX model ({first[:200]})") from exc


def _load_onnx(path: str, threads: int, device: str, batch_size: int) -> InferenceModel:
    session = _onnx_session(path, threads, device)
    raw = session.get_modelmeta().custom_metadata_map.get(MODEL_INFO_KEY, "")
    info = _parse_info(raw, path, "ONNX")
    model_cfg = parse_model_config(info["model"], f"{path}: metadata")
    _check_info_size(info, model_cfg, path)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise UserError(f"{path}: expected a graph with one input, got {len(inputs)} inputs, {len(outputs)} outputs")
    shape = list(inputs[0].shape)
    size = model_cfg.input_size
    if len(shape) != 4 or shape[1:] != [3, size, size]:
        raise UserError(f"{path}: graph input shape {shape}, expected [batch, 3, {size}, {size}] (model.input_size)")
    out_shape = list(outputs[0].shape)
    width = output_width(model_cfg)
    if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] != width):
        raise UserError(f"{path}: graph output shape {out_shape}, expected [batch, {width}] for {model_cfg.name}")
    fixed = isinstance(shape[0], int) and shape[0] > 0
    return _OnnxModel(path, session, model_cfg, shape[0] if fixed else batch_size, fixed, info.get("card"))


def load_inference_model(
    path: str,
    device: str = "auto",
    threads: int = 0,
    config: Union[None, str, Config, ModelConfig] = None,
    batch_size: int = 32,
) -> InferenceModel:
    """Load a .ckpt (MindSpore GRAPH mode, BatchNorm folded), .mindir (GraphCell) or .onnx (ONNX Runtime).

    Args:
        path: the model file; its extension picks the backend.
        device: "auto", "CPU", "GPU" or "Ascend" (MindSpore, set once per process); ONNX Runtime: auto, CPU, GPU.
        threads: ONNX Runtime intra-op threads; 0 = every core this process may use.
        config: model config for a checkpoint without an embedded one (YAML path, Config or ModelConfig).
        batch_size: largest forward pass (a MindIR file or fixed-batch ONNX file uses its own).
    """
    if not os.path.isfile(path):
        raise UserError(f"{path}: model file not found")
    if batch_size < 1:  # the CLI's --batch-size, or data.eval_batch_size of a config
        raise UserError(f"batch_size: got {batch_size}, expected a positive integer")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".onnx":
        return _load_onnx(path, threads, device, batch_size)
    if ext == ".mindir":
        return _load_mindir(path, device)
    if ext == ".ckpt":
        return _load_ckpt(path, config, batch_size, device)
    raise UserError(f"{path}: unknown model file type {ext or '(none)'}; expected .ckpt, .mindir or .onnx")
