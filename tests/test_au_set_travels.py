"""The AU set and the model card travel with the model, end to end on tiny SynthAU in the DISFA and BP4D layouts
(the CLI run in-process to keep the added time small): cv on the 3 DISFA folds, eval (incl. --shared-aus with an
ABAW model), predict headers, ONNX metadata, detect columns, check-data / synth --format, the fold count from the
data format, and a model file without an embedded card (saved before model.au_names existed)."""

import json
import os

import numpy as np
import pytest
import yaml
from helpers import TINY_AUNET, run_cli_in_process, write_random_crops

from mindface_au.au_sets import ABAW_AUS, BP4D_AUS, DISFA_AUS
from mindface_au.data import disfa
from mindface_au.data.synthau import write_synthau
from mindface_au.errors import UserError
from mindface_au.model_card import SYNTHAU_NOTE

NO_CARD_CKPT = os.path.join(os.path.dirname(__file__), "fixtures", "aunet_tiny_no_card.ckpt")  # ABAW 12, no card


def _config(path, root, fmt, names, rare):
    model = {k: v for k, v in TINY_AUNET.items()}
    model.update(au_names=list(names), arl_k=3)
    data = {"format": fmt, "root": str(root), "rare_aus": list(rare), "batch_size": 8, "eval_batch_size": 16}
    data.update(sample_rate=1.0, num_workers=1, hflip=False, color_jitter=0.0)
    train = {"epochs": 1, "lr": 0.01, "milestones": [1], "seed": 0, "device": "CPU"}
    cfg = {"model": model, "data": data, "train": train, "eval": {"prob_k": 1, "label_k": 1}}
    with open(path, "w") as handle:
        yaml.safe_dump(cfg, handle)
    return str(path)


@pytest.fixture(scope="module")
def disfa_cv(tmp_path_factory):
    """`mindface-au cv` (3 DISFA folds, one tiny epoch each) on SynthAU in the DISFA layout."""
    base = tmp_path_factory.mktemp("disfa_cv")
    write_synthau(str(base / "data"), format="disfa", frames=16, seed=3, subjects_per_part=1)
    config = _config(base / "disfa.yaml", base / "data", "disfa", DISFA_AUS, ["AU9"])
    proc = run_cli_in_process("cv", "--config", config, "--out", base / "cv")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with open(base / "cv" / "cv.json", encoding="utf-8") as handle:
        summary = json.load(handle)
    best = str(base / "cv" / "fold1" / "checkpoints" / "best.ckpt")
    return dict(base=base, config=config, proc=proc, summary=summary, best=best)


def test_cv_prints_three_folds_per_au_and_the_mean(disfa_cv):
    lines = disfa_cv["proc"].stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Val Set"))
    table = lines[start : start + 5]
    assert table[0].split() == ["Val", "Set", *DISFA_AUS, "F1"]
    assert [line.split()[0] for line in table[1:]] == ["Fold-1", "Fold-2", "Fold-3", "Mean"]
    folds = np.array([[disfa_cv["summary"]["splits"][f"fold{k}"][au] for au in DISFA_AUS] for k in (1, 2, 3)])
    mean_row = np.array([float(v) for v in table[4].split()[1:]])
    np.testing.assert_allclose(mean_row[:-1], 100 * folds.mean(axis=0), atol=0.006)
    np.testing.assert_allclose(mean_row[-1], 100 * folds.mean(axis=0).mean(), atol=0.006)


