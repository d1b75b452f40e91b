"""Day one of a dataset user: every printed command runs when pasted, failed checks leave no run folder, the AU set
follows data.format, the docs' training commands resolve on tiny SynthAU data, clips to detect on, and the stream
convention (results on stdout, progress and logs on stderr)."""

import os
import re
import shlex

import cv2
import pytest
from helpers import run_cli, run_cli_in_process, tiny_overrides

from mindface_au.config import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# tiny sizes appended to a pasted training command (the network, one short epoch)
TINY = [
    *tiny_overrides(name=None, backbone_checkpoint=None), "train.epochs=1",
    "train.warmup_epochs=0", "train.steps_per_epoch=2", "train.val_interval=1", "data.batch_size=8",
    "data.eval_batch_size=32", "data.val_max_frames=64", "data.num_workers=1", "data.sample_rate=0.5",
]  # fmt: skip


def _tiny_args():
    return [a for key in TINY for a in ("--set", key)]


def _command(line: str, prefix: str) -> list:
    """The argv after `mindface-au` of a printed "PREFIX mindface-au ..." line, split as a shell would."""
    assert prefix in line, line
    argv = shlex.split(line.split(prefix, 1)[1])
    assert argv[0] == "mindface-au", line
    return argv[1:]


def _paste(argv, cwd, extra=()):
    """Run a pasted command as a user would (a subprocess in `cwd`)."""
    return run_cli(*argv, *extra, cwd=cwd, env={"PYTHONPATH": ROOT})


def _synth(fmt: str, out) -> str:
    """Tiny SynthAU in layout `fmt`; returns the "train with:" line `synth` printed."""
    size = ["--videos", "4", "--frames", "30", "--test-videos", "1"] if fmt == "affwild2" else ["--frames", "20"]
    proc = run_cli_in_process("synth", "--format", fmt, "--out", out, "--subjects", "1", "--workers", "1", *size)
    assert proc.returncode == 0, proc.stderr
    return next(line for line in proc.stdout.splitlines() if "train with" in line)


@pytest.fixture(scope="module")
def tiny_formats(tmp_path_factory):
    """{format: (data folder, the train hint synth printed)} for the four layouts."""
    base = tmp_path_factory.mktemp("dayone")
    return {fmt: (str(base / fmt), _synth(fmt, base / fmt)) for fmt in ("affwild2", "bp4d", "disfa", "list")}


@pytest.mark.parametrize("fmt", ["affwild2", "bp4d", "disfa", "list"])
def test_synth_train_hint_resolves_for_every_format(fmt, tiny_formats):
    """The hint `synth` prints parses as a train command whose config takes the AU set, rare AUs and folds of the
    data just written (it failed for bp4d and disfa: model.au_names and then data.rare_aus were ABAW's)."""
    import json

    from mindface_au.cli import train as train_cli
    from mindface_au.data import get_split

    root, hint = tiny_formats[fmt]
    argv = _command(hint, ":")
    assert argv[0] == "train"
    parser = __import__("argparse").ArgumentParser()
    train_cli.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    cfg = train_cli.load_config_fold(args.config, train_cli.split_overrides(args, fold=False), args.fold)
    written = json.load(open(os.path.join(root, "synthau.json")))
    expected = written.get("au_names") or list(cfg.model.au_names)
    assert cfg.model.au_names == expected and cfg.data.au_names == expected
    assert cfg.data.rare_aus and set(cfg.data.rare_aus) <= set(expected)
    train_videos, val_videos = get_split(cfg.data)
    assert train_videos and val_videos


def test_au_set_order_model_then_set_then_format(tmp_path):
    """The AU set: the config file's (or a run's saved config), an explicit --set, then the set of data.format; list
    data has none, so an empty or missing set there is refused."""
    from mindface_au.au_sets import BP4D_AUS, DISFA_AUS
    from mindface_au.errors import UserError

    cfg = load_config(None, ["data.format=disfa"])
    assert cfg.model.au_names == list(DISFA_AUS) and cfg.data.rare_aus == ["AU1", "AU2", "AU6", "AU9"]
    cfg = load_config("bp4d/full_network")
    assert cfg.model.au_names == list(BP4D_AUS)
    assert load_config(None, ["model.au_names=[]"]).model.au_names == load_config().model.au_names  # affwild2's
    cfg = load_config(None, ["data.format=list", "model.au_names=[AU1, AU14, AU2, AU4]", "data.rare_aus=[AU14]"])
    assert cfg.data.au_names == ["AU1", "AU14", "AU2", "AU4"] and cfg.data.rare_aus == ["AU14"]
    assert load_config(None, ["data.format=list", "model.au_names=[AU1, AU2, AU4, AU15]"]).data.rare_aus == [
        "AU2",
        "AU15",
    ]  # the paper's rare AUs that the set has
    for overrides in (["data.format=list"], ["data.format=list", "model.au_names=[]"]):
        with pytest.raises(UserError, match=r"model.au_names: empty or unset, and data.format list names no AUs"):
            load_config(None, overrides)
    with pytest.raises(UserError, match="model.au_names .* and the AUs of data.format disfa"):
        load_config(None, ["data.format=disfa", "model.au_names=[AU1, AU2, AU4, AU6]"])


