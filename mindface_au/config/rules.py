"""The rules a configuration obeys beyond its types: the RANGES table, the cross-field checks and the defaults
that follow data.format (its AU set, rare AUs, crop and split), for a whole run (`validate`) or a model section
alone (`validate_model_config`, the one check every network builder and model-file reader uses).
"""

from typing import Any

from mindface_au.au_sets import check_au_names, default_au_names, default_rare_aus
from mindface_au.config.schema import Config, DataConfig, ModelConfig, TrainConfig
from mindface_au.data.registry import CROPS, FORMATS, format_au_names, get_format
from mindface_au.errors import UserError, param
from mindface_au.models.specs import IRESNET_LAYERS
from mindface_au.utils.guard import short_repr

SINK_MODES = ("auto", "true", "false")
JIT_LEVELS = ("", "O0", "O1", "O2")
TRAIN_PRELU_FORMS = ("native", "relu")  # train.prelu_form; models/iresnet.py PRELU_FORMS adds inference's "auto"
BEST_METRICS = ("f1", "icc")  # train.best_metric: mean F1, or mean ICC(3,1) of the intensity head


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
    ("model", "fusion_weight"): (0.0, 1.0, " (the AU logits' weight in fixed fusion)"),
    ("loss", "bce_weight"): (0.0, None, ""),
    ("loss", "circle_weight"): (0.0, None, ""),
    ("loss", "intensity_weight"): (0.0, None, ""),
    ("data", "image_size"): (0, None, " (0 = model.input_size)"),
    ("data", "sample_rate"): (1e-9, 1.0, " (a fraction of the frames)"),
    ("data", "rare_rate"): (0.0, 1.0, " (a fraction of the frames)"),
    ("data", "color_jitter"): (0.0, None, ""),
    ("data", "batch_size"): (1, None, ""),
    ("data", "eval_batch_size"): (1, None, ""),
    ("data", "num_workers"): (1, None, ""),
    ("data", "val_max_frames"): (0, None, " (0 = all)"),
    ("data", "intensity_threshold"): (0, 5, " (a DISFA intensity)"),
    ("train", "epochs"): (1, None, ""),
    ("train", "lr"): (1e-12, None, " (a positive learning rate)"),
    ("train", "momentum"): (0.0, 1.0, ""),
    ("train", "weight_decay"): (0.0, None, ""),
    ("train", "milestones"): (1, None, " (epochs)"),
    ("train", "lr_gamma"): (1e-12, None, ""),
    ("train", "seed"): (0, None, ""),
    ("train", "keep_last"): (1, None, ""),
    ("train", "steps_per_epoch"): (0, None, " (0 = one pass over the sampled frames)"),
    ("train", "warmup_epochs"): (0.0, None, " (0 = no warm-up)"),
    ("train", "val_interval"): (0, None, " (0 = no validation)"),
    ("train", "save_every_steps"): (0, None, " (0 = off)"),
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


def format_defaults(cfg: Config, explicit: set) -> None:
    """The AU set and rare AUs a config leaves unset follow data.format.

    The AU set comes from model.au_names as the config file (a run's saved config, whose model it describes) or a
    --set names it, else data.au_names, else the set of data.format (affwild2, bp4d, disfa). List data has no set
    of its own: an empty or missing one is refused. data.rare_aus left unset: the set's rare AUs
    (au_sets.default_rare_aus)."""
    data, model = cfg.data, cfg.model
    if data.format not in FORMATS:
        return  # validate names the bad format
    if not (("model", "au_names") in explicit and model.au_names):
        names = data.au_names or format_au_names(data.format)
        if not names:
            raise UserError(
                "config key model.au_names: empty or unset, and data.format list names no AUs; name the AU of each "
                f'label column in order, e.g. {param("overrides")} "model.au_names=[AU1, AU2, AU4]"'
            )
        model.au_names = list(names)
    if ("data", "rare_aus") not in explicit:
        data.rare_aus = list(default_rare_aus(model.au_names))
    if model.intensity and not (("model", "intensity_au_names") in explicit and model.intensity_au_names):
        labelled = FORMATS[data.format].intensity_aus
        model.intensity_au_names = [au for au in labelled if au in model.au_names] if labelled else []


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
    if not cfg.model.intensity and (cfg.train.best_metric == "icc" or cfg.train.intensity_only):
        key = "train.best_metric icc" if cfg.train.best_metric == "icc" else "train.intensity_only"
        raise UserError(f"config key {key} needs the intensity head; set model.intensity true")
    if cfg.train.intensity_only and not cfg.train.init_checkpoint:
        raise UserError(
            "config key train.intensity_only: trains the intensity head on a frozen occurrence model; name that "
            "model file in train.init_checkpoint"
        )


