"""The data formats as data: one `DatasetFormat` record per `data.format` (affwild2, bp4d, disfa, list).

Each record says what the format's labels are (its AU set and default rare AUs), how its faces were cropped, how
it splits into cross-validation folds (count and subject parts) and which function reads it. The config
validator, the reader interface (mindface_au.data.formats) and `check-data` all read these records; nothing
imports MindSpore or the config.
"""

from dataclasses import dataclass
from typing import Callable, Dict, Sequence, Tuple

from mindface_au.au_sets import BP4D_INTENSITY_AUS, DISFA_INTENSITY_AUS, KNOWN_AU_SETS, default_rare_aus
from mindface_au.data import affwild2, bp4d, disfa, listfiles
from mindface_au.errors import UserError

__all__ = [
    "DatasetFormat",
    "FORMATS",
    "DATA_FORMATS",
    "FORMAT_AU_SETS",
    "FORMAT_CROPS",
    "CROPS",
    "NUM_FOLDS",
    "FOLD_SPLITS",
    "get_format",
    "format_au_names",
    "check_intensity_format",
]

# How the face crops were made (recorded in the model card; `detect` redoes it): arcface5 = five-point alignment
# onto the ArcFace template (Aff-Wild2's cropped_aligned, SynthAU), box = a detector's face box resized (ME-GraphAU's
# BP4D/DISFA crops), other = a crop this package cannot redo.
CROPS = ("arcface5", "box", "other")


@dataclass(frozen=True)
class DatasetFormat:
    """One data format: what `data.format: <name>` means.

    au_set: the known AU set its labels are in (mindface_au.au_sets), "" when the data names its own (list files:
    data.au_names). crop: the default data.crop. num_folds: cross-validation folds, 0 = the list-file folds
    present. subject_parts: the subject-exclusive parts fold k tests on (part num_folds + 1 - k), () when folds are
    not by subject. reader: the function that reads it (affwild2.load_split, bp4d.load_bp4d, disfa.load_disfa,
    listfiles.load_list; their parameters differ, mindface_au.data.formats calls them). official: has an official
    train/val split (data.split official). intensity_aus: the AUs it labels with 0-5 intensities (the default
    model.intensity_au_names when model.intensity is on), () when it has none (affwild2) or names its own (list).
    extra_au_sets: other AU sets its occurrence labels may be read in (data.au_names / model.au_names), besides
    `au_set`'s: DISFA's 12 intensity AUs, occurrence derived from each at data.intensity_threshold.
    """

    name: str
    au_set: str
    crop: str
    num_folds: int
    subject_parts: Tuple[Tuple[str, ...], ...]
    reader: Callable
    official: bool = False
    intensity_aus: Tuple[str, ...] = ()
    extra_au_sets: Tuple[Tuple[str, ...], ...] = ()

    @property
    def au_names(self) -> Tuple[str, ...]:
        """The AU names of the label columns; () when the data names its own (list files)."""
        return KNOWN_AU_SETS[self.au_set].au_names if self.au_set else ()

    @property
    def rare_aus(self) -> Tuple[str, ...]:
        """The default data.rare_aus of the format's AU set (au_sets.default_rare_aus); () for list files."""
        return default_rare_aus(self.au_names) if self.au_set else ()

    @property
    def label_au_sets(self) -> Tuple[Tuple[str, ...], ...]:
        """Every AU set the occurrence labels can be read in: the format's own first, then `extra_au_sets`; () for
        list files (any set, data.au_names)."""
        return ((self.au_names,) + self.extra_au_sets) if self.au_set else ()

    @property
    def has_intensity(self) -> bool:
        """Whether the format can hold 0-5 intensity labels: a known intensity set, or list files (their own)."""
        return bool(self.intensity_aus) or not self.au_set

    def check_intensity(self, intensity_au_names: Sequence[str] = ()) -> None:
        """Refuse intensity labels (model.intensity) from this format when it has none (affwild2), or AUs of
        `intensity_au_names` outside its known intensity set, in one line."""
        if not self.has_intensity:
            holders = ", ".join(name for name, f in FORMATS.items() if f.has_intensity)
            raise UserError(
                f"config key model.intensity: data.format {self.name} has no intensity labels (formats with them: "
                f"{holders}); set model.intensity false"
            )
        outside = [au for au in intensity_au_names if self.intensity_aus and au not in self.intensity_aus]
        if outside:
            raise UserError(
                f"config key model.intensity_au_names: data.format {self.name} has no intensity labels for "
                f"{outside[0]}; it labels {', '.join(self.intensity_aus)}"
            )


def _parts(parts) -> Tuple[Tuple[str, ...], ...]:
    return tuple(tuple(part) for part in parts)


FORMATS: Dict[str, DatasetFormat] = {
    # Cross-validation folds over train+val by video (paper 3.4.2), besides the official split.
    "affwild2": DatasetFormat("affwild2", "abaw", "arcface5", 4, (), affwild2.load_split, official=True),
    # ME-GraphAU's 3-fold subject-exclusive protocol: fold k tests on subject part 4 - k.
    "bp4d": DatasetFormat(
        "bp4d", "bp4d", "box", 3, _parts(bp4d.PARTS), bp4d.load_bp4d, intensity_aus=BP4D_INTENSITY_AUS
    ),
    # DISFA: occurrence on its 8 AUs, or on all 12 it labels 0-5 (data.au_names: DISFA_INTENSITY_AUS).
    "disfa": DatasetFormat(
        "disfa",
        "disfa",
        "box",
        3,
        _parts(disfa.PARTS),
        disfa.load_disfa,
        intensity_aus=DISFA_INTENSITY_AUS,
        extra_au_sets=(DISFA_INTENSITY_AUS,),
    ),
    # ME-GraphAU list files: fold k trains on its train list and tests on its test list.
    "list": DatasetFormat("list", "", "other", 0, (), listfiles.load_list),
}

# The tables earlier releases exposed, derived from the records.
DATA_FORMATS = {name: fmt.num_folds for name, fmt in FORMATS.items()}  # format -> folds (list: its fold files)
FORMAT_AU_SETS = {name: fmt.au_set for name, fmt in FORMATS.items() if fmt.au_set}
FORMAT_CROPS = {name: fmt.crop for name, fmt in FORMATS.items()}
# Aff-Wild2's folds: `data.split` is official or fold1..fold<NUM_FOLDS> (mindface_au.data.folds).
NUM_FOLDS = FORMATS["affwild2"].num_folds
FOLD_SPLITS = tuple(f"fold{i}" for i in range(1, NUM_FOLDS + 1))


def get_format(name: str) -> DatasetFormat:
    """The record of data format `name`; an unknown one is a UserError naming data.format."""
    if name not in FORMATS:
        raise UserError(f"config key data.format: got {name!r}, expected one of {', '.join(FORMATS)}")
    return FORMATS[name]


def format_au_names(data_format: str) -> Tuple[str, ...]:
    """The AU set a data format labels (affwild2: ABAW 12, bp4d, disfa); () for list data and unknown formats."""
    return FORMATS[data_format].au_names if data_format in FORMATS else ()


def check_intensity_format(data_format: str, intensity_au_names: Sequence[str] = ()) -> None:
    """`DatasetFormat.check_intensity` of format `data_format` (an unknown one is refused naming data.format)."""
    get_format(data_format).check_intensity(intensity_au_names)