@pytest.mark.slow
def test_pasted_list_training_then_its_eval_export_and_predict_hints(tiny_formats, tmp_path):
    """list data, the hardest case: synth's hint (with tiny sizes) trains; its stdout is the result and the two
    hints only, the resolved config and every step on stderr; the eval and export hints run as printed, and so does
    the per-fold predict hint cv prints. The quick recipe's milestone after the 1 tiny epoch is warned about once."""
    from mindface_au.cli.cv import predict_hints

    _, hint = tiny_formats["list"]
    proc = _paste(_command(hint, ":"), tmp_path, _tiny_args())
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout.strip().splitlines()
    assert len(out) == 3 and out[0].startswith("best epoch 1: val mean F1"), proc.stdout
    assert "# resolved config" in proc.stderr and "epoch 1" in proc.stderr and "# resolved config" not in proc.stdout
    assert proc.stderr.count("warning: train.milestones 5 come after the last epoch") == 1
    run = tmp_path / "runs" / "quick_list"
    assert "warning: train.milestones 5" in open(run / "train.log").read()
    for line, prefix in ((out[1], "evaluate with:"), (out[2], "export with:")):
        pasted = _paste(_command(line, prefix), tmp_path)
        assert pasted.returncode == 0, line + "\n" + pasted.stdout[-2000:] + pasted.stderr[-2000:]
    assert (run / "model.mindir").is_file()
    (line,) = predict_hints("list", [str(run / "checkpoints" / "best.ckpt")])
    pasted = _paste(_command(line, "with:"), tmp_path)
    assert pasted.returncode == 0, line + "\n" + pasted.stderr[-2000:]
    assert "not held out" not in pasted.stderr  # fold 1's model on fold 1's test part
    assert os.listdir(tmp_path / "runs" / "predictions" / "quick_list")


def test_failed_checks_leave_no_run_folder_and_the_backbone_message_works(tiny_formats, tmp_path):
    """A missing backbone, data not found and a batch larger than an epoch fail before config.yaml, train.log or
    checkpoints/ exist, so the same command can be run again; the backbone message names both ways forward, and its
    from-scratch --set trains when pasted."""
    root, _ = tiny_formats["bp4d"]
    run = tmp_path / "run"
    base = ["train", "--config", "bp4d/full_network", "--set", f"data.root={root}", "--fold", "1", "--out", run]
    proc = run_cli_in_process(*base, *_tiny_args())  # fails before any device is set up
    assert proc.returncode == 2 and not run.exists(), proc.stderr[-2000:]
    (message,) = proc.stderr.strip().splitlines()  # the error alone: the config is echoed once the checks pass
    assert "checkpoints/glint360k_r100.ckpt: model.backbone_checkpoint not found" in message
    convert = re.search(r"`(mindface-au convert [^`]*)`", message).group(1)
    assert convert.endswith("--arch iresnet100 --out checkpoints/glint360k_r100.ckpt")
    pasted = run_cli_in_process(*shlex.split(convert)[1:])  # runs as printed: only the downloaded file is missing
    assert pasted.returncode == 2 and "glint360k_r100.pth" in pasted.stderr.strip().splitlines()[-1], pasted.stderr
    assert "51.78 instead of 53.06" in message
    scratch = re.search(r"with (--set model\.backbone_checkpoint=\S*) ", message).group(1)
    proc = run_cli_in_process(*base, *_tiny_args(), *shlex.split(scratch), "--set", "data.root=nowhere")
    assert proc.returncode == 2 and not run.exists() and "nowhere" in proc.stderr.strip().splitlines()[-1]
    proc = run_cli(*base, *_tiny_args(), *shlex.split(scratch), "--set", "data.batch_size=100000")
    assert proc.returncode == 2 and not run.exists() and "data.batch_size" in proc.stderr.strip().splitlines()[-1]
    proc = run_cli(*base, *_tiny_args(), *shlex.split(scratch))
    assert proc.returncode == 0 and (run / "checkpoints" / "best.ckpt").is_file(), proc.stderr[-2000:]


