"""Model-zoo release files, named as mindcv names them: `{model}_{spec}-{sha256[:8]}.ckpt`, the recipe (the
resolved config YAML) beside it as `{model}_{spec}.yaml`.

The one home of the naming: `create_model` checks the hash a release file's name carries
(mindface_au.models.factory.check_release_hash); `mindface-au export --format CKPT` writes one
(mindface_au.inference.export.ckpt). Imports neither MindSpore nor the models, so the CLI's help can name the rules.
"""

import os
import re
from typing import Optional

from mindface_au.errors import UserError, param

__all__ = ["SPEC_CHARS", "check_spec", "release_stem", "release_name", "recipe_name", "named_hash"]
__all__ += ["safe_spec"]

SPEC_CHARS = "letters, digits, _ and ."
_SPEC = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*$")
_RELEASE_NAME = re.compile(r"^.+-([0-9a-f]{8})\.ckpt$")


def check_spec(spec: str) -> None:
    """Refuse a recipe name that is not filename-safe (SPEC_CHARS, starting with a letter or digit)."""
    if not _SPEC.match(spec):
        raise UserError(f"{param('spec')} {spec!r}: expected a name of {SPEC_CHARS}, starting with a letter or digit")


def safe_spec(text: str) -> str:
    """`text` made a recipe name: runs of other characters become `_`; "" when nothing is left."""
    return re.sub(r"[^A-Za-z0-9_.]+", "_", text).strip("_.")


def release_stem(model: str, spec: str) -> str:
    """`{model}_{spec}`: the release file's name before its hash, and the recipe's name."""
    return f"{model}_{spec}"


def release_name(model: str, spec: str, sha256: str) -> str:
    """mindcv's release file name: `{model}_{spec}-{sha256[:8]}.ckpt`."""
    return f"{release_stem(model, spec)}-{sha256[:8]}.ckpt"


def recipe_name(model: str, spec: str) -> str:
    """The recipe's file name beside the release file: `{model}_{spec}.yaml`."""
    return f"{release_stem(model, spec)}.yaml"


def named_hash(path: str) -> Optional[str]:
    """The 8 hex digits of sha256 that a release file's name carries (`..-{sha256[:8]}.ckpt`), or None."""
    match = _RELEASE_NAME.match(os.path.basename(path))
    return match.group(1) if match else None
