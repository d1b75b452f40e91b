"""The benchmark harness (`make bench`, or `python -m benchmarks` from the repository root): what MindSpore,
PyTorch and the inference backends cost on this machine, judged against the project's speed targets.

Not part of the installed package; `mindface-au bench` (mindface_au.inference.timing) only times the installed
backends' forward pass.

Modules, one concept each:
- `suite`: `BenchOptions` and `run_bench`, which measurements a run makes and the report they add up to;
- `measure`: framework measurements (matmul rate, forward/train step, the AU heads' cost, MACs, data pipeline,
  post-processing) and the timing helpers;
- `deploy`: inference-backend measurements (forward in turns, peak memory alone, end-to-end `detect` on a
  generated video) and the cached files they need;
- `worker`: the worker-process protocol (each measurement in a fresh process, JSON spec in, JSON result out);
- `run`: the command line;
- `report`: the speed targets with pass/fail and the Markdown tables.
"""

from benchmarks.report import format_table, targets
from benchmarks.suite import BenchOptions, run_bench
from benchmarks.worker import run_worker

__all__ = ["BenchOptions", "run_bench", "format_table", "targets", "run_worker"]
