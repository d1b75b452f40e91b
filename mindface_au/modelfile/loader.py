"""One loader for every model file: `load_inference_model(path)` -> `InferenceModel` (any batch in, outputs out).

    model = load_inference_model("best.ckpt")        # MindSpore GRAPH mode, BatchNorm folded
    model = load_inference_model("model.mindir")     # nn.GraphCell (fixed batch inside: padded and sliced)
    model = load_inference_model("model.onnx")       # ONNX Runtime (pip install "mindface-au[onnx]")
    probs = model.predict(x)                          # float32 (N, 3, S, S) normalised -> (N, C)
    probs, intensities = model.predict_outputs(x)     # with the intensity head: (N, K) in [0, 5], else None

The file is opened once, by the model-file reader (mindface_au.modelfile.reader: `read_model_file`), and
`model.file` is what it read: model config, card, preprocessing, evaluation settings, sha256.
AU models output sigmoid probabilities (N, C), one column per AU of `model.au_names` (a file without them: the ABAW
12); bare `iresnet*` backbones their embedding (N, E). `model.card` is the model card (mindface_au.model_card:
what it was trained on) and `model.crop` the face crop it expects; exports carry both in their metadata. The input is
described by `model.face_input` (the file's input size, mean and std; the packaged defaults for a file from before
it stored them), the same for every format.

Model configs, one strict rule: a training checkpoint embeds its ModelConfig (JSON), an exported MindIR or ONNX
file carries it in its metadata (`MODEL_INFO_KEY`, with the input size, batch size and output; the layout is
mindface_au.modelfile.metadata, whose `MODEL_INFO_KEY`, `model_metadata`, `is_backbone` and `output_width` this
module re-exports). An unknown key or a mistyped value in any of them is a one-line error naming the key; a
`config` given by the caller is the model section only of a checkpoint without an embedded one (the embedded
config is what the weights were trained with), and a Config whose given values (its YAML file, overrides) contradict the
file's input size or AU set is refused.
"""

import os
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from mindface_au.au_sets import default_au_names
from mindface_au.config import Config, ModelConfig
from mindface_au.errors import UserError
from mindface_au.model_card import default_crop, format_card, parse_crop
from mindface_au.modelfile.metadata import (
    MODEL_INFO_KEY,
    intensity_names,
    is_backbone,
    model_metadata,
    output_width,
)
from mindface_au.modelfile.reader import (
    ONNX_EXTRA,
    ModelFile,
    check_config,
    read_model_file,
)
from mindface_au.utils.guard import reclaim_signal_handlers

__all__ = [
    "MODEL_INFO_KEY",
    "ONNX_EXTRA",
    "BACKENDS",
    "InferenceModel",
    "load_inference_model",
    "AUProbabilities",
    "checkpoint_model_config",
    "is_backbone",
    "output_width",
    "build_network",
    "inference_network",
    "model_metadata",
]

BACKENDS = {".ckpt": "mindspore", ".mindir": "mindir", ".onnx": "onnxruntime"}
_KINDS = {"mindspore": "ckpt", "mindir": "mindir", "onnxruntime": "onnx"}


# ------------------------------------------------------------------------------------------------ model configs
def checkpoint_model_config(path: str, config=None) -> ModelConfig:
    """The ModelConfig of a training checkpoint: the embedded one (strictly parsed), else `config` (YAML path,
    Config or ModelConfig); `backbone_checkpoint` cleared (the trained checkpoint holds the backbone). Reads the
    whole file: a caller that needs more uses `read_model_file`."""
    return read_model_file(path, config).model_config


