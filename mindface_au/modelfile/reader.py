"""The model-file reader: open a model file once and get everything needed to run it (timm's `pretrained_cfg`).

    mf = read_model_file("best.ckpt")   # a training checkpoint, a release file, model.mindir or model.onnx
    mf.model_config    the ModelConfig, type-checked and validated as a YAML model section is
    mf.params          .ckpt: the network's parameters (no optimiser moments or step counters); None for exports
    mf.card            the model card (mindface_au.model_card); None for a file from before cards
    mf.preprocessing   FaceInput: input size, mean and std in [0, 1] units; mf.crop the face crop ("arcface5@112")
    mf.eval            EvalConfig: the prob_k, label_k and threshold the model was validated with
    mf.defaults        the settings taken from the packaged defaults (a file from before it stored them)
    mf.sha256          the file's sha256 (computed on first use, once)
    mf.handle          .onnx: the ONNX Runtime session; .mindir: the loaded graph (what the loader runs)

Where each is stored: a training checkpoint embeds its ModelConfig (JSON) and its card, which holds
`preprocessing` and `eval` (model_card.run_settings); an exported MindIR or ONNX file carries both in its
metadata (`MODEL_INFO_KEY`: model config, input size, mean, std, crop, card, eval; the layout is
mindface_au.modelfile.metadata). A stored value of the wrong type or out of range is a one-line error naming the
key, as in a YAML config.

`apply_model_file(mf, cfg)` resolves a Config against the file, for eval, predict, detect and export: the model
section, input size and evaluation settings are the file's. A value given by `--config`/`--set`
(`cfg.given_keys`) that contradicts the file's input size or AU set is refused, naming both values; one given
for a smoothing window (eval.prob_k, eval.label_k) or eval.threshold overrides the file's and is reported.
"""

import copy
import dataclasses
import json
import os
from typing import Any, List, Optional, Tuple

from mindface_au.au_sets import default_au_names
from mindface_au.config import Config, EvalConfig, ModelConfig, load_config, section_from_dict
from mindface_au.data.transforms import FaceInput
from mindface_au.errors import UserError, param
from mindface_au.model_card import CARD_KEY, default_crop
from mindface_au.modelfile.metadata import (
    MODEL_INFO_KEY,
    OUTPUT_NAMES,
    intensity_names,
    is_backbone,
    parse_metadata,
    stored_settings,
)
from mindface_au.models.registry import face_input
from mindface_au.utils.cpus import available_cpus

__all__ = ["MODEL_INFO_KEY", "ONNX_EXTRA", "ModelFile", "read_model_file", "apply_model_file"]

ONNX_EXTRA = 'pip install "mindface-au[onnx]"'
KINDS = {".ckpt": "ckpt", ".mindir": "mindir", ".onnx": "onnx"}
EVAL_KEYS = ("prob_k", "label_k", "threshold")


@dataclasses.dataclass
class ModelFile:
    """One model file, read once (see the module docstring)."""

    path: str
    kind: str  # ckpt | mindir | onnx
    model_config: ModelConfig
    card: Optional[dict]
    preprocessing: FaceInput
    crop: str
    eval: EvalConfig
    defaults: Tuple[str, ...] = ()  # e.g. ("eval.prob_k", "preprocessing.mean"): not stored, packaged defaults used
    params: Optional[dict] = None  # .ckpt only; released by the loader once loaded into a network
    info: Optional[dict] = None  # export metadata (MindIR, ONNX)
    handle: Any = None  # .onnx: InferenceSession; .mindir: the loaded graph
    _sha256: Optional[str] = None

    @property
    def input_size(self) -> int:
        return self.preprocessing.size

    @property
    def is_backbone(self) -> bool:
        """True for a bare IResNet (outputs its embedding), False for an AU network (outputs probabilities)."""
        return is_backbone(self.model_config)

    @property
    def au_names(self) -> List[str]:
        """The AUs of the output columns ([] for a bare backbone)."""
        return [] if self.is_backbone else list(default_au_names(self.model_config.au_names))

    @property
    def intensity_au_names(self) -> List[str]:
        """The AUs of the intensity head's output columns ([] for a model without the head)."""
        return intensity_names(self.model_config)

    @property
    def sha256(self) -> str:
        """The file's sha256, read on first use and kept (detect's sidecars record it)."""
        if self._sha256 is None:
            from mindface_au.models.checkpoint import sha256_file

            self._sha256 = sha256_file(self.path)
        return self._sha256

    def load_into(self, net) -> None:
        """Load this checkpoint's parameters into `net` strictly (models.checkpoint), without reading the file again."""
        from mindface_au.models.checkpoint import load_checkpoint_strict

        if self.kind != "ckpt":
            raise UserError(f"{self.path}: an exported {self.kind} graph has no parameters to load into a network")
        if self.params is None:
            raise UserError(f"{self.path}: parameters already loaded and released; read the file again")
        load_checkpoint_strict(net, self.path, params=self.params)

    def build_network(self):
        """The trained network in training form (not folded; for inspection or fine-tuning), parameters loaded."""
        from mindface_au.models import build_network

        net = build_network(self.model_config, load_backbone=False)
        self.load_into(net)
        net.set_train(False)
        return net

    def settings(self) -> dict:
        """{"preprocessing": {...}, "eval": {...}}: what this file says about how to run it (exports store this)."""
        return {
            "preprocessing": {**self.preprocessing.as_dict(), "crop": self.crop},
            "eval": None if any(k.startswith("eval.") for k in self.defaults) else dataclasses.asdict(self.eval),
        }


