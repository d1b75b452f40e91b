"""`python -m mindface_au.bench --worker SPEC --result FILE`: one measurement (see mindface_au.bench.worker)."""

import sys

from mindface_au.bench.worker import main

sys.exit(main())
