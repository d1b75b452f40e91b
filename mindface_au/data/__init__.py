"""Data: the readers (Aff-Wild2, BP4D, DISFA, list files), sampling and folds, mindspore.dataset pipelines, SynthAU.

- `registry`: one `DatasetFormat` record per `data.format` (AU set, default crop, folds, subject parts, reader).
- `formats`: the one reader interface chosen by `data.format` (`fold_split`, `num_folds`, `check_format`).
- `video`: `Video`, the record every reader returns.
- `affwild2`: `load_split(root, split)`, `check_data(root)`: annotation files and image folders.
- `bp4d`, `disfa`, `listfiles`: the other readers (docs/datasets.md).
- `sampling`: per-epoch frame subset (1/10, rare AUs 1/5).
- `folds`: official split, 4-fold cross-validation by video, `get_split(data_cfg)` (any data.format).
- `pipeline`: `create_train_dataset`, `create_eval_dataset`, `benchmark_pipeline` (imports MindSpore).
- `synthau`: the procedural SynthAU dataset in every layout (`write_synthau(..., format=...)`).

The pipeline names are imported lazily so that the reader and generator work without importing MindSpore.
"""

from mindface_au.data.affwild2 import Video, check_data, load_split, read_test_list, split_summary
from mindface_au.data.folds import compute_folds, get_split, read_folds, write_folds

_PIPELINE = (
    "create_train_dataset",
    "create_eval_dataset",
    "benchmark_pipeline",
    "skipped_images",
)

__all__ = [
    "Video",
    "load_split",
    "check_data",
    "read_test_list",
    "split_summary",
    "compute_folds",
    "get_split",
    "read_folds",
    "write_folds",
    *_PIPELINE,
]


def __getattr__(name):
    if name in _PIPELINE:
        from mindface_au.data import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'mindface_au.data' has no attribute {name!r}")
