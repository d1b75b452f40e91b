"""AU sets as data: which facial action units a model predicts and a dataset labels (timm's `DatasetInfo` idea).

An `AUSet` is a name and an ordered tuple of AU names ("AU1", "AU2", ...); the order is the order of the model's
outputs and of the label columns. `KNOWN_AU_SETS` holds the field's benchmarks (FACS numbers):

- ``abaw`` (Aff-Wild2, the ABAW challenge, 12 AUs): the default, so configs and checkpoints that name no set
  keep meaning what they meant.
- ``bp4d`` (BP4D, 12 AUs, occurrence 0/1).
- ``disfa`` (DISFA, 8 AUs, present when the intensity is at least 2).

Intensity (FACS 0-5, `INTENSITY_MAX`): DISFA labels the 12 AUs of `DISFA_INTENSITY_AUS`, BP4D's FERA 2015 subset the
5 of `BP4D_INTENSITY_AUS`; a model's intensity head has its own list (`model.intensity_au_names`).

A model carries its AU set as `model.au_names`; a dataset reader returns the set its labels are in. Nothing
here imports MindSpore or the config, so every layer can read it.
"""

import re
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

from mindface_au.errors import UserError

__all__ = [
    "AUSet",
    "KNOWN_AU_SETS",
    "ABAW_AUS",
    "BP4D_AUS",
    "DISFA_AUS",
    "ABAW_RARE_AUS",
    "DISFA_INTENSITY_AUS",
    "BP4D_INTENSITY_AUS",
    "INTENSITY_MAX",
    "default_rare_aus",
    "au_set",
    "au_set_of",
    "au_number",
    "check_au_names",
]

_AU_NAME = re.compile(r"^AU([1-9][0-9]?)$")


@dataclass(frozen=True)
class AUSet:
    """An ordered set of AU names; `name` is the known set it equals ("abaw", "bp4d", "disfa") or "custom"."""

    name: str
    au_names: Tuple[str, ...]

    def __len__(self) -> int:
        return len(self.au_names)

    def index(self, au: str) -> int:
        return self.au_names.index(au)


def _numbers(*numbers: int) -> Tuple[str, ...]:
    return tuple(f"AU{n}" for n in numbers)


ABAW_AUS = _numbers(1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)
BP4D_AUS = _numbers(1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
DISFA_AUS = _numbers(1, 2, 4, 6, 9, 12, 25, 26)
DISFA_INTENSITY_AUS = _numbers(1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)  # every AU DISFA labels 0-5
BP4D_INTENSITY_AUS = _numbers(6, 10, 12, 14, 17)  # BP4D's intensity labels (the FERA 2015 subset)
INTENSITY_MAX = 5.0  # FACS intensity scale 0 (absent) .. 5 (maximum); the intensity head's outputs lie in [0, 5]
ABAW_RARE_AUS = ("AU2", "AU15", "AU23", "AU24", "AU26")  # the paper's rare AUs on Aff-Wild2 (section 3.4.1)

RARE_AUS_OF_SET: Dict[str, Tuple[str, ...]] = {
    "abaw": ABAW_RARE_AUS,
    "bp4d": _numbers(2, 15, 23, 24),
    "disfa": _numbers(1, 2, 6, 9),
}

KNOWN_AU_SETS: Dict[str, AUSet] = {
    "abaw": AUSet("abaw", ABAW_AUS),
    "bp4d": AUSet("bp4d", BP4D_AUS),
    "disfa": AUSet("disfa", DISFA_AUS),
}


def au_number(name: str) -> int:
    """FACS number of an AU name: "AU12" -> 12; anything else is a UserError."""
    match = _AU_NAME.match(str(name))
    if not match:
        raise UserError(f"AU name {name!r}: expected AU<number>, e.g. AU12")
    return int(match.group(1))


def check_au_names(names: Sequence[str], key: str = "model.au_names") -> Tuple[str, ...]:
    """The names as a tuple after checking them (AU<n>, at least one, no repeats); errors name `key`."""
    names = tuple(names)
    if not names:
        raise UserError(f"config key {key}: empty; expected AU names such as [AU1, AU2, AU4]")
    for name in names:
        if not _AU_NAME.match(str(name)):
            raise UserError(f"config key {key}: {name!r} is not an AU name; expected AU<number>, e.g. AU12")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"config key {key}: {repeated[0]} is listed twice")
    return names


def au_set_of(names: Sequence[str]) -> AUSet:
    """The AUSet of an ordered list of names: the known set it equals, else a "custom" set."""
    names = tuple(names)
    for known in KNOWN_AU_SETS.values():
        if known.au_names == names:
            return known
    return AUSet("custom", names)


def au_set(name_or_names) -> AUSet:
    """A known set by name ("abaw", "bp4d", "disfa") or the set of a list of AU names."""
    if isinstance(name_or_names, AUSet):
        return name_or_names
    if isinstance(name_or_names, str):
        if name_or_names.lower() not in KNOWN_AU_SETS:
            raise UserError(f"AU set {name_or_names!r}: expected one of {', '.join(KNOWN_AU_SETS)} or a list of AUs")
        return KNOWN_AU_SETS[name_or_names.lower()]
    return au_set_of(check_au_names(name_or_names, "AU set"))


def default_rare_aus(au_names: Sequence[str]) -> Tuple[str, ...]:
    """The rare AUs sampled more often (data.rare_aus) when a config names none, for the set `au_names`.

    abaw: the paper's five (section 3.4.1); bp4d and disfa: the least frequent AUs of those data sets, as their
    packaged configs name them; any other set: the paper's rare AUs it contains."""
    known = au_set_of(au_names).name
    if known in RARE_AUS_OF_SET:
        return RARE_AUS_OF_SET[known]
    return tuple(au for au in ABAW_RARE_AUS if au in tuple(au_names))


def default_au_names(au_names: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """`au_names`, or the ABAW 12 when None or empty (what a config or file without a set means)."""
    return tuple(au_names) if au_names else ABAW_AUS