def test_predict_warns_about_models_that_trained_on_the_videos(trained_tiny_run, tmp_path):
    proc = run_cli(
        "predict", "--config", trained_tiny_run.config, "--model", trained_tiny_run.best_ckpt, "--split", "train",
        "--out", tmp_path / "p", "--device", "CPU",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("predictions are not held out") == 1 and "official" in proc.stderr


def test_settings_that_do_nothing_are_named():
    from mindface_au.engine.trainer import settings_warnings

    (line,) = settings_warnings(load_config("synthau_demo", ["train.epochs=4"]))
    assert line.startswith("train.milestones 15, 18 come after the last epoch (train.epochs 4)")
    assert settings_warnings(load_config("synthau_demo")) == []


def _docs_train_commands():
    """Every `mindface-au train` command of README.md and docs/ (backslash continuations joined)."""
    found = []
    for page in ["README.md"] + [os.path.join("docs", n) for n in sorted(os.listdir(os.path.join(ROOT, "docs")))]:
        if not page.endswith(".md"):
            continue
        text = open(os.path.join(ROOT, page), encoding="utf-8").read().replace("\\\n", " ")
        for line in text.splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith("mindface-au train ") and "--resume" not in line and "..." not in line:
                found.append((page, line))
    return found


def test_docs_training_commands_resolve_on_tiny_synthau(tiny_formats):
    """Each training command of the README and docs, its data.root pointed at tiny SynthAU data of its format (and
    the from-scratch switch where a recipe names the Glint360K file), gives a valid config with data to train on."""
    from mindface_au.au_sets import BP4D_AUS
    from mindface_au.cli import train as train_cli
    from mindface_au.data import get_split
    from mindface_au.engine.trainer import check_backbone_checkpoint

    commands = _docs_train_commands()
    assert len(commands) >= 8
    parser = __import__("argparse").ArgumentParser()
    train_cli.add_arguments(parser)
    for page, line in commands:
        args = parser.parse_args(shlex.split(line)[2:])
        first = load_config(args.config, [o for o in args.overrides if not o.startswith("data.root=")])
        fmt = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("data.format=")), first.data.format)
        extra = [f"data.root={tiny_formats[fmt][0]}", "data.folds_file="]
        if fmt == "list":  # the page's own lists name their AUs; SynthAU's hold the BP4D set
            extra.append(f"model.au_names=[{', '.join(BP4D_AUS)}]")
        if first.model.backbone_checkpoint and not os.path.isfile(first.model.backbone_checkpoint):
            extra.append("model.backbone_checkpoint=")
        args.overrides = list(args.overrides) + extra
        cfg = train_cli.load_config_fold(args.config, train_cli.split_overrides(args, fold=False), args.fold)
        check_backbone_checkpoint(cfg.model)
        train_videos, val_videos = get_split(cfg.data)
        assert train_videos and val_videos, (page, line)


def test_synth_clips_and_flags(tmp_path, monkeypatch):
    """`synth --clips` writes the two MP4 clips (refused again without --overwrite); negative counts name their flag;
    a failed image write (a full disk) is one line naming the file, exit 1."""
    proc = run_cli_in_process("synth", "--clips", "--out", tmp_path / "clips")
    assert proc.returncode == 0, proc.stderr
    frames = {}
    for name in ("one_face.mp4", "scene.mp4"):
        capture = cv2.VideoCapture(str(tmp_path / "clips" / name))
        frames[name] = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        capture.release()
    assert frames == {"one_face.mp4": 120, "scene.mp4": 60}
    assert not [n for n in os.listdir(tmp_path / "clips") if n.startswith(".")]
    again = run_cli_in_process("synth", "--clips", "--out", tmp_path / "clips")
    assert again.returncode == 2 and "--overwrite" in again.stderr
    for flag, value in (("--workers", "-2"), ("--test-videos", "-1"), ("--seed", "-1")):
        proc = run_cli_in_process("synth", "--out", tmp_path / "x", flag, value)
        assert proc.returncode == 2 and f"error: {flag} {value}: expected an integer >=" in proc.stderr
    monkeypatch.setattr(cv2, "imwrite", lambda *a, **k: False)
    for fmt in ("affwild2", "disfa"):
        proc = run_cli_in_process(
            "synth", "--format", fmt, "--out", tmp_path / fmt, "--videos", "2", "--frames", "10", "--subjects", "1",
            "--workers", "1",
        )  # fmt: skip
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr
        assert re.search(r"error: \S+\.(jpg|png): cannot write the image \(disk full or not writable\)$", lines[0])
        assert not (tmp_path / fmt).exists()