# ------------------------------------------------------------------------------------------------ stored values
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


def _stored_eval(stored, source: str, defaults: list) -> EvalConfig:
    """The stored evaluation settings (type- and range-checked as eval.* keys), the packaged default for any absent."""
    if stored is None:
        stored = {}
    if not isinstance(stored, dict):
        raise UserError(f"{source}: stored eval settings are not a mapping ({type(stored).__name__})")
    unknown = sorted(set(stored) - set(EVAL_KEYS))
    if unknown:
        raise UserError(f"{source}: stored eval settings have unknown key eval.{unknown[0]}")
    try:
        value = section_from_dict("eval", stored)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from exc
    defaults += [f"eval.{k}" for k in EVAL_KEYS if k not in stored]
    return value


def _stored_preprocessing(stored, model_cfg: ModelConfig, source: str, defaults: list) -> FaceInput:
    """The stored input size, mean and std (checked against the model config), else the packaged defaults."""
    spec = face_input(model_cfg)
    if stored is None:
        defaults += ["preprocessing.mean", "preprocessing.std"]
        return spec
    if not isinstance(stored, dict):
        raise UserError(f"{source}: stored preprocessing is not a mapping ({type(stored).__name__})")
    size = stored.get("input_size", spec.size)
    if isinstance(size, bool) or not isinstance(size, int) or size != model_cfg.input_size:
        raise UserError(
            f"{source}: stored preprocessing.input_size {size!r} differs from its model config's model.input_size "
            f"{model_cfg.input_size}"
        )
    values = {}
    for key in ("mean", "std"):
        value = stored.get(key)
        if value is None:
            defaults.append(f"preprocessing.{key}")
            values[key] = getattr(spec, key)
            continue
        ok = isinstance(value, (list, tuple)) and len(value) == 3
        ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not ok or (key == "std" and min(value) <= 0):
            raise UserError(
                f"{source}: stored preprocessing.{key}: got {str(value)[:60]}, expected 3 numbers"
                + (" > 0" if key == "std" else "")
            )
        values[key] = tuple(float(v) for v in value)
    return FaceInput(spec.size, values["mean"], values["std"])


def _crop(stored, card: Optional[dict], size: int) -> str:
    crop = (stored or {}).get("crop") if isinstance(stored, dict) else None
    crop = crop or (card or {}).get("crop") or default_crop(size)
    if not isinstance(crop, str):
        raise UserError(f"stored preprocessing.crop: got {crop!r}, expected '<method>@<size>'")
    return crop


