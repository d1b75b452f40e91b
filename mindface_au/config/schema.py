"""The typed run configuration: one dataclass per section, and the key-by-key type check of a mapping against it.

An unknown key or a value of the wrong type is a UserError that names the key and lists the valid ones, so a typo
never silently falls back to a default. Ranges and cross-field rules are in rules.py; files and --set in loading.py.
"""

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from mindface_au.au_sets import ABAW_AUS, ABAW_RARE_AUS
from mindface_au.errors import UserError
from mindface_au.utils.guard import short_repr

AU_NAMES = ABAW_AUS  # the default AU set (ABAW 12); models and datasets carry their own (mindface_au.au_sets)
RARE_AUS = list(ABAW_RARE_AUS)


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
    intensity: bool = False  # AU intensity head (FACS 0-5) beside occurrence; off = the occurrence-only network
    # AUs of the intensity head, in output order, each one of model.au_names; empty = data.format's intensity AUs
    # among model.au_names (DISFA: all, BP4D: AU6, AU10, AU12, AU14, AU17), else model.au_names
    intensity_au_names: List[str] = field(default_factory=list)


@dataclass
class LossConfig:
    """BCE + multi-label circle loss (paper eq. 1-3)."""

    bce: bool = True
    circle: bool = True
    bce_weight: float = 1.0
    circle_weight: float = 1.0
    intensity_weight: float = 1.0  # weight of the intensity regression loss (model.intensity) against occurrence's


@dataclass
class DataConfig:
    """Aff-Wild2 / SynthAU data, sampling and augmentation."""

    root: str = "data/synthau"
    format: str = "affwild2"  # affwild2 | bp4d | disfa | list (docs/datasets.md)
    image_root: str = ""  # bp4d / disfa / list: folder of the face crops; empty = data.root
    au_names: List[str] = field(default_factory=list)  # AUs of the labels; empty = the format's set (list: model's)
    intensity_threshold: int = 2  # disfa: an AU occurs when its intensity (0-5) is at least this
    disfa_image_index: str = "line"  # disfa: image {SN}/{t}.png from the 0-based line index t, or "frame" number
    crop: str = ""  # face crop of the images: "" = the format's (data.registry) | arcface5 | box | other
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
    num_workers: int = 2  # decode and batch workers of the data pipeline (threads, or processes: process_workers)
    process_workers: bool = False  # pipeline workers are processes (python_multiprocessing), not threads
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
    best_metric: str = "f1"  # what picks checkpoints/best.ckpt: f1 (mean F1) | icc (mean ICC(3,1), model.intensity)
    intensity_only: bool = False  # train the intensity head alone; every other weight frozen (from init_checkpoint)
    init_checkpoint: str = ""  # start from this model file's weights (e.g. an occurrence model); "" = from scratch


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
