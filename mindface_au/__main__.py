"""`python -m mindface_au` = `mindface-au`; also runs as a plain script path (msrun's workers, `mindface-au launch`)."""

import os
import sys

if not __package__:  # run as `python .../mindface_au/__main__.py`: import the package this file belongs to
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]  # its modules are not top-level
    sys.path.insert(0, os.path.dirname(_here))

from mindface_au.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
