"""`mindface-au bench`: what MindSpore, PyTorch and the inference backends cost on this machine.

Modules, one concept each:
- `suite`: `BenchOptions` and `run_bench`, which measurements a run makes and the report they add up to;
- `measure`: framework measurements (matmul rate, forward/train step, the AU heads' cost, MACs, data pipeline,
  post-processing) and the timing helpers;
- `deploy`: inference-backend measurements (forward in turns, peak memory alone, end-to-end `detect` on a
  generated video) and the cached files they need;
- `worker`: the worker-process protocol (each measurement in a fresh process, JSON spec in, JSON result out);
- `report`: the issue's targets with pass/fail and the Markdown tables.
"""

from mindface_au.bench.report import format_table, targets
from mindface_au.bench.suite import BenchOptions, run_bench
from mindface_au.bench.worker import run_worker

__all__ = ["BenchOptions", "run_bench", "format_table", "targets", "run_worker"]