# ------------------------------------------------------------------------------------------------ networks
def AUProbabilities(net):  # noqa: N802 - reads like the class it builds; keeps mindspore out of import time
    """Wrap a logits network: (B, 3, S, S) -> (B, C) sigmoid probabilities (what evaluation and exports run).

    A network with an intensity head (`net.use_intensity`) gives (probabilities (B, C), intensities (B, K)).
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
                self.use_intensity = bool(getattr(logits_net, "use_intensity", False))

            def construct(self, x):
                if self.use_intensity:
                    logits, intensity = self.net(x)
                    return ops.sigmoid(logits), intensity
                return ops.sigmoid(self.net(x))

        _CLASSES["probs"] = _AUProbabilities
    return _CLASSES["probs"]


def build_network(model_cfg: ModelConfig):
    """The untrained network a ModelConfig describes, without its backbone checkpoint: models.build_network."""
    from mindface_au.models import build_network as build

    return build(model_cfg, load_backbone=False)


def inference_network(net, model_cfg: ModelConfig):
    """BatchNorm folded, batch-agnostic, eval mode; AU networks wrapped in the sigmoid (what every backend runs)."""
    from mindface_au.models.fold import prepare_for_inference

    prepare_for_inference(net)
    out = net if is_backbone(model_cfg) else AUProbabilities(net)
    out.set_train(False)
    return out


# ------------------------------------------------------------------------------------------------ the model
class InferenceModel:
    """A loaded model: `predict` maps float32 (N, 3, S, S) normalised faces, any N >= 1, to (N, out_dim);
    `predict_outputs` gives the intensity head's (N, K) beside them (None without the head).

    Attributes: path, backend ("mindspore" | "mindir" | "onnxruntime"), kind ("ckpt" | "mindir" | "onnx"),
    model_config, face_input (size, mean, std), input_size, out_dim, batch_size (largest forward pass),
    fixed_batch (True when the graph has one batch size: inputs are padded and sliced), device, au_names (the
    AUs of the output columns; [] for a backbone), intensity_au_names (the AUs of the intensity head's columns,
    `predict_outputs`; [] without the head), card (the model card dict, None for a file from before cards),
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
        file: Optional[ModelFile] = None,
    ):
        from mindface_au.models.registry import face_input

        self.path = path
        self.backend = backend
        self.kind = _KINDS[backend]
        self.model_config = model_config
        self.file = file  # what the model-file reader read (settings, sha256); None for a model built in memory
        self.face_input = file.preprocessing if file is not None else face_input(model_config)
        self.input_size = self.face_input.size
        self.mean, self.std = self.face_input.mean, self.face_input.std
        self.out_dim = output_width(model_config)
        self.batch_size = int(batch_size)
        self.fixed_batch = bool(fixed_batch)
        self.device = "CPU"
        self.au_names = [] if is_backbone(model_config) else list(default_au_names(model_config.au_names))
        self.intensity_au_names = intensity_names(model_config)  # the intensity head's AUs; [] without the head
        self.card = card if isinstance(card, dict) else None  # what the model was trained on (model_card.py)
        self.crop = file.crop if file is not None else (self.card or {}).get("crop") or default_crop(self.input_size)
        self._checked = False

    @property
    def sha256(self) -> Optional[str]:
        """The model file's sha256 (the reader's, computed once; detect's sidecars record it); None in memory."""
        return self.file.sha256 if self.file is not None else None

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
        text = format_card(self.card, self.au_names, self.crop, self.intensity_au_names)
        if self.file is not None and any(k.startswith("preprocessing.") for k in self.file.defaults):
            spec = self.face_input
            text += (
                f"\n# preprocessing: not stored in the file; packaged defaults mean {list(spec.mean)}, "
                f"std {list(spec.std)}"
            )
        return text

    def _run(self, batch: np.ndarray) -> Sequence[np.ndarray]:  # pragma: no cover - implemented by each backend
        """The graph's outputs for one batch: (probabilities or embedding,) or (probabilities, intensities)."""
        raise NotImplementedError

    def predict(self, x: np.ndarray, pad: bool = False) -> np.ndarray:
        """(N, 3, S, S) float32 -> (N, out_dim) float32 (probabilities, or a backbone's embedding); see
        `predict_outputs`, which also gives the intensity head's output."""
        return self.predict_outputs(x, pad)[0]

    def predict_outputs(self, x: np.ndarray, pad: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(N, 3, S, S) float32 -> (probabilities (N, out_dim), intensities (N, K) in [0, 5] or None), float32, in
        forward passes of at most `batch_size`; K = len(intensity_au_names), None for a model without the head.

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
        width = len(self.intensity_au_names)
        if n == 0:
            return np.zeros((0, self.out_dim), np.float32), (np.zeros((0, width), np.float32) if width else None)
        padded = self.fixed_batch or (self.backend == "mindspore" and (pad or n > self.batch_size))
        step = self.batch_size if (padded or n > self.batch_size) else n
        probs, intensities = [], []
        for start in range(0, n, step):
            chunk = x[start : start + step]
            real = chunk.shape[0]
            if padded and real < step:
                chunk = np.concatenate([chunk, np.zeros((step - real,) + chunk.shape[1:], np.float32)])
            outs = self._run(chunk)
            if not self._checked:
                self._check_outputs(outs)
            probs.append(np.asarray(outs[0], dtype=np.float32)[:real])
            if width:
                intensities.append(np.asarray(outs[1], dtype=np.float32)[:real])
        return np.concatenate(probs), (np.concatenate(intensities) if width else None)

    def _check_outputs(self, outs: Sequence[np.ndarray]) -> None:
        """One line naming the file when the graph's outputs are not what its metadata says (checked once)."""
        expected = [("probabilities" if self.au_names else "embedding", self.out_dim)]
        if self.intensity_au_names:
            expected.append(("intensity", len(self.intensity_au_names)))
        if len(outs) != len(expected):
            raise UserError(
                f"{self.path}: the graph has {len(outs)} output(s), expected {len(expected)} "
                f"({', '.join(name for name, _ in expected)}) for {self.model_config.name}; "
                "the file does not match its metadata"
            )
        for (name, width), out in zip(expected, outs):
            shape = np.shape(out)
            if len(shape) != 2 or shape[1] != width:
                raise UserError(
                    f"{self.path}: the graph's {name} output has shape {tuple(shape)}, expected (N, {width}) for "
                    f"{self.model_config.name}; the file does not match its metadata"
                )
        self._checked = True

    def describe(self) -> str:
        extra = f", batch {self.batch_size} fixed" if self.fixed_batch else ""
        return (
            f"{self.model_config.name} from {os.path.basename(self.path)} ({self.backend} on {self.device}, "
            f"input {self.input_size}{extra})"
        )


class _MindSporeModel(InferenceModel):
    def __init__(self, net, mf: ModelFile, batch_size: int, fixed: bool, backend: str):
        super().__init__(mf.path, backend, mf.model_config, batch_size, fixed, mf.card, mf)
        self.net = net

    def _run(self, batch: np.ndarray) -> Sequence[np.ndarray]:
        import mindspore as ms

        out = self.net(ms.Tensor(batch))
        reclaim_signal_handlers()  # MindSpore re-arms its own SIGINT handler at every graph run (utils/guard.py)
        return [o.asnumpy() for o in out] if isinstance(out, (tuple, list)) else [out.asnumpy()]


class _OnnxModel(InferenceModel):
    def __init__(self, mf: ModelFile, batch_size: int, fixed: bool):
        super().__init__(mf.path, "onnxruntime", mf.model_config, batch_size, fixed, mf.card, mf)
        self.session = mf.handle
        self.input_name = self.session.get_inputs()[0].name
        self.device = self.session.get_providers()[0].replace("ExecutionProvider", "")
        options = self.session.get_session_options()
        self.threads = int(options.intra_op_num_threads)

    def _run(self, batch: np.ndarray) -> Sequence[np.ndarray]:
        return self.session.run(None, {self.input_name: batch})

    def describe(self) -> str:
        return super().describe()[:-1] + f", {self.threads} threads)"


def _load_ckpt(mf: ModelFile, batch_size: int, device: str) -> InferenceModel:
    from mindface_au.utils.device import init_context

    device = init_context(device)
    net = build_network(mf.model_config)
    mf.load_into(net)
    mf.params = None  # in the network now; a detect worker keeps one copy of the weights, not two
    model = _MindSporeModel(inference_network(net, mf.model_config), mf, batch_size, False, "mindspore")
    model.device = device
    return model


def _load_mindir(mf: ModelFile, device: str) -> InferenceModel:
    from mindspore import nn

    from mindface_au.utils.device import init_context

    model = _MindSporeModel(nn.GraphCell(mf.handle), mf, int(mf.info["batch_size"]), True, "mindir")
    model.device = init_context(device)
    return model


def _load_onnx(mf: ModelFile, batch_size: int) -> InferenceModel:
    session, model_cfg, path = mf.handle, mf.model_config, mf.path
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) < 1:
        raise UserError(f"{path}: expected a graph with one input, got {len(inputs)} inputs, {len(outputs)} outputs")
    shape = list(inputs[0].shape)
    size = model_cfg.input_size
    if len(shape) != 4 or shape[1:] != [3, size, size]:
        raise UserError(f"{path}: graph input shape {shape}, expected [batch, 3, {size}, {size}] (model.input_size)")
    widths = [output_width(model_cfg)] + ([len(intensity_names(model_cfg))] if intensity_names(model_cfg) else [])
    for output, width in zip(outputs, widths):  # the count is the reader's check (metadata against graph)
        out_shape = list(output.shape)
        if len(out_shape) != 2 or (isinstance(out_shape[1], int) and out_shape[1] != width):
            raise UserError(
                f"{path}: graph output shape {out_shape}, expected [batch, {width}] for {model_cfg.name} "
                f"(output {output.name})"
            )
    fixed = isinstance(shape[0], int) and shape[0] > 0
    return _OnnxModel(mf, shape[0] if fixed else batch_size, fixed)