# ------------------------------------------------------------------------------------------------ opening files
def onnx_session(path: str, threads: int = 0, device: str = "auto"):
    """An ONNX Runtime session of `path` (intra-op `threads`, 0 = every core; device auto, CPU or GPU)."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise UserError(f"{path}: ONNX models need ONNX Runtime: {ONNX_EXTRA}") from exc
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads < 0:
        raise UserError(f"{param('threads')}: got {threads}, expected 0 (all cores) or a positive integer")
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
            raise UserError(
                f"{param('device')} GPU: this onnxruntime has no CUDA provider (has {', '.join(available)})"
            )
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    else:
        raise UserError(f"{param('device')} {device}: ONNX Runtime runs .onnx files on auto, CPU or GPU")
    try:
        return ort.InferenceSession(path, sess_options=options, providers=providers)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own exception types for bad files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{path}: not a readable ONNX model ({first[:200]})") from exc


def _mindir_width(output) -> int:
    """How many tensors one MindIR graph output holds: a tuple (a model with the intensity head) counts its items."""
    attr = output.attr_info
    return len(attr.values) if output.denotation == "Tuple" or attr.type == attr.TUPLE else 1


def _open_mindir(path: str, device: str):
    import mindspore as ms

    from mindface_au.utils.device import init_context
    from mindface_au.utils.io import mindspore_safe_path

    init_context(device)
    try:
        with mindspore_safe_path(path, copy_in=True) as readable:  # MindSpore refuses spaces / non-ASCII paths
            proto = ms.load_mindir(readable)
            raw = dict(proto.user_info).get(MODEL_INFO_KEY, "")
            outputs = sum(_mindir_width(o) for o in proto.graph.output)
            graph = ms.load(readable)
    except Exception as exc:  # noqa: BLE001 - MindSpore raises RuntimeError/ValueError for bad files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{path}: not a readable MindIR file ({first})") from exc
    return graph, raw, outputs


def _read_ckpt(path: str, config) -> ModelFile:
    from mindface_au.models.checkpoint import MODEL_CONFIG_KEY, read_checkpoint_contents

    contents = read_checkpoint_contents(path)
    embedded = contents.embedded.get(MODEL_CONFIG_KEY)
    if embedded is not None:
        try:
            data = json.loads(embedded)
        except ValueError as exc:
            raise UserError(f"{path}: embedded model config is not valid JSON ({exc})") from exc
        model_cfg = section_from_dict("model", data, f"{path}: embedded")
    else:
        model_cfg = _given_config(config)
        if model_cfg is None:
            raise UserError(
                f"{path}: checkpoint has no embedded model config; pass {param('config')} with its model section"
            )
        model_cfg = section_from_dict("model", dataclasses.asdict(model_cfg), path)
    model_cfg = dataclasses.replace(model_cfg, backbone_checkpoint="")  # the trained checkpoint holds the backbone
    card = contents.json(CARD_KEY)
    return _record(path, "ckpt", model_cfg, card, card or {}, params=contents.params)


def _check_outputs(path: str, info: dict, model_cfg: ModelConfig, outputs: int) -> None:
    """Refuse an export whose metadata's AU lists contradict its model config, or whose graph has another number
    of outputs than they say (an intensity head: probabilities and intensity; else one)."""
    heads = intensity_names(model_cfg)
    stored = {"au_names": [] if is_backbone(model_cfg) else list(default_au_names(model_cfg.au_names))}
    stored["intensity_au_names"] = heads
    for key, expected in stored.items():
        if info.get(key) and info[key] != expected:  # absent or empty: a file from before it was stored
            raise UserError(
                f"{path}: metadata {key} {_describe(info[key])} differs from its model config's ({_describe(expected)})"
            )
    wanted = len(OUTPUT_NAMES) if heads else 1
    if outputs != wanted:
        names = ", ".join(OUTPUT_NAMES[:wanted]) if not is_backbone(model_cfg) else "embedding"
        raise UserError(
            f"{path}: the graph has {outputs} output(s), but its metadata expects {wanted} ({names}"
            + (f"; intensity AUs {_describe(heads)}" if heads else "")
            + "); the file does not match its metadata"
        )


def _read_export(path: str, kind: str, info: dict, handle, outputs: int) -> ModelFile:
    model_cfg = section_from_dict("model", info["model"], f"{path}: metadata")
    if info["input_size"] != model_cfg.input_size:
        raise UserError(
            f"{path}: metadata input_size {info['input_size']} differs from its model config's "
            f"model.input_size {model_cfg.input_size}"
        )
    _check_outputs(path, info, model_cfg, outputs)
    card, stored = stored_settings(info)
    return _record(path, kind, model_cfg, card, stored, info=info, handle=handle)


def _record(path, kind, model_cfg, card, stored: dict, **more) -> ModelFile:
    defaults: list = []
    source = f"{path}: stored settings"
    preprocessing = _stored_preprocessing(stored.get("preprocessing"), model_cfg, source, defaults)
    evaluation = _stored_eval(stored.get("eval"), source, defaults)
    crop = _crop(stored.get("preprocessing"), card, preprocessing.size)
    return ModelFile(path, kind, model_cfg, card, preprocessing, crop, evaluation, tuple(defaults), **more)


def read_model_file(path: str, config=None, device: str = "auto", threads: int = 0) -> ModelFile:
    """Open model file `path` once (.ckpt, .mindir or .onnx; see the module docstring).

    `config` (YAML path, Config or ModelConfig) is the model section of a checkpoint without an embedded one;
    `device` and `threads` open a .mindir (MindSpore context) or .onnx (ONNX Runtime session) file.
    """
    if not os.path.isfile(path):
        raise UserError(f"{path}: model file not found")
    ext = os.path.splitext(path)[1].lower()
    if ext not in KINDS:
        raise UserError(f"{path}: unknown model file type {ext or '(none)'}; expected .ckpt, .mindir or .onnx")
    if ext == ".ckpt":
        return _read_ckpt(path, config)
    if ext == ".onnx":
        session = onnx_session(path, threads, device)
        raw = session.get_modelmeta().custom_metadata_map.get(MODEL_INFO_KEY, "")
        info = parse_metadata(raw, path, "ONNX")
        return _read_export(path, "onnx", info, session, len(session.get_outputs()))
    graph, raw, outputs = _open_mindir(path, device)
    return _read_export(path, "mindir", parse_metadata(raw, path, "MindIR"), graph, outputs)


# ------------------------------------------------------------------------------------------------ a run's config
def _describe(value) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def check_config(mf: ModelFile, cfg: Config, aus: bool = True) -> None:
    """Refuse a `--config`/`--set` value (cfg.given_keys) that contradicts the file: the input size
    (model.input_size, data.image_size) and, with `aus`, the AU set (model.au_names, model.num_classes)."""
    given = getattr(cfg, "given_keys", frozenset())
    checks = [("model.input_size", cfg.model.input_size, mf.input_size)]
    checks.append(("data.image_size", cfg.data.image_size, mf.input_size))
    if aus and not mf.is_backbone:
        checks.append(("model.au_names", list(cfg.model.au_names), mf.au_names))
        checks.append(("model.num_classes", cfg.model.num_classes, len(mf.au_names)))
    for key, value, stored in checks:
        if key in given and value != stored:
            raise UserError(
                f"config key {key}: got {_describe(value)}, but the model file {mf.path} has {_describe(stored)}; "
                "the file decides it: drop the value or use a model of that setting"
            )


def apply_model_file(
    mf: ModelFile, cfg: Config, prob_k: Optional[int] = None, label_k: Optional[int] = None, aus: bool = True
) -> Tuple[Config, List[str]]:
    """`cfg` resolved against model file `mf`: (a copy of the Config, notes for stderr).

    The model section and input size are the file's (`check_config` refuses a given value that contradicts
    them; `aus` includes the AU set). Each evaluation setting is, in this order: the `prob_k` / `label_k`
    argument, a value `--config`/`--set` gave (cfg.given_keys), the file's; one that differs from the file's is
    reported in a note, as is a file from before it stored them (the packaged defaults are used).
    """
    check_config(mf, cfg, aus)
    out = copy.deepcopy(cfg)
    out.model = dataclasses.replace(mf.model_config)
    out.data.image_size = mf.input_size
    given = getattr(cfg, "given_keys", frozenset())
    arguments = {"prob_k": prob_k, "label_k": label_k}
    overrides, defaulted = [], []
    for key in EVAL_KEYS:
        stored = getattr(mf.eval, key)
        if arguments.get(key) is not None:
            value = arguments[key]
        elif f"eval.{key}" in given:
            value = getattr(cfg.eval, key)
        else:
            value = stored
            if f"eval.{key}" in mf.defaults:
                defaulted.append(f"{key} {value}")
            setattr(out.eval, key, value)
            continue
        setattr(out.eval, key, value)
        if f"eval.{key}" in mf.defaults:
            continue  # the file stores none: nothing is overridden
        if value != stored:
            overrides.append(f"eval.{key} {value} (the model file's: {stored})")
    for key in ("mean", "std"):
        if f"preprocessing.{key}" in mf.defaults:
            defaulted.append(f"{key} {_describe(getattr(mf.preprocessing, key))}")
    notes = []
    name = os.path.basename(mf.path)
    if overrides:
        notes.append(f"{name}: given settings override the model file's: {'; '.join(overrides)}")
    if defaulted:
        notes.append(
            f"{name}: the file does not store how to run it (written before model files carried it): "
            f"using the packaged defaults {', '.join(defaulted)}"
        )
    return out, notes
