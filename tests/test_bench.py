"""The benchmark suite of benchmarks/ (its quick run, the worker-process protocol, the report with its targets and
tables, its errors) and the installed `mindface-au bench` command."""

import json
import os
import sys

import cv2
import pytest
from helpers import TINY_LAYERS, TINY_WIDTHS, tiny_set_args

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # benchmarks/ is not installed

from benchmarks import deploy, measure, worker  # noqa: E402
from benchmarks import report as bench_report  # noqa: E402
from benchmarks.run import main as bench_main  # noqa: E402


# ------------------------------------------------------------------------------------------- report arithmetic
def test_ratios_and_table_from_rows():
    rows = [
        {
            "framework": "mindspore",
            "model": "iresnet18",
            "mode": "train",
            "batch": 8,
            "median_s": 2.0,
            "peak_rss_mb": 120.0,
            "images_per_s": 4.0,
        },
        {
            "framework": "torch",
            "model": "iresnet18",
            "mode": "train",
            "batch": 8,
            "median_s": 2.5,
            "peak_rss_mb": 100.0,
            "images_per_s": 3.2,
        },
        {
            "framework": "mindspore",
            "model": "aunet_iresnet18",
            "mode": "train",
            "batch": 8,
            "median_s": 2.1,
            "peak_rss_mb": 130.0,
            "images_per_s": 3.8,
        },
        {"framework": "torch", "model": "aunet_iresnet18", "mode": "train", "batch": 8, "error": "boom"},
    ]
    ratios = bench_report.framework_ratios(rows)
    assert ratios == [
        {
            "model": "iresnet18",
            "mode": "train",
            "batch": 8,
            "ratio": 0.8,
            "mindspore_s": 2.0,
            "torch_s": 2.5,
            "rss_ratio": 1.2,
        }
    ]
    heads = [
        {"framework": "mindspore", "model": "aunet_iresnet18", "mode": "train", "batch": 8, "aunet_s": 2.1,
         "backbone_s": 2.0, "heads_cost": 0.05},
        {"framework": "torch", "model": "aunet_iresnet18", "mode": "train", "batch": 8, "error": "oops"},
    ]  # fmt: skip
    report = {
        "machine": {"mindspore": "x", "torch": "y", "numpy": "z", "threads": 2, "cpus": 2, "processor": "p"},
        "matmul": {"numpy": {"size": 64, "gflops": 10.0, "peak_rss_mb": 50.0}},
        "matmul_limit_gflops": 10.0,
        "matmul_limit_source": "numpy",
        "models": rows,
        "ratios": ratios,
        "heads": heads,
        "failed": ["x"],
    }
    table = bench_report.format_table(report)
    assert "| iresnet18 | train | 8 | 0.80 | - | 1.20 |" in table
    ratios[0]["alternating"] = 0.75
    assert "| iresnet18 | train | 8 | 0.80 | 0.75 | 1.20 |" in bench_report.format_table(report)
    assert "| 2.1000 | 2.0000 | +5.0% |" in table and "failed: boom" in table and "failed: oops" in table


def test_worker_failure_is_reported_not_raised():
    result = worker.run_worker({"kind": "nonsense"}, timeout=300)
    assert "unknown measurement kind" in result["error"]


def test_quick_defaults_are_one_model_at_batch_8_and_explicit_options_win():
    from benchmarks import BenchOptions

    quick = BenchOptions(quick=True).resolved()
    assert quick.models == ["aunet_iresnet100"] and quick.batches == [8] and quick.deploy_batches == [8]
    assert quick.framework_rows is False and quick.backend_memory is False
    assert quick.detect_widths == ["full"] and quick.detect_frames == 30 and quick.detect_batch == 8
    full = BenchOptions().resolved()
    assert full.models == ["iresnet100", "aunet_iresnet100"] and full.deploy_batches == [1, 8, 32]
    assert full.framework_rows is True and full.backend_memory is True
    assert full.detect_widths == ["full", "demo"] and full.detect_frames == 300 and full.detect_batch == 32
    asked = BenchOptions(quick=True, models=["iresnet18"], framework_rows=True, backend_memory=True).resolved()
    assert asked.models == ["iresnet18"] and asked.framework_rows and asked.backend_memory


