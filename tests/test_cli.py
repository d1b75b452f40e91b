"""The `mindface-au` dispatcher, the listing commands, packaged configs by name, `launch` and `folds` limits."""

import glob
import json
import os
import subprocess
import sys

import pytest
from helpers import run_cli

import mindface_au
from mindface_au.cli import COMMANDS
from mindface_au.config import packaged_configs
from mindface_au.errors import UserError


def test_help_lists_every_command():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for name in COMMANDS:
        assert name in proc.stdout


def test_unknown_command_is_one_line_error():
    proc = run_cli("trian")
    assert proc.returncode == 2 and "unknown command 'trian'" in proc.stderr


def test_models_lists_registry_and_rejects_bad_config_key():
    proc = run_cli("models", "aunet_*")
    assert proc.returncode == 0
    assert proc.stdout.split() == [f"aunet_iresnet{d}" for d in (100, 18, 200, 34, 50)]
    bad = run_cli("models", "--set", "model.widht=[8,8,8,8]")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "model.widht" in lines[0] and "widths" in lines[0]


def test_image_size_follows_model_input_size_and_rejects_a_mismatch(tmp_path):
    from mindface_au.config import load_config
    from mindface_au.errors import UserError

    assert load_config(None, ["model.input_size=64"]).data.image_size == 64
    assert load_config(None, ["model.input_size=64", "data.image_size=64"]).data.image_size == 64
    try:
        load_config(None, ["model.input_size=64", "data.image_size=112"])
    except UserError as err:
        assert "data.image_size (112)" in str(err) and "model.input_size (64)" in str(err)
    else:
        raise AssertionError("a data.image_size that differs from model.input_size was accepted")
    bad = run_cli("check-data", "--root", tmp_path, "--set", "data.image_size=96")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1 and "data.image_size (96)" in lines[0], bad.stderr
    bench = run_cli("bench", "--set", "data.image_size=96")  # --set alone, no --config
    lines = bench.stderr.strip().splitlines()
    assert bench.returncode == 2 and len(lines) == 1 and "data.image_size (96)" in lines[0], bench.stderr


# ------------------------------------------------------------------ packaged configs, launch, folds


def _cli_in(cwd, *args):
    """run_cli from another working directory (relative config paths resolve there)."""
    return run_cli(*args, timeout=300, cwd=cwd)


def test_config_names_resolve_and_an_existing_file_path_wins(tmp_path, monkeypatch):
    from mindface_au.config import CONFIG_DIR, resolve_config

    full = os.path.join(CONFIG_DIR, "affwild2", "table3_6_ff.yaml")
    for name in ("table3_6_ff", "affwild2/table3_6_ff", "affwild2/table3_6_ff.yaml", "table3_6_ff.yaml"):
        assert resolve_config(name) == full, name
    assert resolve_config("synthau_demo") == os.path.join(CONFIG_DIR, "synthau_demo.yaml")
    (tmp_path / "affwild2").mkdir()
    (tmp_path / "affwild2" / "table3_6_ff.yaml").write_text("model:\n  name: aunet_iresnet34\n")
    monkeypatch.chdir(tmp_path)
    assert resolve_config("affwild2/table3_6_ff.yaml") == "affwild2/table3_6_ff.yaml"
    assert resolve_config("affwild2/table3_6_ff") == full  # no file of that spelling
    mine = _cli_in(tmp_path, "models", "--config", "affwild2/table3_6_ff.yaml")  # the same through a command
    assert mine.returncode == 0 and mine.stdout.split() == ["aunet_iresnet34"], mine.stderr
    packaged = _cli_in(tmp_path, "models", "--config", "table3_6_ff")
    assert packaged.returncode == 0 and packaged.stdout.split() == ["aunet_iresnet100"], packaged.stderr
    assert "existing file path wins" in " ".join(run_cli("train", "--help").stdout.split())


def test_unknown_config_name_is_one_line_listing_the_packaged_names(tmp_path):
    proc = _cli_in(tmp_path, "models", "--config", "table3_9_nope")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "table3_9_nope" in lines[0], proc.stderr
    assert all(name in lines[0] for name in packaged_configs()) and "affwild2/table3_6_ff" in lines[0]


def test_an_ambiguous_basename_names_both_configs(tmp_path, monkeypatch):
    from mindface_au.config import loading as config  # CONFIG_DIR is read there

    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.yaml").write_text("# x\n")
    monkeypatch.setattr(config, "CONFIG_DIR", str(tmp_path))
    assert config.resolve_config("a/x") == str(tmp_path / "a" / "x.yaml")
    with pytest.raises(UserError, match="ambiguous: a/x, b/x"):
        config.resolve_config("x")