def load_inference_model(
    path: Union[str, ModelFile],
    device: str = "auto",
    threads: int = 0,
    config: Union[None, str, Config, ModelConfig] = None,
    batch_size: int = 32,
) -> InferenceModel:
    """Load a .ckpt (MindSpore GRAPH mode, BatchNorm folded), .mindir (GraphCell) or .onnx (ONNX Runtime).

    Args:
        path: the model file (its extension picks the backend), or what `read_model_file` read from it (then
            a .mindir or .onnx file keeps the device and threads it was opened with).
        device: "auto", "CPU", "GPU" or "Ascend" (MindSpore, set once per process); ONNX Runtime: auto, CPU, GPU.
        threads: ONNX Runtime intra-op threads; 0 = every core this process may use.
        config: model config for a checkpoint without an embedded one (YAML path, Config or ModelConfig); a
            Config's given values (YAML file, overrides) that contradict the file (input size, AU set) are refused.
        batch_size: largest forward pass (a MindIR file or fixed-batch ONNX file uses its own).
    """
    if batch_size < 1:  # the caller's value, e.g. data.eval_batch_size of a config
        raise UserError(f"batch_size: got {batch_size}, expected a positive integer")
    mf = path if isinstance(path, ModelFile) else read_model_file(path, config, device, threads)
    if isinstance(config, Config):
        check_config(mf, config)
    if mf.kind == "onnx":
        return _load_onnx(mf, batch_size)
    if mf.kind == "mindir":
        return _load_mindir(mf, device)
    return _load_ckpt(mf, batch_size, device)
