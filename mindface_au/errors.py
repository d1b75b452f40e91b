"""User-facing errors: one line naming the file, key or value at fault and what was expected.

Library messages name parameters and config keys, never command-line flags (those live in `mindface_au/cli/`).
One mechanism: a message refers to a parameter with `param("device")`, which writes the marker `{param:device}`,
and `render` turns each marker into words: the parameter name for a Python user (`device: got 'TPU'`), the flag
the user typed under the CLI, which installs its table (`cli/flags.py`) with `parameter_names` while a command
runs (`--device: got 'TPU'`). `str(UserError)` renders; a note the library prints goes through `render` too.
Hints use the same marker: f"pass {param('overwrite')} to replace" reads "pass overwrite to replace" for a Python
user and "pass --overwrite to replace" on the command line.
"""

import contextlib
import re
from typing import Dict, Iterator, Mapping

_MARKER = re.compile(r"\{param:([A-Za-z_][\w.]*)\}")
_NAMES: Dict[str, str] = {}  # parameter -> how the current caller spells it (the CLI's flags); empty: the name


def param(name: str) -> str:
    """The marker naming parameter (or config key) `name` in a message; `render` spells it for the caller."""
    return "{param:" + name + "}"


def render(text) -> str:
    """`text` with each `param(...)` marker spelled for the caller: its flag under the CLI, else its name."""
    return _MARKER.sub(lambda m: _NAMES.get(m.group(1), m.group(1)), str(text))


def current_parameter_names() -> Dict[str, str]:
    """The spelling in force (parameter -> flag; empty for a Python user): a worker process is handed it."""
    return dict(_NAMES)


def use_parameter_names(names: Mapping[str, str]) -> None:
    """Spell parameters as `names` (parameter -> flag) from now on (a worker process, handed its parent's)."""
    _NAMES.clear()
    _NAMES.update(names)


@contextlib.contextmanager
def parameter_names(names: Mapping[str, str]) -> Iterator[None]:
    """Spell parameters as `names` (parameter -> flag) while the block runs (the CLI, around one command)."""
    saved = current_parameter_names()
    use_parameter_names({**saved, **names})
    try:
        yield
    finally:
        use_parameter_names(saved)


class UserError(Exception):
    """A problem with the user's input; the CLI prints it as one line and exits with status 2.

    The message may name parameters with `param(...)` markers; `str()` spells them for the caller (see above).
    """

    def __str__(self) -> str:
        return render(super().__str__())


def listing(names, limit: int = 8) -> str:
    """'a, b, c (+N more)': a short, sorted list of names for a one-line error."""
    names = sorted(names)
    more = f" (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def fit_problems(missing, unexpected, mismatched, limit: int = 8, mismatch_limit: int = 8) -> str:
    """'missing N: ... | unexpected N: ... | shape mismatch N: ...' for the non-empty groups ('' if all fit)."""
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {listing(missing, limit)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {listing(unexpected, limit)}")
    if mismatched:
        problems.append(f"shape mismatch {len(mismatched)}: {'; '.join(mismatched[:mismatch_limit])}")
    return " | ".join(problems)
