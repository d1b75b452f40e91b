"""The `mindface-au` dispatcher and the listing command, run as a user runs them."""

from conftest import run_cli

from mindface_au.cli import COMMANDS


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
    bench = run_cli("bench", "--quick", "--set", "data.image_size=96")  # --set alone, no --config
    lines = bench.stderr.strip().splitlines()
    assert bench.returncode == 2 and len(lines) == 1 and "data.image_size (96)" in lines[0], bench.stderr
