"""Typed run configuration: a YAML file (or a packaged config by name) plus `section.key=value` overrides.

Every section is a dataclass; an unknown key or a value of the wrong type is a UserError that names the key
and lists the valid ones, so a typo never silently falls back to a default. The packaged configs live in
mindface_au/configs/ (installed with the package): the paper's Table 3 rows under affwild2/, the full network
on BP4D and DISFA under bp4d/ and disfa/, and the demo's.
"""

import dataclasses
import os
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import yaml

from mindface_au.au_sets import ABAW_AUS, ABAW_RARE_AUS, KNOWN_AU_SETS, check_au_names
from mindface_au.errors import UserError
from mindface_au.utils.guard import short_repr

AU_NAMES = ABAW_AUS  # the default AU set (ABAW 12); models and datasets carry their own (mindface_au.au_sets)
RARE_AUS = list(ABAW_RARE_AUS)
# Blocks per stage of each IResNet depth (insightface). One table for the MindSpore model, the converter and the
# PyTorch reference; it lives here because this module imports without MindSpore or PyTorch.
IRESNET_LAYERS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
    "iresnet200": (6, 26, 60, 6),
}
# Cross-validation folds over train+val (paper 3.4.2): `data.split` is official or fold1..fold<NUM_FOLDS>. Here
# rather than in data/folds.py so that validating a config needs no data module (data/ imports this one).
NUM_FOLDS = 4
FOLD_SPLITS = tuple(f"fold{i}" for i in range(1, NUM_FOLDS + 1))
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


@dataclass
class ModelConfig:
    """Network architecture (see mindface_au.models)."""

    name: str = "aunet_iresnet100"  # registry name
    # the AUs predicted, in output order; unset in a config = the AU set of data.format (list data: data.au_names)
    au_names: List[str] = field(default_factory=lambda: list(AU_NAMES))
    num_classes: int = 0  # outputs; 0 = len(au_names), any other value must equal it
    input_size: int = 112
    widths: List[int] = field(default_factory=lambda: [64, 128, 256, 512])  # IResNet stage widths
    layers: List[int] = field(default_factory=list)  # blocks per stage; empty = the depth's default
    embedding_size: int = 512
    backbone_checkpoint: str = ""  # converted Glint360K IResNet checkpoint (mindface-au convert)
    head_dim: int = 512  # width of the backbone token and of the AU node features
    lrp: bool = True  # Local Region Perception (LANets)
    lrp_num: int = 4  # number of LANets
    lrp_reduction: int = 16  # channel compression rate r of each LANet
    arl: bool = True  # AU Relationship Learning (graph)
    arl_k: int = 4  # neighbours kept per AU node
    fusion: str = "transformer"  # none | fixed | transformer
    fusion_weight: float = 0.5  # AU-logit weight for fixed fusion
    fusion_layers: int = 2
    fusion_heads: int = 8
    dropout: float = 0.0


@dataclass
class LossConfig:
    """BCE + multi-label circle loss (paper eq. 1-3)."""

    bce: bool = True
    circle: bool = True
    bce_weight: float = 1.0
    circle_weight: float = 1.0