def _validate_data(data: DataConfig, model: ModelConfig) -> None:
    """data.format, its AU set (resolved into data.au_names), split, rare AUs, the DISFA keys, and intensity labels
    for model.intensity.

    A known format's labels are read in one of its AU sets (`label_au_sets`: DISFA's 8, or all 12 it labels 0-5);
    data.au_names left empty takes model.au_names when it is one of them, else the format's own set."""
    fmt = get_format(data.format)  # names a bad format
    sets = fmt.label_au_sets
    if data.au_names and sets and tuple(data.au_names) not in sets:
        labels = " or ".join(", ".join(names) for names in sets)
        raise UserError(f"config key data.au_names: {data.format} labels {labels}; got {', '.join(data.au_names)}")
    if not data.au_names and sets:
        data.au_names = list(model.au_names) if tuple(model.au_names) in sets else list(fmt.au_names)
    data.au_names = list(check_au_names(data.au_names or model.au_names, "data.au_names"))
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
    if model.intensity:
        fmt.check_intensity(model.intensity_au_names)  # affwild2 has none: refused before any training
    folds = fmt.num_folds
    data.split = data.split or ("official" if fmt.official else "fold1")
    expected = ("official or " if fmt.official else "") + (f"fold1..fold{folds}" if folds else "fold<k>")
    if data.split == "official" and not fmt.official:
        raise UserError(f"config key data.split: official exists for affwild2 only; {data.format} expects {expected}")
    number = data.split[4:] if data.split.startswith("fold") else ""
    if data.split != "official" and not (number.isdigit() and 1 <= int(number) <= (folds or int(number))):
        raise UserError(f"config key data.split: got {data.split!r}, expected {expected} for {data.format}")
    if data.disfa_image_index not in ("line", "frame"):
        raise UserError(f"config key data.disfa_image_index: got {data.disfa_image_index!r}, expected line or frame")
    data.crop = data.crop or fmt.crop
    if data.crop not in CROPS:
        raise UserError(f"config key data.crop: got {data.crop!r}, expected one of {', '.join(CROPS)}")