def test_postprocess_measurement_counts_frames():
    result = measure.measure_postprocess(5000, repeats=1)
    assert result["frames"] == 5000
    assert result["frames_per_s"] == round(5000 / result["median_s"], 1)  # the same rounding as the measurement


# ------------------------------------------------------------------------------------------- CLI
def test_bench_quick_tiny_framework_rows(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench_main([
        "--quick", "--model", "aunet_iresnet18",
        "--widths", ",".join(map(str, TINY_WIDTHS)), "--layers", ",".join(map(str, TINY_LAYERS)),
        "--matmul-size", "128", "--post-frames", "2000", "--repeats", "1", "--pipeline-batches", "2",
        "--no-deploy", "--no-detect", "--frameworks", "--json", str(out),
    ])  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0, stdout[-3000:]
    report = json.loads(out.read_text())
    assert report["failed"] == []
    assert report["machine"]["threads"] >= 1
    assert {"numpy", "mindspore"} <= set(report["matmul"]) and report["matmul_limit_gflops"] > 0
    has_torch = report["machine"]["torch"][0].isdigit()
    frameworks = {"mindspore", "torch"} if has_torch else {"mindspore"}
    measured = {(r["framework"], r["model"], r["mode"]) for r in report["models"]}
    for framework in frameworks:
        assert {(framework, "aunet_iresnet18", "forward"), (framework, "aunet_iresnet18", "train")} <= measured
    for row in report["models"]:
        assert row["batch"] == 8 and row["images_per_s"] > 0 and row["peak_rss_mb"] > 0
        assert row["images_per_s"] == round(8 / row["median_s"], 2)  # the same rounding as the measurement
    assert len(report["heads"]) == 2 * len(frameworks)  # forward and train per framework
    for row in report["heads"]:
        assert row["heads_cost"] == round(row["aunet_s"] / row["backbone_s"] - 1.0, 3)
    (head,) = report["intensity_head"]  # MindSpore forward, with the intensity head vs without
    assert (head["framework"], head["mode"], head["batch"]) == ("mindspore", "forward", 8)
    assert head["intensity_cost"] == round(head["intensity_s"] / head["aunet_s"] - 1.0, 3)
    assert "| with intensity head s | without s | intensity head cost |" in stdout
    assert len(report["ratios"]) == (2 if has_torch else 0)
    for ratio in report["ratios"]:
        # the report rounds ratios to 3 decimals: compare with the same rounding
        assert ratio["ratio"] == round(ratio["mindspore_s"] / ratio["torch_s"], 3)
        assert isinstance(ratio["alternating"], float) and ratio["alternating"] > 0
    assert report["pipeline"]["images_per_s"] > 0 and report["postprocess"]["frames"] == 2000
    assert "| framework | model | mode | batch | images/s" in stdout


@pytest.mark.parametrize(
    "args, culprit",
    [
        (["--model", "nosuchnet"], "nosuchnet"),
        (["--model", "iresnet18", "--widths", "8,16"], "--widths"),
        (["--model", "iresnet18", "--json", "/nonexistent-folder/x/bench.json"], "--json"),
        (["--model", "iresnet18", "--backend", "tensorrt"], "tensorrt"),
        (["--model", "iresnet18", "--detect-width", "half"], "--detect-width"),
        (["--model", "iresnet18", "--detect-frames", "-3"], "--detect-"),
    ],
)
def test_bench_errors_name_the_option(args, culprit, capsys):
    try:
        code = bench_main(["--quick", *args, "--no-torch"])
    except SystemExit as exc:  # argparse's own checks (choices, types)
        code = exc.code
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("python -m benchmarks: error:") and culprit in lines[-1]
    assert not os.path.exists("/nonexistent-folder")


# ------------------------------------------------------------------------------------------- targets
def _forward(backend, median, vs_torch, fraction, batch=8):
    return {"model": "iresnet100", "batch": batch, "backend": backend, "median_s": median, "images_per_s": 1.0,
            "vs_torch": vs_torch, "fraction_of_matmul": fraction, "gflops": 1.0, "peak_rss_mb": 9.0}  # fmt: skip


def _detect_row(backend, fps, runs, faces_ms=40.0, net_ms=100.0, growth=1.0, width="full", path="tracked",
                cpu_ms=None):  # fmt: skip
    stage_ms = {"decode": 2.0, "detect_faces": faces_ms, "align": 1.0, "network": net_ms, "write": 0.5}
    return {"width": width, "model": "aunet_iresnet100", "backend": backend, "frames": 300, "fps": fps,
            "fps_runs": runs, "stage_ms": stage_ms, "other_ms": 3.0, "rss_third_mb": 900.0,
            "rss_growth_mb": growth, "path": path, "cpu_ms": cpu_ms}  # fmt: skip


def _deploy_report():
    return {
        "machine": {"mindspore": "x", "torch": "y", "numpy": "z", "threads": 2, "cpus": 2, "processor": "p",
                    "onednn_isa_cap": {"value": "AVX2", "source": "mindface-au"}},
        "matmul": {}, "models": [],
        "deploy": {
            "forward": [
                _forward("onnx", 0.9, 0.98, 0.83),
                _forward("onnx-int8", 0.4, 0.41, None),
                _forward("onnx", 0.2, 1.10, 0.70, batch=1),
                {"model": "iresnet100", "batch": 8, "backend": "mindir", "error": "boom"},
            ],
            "skipped": {"torch": "PyTorch not installed (torch)"},
        },
        "detect": {
            "video": {"width": 640, "height": 360, "frames": 300}, "batch_size": 32, "rounds": 2,
            "rows": [
                _detect_row("mindspore", 3.0, [3.0, 3.2], net_ms=280.0),
                _detect_row("onnx-int8", 7.0, [6.0, 7.0], growth=80.0),
                _detect_row("onnx", 5.0, [5.0, 5.0], width="demo", cpu_ms=8.0),
                _detect_row("onnx", 1.0, [1.0, 1.0], width="demo", path="per-frame", faces_ms=900.0),
                _detect_row("mindspore", 1.0, [1.0, 1.0], path="per-frame", net_ms=280.0),
                {"width": "full", "model": "aunet_iresnet100", "backend": "mindir", "error": "no file"},
            ],
        },
    }  # fmt: skip


def test_targets_judge_every_measured_place():
    rep = _deploy_report()
    rows = bench_report.targets(rep)
    by = {(r["key"], r["where"]): r for r in rows}
    assert by[("onnx_vs_torch", "iresnet100 batch 8")]["passed"] is True
    assert by[("onnx_vs_torch", "iresnet100 batch 1")]["passed"] is False
    assert by[("int8_vs_torch", "iresnet100 batch 8")] == {
        "key": "int8_vs_torch", "where": "iresnet100 batch 8", "value": 0.41, "passed": True}  # fmt: skip
    assert by[("fp32_of_matmul", "iresnet100 batch 8")]["passed"] is True
    assert by[("fp32_of_matmul", "iresnet100 batch 1")]["passed"] is False
    # 3 fps x (40 + 280) ms = 0.96 >= 0.85; 7 fps x 140 ms = 0.98; 5 fps x 140 ms = 0.70
    assert by[("detect_overhead", "full mindspore")]["value"] == pytest.approx(0.96)
    assert by[("detect_overhead", "demo onnx")]["passed"] is False
    speedup = by[("int8_detect_speedup", "aunet_iresnet100")]
    assert speedup["value"] == pytest.approx(2.094, abs=1e-3) and speedup["passed"] is True  # median of 2.0, 2.1875
    assert by[("detect_memory", "full onnx-int8, 300 frames")]["passed"] is False  # 80 MiB > max(20, 3% of 900)
    assert by[("detect_memory", "full mindspore, 300 frames")]["passed"] is True
    # tracked vs per-frame: the per-frame rows are judged on their own and do not enter the int8 speedup
    assert by[("detect_overhead", "full mindspore per-frame")]["value"] == pytest.approx(0.32)
    assert by[("tracked_speedup", "demo onnx")] == {
        "key": "tracked_speedup", "where": "demo onnx", "value": 5.0, "passed": True}  # fmt: skip
    assert by[("tracked_cpu_rate", "demo onnx")]["value"] == 125.0 and by[("tracked_cpu_rate", "demo onnx")]["passed"]
    assert not [r for r in rows if "mindir" in r["where"]]  # failed rows are failures, not targets


def test_targets_not_measured_without_rows():
    rows = bench_report.targets({"deploy": {"forward": []}, "detect": {"rows": []}})
    assert {r["key"] for r in rows} == {k for k, _, _ in bench_report.TARGETS} - {"detect_memory"}
    assert all(r["passed"] is None and r["value"] is None for r in rows)


def test_deploy_and_detect_tables_and_failures():
    rep = _deploy_report()
    rep["targets"] = bench_report.targets(rep)
    rep["failed"] = bench_report.failures(rep)
    table = bench_report.format_table(rep)
    assert "oneDNN ISA cap for MindSpore: AVX2 (set by mindface-au)" in table
    assert "| iresnet100 | 8 | onnx | 0.9000 | 1.00 | 1.0 | 83% | 0.98 | 9.0 |" in table
    assert "| iresnet100 | 8 | mindir | failed: boom |" in table and "Skipped torch: PyTorch not installed" in table
    assert (
        "| full | aunet_iresnet100 | mindspore | tracked | 3.00 | - | 2.0 | 40.0 | 1.0 | 280.0 | 0.5 | 3.0 | 2.66 "
        "| 1.0 |" in table
    )
    assert "| demo | aunet_iresnet100 | onnx | per-frame | 1.00 | - | 2.0 | 900.0 |" in table
    assert (
        "| >= 2.00 | aunet_iresnet100 | 2.09 | pass |" in table
        and "| flat | full onnx-int8, 300 frames | 80.00 | FAIL |" in table
    )
    assert rep["failed"] == ["forward mindir iresnet100 batch 8: boom", "detect mindir full: no file"]


def test_detect_row_medians_and_stage_times():
    summaries = [
        {"frames": 100, "seconds": 10.0, "backend": "onnxruntime",
         "stage_seconds": {"decode": 0.5, "detect_faces": 4.0, "align": 0.2, "network": 5.0, "write": 0.1}},
        {"frames": 100, "seconds": 20.0, "backend": "onnxruntime",
         "stage_seconds": {"decode": 0.7, "detect_faces": 6.0, "align": 0.2, "network": 12.0, "write": 0.1}},
    ]  # fmt: skip
    row = deploy._detect_row(summaries)
    assert row["fps"] == pytest.approx(7.5) and row["fps_runs"] == [10.0, 5.0]
    assert row["stage_ms"] == {"decode": 6.0, "detect_faces": 50.0, "align": 2.0, "network": 85.0, "write": 1.0}
    assert row["other_ms"] == pytest.approx(150.0 - 144.0)
    bare = deploy._detect_row([{"frames": 10, "seconds": 2.0}])  # a detect without stage times: fps only
    assert bare["fps"] == 5.0 and bare["stage_ms"] == {} and "other_ms" not in bare


# ------------------------------------------------------------------------------------------- files and video
def test_file_paths_key_on_the_model_config_and_batch(tmp_path):
    cfg = {"name": "aunet_iresnet18", "widths": [8, 16, 16, 32], "layers": [1, 1, 1, 1], "input_size": 32}
    a = deploy.file_paths(str(tmp_path), cfg, 8, 16)
    assert a == deploy.file_paths(str(tmp_path), dict(cfg), 8, 16)
    assert a["mindspore"] == deploy.file_paths(str(tmp_path), cfg, 32, 16)["mindspore"]  # one checkpoint
    assert a["mindir"] != deploy.file_paths(str(tmp_path), cfg, 32, 16)["mindir"]  # a fixed batch inside
    assert a["onnx"] == deploy.file_paths(str(tmp_path), cfg, 32, 16)["onnx"]  # dynamic batch axis: one file
    assert a["onnx-int8"] != deploy.file_paths(str(tmp_path), cfg, 8, 64)["onnx-int8"]
    assert a["mindspore"] != deploy.file_paths(str(tmp_path), dict(cfg, widths=[8, 8, 8, 8]), 8, 16)["mindspore"]
    assert set(a) == set(deploy.FILE_BACKENDS)


def test_generated_video_has_one_detectable_moving_face(tmp_path):
    from mindface_au.inference.faces import create_detector

    path = deploy.make_video(str(tmp_path / "v.avi"), 12, size=(320, 180))
    assert sorted(os.listdir(tmp_path)) == ["v.avi"]  # written atomically, no temporary left
    capture = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 12 and frames[0].shape == (180, 320, 3)
    detector = create_detector("mtcnn")
    boxes = [detector.detect(frames[i]) for i in (0, 11)]
    assert all(len(b) == 1 for b in boxes)
    assert abs(boxes[0][0].box[0] - boxes[1][0].box[0]) > 5  # it moves
    mtime = os.path.getmtime(path)
    assert deploy.make_video(path, 12, size=(320, 180)) == path and os.path.getmtime(path) == mtime  # cached


# ------------------------------------------------------------------------------------------- worker protocol
def test_worker_round_trip_adds_peak_rss():
    result = worker.run_worker({"kind": "postprocess", "frames": 500, "threads": 1}, timeout=300)
    assert result["frames"] == 500 and result["peak_rss_mb"] > 0


def test_worker_env_keeps_the_cap_unless_ours_and_torch_alone(monkeypatch):
    from mindface_au.utils.device import ONEDNN_ISA_VAR

    monkeypatch.setenv(ONEDNN_ISA_VAR, "AVX2")
    assert ONEDNN_ISA_VAR not in worker._worker_env({"framework": "torch", "onednn_cap_ours": True})
    assert ONEDNN_ISA_VAR not in worker._worker_env({"backends": ["torch"], "onednn_cap_ours": True})
    assert worker._worker_env({"framework": "torch", "onednn_cap_ours": False})[ONEDNN_ISA_VAR] == "AVX2"
    assert worker._worker_env({"backends": ["onnx", "torch"], "onednn_cap_ours": True})[ONEDNN_ISA_VAR] == "AVX2"
    env = worker._worker_env({"framework": "mindspore", "threads": 3, "onednn_cap_ours": True})
    assert env[ONEDNN_ISA_VAR] == "AVX2" and env["OMP_NUM_THREADS"] == "3"
    # `python -m benchmarks` must import from any working folder: the repository root leads the worker's path
    monkeypatch.setenv("PYTHONPATH", "elsewhere")
    assert worker._worker_env({})["PYTHONPATH"].split(os.pathsep) == [worker.REPO_ROOT, "elsewhere"]
    assert os.path.isfile(os.path.join(worker.REPO_ROOT, "benchmarks", "__main__.py"))


@pytest.mark.slow
def test_bench_deploy_and_detect_tiny(tmp_path, capsys):
    """Every backend's forward, files cached, and detect with its stage times, on a tiny AUNet."""
    pytest.importorskip("onnxruntime")
    out, cache = tmp_path / "bench.json", tmp_path / "cache"
    code = bench_main([
        "--quick", "--model", "aunet_iresnet18", "--widths", ",".join(map(str, TINY_WIDTHS)),
        "--layers", ",".join(map(str, TINY_LAYERS)), "--input-size", "32", "--matmul-size", "128",
        "--post-frames", "500", "--repeats", "2", "--batch", "4", "--no-frameworks", "--no-pipeline",
        "--detect-width", "full", "--detect-frames", "10", "--detect-batch", "4", "--calib-frames", "4",
        "--no-backend-memory", "--cache", str(cache), "--json", str(out),
    ])  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0, stdout[-3000:]
    rep = json.loads(out.read_text())
    assert rep["failed"] == []
    has_torch = rep["machine"]["torch"][0].isdigit()
    forward = {r["backend"]: r for r in rep["deploy"]["forward"]}
    assert set(forward) == set(deploy.BACKENDS)
    for name, row in forward.items():
        if name == "torch" and not has_torch:
            continue
        assert row["images_per_s"] == round(4 / row["median_s"], 2)
        assert len(row["times_s"]) == 2 and row["gflops"] > 0
        if has_torch:
            assert row["vs_torch"] == round(
                row["median_s"] / forward["torch"]["median_s"], 3
            )  # rounded as the suite does
    rows = {(r["backend"], r["path"]): r for r in rep["detect"]["rows"]}
    assert set(rows) == {(b, p) for b in deploy.FILE_BACKENDS for p in deploy.DETECT_PATHS}  # side by side
    for (_, path), row in rows.items():
        assert row["frames"] == 10 and row["fps"] > 0 and row["cpu_ms"] > 0
        assert set(row["stage_ms"]) == set(deploy.DETECT_STAGES)
        # per-frame detection runs the face detector on all 10 frames; tracking on the first (and after a loss)
        assert row["keyframes"] == 10 if path == "per-frame" else row["keyframes"] < 10
    detect_files = rep["detect"]["files"]["full"]  # same model and batch: made by the forward measurement
    assert detect_files["seconds"] == {} and len(detect_files["cached"]) == len(deploy.FILE_BACKENDS)
    keys = {t["key"] for t in rep["targets"]}
    assert keys == {k for k, _, _ in bench_report.TARGETS}
    demo_only = ("tracked_speedup", "tracked_cpu_rate")  # goals of the demo width, which this run does not measure
    for target in rep["targets"]:  # every target measured, with a verdict (the PyTorch ones need PyTorch)
        if target["key"] in demo_only:
            assert target["value"] is None and target["passed"] is None and target["where"] == "demo width", target
        elif has_torch or target["key"] not in ("onnx_vs_torch", "int8_vs_torch"):
            assert isinstance(target["value"], (int, float)) and target["passed"] in (True, False), target
    table = stdout[stdout.index("Targets:") :]
    assert table.count("| pass |") + table.count("| FAIL |") == len(rep["targets"]) - len(demo_only)
    # a later run finds every export in the cache (the same `prepare` measurement the suite runs first)
    from benchmarks.suite import BenchOptions, _model_config

    model_config = _model_config("aunet_iresnet18", BenchOptions(widths=TINY_WIDTHS, layers=TINY_LAYERS, input_size=32))
    spec = {"kind": "prepare", "model_config": model_config, "batches": [4], "backends": list(deploy.FILE_BACKENDS),
            "cache": str(cache), "calib_frames": 4, "device": "CPU", "threads": 1}  # fmt: skip
    again = worker.run_worker(spec, timeout=600)
    assert again["seconds"] == {} and len(again["cached"]) == len(deploy.FILE_BACKENDS), again
    assert again["files"]["4"] == rep["deploy"]["files"]["aunet_iresnet18"]["files"]["4"]
    # one backend's peak memory alone, in its own process (what --backend-memory runs per backend)
    files = again["files"]["4"]
    alone = worker.run_worker({"kind": "backend_memory", "model_config": model_config, "batch": 4,
                               "files": files, "backends": ["onnx"], "warmup": 1, "repeats": 1, "device": "CPU",
                               "threads": 1}, timeout=600)  # fmt: skip
    assert alone["peak_rss_mb"] > 0 and alone["one_call_s"] > 0, alone


# ------------------------------------------------------------------------------------------- mindface-au bench
def test_installed_bench_times_each_backend_in_turns(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from mindface_au.cli import main

    out = tmp_path / "times.json"
    args = ["bench", *tiny_set_args(), "--batch-size", "3", "--repeats", "2", "--threads", "1", "--device", "CPU"]
    assert main([*args, "--backend", "mindspore", "--backend", "onnx", "--json", str(out)]) == 0
    stdout = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["model"] == "aunet_iresnet18" and result["batch_size"] == 3 and result["threads"] == 1
    assert result["errors"] == {} and [r["backend"] for r in result["rows"]] == ["mindspore", "onnx"]
    for row in result["rows"]:
        assert len(row["times_s"]) == 2 and row["median_s"] == pytest.approx(sum(row["times_s"]) / 2, abs=1e-4)
        assert row["images_per_s"] == pytest.approx(3 / row["median_s"]) and row["file_mb"] > 0
    fastest = min(result["rows"], key=lambda r: r["median_s"])
    slowest = max(result["rows"], key=lambda r: r["median_s"])
    ratio = f"{slowest['median_s'] / fastest['median_s']:.2f}"
    assert f"| {slowest['backend']} | {slowest['median_s']:.4f} | {slowest['images_per_s']:.1f} | {ratio} |" in stdout
    assert stdout.index(f"| {fastest['backend']} |") < stdout.index(f"| {slowest['backend']} |")


@pytest.mark.parametrize(
    "args, culprit",
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--set", "model.name=iresnet18"], "model.name"),
        (["--json", "/nonexistent-folder/x/t.json"], "--json"),
    ],
)
def test_installed_bench_errors_name_the_flag(args, culprit, capsys):
    from mindface_au.cli import main

    assert main(["bench", *tiny_set_args(), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("mindface-au bench: error:") and culprit in err[-1]


def test_installed_backends_need_onnxruntime_for_onnx(monkeypatch):
    import importlib.util

    from mindface_au.inference import timing

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "onnxruntime" else real(name))
    assert timing.installed_backends() == ["mindspore", "mindir"]