@dataclass
class DataConfig:
    """Aff-Wild2 / SynthAU data, sampling and augmentation."""

    root: str = "data/synthau"
    format: str = "affwild2"  # affwild2 | bp4d | disfa | list (docs/datasets.md)
    image_root: str = ""  # bp4d / disfa / list: folder of the face crops; empty = data.root
    au_names: List[str] = field(default_factory=list)  # AUs of the labels; empty = the format's set (list: model's)
    intensity_threshold: int = 2  # disfa: an AU occurs when its intensity (0-5) is at least this
    disfa_image_index: str = "line"  # disfa: image {SN}/{t}.png from the 0-based line index t, or "frame" number
    crop: str = ""  # face crop of the images: "" = the format's (FORMAT_CROPS) | arcface5 | box | other
    split: str = ""  # "" = official (affwild2) or fold1 | official (affwild2 only) | fold1 .. fold<the format's count>
    folds_file: str = ""  # written by `mindface-au folds`; empty = computed on the fly
    image_size: int = 0  # 0 = model.input_size; any other value must equal it
    sample_rate: float = 0.1  # fraction of frames kept per video per epoch
    rare_rate: float = 0.2  # fraction kept for frames showing a rare AU
    rare_aus: List[str] = field(default_factory=lambda: list(RARE_AUS))  # unset in a config = the AU set's (au_sets)
    hflip: bool = True
    color_jitter: float = 0.4  # brightness/contrast/saturation strength; 0 disables
    batch_size: int = 256
    eval_batch_size: int = 256
    num_workers: int = 2
    val_max_frames: int = 0  # 0 = all validation frames


@dataclass
class TrainConfig:
    """Optimiser, schedule and run bookkeeping."""

    epochs: int = 15
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.001
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: List[int] = field(default_factory=lambda: [4, 6, 8])  # lr / 10 at these epochs
    lr_gamma: float = 0.1
    amp_level: str = "O0"
    seed: int = 0
    out_dir: str = "runs/default"
    keep_last: int = 2
    val_interval: int = 1  # validate after every N-th epoch and after the last one; 0 = no validation (last epoch)
    steps_per_epoch: int = 0  # 0 = one pass over the sampled frames
    warmup_epochs: float = 0.0  # linear lr warm-up over this many epochs (fractions allowed); 0 = none
    save_every_steps: int = 0  # also write the resumable checkpoints/resume.ckpt every N global steps; 0 = epochs only
    sink_mode: str = "auto"  # auto (on for Ascend/GPU, off on CPU) | true | false; YAML true/false work too
    jit_level: str = ""  # "" = MindSpore's choice | O0 | O1 | O2 (O2: Ascend only)
    sync_bn: bool = False  # BatchNorm statistics over all devices (nn.SyncBatchNorm; GPU/Ascend data parallel)
    freeze_bn: bool = False  # BatchNorm uses and keeps its running statistics (gamma/beta still train)
    prelu_form: str = "native"  # how PReLU is computed in training: native (ops.PReLU) | relu (see models/iresnet.py)
    device: str = "auto"


@dataclass
class EvalConfig:
    """Thresholding and the paper's temporal post-processing."""

    threshold: float = 0.5
    prob_k: int = 8
    label_k: int = 6


@dataclass
class Config:
    """A whole run: one section per concern."""

    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    # "section.key" of every value a YAML file or --set gave (set by load_config); not a field, so never saved.
    # A model file's settings give way only to these (mindface_au.inference.model_file).
    given_keys = frozenset()


def _field_types(cls) -> Dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _check_value(key: str, value: Any, expected: Any) -> Any:
    """Return `value` converted to `expected` (int -> float allowed) or raise naming the key."""
    origin = typing.get_origin(expected)
    if origin in (list, List):
        (item_type,) = typing.get_args(expected)
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key {key}: got {short_repr(value)}, expected a list of {item_type.__name__}")
        return [_check_value(f"{key}[{i}]", item, item_type) for i, item in enumerate(value)]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected in (int, float) and isinstance(value, str):
        try:  # YAML 1.1 reads e.g. 1e-3 (no dot) as a string
            return expected(value)
        except ValueError:
            pass
    if expected is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # YAML reads e.g. out_dir=2024 as a number
    if (expected is int and isinstance(value, bool)) or not isinstance(value, expected):
        raise UserError(
            f"config key {key}: got {short_repr(value)} ({type(value).__name__}), expected {expected.__name__}"
        )
    return value


# keys typed str whose YAML booleans mean "true"/"false" (`sink_mode: true` keeps working beside `auto`)
_BOOL_OR_STR = {("train", "sink_mode")}
SINK_MODES = ("auto", "true", "false")
JIT_LEVELS = ("", "O0", "O1", "O2")
TRAIN_PRELU_FORMS = ("native", "relu")  # train.prelu_form; models/iresnet.py PRELU_FORMS adds inference's "auto"


