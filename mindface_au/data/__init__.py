"""Data: the Aff-Wild2 reader, the paper's sampling and folds, mindspore.dataset pipelines and SynthAU.

- `affwild2`: `Video`, `load_split(root, split)`, `check_data(root)`: annotation files and image folders.
- `sampling`: per-epoch frame subset (1/10, rare AUs 1/5).
- `folds`: official split, 4-fold cross-validation by video, `get_split(data_cfg)`.
- `pipeline`: `create_train_dataset`, `create_eval_dataset`, `benchmark_pipeline` (imports MindSpore).
- `synthau`: the procedural SynthAU dataset in Aff-Wild2 layout.

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
