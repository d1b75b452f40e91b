"""The worker-process protocol: every measurement runs in a fresh Python process, a JSON spec in, a JSON result out.

    python -m benchmarks --worker SPEC_JSON --result FILE   (from the repository root)

A fresh process per measurement makes its peak RSS its own and lets MindSpore's once-per-process settings (thread
count, JIT level) differ between measurements. The spec's "kind" picks the measurement (KINDS); the thread count
goes into the worker's environment for numpy, MindSpore, PyTorch and ONNX Runtime alike. A failing measurement
comes back as {"error": last line of its output}, never as an exception in the parent.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any, Callable, Dict, List, Optional

from benchmarks import deploy, measure

__all__ = ["KINDS", "run_measurement", "run_worker", "main"]

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_ONLY_KINDS = ("torch", "numpy")  # frameworks whose worker runs without our oneDNN cap

KINDS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {
    "matmul": lambda s: measure.measure_matmul(s["framework"], s["size"], s["repeats"], s["device"], s["threads"]),
    "model": measure.measure_model,
    "alternating": measure.measure_alternating,
    "heads": measure.measure_heads,
    "intensity_head": measure.measure_intensity_head,
    "macs": measure.measure_macs,
    "postprocess": lambda s: measure.measure_postprocess(s["frames"]),
    "pipeline": lambda s: measure.measure_pipeline(
        s["data_root"], s["batch"], s["num_batches"], s["threads"], s.get("synth_frames", 200)
    ),
    "prepare": deploy.prepare_files,
    "backends": deploy.measure_backends,
    "backend_memory": deploy.measure_backend_memory,
    "detect": deploy.measure_detect,
}


def run_measurement(spec: Dict[str, Any]) -> Dict[str, Any]:
    """Run one spec in this process and add its peak RSS."""
    from mindface_au.utils.memory import peak_rss_mb

    kind = spec.get("kind")
    if kind not in KINDS:
        raise ValueError(f"unknown measurement kind {kind!r}; known: {', '.join(KINDS)}")
    result = KINDS[kind](spec)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _worker_env(spec: Dict[str, Any]) -> Dict[str, str]:
    from mindface_au.utils.device import ONEDNN_ISA_VAR

    env = dict(os.environ)
    env.setdefault("GLOG_v", "3")
    # the worker runs `python -m benchmarks`: the repository root (this folder's parent) must be importable
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH", "")) if p)
    if spec.get("threads"):
        for var in THREAD_ENV_VARS:
            env[var] = str(spec["threads"])
    torch_alone = spec.get("framework") in TORCH_ONLY_KINDS or spec.get("backends") == ["torch"]
    if spec.get("onednn_cap_ours") and torch_alone:  # PyTorch's own oneDNN runs with its defaults
        env.pop(ONEDNN_ISA_VAR, None)
    return env


def run_worker(spec: Dict[str, Any], timeout: int = 3600) -> Dict[str, Any]:
    """Run one measurement in a fresh Python process; its result, or {"error": message}."""
    with tempfile.TemporaryDirectory(prefix="mindface-au-bench-") as tmp:
        result_path = os.path.join(tmp, "result.json")
        cmd = [sys.executable, "-m", "benchmarks", "--worker", json.dumps(spec), "--result", result_path]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_worker_env(spec))
        except subprocess.TimeoutExpired:
            return {"error": f"timed out after {timeout} s"}
        if proc.returncode != 0 or not os.path.isfile(result_path):
            lines = [ln for ln in (proc.stderr or proc.stdout or "").strip().splitlines() if ln.strip()]
            return {"error": lines[-1][:300] if lines else f"exit status {proc.returncode}"}
        with open(result_path, encoding="utf-8") as handle:
            return json.load(handle)


def main(argv: Optional[List[str]] = None) -> int:
    """Worker entry: `python -m benchmarks --worker SPEC_JSON --result FILE`."""
    from mindface_au.utils.io import atomic_write

    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--worker", required=True, help="measurement spec as JSON")
    parser.add_argument("--result", required=True, help="where to write the result JSON")
    args = parser.parse_args(argv)
    result = run_measurement(json.loads(args.worker))
    with atomic_write(args.result) as handle:
        json.dump(result, handle)
    return 0