def _apply(section_obj: Any, section: str, values: Dict[str, Any]) -> None:
    types = _field_types(type(section_obj))
    for key, value in values.items():
        if key not in types:
            raise UserError(f"unknown config key {section}.{str(key)[:40]}; valid keys: {', '.join(sorted(types))}")
        if (section, key) in _BOOL_OR_STR and isinstance(value, bool):
            value = "true" if value else "false"
        setattr(section_obj, key, _check_value(f"{section}.{key}", value, types[key]))


def _merge(cfg: Config, data: Dict[str, Any], source: str, explicit: Optional[set] = None) -> None:
    """Apply a mapping of sections to `cfg`; the (section, key) pairs it sets are added to `explicit`."""
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of sections, got {type(data).__name__}")
    sections = _field_types(Config)
    for section, values in data.items():
        if section not in sections:
            raise UserError(
                f"{source}: unknown config section {short_repr(section, 40)}; valid sections: {', '.join(sections)}"
            )
        if values is None:
            continue
        if not isinstance(values, dict):
            raise UserError(f"{source}: section {section!r} must be a mapping, got {type(values).__name__}")
        _apply(getattr(cfg, section), section, values)
        if explicit is not None:
            explicit.update((section, key) for key in values)


MAX_DEPTH = 32  # nesting of lists/mappings in a config (the real ones use 3)
MAX_NODES = 100_000  # values a config may expand to, aliases counted at every use (billion laughs)


class _LimitedLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses deep nesting and configs expanding (through aliases) to very many values."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.YAMLError(f"values nested more than {MAX_DEPTH} deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node):
        _expanded_size(node, {})
        return super().construct_document(node)


def _expanded_size(node, memo: Dict[int, int]) -> int:
    """Values under `node` once every alias is expanded; a YAMLError past MAX_NODES (memoised: aliases share nodes)."""
    if id(node) in memo:
        return memo[id(node)]
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    if size > MAX_NODES:
        raise yaml.YAMLError(f"expands to more than {MAX_NODES} values (aliases included)")
    memo[id(node)] = size
    return size


def _yaml_load(text: str):
    """yaml.safe_load with the limits of _LimitedLoader."""
    loader = _LimitedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error as one short line."""
    text = str(getattr(exc, "problem", None) or exc)
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return (" ".join(text.split()))[:200] + where


def read_config_text(path: str) -> str:
    """The text of config file `path`; a file that is not UTF-8 text is a one-line error."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the config ({exc.strerror})") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise UserError(f"{path}: larger than {MAX_CONFIG_BYTES // 1024} KiB; not a config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte {exc.start}); a config is a UTF-8 YAML file") from exc
    if "\x00" in text:
        raise UserError(f"{path}: binary data (a NUL byte); a config is a UTF-8 YAML file")
    return text


MAX_CONFIG_BYTES = 1 << 20