def test_configs_lists_every_packaged_file_and_dump_round_trips(tmp_path):
    from mindface_au.config import CONFIG_DIR, config_to_dict, load_config

    files = sorted(glob.glob(os.path.join(CONFIG_DIR, "**", "*.yaml"), recursive=True))
    assert len(files) == 14  # 7 affwild2 (Table 3, fixed fusion), ascend_o2, bp4d and disfa (+ intensity), demo, quick
    listing = run_cli("configs")
    assert listing.returncode == 0
    rows = [line.split(None, 1) for line in listing.stdout.strip().splitlines()]
    assert [name for name, _ in rows] == [os.path.relpath(f, CONFIG_DIR)[:-5] for f in files]
    for (name, description), path in zip(rows, files):
        first = open(path, encoding="utf-8").readline()
        assert first.startswith("# ") and first[2:].strip() == description.strip(), path
        dumped = run_cli("configs", "--dump", name)
        assert dumped.returncode == 0 and dumped.stdout == open(path, encoding="utf-8").read()
        mine = tmp_path / f"{os.path.basename(name)}.yaml"
        mine.write_text(dumped.stdout)
        assert config_to_dict(load_config(str(mine))) == config_to_dict(load_config(name))
    bad = run_cli("configs", "--dump", "nope")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "synthau_demo" in bad.stderr


def test_launch_runs_the_installed_main_under_msrun(tmp_path):
    proc = run_cli("launch", "--workers", "2", "--dry-run", "--msrun-arg=--node_rank=0", "--", "--config", "x.yaml")
    assert proc.returncode == 0, proc.stderr
    cmd = proc.stdout.split()
    script = os.path.join(os.path.dirname(os.path.abspath(mindface_au.__file__)), "__main__.py")
    assert os.path.basename(cmd[0]) == "msrun" and "--worker_num=2" in cmd and "--local_worker_num=2" in cmd
    assert cmd[cmd.index(script) :] == [script, "train", "--distributed", "--config", "x.yaml"]
    assert cmd.index("--node_rank=0") < cmd.index(script)
    # msrun runs the script by path: it must import its own package and nothing from inside it as top level
    as_script = subprocess.run([sys.executable, script, "models", "aunet_iresnet18"], capture_output=True, text=True)
    assert as_script.returncode == 0 and as_script.stdout.split() == ["aunet_iresnet18"], as_script.stderr
    bad = run_cli("launch", "--workers", "0", "--dry-run", "--", "--config", "x.yaml")
    assert bad.returncode == 2 and "--workers 0" in bad.stderr


def test_folds_refuses_any_count_but_the_supported_one(tmp_path):
    from mindface_au.config import NUM_FOLDS, load_config
    from mindface_au.data.folds import read_folds

    out = tmp_path / "folds.json"
    proc = run_cli("folds", "--root", tmp_path, "--out", out, "--num-folds", NUM_FOLDS + 1)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and f"got {NUM_FOLDS + 1}, only {NUM_FOLDS}" in lines[0]
    assert not out.exists()
    with pytest.raises(UserError, match=f"expected official or fold1..fold{NUM_FOLDS}"):
        load_config(None, [f"data.split=fold{NUM_FOLDS + 1}"])
    out.write_text(json.dumps({"folds": [["a"], ["b"], ["c"]]}))
    with pytest.raises(UserError, match=f"3 folds, expected {NUM_FOLDS}"):
        read_folds(str(out))
    assert run_cli("train", "--fold", NUM_FOLDS + 1).returncode == 2


def test_launch_writes_the_worker_logs_under_the_run_output(tmp_path):
    import dataclasses

    import cv2
    import numpy as np
    from helpers import TINY_AUNET, run_cli_in_process

    from mindface_au.config import ModelConfig
    from mindface_au.models import create_model_from_config
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    def log_dir(*args):
        proc = run_cli_in_process("launch", "--workers", "2", "--dry-run", *args)
        assert proc.returncode == 0, proc.stderr
        flags = [a for a in proc.stdout.split() if a.startswith("--log_dir=")]
        assert len(flags) == 1, proc.stdout
        return flags[0].split("=", 1)[1]

    out = str(tmp_path / "run")
    assert log_dir("--", "--config", "table3_6_ff", "--out", out) == os.path.join(out, "msrun_log")
    assert log_dir("--", "train", "--config", "table3_6_ff", f"--out={out}") == os.path.join(out, "msrun_log")
    assert log_dir("--", "--resume", out) == os.path.join(out, "msrun_log")
    assert log_dir("--", "--set", f"train.out_dir={out}") == os.path.join(out, "msrun_log")
    baseline = log_dir("--", "--config", "affwild2/table3_1_baseline")
    assert baseline == os.path.join("runs/table3_1_baseline", "msrun_log")
    assert log_dir("--", "--config", str(tmp_path / "missing.yaml")) == os.path.join("runs", "msrun_log")
    assert log_dir("--log-dir", str(tmp_path / "logs"), "--", "--out", out) == str(tmp_path / "logs")

    videos = tmp_path / "videos"
    videos.mkdir()
    writer = cv2.VideoWriter(str(videos / "a.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 25, (48, 40))
    for frame in np.random.default_rng(0).integers(0, 255, (4, 40, 48, 3), dtype=np.uint8):
        writer.write(frame)
    writer.release()
    cfg = ModelConfig(**TINY_AUNET)
    ckpt = str(tmp_path / "tiny.ckpt")
    save_checkpoint_atomic(create_model_from_config(cfg), ckpt, model_config=dataclasses.asdict(cfg))
    detect_out = str(tmp_path / "detections")
    detect = ["--", "detect", "--input", str(videos), "--out", detect_out, "--model", ckpt]
    assert log_dir(*detect) == os.path.join(detect_out, "msrun_log")
