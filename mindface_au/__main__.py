"""`python -m mindface_au` = `mindface-au`; also runs as a plain script path (msrun's workers, `mindface-au launch`)."""

import os
import signal
import sys


def _interrupted_early(signum, _frame) -> None:
    """SIGINT/SIGTERM before the command has started (while the package imports): nothing was written yet, so end
    at once with the CLI's message and exit status (130 / 143), not a traceback from the middle of an import."""
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    sys.stderr.write(f"mindface-au {name}: interrupted ({signal.Signals(signum).name})\n".replace("  ", " "))
    sys.stderr.flush()
    os._exit(128 + signum)


for _sig in (signal.SIGINT, signal.SIGTERM):  # the CLI's own handlers replace these once it starts
    signal.signal(_sig, _interrupted_early)

if not __package__:  # run as `python .../mindface_au/__main__.py`: import the package this file belongs to
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]  # its modules are not top-level
    sys.path.insert(0, os.path.dirname(_here))

from mindface_au.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