def parse_override(text: str) -> Dict[str, Any]:
    """Turn 'section.key=value' (value in YAML syntax) into {'section': {'key': value}}."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise UserError(f"--set {short_repr(text)}: expected section.key=value, e.g. train.epochs=2")
    dotted, raw = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = _yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise UserError(f"--set {short_repr(text)}: value is not valid YAML ({_yaml_problem(exc)})") from exc
    return {section: {key: value}}


def packaged_configs() -> Dict[str, str]:
    """Packaged config name (e.g. "affwild2/table3_6_ff") -> file path, sorted by name."""
    found = {}
    for folder, _, files in os.walk(CONFIG_DIR):
        for name in files:
            if name.endswith(".yaml"):
                path = os.path.join(folder, name)
                found[os.path.relpath(path, CONFIG_DIR)[: -len(".yaml")].replace(os.sep, "/")] = path
    return dict(sorted(found.items()))


def config_description(path: str) -> str:
    """The one-line description of a config: its first line, a `# ...` comment."""
    with open(path, encoding="utf-8") as handle:
        first = handle.readline().strip()
    return first.lstrip("#").strip() if first.startswith("#") else ""


def resolve_config(name_or_path: str) -> str:
    """Path of a config given as a file path or a packaged name; an existing file path wins.

    A packaged name may carry `.yaml` and may omit its folder when the basename is unique: `table3_6_ff`,
    `affwild2/table3_6_ff` and `affwild2/table3_6_ff.yaml` are the same file.
    """
    if os.path.isfile(name_or_path):
        return name_or_path
    packaged = packaged_configs()
    name = name_or_path[: -len(".yaml")] if name_or_path.endswith(".yaml") else name_or_path
    if name in packaged:
        return packaged[name]
    matches = [full for full in packaged if full.rsplit("/", 1)[-1] == name]
    if len(matches) == 1:
        return packaged[matches[0]]
    if matches:
        raise UserError(f"config {name_or_path!r} is ambiguous: {', '.join(matches)}")
    raise UserError(f"{name_or_path}: no such config file or packaged config; packaged configs: {', '.join(packaged)}")


def load_config(path: Optional[str] = None, overrides: Sequence[str] = ()) -> Config:
    """Defaults, then the YAML config `path` (a file or a packaged name), then each `section.key=value` override."""
    cfg = Config()
    explicit: set = set()  # (section, key) the config file or a --set names
    if path:
        path = resolve_config(path)
        text = read_config_text(path)
        try:
            data = _yaml_load(text) or {}
        except yaml.YAMLError as exc:
            raise UserError(f"{path}: not a valid config ({_yaml_problem(exc)})") from exc
        except RecursionError as exc:
            raise UserError(f"{path}: not a valid config (nested too deep)") from exc
        _merge(cfg, data, path, explicit)
    for text in overrides:
        _merge(cfg, parse_override(text), f"--set {short_repr(text)}", explicit)
    _format_defaults(cfg, explicit)
    validate(cfg)
    cfg.given_keys = frozenset(f"{section}.{key}" for section, key in explicit)
    return cfg


def section_from_dict(section: str, data: Dict[str, Any]) -> Any:
    """A config section (ModelConfig, EvalConfig, ...) from a stored mapping (a model file's): type-checked key by
    key as YAML is, then range-checked (a model section: validate_model_config)."""
    obj = _field_types(Config)[section]()
    _apply(obj, section, data)
    if section == "model":
        validate_model_config(obj)
    else:
        check_ranges(section, obj)
    return obj


def _format_defaults(cfg: Config, explicit: set) -> None:
    """The AU set and rare AUs a config leaves unset follow data.format.

    The AU set comes from model.au_names as the config file (a run's saved config, whose model it describes) or a
    --set names it, else data.au_names, else the set of data.format (affwild2, bp4d, disfa). List data has no set
    of its own: an empty or missing one is refused. data.rare_aus left unset: the set's rare AUs
    (au_sets.default_rare_aus)."""
    from mindface_au.au_sets import default_rare_aus

    data, model = cfg.data, cfg.model
    if data.format not in DATA_FORMATS:
        return  # validate names the bad format
    if not (("model", "au_names") in explicit and model.au_names):
        names = data.au_names or format_au_names(data.format)
        if not names:
            raise UserError(
                "config key model.au_names: empty or unset, and data.format list names no AUs; name the AU of each "
                'label column in order, e.g. --set "model.au_names=[AU1, AU2, AU4]"'
            )
        model.au_names = list(names)
    if ("data", "rare_aus") not in explicit:
        data.rare_aus = list(default_rare_aus(model.au_names))


def validate(cfg: Config) -> None:
    """Cross-field checks that types alone cannot express; resolves data.image_size 0 to model.input_size.

    The range table first (the model section's inside validate_model_config), so a count out of range is reported
    by its own rule whichever check would see it."""
    for section in ("loss", "data", "train", "eval"):
        check_ranges(section, getattr(cfg, section))
    validate_model_config(cfg.model)
    _validate_data(cfg.data, cfg.model)
    if cfg.data.image_size == 0:
        cfg.data.image_size = cfg.model.input_size
    elif cfg.data.image_size != cfg.model.input_size:
        raise UserError(
            f"config keys data.image_size ({cfg.data.image_size}) and model.input_size ({cfg.model.input_size}) differ;"
            " the network reads the images at data.image_size, so set both to the same value"
        )
    if not cfg.loss.bce and not cfg.loss.circle:
        raise UserError("config keys loss.bce and loss.circle are both false; enable at least one loss term")
    _validate_train(cfg.train)


# every count, size and window: (section, key) -> (lowest, highest or None, what it means); list keys per item
RANGES = {
    ("model", "num_classes"): (0, None, " (0 = one output per AU of model.au_names)"),
    ("model", "input_size"): (16, None, ""),
    ("model", "widths"): (1, None, ""),
    ("model", "layers"): (1, None, ""),
    ("model", "embedding_size"): (1, None, ""),
    ("model", "head_dim"): (1, None, ""),
    ("model", "lrp_num"): (1, None, ""),
    ("model", "lrp_reduction"): (1, None, ""),
    ("model", "arl_k"): (1, None, ""),
    ("model", "fusion_layers"): (1, None, ""),
    ("model", "fusion_heads"): (1, None, ""),
    ("model", "dropout"): (0.0, 0.99, ""),
    ("loss", "bce_weight"): (0.0, None, ""),
    ("loss", "circle_weight"): (0.0, None, ""),
    ("data", "image_size"): (0, None, " (0 = model.input_size)"),
    ("data", "sample_rate"): (1e-9, 1.0, " (a fraction of the frames)"),
    ("data", "rare_rate"): (0.0, 1.0, " (a fraction of the frames)"),
    ("data", "color_jitter"): (0.0, None, ""),
    ("data", "batch_size"): (1, None, ""),
    ("data", "eval_batch_size"): (1, None, ""),
    ("data", "num_workers"): (1, None, ""),
    ("data", "val_max_frames"): (0, None, " (0 = all)"),
    ("train", "epochs"): (1, None, ""),
    ("train", "lr"): (1e-12, None, " (a positive learning rate)"),
    ("train", "momentum"): (0.0, 1.0, ""),
    ("train", "weight_decay"): (0.0, None, ""),
    ("train", "milestones"): (1, None, " (epochs)"),
    ("train", "lr_gamma"): (1e-12, None, ""),
    ("train", "seed"): (0, None, ""),
    ("train", "keep_last"): (1, None, ""),
    ("train", "steps_per_epoch"): (0, None, " (0 = one pass over the sampled frames)"),
    ("eval", "threshold"): (0.0, 1.0, ""),
    ("eval", "prob_k"): (0, None, " (0 = no smoothing)"),
    ("eval", "label_k"): (0, None, " (0 = no smoothing)"),
}


def check_ranges(section: str, values: Any) -> None:
    """Every count, size and window of RANGES in one config section (a dataclass) within its range, naming the key."""
    for (where, key), (low, high, note) in RANGES.items():
        if where != section:
            continue
        value = getattr(values, key)
        for item in value if isinstance(value, list) else [value]:
            if item < low or (high is not None and item > high):
                expected = f"{low} <= value <= {high}" if high is not None else f"a value >= {low}"
                raise UserError(f"config key {section}.{key}: got {short_repr(item)}, expected {expected}{note}")


DATA_FORMATS = {"affwild2": 4, "bp4d": 3, "disfa": 3, "list": 0}  # format -> folds (list: its fold files)
FORMAT_AU_SETS = {"affwild2": "abaw", "bp4d": "bp4d", "disfa": "disfa"}  # list: data.au_names or model.au_names
# How the face crops were made (recorded in the model card; `detect` redoes it): arcface5 = five-point alignment
# onto the ArcFace template (Aff-Wild2's cropped_aligned, SynthAU), box = a detector's face box resized (ME-GraphAU's
# BP4D/DISFA crops), other = a crop this package cannot redo.
CROPS = ("arcface5", "box", "other")
FORMAT_CROPS = {"affwild2": "arcface5", "bp4d": "box", "disfa": "box", "list": "other"}


def format_au_names(data_format: str) -> tuple:
    """The AU set a data format labels (affwild2: ABAW 12, bp4d, disfa); () for list data, which has none."""
    return KNOWN_AU_SETS[FORMAT_AU_SETS[data_format]].au_names if data_format in FORMAT_AU_SETS else ()


def _validate_data(data: "DataConfig", model: ModelConfig) -> None:
    """data.format, its AU set (resolved into data.au_names), split, rare AUs and the DISFA keys."""
    if data.format not in DATA_FORMATS:
        raise UserError(f"config key data.format: got {data.format!r}, expected one of {', '.join(DATA_FORMATS)}")
    names = format_au_names(data.format)
    if data.au_names and names and tuple(data.au_names) != names:
        raise UserError(
            f"config key data.au_names: {data.format} labels {', '.join(names)}; got {', '.join(data.au_names)}"
        )
    data.au_names = list(check_au_names(data.au_names or names or model.au_names, "data.au_names"))
    if data.au_names != list(model.au_names):
        raise UserError(
            f"config keys model.au_names ({', '.join(model.au_names)}) and the AUs of data.format {data.format} "
            f"({', '.join(data.au_names)}) differ; leave model.au_names unset (it follows data.format) or set it to "
            "the dataset's AUs"
        )
    unknown = [au for au in data.rare_aus if au not in data.au_names]
    if unknown:
        raise UserError(
            f"config key data.rare_aus: {unknown[0]!r} is not an AU of data.format {data.format}; "
            f"valid: {', '.join(data.au_names)}"
        )
    folds = DATA_FORMATS[data.format]
    data.split = data.split or ("official" if data.format == "affwild2" else "fold1")
    expected = ("official or " if data.format == "affwild2" else "") + (f"fold1..fold{folds}" if folds else "fold<k>")
    if data.split == "official" and data.format != "affwild2":
        raise UserError(f"config key data.split: official exists for affwild2 only; {data.format} expects {expected}")
    number = data.split[4:] if data.split.startswith("fold") else ""
    if data.split != "official" and not (number.isdigit() and 1 <= int(number) <= (folds or int(number))):
        raise UserError(f"config key data.split: got {data.split!r}, expected {expected} for {data.format}")
    if not 0 <= data.intensity_threshold <= 5:
        raise UserError(f"config key data.intensity_threshold: got {data.intensity_threshold}, expected 0..5")
    if data.disfa_image_index not in ("line", "frame"):
        raise UserError(f"config key data.disfa_image_index: got {data.disfa_image_index!r}, expected line or frame")
    data.crop = data.crop or FORMAT_CROPS[data.format]
    if data.crop not in CROPS:
        raise UserError(f"config key data.crop: got {data.crop!r}, expected one of {', '.join(CROPS)}")


def validate_model_config(model: ModelConfig) -> None:
    """The one check of a model section (AU network or bare IResNet backbone), naming the key at fault.

    Resolves model.num_classes 0 to len(model.au_names). Used by load_config, by every network builder
    (mindface_au.models.build_network) and by the loaders of checkpoints and exports.
    """
    name = model.name
    arch = name[len("aunet_") :] if name.startswith("aunet_") else name
    if arch not in IRESNET_LAYERS:
        known = [f"aunet_{a}" for a in IRESNET_LAYERS] + list(IRESNET_LAYERS)
        raise UserError(f"config key model.name: got {name!r}, expected one of {', '.join(known)}")
    check_ranges("model", model)  # every size and count >= its lowest value, dropout within [0, 0.99]
    if model.input_size % 16:
        raise UserError(f"config key model.input_size: got {model.input_size}, expected a multiple of 16")
    if len(model.widths) != 4:
        raise UserError(f"config key model.widths: got {model.widths}, expected 4 positive stage widths")
    if model.layers and len(model.layers) != 4:
        raise UserError(f"config key model.layers: got {model.layers}, expected 4 positive block counts or []")
    model.au_names = list(check_au_names(model.au_names or AU_NAMES))
    if model.num_classes == 0:
        model.num_classes = len(model.au_names)
    if model.num_classes != len(model.au_names):
        raise UserError(
            f"config key model.num_classes: got {model.num_classes}, expected {len(model.au_names)} "
            f"(one output per AU of model.au_names) or 0"
        )
    if name == arch:  # a bare backbone: the head keys do not apply
        return
    if model.fusion not in ("none", "fixed", "transformer"):
        raise UserError(f"config key model.fusion: got {model.fusion!r}, expected none, fixed or transformer")
    if model.fusion != "none" and not model.arl:
        raise UserError(
            f"config key model.fusion: {model.fusion!r} fuses AU-graph and backbone logits and needs "
            "model.arl true; set model.fusion none for the backbone-only baseline"
        )
    if not 0.0 <= model.fusion_weight <= 1.0:
        raise UserError(f"config key model.fusion_weight: got {model.fusion_weight}, expected 0 <= w <= 1")
    if not 1 <= model.arl_k <= model.num_classes:
        raise UserError(f"config key model.arl_k: got {model.arl_k}, expected 1 <= k <= {model.num_classes}")
    if model.fusion == "transformer" and model.head_dim % model.fusion_heads:
        raise UserError(
            f"config key model.fusion_heads: {model.fusion_heads} does not divide model.head_dim {model.head_dim}"
        )


def _validate_train(train: "TrainConfig") -> None:
    """The `train` keys' ranges; device-dependent checks (jit O2, sync_bn) are in engine/runtime.py."""
    train.sink_mode = str(train.sink_mode).lower()
    if train.sink_mode not in SINK_MODES:
        raise UserError(f"config key train.sink_mode: got {train.sink_mode!r}, expected auto, true or false")
    train.jit_level = train.jit_level.upper()
    if train.jit_level not in JIT_LEVELS:
        raise UserError(f'config key train.jit_level: got {train.jit_level!r}, expected "" (default), O0, O1 or O2')
    if train.warmup_epochs < 0:
        raise UserError(f"config key train.warmup_epochs: got {train.warmup_epochs}, expected >= 0")
    if train.prelu_form not in TRAIN_PRELU_FORMS:
        raise UserError(f"config key train.prelu_form: got {train.prelu_form!r}, expected native or relu")
    if train.val_interval < 0:
        raise UserError(f"config key train.val_interval: got {train.val_interval}, expected >= 0 (0 = no validation)")
    if train.save_every_steps < 0:
        raise UserError(f"config key train.save_every_steps: got {train.save_every_steps}, expected >= 0 (0 = off)")
    if train.sync_bn and train.freeze_bn:
        raise UserError(
            "config keys train.sync_bn and train.freeze_bn are both true; a frozen BatchNorm has no "
            "batch statistics to synchronise, choose one"
        )


def config_to_dict(cfg: Config) -> Dict[str, Any]:
    """Plain nested dict of the config (what gets printed and saved)."""
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def save_config(cfg: Config, path: str) -> None:
    """Write the resolved config beside a run's outputs (atomically)."""
    from mindface_au.utils.io import atomic_write

    with atomic_write(path) as handle:
        handle.write(dump_config(cfg))