def validate_model_config(model: ModelConfig, aunet: bool = False) -> None:
    """The one check of a model section (AU network or bare IResNet backbone), naming the key at fault.

    `aunet`: the caller builds an AUNet, so the name must be one (aunet_iresnet18 ..., one per depth of
    IRESNET_LAYERS, as the model registry holds them); otherwise a bare backbone (iresnet18 ...) passes too.
    Resolves model.num_classes 0 to len(model.au_names). Used by load_config, by every network builder
    (mindface_au.models.build_network) and by the loaders of checkpoints and exports.
    """
    name = model.name
    arch = name[len("aunet_") :] if name.startswith("aunet_") else name
    if aunet and (arch not in IRESNET_LAYERS or name == arch):
        known = sorted(f"aunet_{a}" for a in IRESNET_LAYERS)  # the registry's order (list_models("aunet_*"))
        raise UserError(f"config key model.name: got {name!r}, expected one of {', '.join(known)}")
    if arch not in IRESNET_LAYERS:
        known = [f"aunet_{a}" for a in IRESNET_LAYERS] + list(IRESNET_LAYERS)
        raise UserError(f"config key model.name: got {name!r}, expected one of {', '.join(known)}")
    check_ranges("model", model)  # every size and count >= its lowest value, dropout and fusion_weight within theirs
    if model.input_size % 16:
        raise UserError(f"config key model.input_size: got {model.input_size}, expected a multiple of 16")
    if len(model.widths) != 4:
        raise UserError(f"config key model.widths: got {model.widths}, expected 4 positive stage widths")
    if model.layers and len(model.layers) != 4:
        raise UserError(f"config key model.layers: got {model.layers}, expected 4 positive block counts or []")
    model.au_names = list(check_au_names(default_au_names(model.au_names)))
    if model.num_classes == 0:
        model.num_classes = len(model.au_names)
    if model.num_classes != len(model.au_names):
        raise UserError(
            f"config key model.num_classes: got {model.num_classes}, expected {len(model.au_names)} "
            f"(one output per AU of model.au_names) or 0"
        )
    if name == arch:  # a bare backbone: the head keys do not apply
        return
    _validate_intensity(model)
    if model.fusion not in ("none", "fixed", "transformer"):
        raise UserError(f"config key model.fusion: got {model.fusion!r}, expected none, fixed or transformer")
    if model.fusion != "none" and not model.arl:
        raise UserError(
            f"config key model.fusion: {model.fusion!r} fuses AU-graph and backbone logits and needs "
            "model.arl true; set model.fusion none for the backbone-only baseline"
        )
    if model.arl_k > model.num_classes:  # its lowest value is in RANGES, its highest is the AU count
        raise UserError(f"config key model.arl_k: got {model.arl_k}, expected 1 <= k <= {model.num_classes}")
    if model.fusion == "transformer" and model.head_dim % model.fusion_heads:
        raise UserError(
            f"config key model.fusion_heads: {model.fusion_heads} does not divide model.head_dim {model.head_dim}"
        )


def _validate_intensity(model: ModelConfig) -> None:
    """model.intensity_au_names: empty = model.au_names when the head is on; each an AU of model.au_names."""
    if not model.intensity:
        if model.intensity_au_names:
            raise UserError(
                "config key model.intensity_au_names: set while model.intensity is false; set model.intensity true "
                "for an intensity head, or leave the list empty"
            )
        return
    names = check_au_names(model.intensity_au_names or model.au_names, "model.intensity_au_names")
    outside = [au for au in names if au not in model.au_names]
    if outside:
        raise UserError(
            f"config key model.intensity_au_names: {outside[0]} is not an AU of model.au_names "
            f"({', '.join(model.au_names)}); the intensity head reads the occurrence AUs' node features"
        )
    model.intensity_au_names = list(names)


def _validate_train(train: TrainConfig) -> None:
    """The `train` keys' choices; device-dependent checks (jit O2, sync_bn) are in engine/runtime.py."""
    train.sink_mode = str(train.sink_mode).lower()
    if train.sink_mode not in SINK_MODES:
        raise UserError(f"config key train.sink_mode: got {train.sink_mode!r}, expected auto, true or false")
    train.jit_level = train.jit_level.upper()
    if train.jit_level not in JIT_LEVELS:
        raise UserError(f'config key train.jit_level: got {train.jit_level!r}, expected "" (default), O0, O1 or O2')
    if train.prelu_form not in TRAIN_PRELU_FORMS:
        raise UserError(f"config key train.prelu_form: got {train.prelu_form!r}, expected native or relu")
    if train.best_metric not in BEST_METRICS:
        raise UserError(f"config key train.best_metric: got {train.best_metric!r}, expected f1 or icc")
    if train.sync_bn and train.freeze_bn:
        raise UserError(
            "config keys train.sync_bn and train.freeze_bn are both true; a frozen BatchNorm has no "
            "batch statistics to synchronise, choose one"
        )
