"""Report of a bench run: the framework ratios, the speed targets with pass/fail, and the Markdown tables."""

from typing import Any, Dict, List, Optional

import numpy as np

__all__ = ["TARGETS", "framework_ratios", "targets", "failures", "format_table"]

# (key, what, goal as text); the checks are in `targets`
TARGETS = (
    ("onnx_vs_torch", "ONNX Runtime float32 forward time / PyTorch eager time", "<= 1.00"),
    ("int8_vs_torch", "ONNX Runtime int8 forward time / PyTorch eager float32 time", "<= 0.45"),
    ("fp32_of_matmul", "ONNX Runtime float32 forward GFLOP/s / matmul rate", ">= 80%"),
    ("detect_overhead", "detect frames/s x (face detection + network ms per frame) / 1000", ">= 0.85"),
    ("int8_detect_speedup", "detect frames/s, int8 / checkpoint backend, full width (same run, per round)", ">= 2.00"),
    ("detect_memory", "RSS growth from a third of a detect run to its end (MiB)", "flat"),
    ("tracked_speedup", "detect frames/s, tracked / per-frame face detection, demo width (same run)", ">= 4.00"),
    ("tracked_cpu_rate", "detect frames per CPU-second, tracked, demo width (one core: --threads 1)", ">= 100"),
)
FLAT_MIB = 20.0  # RSS growth allowed within a run: max(FLAT_MIB, FLAT_SHARE x the RSS)
FLAT_SHARE = 0.03


def _target(key: str, where: str, value: Optional[float], passed: Optional[bool]) -> Dict[str, Any]:
    return {"key": key, "where": where, "value": value, "passed": passed}


