"""The built wheel, installed apart from the checkout: packaged configs by name and a tiny demo from another folder."""

import glob
import json
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml
from helpers import cli_env, run_cli, tiny_set_args

import mindface_au

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, "mindface_au", "configs")


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=900, **kwargs)
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.mark.slow
def test_wheel_ships_configs_and_runs_the_demo_from_another_folder(tmp_path):
    src = tmp_path / "src"  # a clean copy: no stale build/ or egg-info of the checkout ends up in the wheel
    shutil.copytree(
        os.path.join(ROOT, "mindface_au"), src / "mindface_au", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("setup.py", "setup.cfg", "pyproject.toml"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    _run([*pip, "wheel", "--no-index", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)])
    (wheel,) = glob.glob(str(tmp_path / "dist" / "mindface_au-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    yamls = sorted(
        os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(CONFIG_DIR, "**", "*.yaml"), recursive=True)
    )
    assert len(yamls) == 14 and [y for y in yamls if y not in names] == []
    assert "mindface_au/py.typed" in names  # PEP 561: type checkers use the package's annotations
    assert os.path.basename(wheel).startswith(f"mindface_au-{mindface_au.__version__}-")

    site = tmp_path / "site"
    _run([*pip, "install", "--no-index", "--no-deps", "--target", str(site), wheel])
    work = tmp_path / "work"  # neither the checkout nor the source copy
    work.mkdir()
    pythonpath = os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    env = cli_env({"PYTHONPATH": pythonpath})

    def cli(*args):
        return run_cli(*args, check=True, cwd=work, env={"PYTHONPATH": pythonpath})

    where = _run([sys.executable, "-c", "import mindface_au; print(mindface_au.__file__)"], cwd=str(work), env=env)
    assert where.stdout.strip() == str(site / "mindface_au" / "__init__.py")
    listing = cli("configs").stdout
    assert {line.split()[0] for line in listing.splitlines()} == {y[len("mindface_au/configs/") : -5] for y in yamls}
    dumped = cli("configs", "--dump", "affwild2/table3_6_ff").stdout
    assert dumped == open(os.path.join(CONFIG_DIR, "affwild2", "table3_6_ff.yaml"), encoding="utf-8").read()
    launch = cli("launch", "--workers", "2", "--dry-run", "--", "--config", "table3_6_ff").stdout.split()
    assert str(site / "mindface_au" / "__main__.py") in launch

    cli(
        "demo", "--out", "demo", "--videos", "4", "--frames", "30", "--device", "CPU", *tiny_set_args(),
        "--set", "train.epochs=1", "--set", "train.steps_per_epoch=2", "--set", "data.batch_size=8",
        "--set", "data.num_workers=1",
    )  # fmt: skip
    results = json.load(open(work / "demo" / "results.json"))
    assert results["epochs"] == 1 and results["data"]["videos"] == 4 and "val_mean_f1" in results
    assert os.path.isfile(work / "demo" / "run" / "checkpoints" / "best.ckpt")


def test_the_version_is_written_once():
    """setup.py reads mindface_au.__version__ (without importing the package) and CITATION.cff says the same."""
    proc = _run([sys.executable, os.path.join(ROOT, "setup.py"), "--version"], cwd=ROOT)
    assert proc.stdout.strip().splitlines()[-1] == mindface_au.__version__
    with open(os.path.join(ROOT, "CITATION.cff"), encoding="utf-8") as handle:
        assert str(yaml.safe_load(handle)["version"]) == mindface_au.__version__
