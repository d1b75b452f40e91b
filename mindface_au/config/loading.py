"""Reading a run configuration: a YAML file (or a packaged config by name) plus `section.key=value` overrides.

The YAML reader is yaml.SafeLoader with limits on nesting and on alias expansion. The packaged configs live in
mindface_au/configs/ (installed with the package): the paper's Table 3 rows under affwild2/, the full network on
BP4D and DISFA under bp4d/ and disfa/, and the demo's.
"""

import dataclasses
import os
from typing import Any, Dict, Optional, Sequence

import yaml

from mindface_au.config.rules import check_ranges, format_defaults, validate, validate_model_config
from mindface_au.config.schema import Config, _apply, _field_types, _merge
from mindface_au.errors import UserError, param
from mindface_au.utils.guard import short_repr

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


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
        raise UserError(f"{param('overrides')} {short_repr(text)}: expected section.key=value, e.g. train.epochs=2")
    dotted, raw = text.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = _yaml_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise UserError(
            f"{param('overrides')} {short_repr(text)}: value is not valid YAML ({_yaml_problem(exc)})"
        ) from exc
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
    format_defaults(cfg, explicit)
    validate(cfg)
    cfg.given_keys = frozenset(f"{section}.{key}" for section, key in explicit)
    return cfg


def section_from_dict(section: str, data: Dict[str, Any], source: str = "") -> Any:
    """A config section (ModelConfig, EvalConfig, ...) from a stored mapping (a model file's): type-checked key by
    key as YAML is, then range-checked (a model section: validate_model_config).

    With `source` (the file it came from) every error starts with it and the unknown keys of a stored section are
    all named at once ("stored model config has unknown key model.x (and y)"), as a model-file reader reports them.
    """
    cls = _field_types(Config)[section]
    if source:
        if not isinstance(data, dict):
            raise UserError(f"{source}: stored {section} config is not a mapping ({type(data).__name__})")
        valid = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(map(str, data)) - set(valid))
        if unknown:
            raise UserError(
                f"{source}: stored {section} config has unknown key {section}.{unknown[0]}"
                f"{' (and ' + ', '.join(unknown[1:]) + ')' if unknown[1:] else ''}; valid keys: {', '.join(valid)}"
            )
        try:
            return section_from_dict(section, data)
        except UserError as exc:
            raise UserError(f"{source}: {exc}") from exc
    obj = cls()
    _apply(obj, section, data)
    if section == "model":
        validate_model_config(obj)
    else:
        check_ranges(section, obj)
    return obj


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
