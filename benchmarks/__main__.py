"""`python -m benchmarks [OPTIONS]` (from the repository root): the benchmark suite; with `--worker SPEC --result
FILE`: one measurement in this process (see benchmarks.worker)."""

import sys

if "--worker" in sys.argv[1:]:
    from benchmarks.worker import main
else:
    from benchmarks.run import main

sys.exit(main())
