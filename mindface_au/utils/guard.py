"""Nothing lost: the one mechanism every writer uses before and while it writes (see docs/errors.md).

The names live in three modules and are gathered here: `utils.outputs` (output rules), `utils.signals`
(interruptions) and `utils.messages` (environment failures as one line).

- `check_not_input`: an output is never one of the command's own inputs, compared by real path (symlinks, `./`)
  and by device + inode (hard links).
- `check_new_output`: an existing output is replaced only with `overwrite` (the CLI's `--overwrite`).
- `OutputLock`: one writer per output, by an exclusively created lock file holding host and pid (works on network
  file systems); a lock whose process is gone on the same host is stale and taken over.
- `EnvironmentFailure` / `environment_message`: disk full, permission denied, read-only file system... as one
  line naming the file; the CLI exits 1 for these (2 for a `UserError`).
- `Interrupted` / `install_signal_handlers`: SIGTERM handled like SIGINT (the CLI exits 130 / 143), also while
  a module imports (the signal is raised once the import has finished).
- `remove_stale_temporaries`: the hidden temporary files an interrupted writer leaves behind.
"""

from mindface_au.utils.messages import (  # noqa: F401 (gathered here)
    ENVIRONMENT_ERRORS,
    EnvironmentFailure,
    damaged_resume,
    environment_message,
    reraise_environment,
    short_repr,
    writing,
)
from mindface_au.utils.outputs import (  # noqa: F401 (gathered here)
    LOCK_SUFFIX,
    OutputLock,
    check_new_output,
    check_not_input,
    check_outputs,
    remove_stale_temporaries,
    same_file,
)
from mindface_au.utils.signals import (  # noqa: F401 (gathered here)
    Interrupted,
    install_signal_handlers,
    pending_signal,
    reclaim_signal_handlers,
    restore_signal_handlers,
)

__all__ = [
    "EnvironmentFailure",
    "Interrupted",
    "OutputLock",
    "check_new_output",
    "check_outputs",
    "damaged_resume",
    "check_not_input",
    "environment_message",
    "install_signal_handlers",
    "pending_signal",
    "reclaim_signal_handlers",
    "remove_stale_temporaries",
    "reraise_environment",
    "restore_signal_handlers",
    "same_file",
    "short_repr",
    "writing",
]