def targets(report: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Each speed target at every place it was measured: value and pass (None: not measured)."""
    out = []
    forward = [r for r in report.get("deploy", {}).get("forward", []) if "error" not in r]
    for key, backend, check in (
        ("onnx_vs_torch", "onnx", lambda r: (r.get("vs_torch"), lambda v: v <= 1.0)),
        ("int8_vs_torch", "onnx-int8", lambda r: (r.get("vs_torch"), lambda v: v <= 0.45)),
        ("fp32_of_matmul", "onnx", lambda r: (r.get("fraction_of_matmul"), lambda v: v >= 0.8)),
    ):
        rows = [r for r in forward if r["backend"] == backend]
        for row in rows:
            value, ok = check(row)
            out.append(
                _target(key, f"{row['model']} batch {row['batch']}", value, None if value is None else ok(value))
            )
        if not rows:
            out.append(_target(key, backend, None, None))
    detect_rows = [r for r in report.get("detect", {}).get("rows", []) if "error" not in r]
    for row in detect_rows:
        where = _where(row)
        stage = row.get("stage_ms", {})
        bound = None
        if "detect_faces" in stage and "network" in stage and row.get("fps"):
            bound = round(row["fps"] * (stage["detect_faces"] + stage["network"]) / 1000.0, 3)
        out.append(_target("detect_overhead", where, bound, None if bound is None else bound >= 0.85))
    if not detect_rows:
        out.append(_target("detect_overhead", "detect", None, None))
    by_backend = {r["backend"]: r for r in detect_rows if r["width"] == "full" and _path(r) == "tracked"}
    if "onnx-int8" in by_backend and "mindspore" in by_backend:
        per_round = [a / b for a, b in zip(by_backend["onnx-int8"]["fps_runs"], by_backend["mindspore"]["fps_runs"])]
        value = round(float(np.median(per_round)), 3)
        out.append(_target("int8_detect_speedup", by_backend["onnx-int8"].get("model", "full"), value, value >= 2.0))
    else:
        out.append(_target("int8_detect_speedup", "full width", None, None))
    for row in detect_rows:
        growth = row.get("rss_growth_mb")
        allowed = max(FLAT_MIB, FLAT_SHARE * row.get("rss_third_mb", 0.0))
        where = f"{_where(row)}, {row['frames']} frames"
        out.append(_target("detect_memory", where, growth, None if growth is None else growth <= allowed))
    demo = {(r["backend"], _path(r)): r for r in detect_rows if r["width"] == "demo"}
    speedups = [(b, r) for (b, p), r in demo.items() if p == "tracked" and (b, "per-frame") in demo]
    for backend, row in speedups:
        other = demo[backend, "per-frame"]
        value = round(row["fps"] / other["fps"], 2) if row.get("fps") and other.get("fps") else None
        out.append(_target("tracked_speedup", f"demo {backend}", value, None if value is None else value >= 4.0))
    if not speedups:
        out.append(_target("tracked_speedup", "demo width", None, None))
    rates = [(b, r) for (b, p), r in demo.items() if p == "tracked" and r.get("cpu_ms")]
    for backend, row in rates:
        value = round(1000.0 / row["cpu_ms"], 1)
        out.append(_target("tracked_cpu_rate", f"demo {backend}", value, value >= 100.0))
    if not rates:
        out.append(_target("tracked_cpu_rate", "demo width", None, None))
    return out


def _path(row: Dict[str, Any]) -> str:
    """A detect row's face path: "tracked" (the default, and rows of reports made before paths) or "per-frame"."""
    return row.get("path") or "tracked"


def _where(row: Dict[str, Any]) -> str:
    return f"{row['width']} {row['backend']}" + ("" if _path(row) == "tracked" else f" {_path(row)}")


def _deploy_lines(report: Dict[str, Any]) -> List[str]:
    deploy = report.get("deploy")
    if not deploy:
        return []
    alone = any("peak_rss_mb" in r for r in deploy.get("forward", []))
    memory = "peak RSS from each backend alone in its own process" if alone else "peak RSS not measured (quick)"
    lines = [
        "",
        f"Forward per backend, all backends of a row group in one process timed in turns (median s); {memory}:",
        "",
        "| model | batch | backend | median s | images/s | GFLOP/s | of matmul | / PyTorch time | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in deploy.get("forward", []):
        head = f"| {r['model']} | {r['batch']} | {r['backend']} |"
        if "error" in r:
            lines.append(f"{head} failed: {r['error']} | | | | | |")
            continue
        frac = r.get("fraction_of_matmul")
        lines.append(
            f"{head} {r['median_s']:.4f} | {_fmt(r['images_per_s'], 2)} | {_fmt(r.get('gflops'))} | "
            f"{'-' if frac is None else f'{frac:.0%}'} | {_fmt(r.get('vs_torch'), 2)} | {_fmt(r.get('peak_rss_mb'))} |"
        )
    for backend, reason in deploy.get("skipped", {}).items():
        lines.append(f"\nSkipped {backend}: {reason}")
    return lines


def _detect_lines(report: Dict[str, Any]) -> List[str]:
    detect = report.get("detect")
    if not detect:
        return []
    video = detect.get("video", {})
    lines = [
        "",
        f"detect on a generated {video.get('width')}x{video.get('height')} video, {video.get('frames')} frames, one "
        f"moving face, batch {detect.get('batch_size')}; {detect.get('rounds')} round(s), backends and face paths "
        "in turns (tracked: face detection on keyframes, O-Net tracking between; per-frame: --no-track). Wall "
        "frames/s, then this process's CPU ms per frame, then wall ms per frame of each stage:",
        "",
        "| width | model | backend | faces | frames/s | CPU ms/frame | decode | face detection | alignment | network "
        "| writing | rest | 0.85 bound frames/s | RSS growth MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in detect.get("rows", []):
        head = f"| {r['width']} | {r.get('model', '')} | {r['backend']} | {_path(r)} |"
        if "error" in r:
            lines.append(f"{head} failed: {r['error']} | | | | | | | | | | |")
            continue
        stage = r.get("stage_ms", {})
        cells = " | ".join(_fmt(stage.get(s), 1) for s in ("decode", "detect_faces", "align", "network", "write"))
        bound = None
        if "detect_faces" in stage and "network" in stage:
            bound = 0.85 * 1000.0 / (stage["detect_faces"] + stage["network"])
        lines.append(
            f"{head} {_fmt(r['fps'], 2)} | {_fmt(r.get('cpu_ms'), 1)} | {cells} | {_fmt(r.get('other_ms'), 1)} | "
            f"{_fmt(bound, 2)} | {_fmt(r.get('rss_growth_mb'))} |"
        )
    return lines


def _target_lines(report: Dict[str, Any]) -> List[str]:
    rows = report.get("targets")
    if not rows:
        return []
    names = {key: (what, goal) for key, what, goal in TARGETS}
    lines = ["", "Targets:", "", "| target | goal | where | measured | result |", "|---|---|---|---|---|"]
    for r in rows:
        what, goal = names[r["key"]]
        value = r["value"]
        shown = "-" if value is None else f"{value:.0%}" if r["key"] == "fp32_of_matmul" else _fmt(value, 2)
        result = "not measured" if r["passed"] is None else "pass" if r["passed"] else "FAIL"
        lines.append(f"| {what} | {goal} | {r['where']} | {shown} | {result} |")
    return lines


def framework_ratios(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """MindSpore time / PyTorch time for every (model, mode, batch) measured by both."""
    index = {(r["framework"], r["model"], r["mode"], r["batch"]): r for r in rows if "median_s" in r}
    out = []
    for (framework, model, mode, batch), row in index.items():
        other = index.get(("torch", model, mode, batch))
        if framework == "mindspore" and other:
            ratio = row["median_s"] / other["median_s"]
            out.append(
                {
                    "model": model,
                    "mode": mode,
                    "batch": batch,
                    "ratio": round(ratio, 3),
                    "mindspore_s": row["median_s"],
                    "torch_s": other["median_s"],
                    "rss_ratio": round(row["peak_rss_mb"] / other["peak_rss_mb"], 3),
                }
            )
    return out


def failures(report: Dict[str, Any]) -> List[str]:
    failed = [f"matmul {k}: {v['error']}" for k, v in report["matmul"].items() if "error" in v]
    failed += [
        f"{r['framework']} {r['model']} {r['mode']} batch {r['batch']}: {r['error']}"
        for r in report["models"]
        if "error" in r
    ]
    heads = report.get("heads", [])
    failed += [f"heads {r['framework']} {r['model']} {r['mode']}: {r['error']}" for r in heads if "error" in r]
    intensity = report.get("intensity_head", [])
    failed += [f"intensity head {r['model']} {r['mode']}: {r['error']}" for r in intensity if "error" in r]
    for key in ("pipeline", "postprocess"):
        if "error" in report.get(key, {}):
            failed.append(f"{key}: {report[key]['error']}")
    deploy = report.get("deploy", {})
    failed += [f"macs {name}: {r['error']}" for name, r in report.get("macs", {}).items() if "error" in r]
    prepared = list(deploy.get("files", {}).items()) + list(report.get("detect", {}).get("files", {}).items())
    failed += [f"files of {name}: {files['error']}" for name, files in prepared if "error" in files]
    failed += [
        f"forward {r['backend']} {r['model']} batch {r['batch']}: {r['error']}" for r in deploy.get("forward", [])
        if "error" in r
    ]  # fmt: skip
    failed += [
        f"detect {r['backend']} {r['width']}" + ("" if _path(r) == "tracked" else f" {_path(r)}") + f": {r['error']}"
        for r in report.get("detect", {}).get("rows", []) if "error" in r
    ]  # fmt: skip
    return failed


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(report: Dict[str, Any]) -> str:
    """The report as Markdown: machine line, matmul limit, model table, ratios, heads, the intensity head, pipeline,
    post-processing."""
    machine = report["machine"]
    lines = [
        f"MindSpore {machine['mindspore']}, PyTorch {machine['torch']}, numpy {machine['numpy']}; "
        f"{machine['threads']} threads of {machine['cpus']} CPUs; {machine['processor']}",
        "",
        "| matmul float32 | size | GFLOP/s (best) | peak RSS MiB |",
        "|---|---|---|---|",
    ]
    for framework, row in report["matmul"].items():
        lines.append(
            f"| {framework} | {row.get('size', '-')} | {_fmt(row.get('gflops', row.get('error')))} | "
            f"{_fmt(row.get('peak_rss_mb'))} |"
        )
    cap = machine.get("onednn_isa_cap") or {}
    if cap:
        who = "set by mindface-au" if cap.get("source") == "mindface-au" else "from the environment"
        lines.insert(1, f"oneDNN ISA cap for MindSpore: {cap.get('value')} ({who}); PyTorch runs with its defaults")
    if report.get("matmul_limit_gflops"):
        lines.append(f"\nLimit: {report['matmul_limit_gflops']} GFLOP/s ({report['matmul_limit_source']} matmul).")
    if report.get("models"):
        lines += [
            "",
            "| framework | model | mode | batch | images/s | median s | GFLOP/s | of matmul | peak RSS MiB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
    for row in report.get("models", []):
        if "error" in row:
            lines.append(
                f"| {row['framework']} | {row['model']} | {row['mode']} | {row['batch']} | failed: "
                f"{row['error']} | | | | |"
            )
            continue
        frac = row.get("fraction_of_matmul")
        lines.append(
            f"| {row['framework']} | {row['model']} | {row['mode']} | {row['batch']} | {_fmt(row['images_per_s'], 2)}"
            f" | {row['median_s']:.4f} | {_fmt(row.get('gflops'))} | {'-' if frac is None else f'{frac:.0%}'} | "
            f"{_fmt(row['peak_rss_mb'])} |"
        )
    if report.get("ratios"):
        lines += [
            "",
            "| model | mode | batch | MindSpore / PyTorch time | same, one process in turns | "
            "MindSpore / PyTorch peak RSS |",
            "|---|---|---|---|---|---|",
        ]
        for r in report["ratios"]:
            alt = r.get("alternating")
            alt = f"{alt:.2f}" if isinstance(alt, float) else f"failed: {alt}" if alt else "-"
            lines.append(
                f"| {r['model']} | {r['mode']} | {r['batch']} | {r['ratio']:.2f} | {alt} | {r['rss_ratio']:.2f} |"
            )
    lines += _cost_table(
        report.get("heads"),
        "| framework | model | mode | batch | AUNet s | backbone s | heads cost (same process, alternating) |",
        lambda r: f"{r['aunet_s']:.4f} | {r['backbone_s']:.4f} | {r['heads_cost']:+.1%}",
    )
    lines += _cost_table(
        report.get("intensity_head"),
        "| framework | model | mode | batch | with intensity head s | without s | intensity head cost |",
        lambda r: f"{r['intensity_s']:.4f} | {r['aunet_s']:.4f} | {r['intensity_cost']:+.1%}",
    )
    pipe = report.get("pipeline")
    if pipe is not None:
        lines.append("")
        if "error" in pipe:
            lines.append(f"Data pipeline: failed: {pipe['error']}")
        else:
            extra = ""
            if "times_train_step" in pipe:
                extra = (
                    f", {pipe['times_train_step']}x the fastest MindSpore train step "
                    f"({pipe['fastest_train_step_images_per_s']} images/s)"
                )
            lines.append(
                f"Data pipeline (augmented, batch {pipe['batch']}): {pipe['images_per_s']} images/s{extra}; "
                f"peak RSS {pipe['peak_rss_mb']} MiB"
            )
            rows = [(row, "thread") for row in pipe.get("by_workers", ())]
            rows += [(row, "process") for row in pipe.get("by_process_workers", ())]
            for row, kind in rows:
                per_cpu = "n/a" if row["images_per_cpu_s"] is None else row["images_per_cpu_s"]
                load = "" if row.get("load_average") is None else f" (load average {row['load_average']})"
                lines.append(
                    f"- {row['workers']} {kind} worker(s): {row['images_per_s']} images/s, {per_cpu} images per CPU "
                    f"second{load}"
                )
    post = report.get("postprocess", {})
    if "error" in post:
        lines.append(f"Post-processing: failed: {post['error']}")
    elif post:
        lines.append(
            f"Post-processing (smooth_probs k=8 + smooth_labels k=6) on {post['frames']} frames x 12 AUs: "
            f"{post['median_s']:.3f} s, {post['frames_per_s']:.0f} frames/s; peak RSS {post['peak_rss_mb']} MiB"
        )
    lines += _deploy_lines(report) + _detect_lines(report) + _target_lines(report)
    if report.get("failed"):
        lines += ["", "Failed: " + "; ".join(report["failed"])]
    return "\n".join(lines)


def _cost_table(rows, header: str, cells) -> list:
    """The markdown lines of a same-process cost table (heads, intensity head): a row per measurement, `cells(r)`
    its timing cells, a failed one says why; [] when there are no rows."""
    if not rows:
        return []
    lines = ["", header, "|---|---|---|---|---|---|---|"]
    for r in rows:
        timing = f"failed: {r['error']} | | " if "error" in r else cells(r)
        lines.append(f"| {r['framework']} | {r['model']} | {r['mode']} | {r['batch']} | {timing} |")
    return lines
