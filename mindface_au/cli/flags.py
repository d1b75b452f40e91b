"""How the command line spells the library's parameters: one table, installed while a command runs.

Library messages name parameters and config keys with `errors.param` markers (`param("device")`); under the CLI
`errors.render` spells each as the flag the user typed (`--device`), so a CLI user reads the flags and a Python
user the parameter names. A parameter missing here is printed under its own name.
"""

from typing import Dict

__all__ = ["FLAG_NAMES"]

# library parameter (or detect setting) -> command-line flag
FLAG_NAMES: Dict[str, str] = {
    "aligned": "--aligned",
    "all_faces": "--all-faces",
    "arch": "--arch",
    "batch_size": "--batch-size",
    "calib": "--calib",
    "calib_frames": "--calib-frames",
    "config": "--config",
    "detect_size": "--detect-size",
    "detector": "--detector",
    "device": "--device",
    "distributed": "--distributed",
    "end_time": "--end",
    "every": "--every",
    "fmt": "--format",
    "frames": "--frames",
    "input": "--input",
    "input_path": "--input",
    "keyframe_every": "--keyframe-every",
    "local_workers": "--local-workers",
    "max_gap": "--max-gap",
    "method": "--vote",
    "min_face_size": "--min-face-size",
    "model": "--model",
    "out": "--out",
    "out_dir": "--out",
    "output": "--out",
    "overlay": "--overlay",
    "overrides": "--set",
    "overwrite": "--overwrite",
    "plot": "--plot",
    "prob_k": "--prob-k",
    "quantize": "--quantize",
    "report": "--report",
    "resume": "--resume",
    "shard": "--shard",
    "shared_aus": "--shared-aus",
    "spec": "--spec",
    "start_time": "--start",
    "threads": "--threads",
    "threshold": "--threshold",
    "track": "--no-track",
    "verify": "--verify",
    "videos": "--videos",
    "workers": "--workers",
}