def test_card_eval_predict_and_onnx_follow_the_disfa_set(disfa_cv, tmp_path):
    from mindface_au.inference.loader import load_inference_model
    from mindface_au.inference.metadata import MODEL_INFO_KEY
    from mindface_au.model_card import read_card

    best, config = disfa_cv["best"], disfa_cv["config"]
    with open(os.path.join(os.path.dirname(os.path.dirname(best)), "metrics.json"), encoding="utf-8") as handle:
        best_f1 = json.load(handle)["best"]["mean_f1"]
    card = read_card(best)
    assert card["data_format"] == "disfa" and card["dataset"] == "SynthAU" and card["au_names"] == list(DISFA_AUS)
    assert card["crop"] == "box@32" and card["val_split"] == "fold1" and card["note"] == SYNTHAU_NOTE
    assert card["val_mean_f1"] == pytest.approx(best_f1, abs=1e-6)

    proc = run_cli_in_process("eval", "--config", config, "--model", best, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert list(result["per_au"]) == list(DISFA_AUS)
    assert result["mean_f1"] == pytest.approx(best_f1, abs=1e-6)
    assert "trained on SynthAU (disfa format)" in proc.stderr and "not validated" in proc.stderr

    out = tmp_path / "pred"
    proc = run_cli_in_process("predict", "--config", config, "--model", best, "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = sorted(os.listdir(out))
    assert files == ["SN003.txt"]  # fold1 tests on part3, whose SynthAU subject is SN003; no `test` split
    with open(out / files[0], encoding="utf-8") as handle:
        assert handle.readline().strip() == ",".join(DISFA_AUS)

    onnx_path = str(tmp_path / "m.onnx")
    proc = run_cli_in_process("export", "--model", best, "--format", "ONNX", "--out", onnx_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import onnx

    meta = {p.key: p.value for p in onnx.load(onnx_path).metadata_props}
    info = json.loads(meta[MODEL_INFO_KEY])
    assert info["au_names"] == list(DISFA_AUS) and info["card"] == card and info["crop"] == "box@32"
    model = load_inference_model(onnx_path)
    assert model.au_names == list(DISFA_AUS) and model.card == card and model.crop == "box@32"
    assert "box@32" in model.crop_problem() and model.crop_problem(aligned=True) is None
    proc = run_cli_in_process(
        "export", "--model", best, "--format", "CKPT", "--config", config, "--spec", "t", "--out", tmp_path / "r"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (release,) = [str(tmp_path / "r" / n) for n in os.listdir(tmp_path / "r") if n.endswith(".ckpt")]
    assert read_card(release) == card and load_inference_model(release).au_names == list(DISFA_AUS)


def test_detect_csv_columns_follow_the_model(disfa_cv, tmp_path):
    import mindface_au.inference.detect as detect_module

    faces = write_random_crops(str(tmp_path / "faces"), 3, size=32)
    out = str(tmp_path / "au.csv")
    detect_module.detect(faces, out, ckpt=disfa_cv["best"], aligned=True, progress=False, device="CPU")
    with open(out, encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert "AU9" in header and "AU9_prob" in header and "AU7" not in header
    with open(out + ".json", encoding="utf-8") as handle:  # the sidecar carries the model card
        side = json.load(handle)
    assert side["model_card"]["au_names"] == list(DISFA_AUS)
    assert side["model_card"]["card"]["note"] == SYNTHAU_NOTE and side["model_card"]["card"]["crop"] == "box@32"
    # the model was trained on detector-box crops: detect cannot redo them from raw images, and says so
    with pytest.raises(UserError, match="box@32 face crops"):
        detect_module.detect(faces, str(tmp_path / "raw.csv"), ckpt=disfa_cv["best"], progress=False, device="CPU")
    assert not os.path.exists(tmp_path / "raw.csv")


def test_abaw_model_on_disfa_data_scores_only_with_shared_aus(disfa_cv):
    config = disfa_cv["config"]
    proc = run_cli_in_process("eval", "--config", config, "--model", NO_CARD_CKPT)
    assert proc.returncode == 2
    line = proc.stderr.strip().splitlines()[-1]
    assert ", ".join(ABAW_AUS) in line and ", ".join(DISFA_AUS) in line and "--shared-aus" in line
    proc = run_cli_in_process("eval", "--config", config, "--model", NO_CARD_CKPT, "--shared-aus")
    assert proc.returncode == 0, proc.stderr[-2000:]
    shared = ["AU1", "AU2", "AU4", "AU6", "AU12", "AU25", "AU26"]
    assert "scored the 7 AUs shared by the model" in proc.stdout and proc.stdout.count(", ".join(shared)) >= 1
    table = [line.split() for line in proc.stdout.splitlines() if line.split()[-1:] == ["F1"]]
    assert table == [shared + ["F1"]]  # the per-AU table has the shared columns
    assert "model card: none" in proc.stderr


def test_checkpoint_without_a_card_loads_as_abaw_12():
    from mindface_au.inference.loader import load_inference_model

    model = load_inference_model(NO_CARD_CKPT, device="CPU")
    assert model.au_names == list(ABAW_AUS) and model.card is None and model.crop == "arcface5@32"
    assert model.crop_problem() is None  # detect aligns faces the way this model expects
    probs = model.predict(np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32))
    expected = np.load(os.path.join(os.path.dirname(NO_CARD_CKPT), "aunet_tiny_no_card_probs.npy"))
    np.testing.assert_allclose(probs, expected, atol=1e-4)


def test_bp4d_train_fold_from_the_format_and_predict_header(tmp_path):
    write_synthau(str(tmp_path / "data"), format="bp4d", frames=16, seed=4, subjects_per_part=1)
    config = _config(tmp_path / "bp4d.yaml", tmp_path / "data", "bp4d", BP4D_AUS, ["AU14", "AU17"])
    for command in ("train", "eval"):
        extra = ["--out", tmp_path / "x"] if command == "train" else ["--model", NO_CARD_CKPT]
        proc = run_cli_in_process(command, "--config", config, "--fold", "4", *extra)
        assert proc.returncode == 2 and "--fold 4: data.format bp4d has folds 1 to 3" in proc.stderr, proc.stderr
    proc = run_cli_in_process("train", "--config", config, "--fold", "3", "--out", tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    best = str(tmp_path / "run" / "checkpoints" / "best.ckpt")
    proc = run_cli_in_process(
        "predict", "--config", config, "--set", "data.split=fold3", "--model", best, "--out", tmp_path / "p"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "AU14" in proc.stdout and "AU17" in proc.stdout
    files = os.listdir(tmp_path / "p")
    assert files and all(name.startswith("F") for name in files)  # fold3 tests on part1 (BP4D subject-tasks)
    with open(tmp_path / "p" / files[0], encoding="utf-8") as handle:
        assert handle.readline().strip() == ",".join(BP4D_AUS)


def test_check_data_and_synth_format(tmp_path):
    proc = run_cli_in_process(
        "synth", "--format", "disfa", "--out", tmp_path / "d", "--frames", "14", "--subjects", "1"
    )
    assert proc.returncode == 0 and "8 AUs: " + ", ".join(DISFA_AUS) in proc.stdout, proc.stderr
    proc = run_cli_in_process("check-data", "--format", "disfa", "--root", tmp_path / "d", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [k for k in report if k.startswith("fold")] == ["fold1_test", "fold2_test", "fold3_test"]
    for fold, part in (("fold1_test", 2), ("fold3_test", 0)):
        (subject,) = [s for s in disfa.PARTS[part] if os.path.isdir(tmp_path / "d" / "ActionUnit_Labels" / s)]
        pos, coded = np.zeros(len(DISFA_AUS)), np.zeros(len(DISFA_AUS))
        for j, au in enumerate(DISFA_AUS):
            path = tmp_path / "d" / "ActionUnit_Labels" / subject / f"{subject}_au{au[2:]}.txt"
            for t, line in enumerate(open(path, encoding="utf-8").read().split()):
                if os.path.isfile(tmp_path / "d" / subject / f"{t}.png"):
                    coded[j] += 1
                    pos[j] += int(line.split(",")[1]) >= 2
        rates = report[fold]["positive_rate"]
        assert list(rates) == list(DISFA_AUS)
        np.testing.assert_allclose([rates[au] for au in DISFA_AUS], pos / coded, atol=1e-6)
    proc = run_cli_in_process("synth", "--format", "bp4d", "--out", tmp_path / "b", "--frames", "12", "--subjects", "1")
    assert proc.returncode == 0 and "AU14" in proc.stdout and os.path.isdir(tmp_path / "b" / "AUCoding" / "AU_OCC")
    bp4d = [
        "--set",
        "data.format=bp4d",
        "--set",
        f"model.au_names=[{', '.join(BP4D_AUS)}]",
        "--set",
        "data.rare_aus=[]",
    ]
    proc = run_cli_in_process("folds", *bp4d, "--out", tmp_path / "f.json")
    assert proc.returncode == 2 and "affwild2 only" in proc.stderr and not os.path.exists(tmp_path / "f.json")
