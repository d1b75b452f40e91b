"""Issue 30 items 3-4 in training, validation, eval and cv: intensity scored beside F1 (ICC(3,1), PCC, MAE against
numpy), sharded validation equal to one process, best.ckpt by mean ICC, train.init_checkpoint and
train.intensity_only (the occurrence outputs unchanged), the cv tables and their mean over folds."""

import dataclasses
import json
import logging
import os

import numpy as np
import pytest
from helpers import TINY_AUNET

from mindface_au.data.video import Video
from mindface_au.errors import UserError

HEAD = ["AU1", "AU6", "AU12", "AU25"]  # intensity AUs of the tiny network (AU25 constant in the labels below)


def _model_cfg(**kwargs):
    from mindface_au.config import ModelConfig, validate_model_config

    cfg = ModelConfig(**{**TINY_AUNET, **kwargs})
    validate_model_config(cfg, aunet=True)
    return cfg


def _net(intensity=True, seed=0, **kwargs):
    import mindspore as ms

    from mindface_au.models import create_model_from_config

    ms.set_seed(seed)
    extra = {"intensity": True, "intensity_au_names": HEAD} if intensity else {}
    return create_model_from_config(_model_cfg(**{**extra, **kwargs}))


def _videos(tmp_path, lengths=(7, 5, 4), seed=0):
    """Videos of 32 px random images, random 0/1 labels and 0-5 intensities (some -1); AU25's is constant 2."""
    import cv2

    rng = np.random.default_rng(seed)
    videos = []
    for n, k in enumerate(lengths):
        paths = []
        for i in range(k):
            path = str(tmp_path / f"v{n}_{i}.png")
            cv2.imwrite(path, rng.integers(0, 255, (32, 32, 3), dtype=np.uint8))
            paths.append(path)
        labels = (rng.random((k, 12)) < 0.4).astype(np.int8)
        intensity = rng.integers(0, 6, (k, len(HEAD))).astype(np.float32)
        intensity[rng.random(intensity.shape) < 0.15] = -1
        intensity[:, 3] = 2.0
        videos.append(Video(f"v{n}", np.arange(1, k + 1), labels, paths, k, intensity=intensity,
                            intensity_au_names=tuple(HEAD)))  # fmt: skip
    return videos


def _cfg():
    from mindface_au.config import Config

    cfg = Config()
    cfg.data.image_size, cfg.data.eval_batch_size, cfg.data.num_workers = 32, 4, 1
    cfg.eval.prob_k, cfg.eval.label_k = 0, 0
    return cfg


def _icc_3_1(x: np.ndarray, y: np.ndarray) -> float:
    """ICC(3,1) of two raters written out: (BMS - EMS) / (BMS + (k - 1) EMS) of the two-way ANOVA."""
    return _anova_icc(np.stack([x, y], 1))


def _anova_icc(r: np.ndarray) -> float:
    r = np.asarray(r, np.float64)
    n, k = r.shape
    grand = r.mean()
    ss_rows = k * ((r.mean(1) - grand) ** 2).sum()
    ss_cols = n * ((r.mean(0) - grand) ** 2).sum()
    ss_err = ((r - grand) ** 2).sum() - ss_rows - ss_cols
    bms, ems = ss_rows / (n - 1), ss_err / ((n - 1) * (k - 1))
    return (bms - ems) / (bms + (k - 1) * ems)


def test_icc_formula_of_this_test_on_shrout_fleiss_example():
    """The test's own formula against the published worked example: Shrout & Fleiss (1979) Table 2, 6 targets
    by 4 judges, ICC(3,1) 0.71."""
    table = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    assert round(_anova_icc(np.array(table)), 2) == 0.71


def test_validation_scores_intensity_like_numpy(tmp_path):
    """create_validation on in-memory Videos: ICC, PCC and MAE per AU equal a numpy computation over the coded rows
    of the network's own predictions; AU25's constant labels give null ICC/PCC in JSON, a MAE still."""
    from mindface_au.engine.evaluator import predict_video_outputs
    from mindface_au.engine.validation import create_validation
    from mindface_au.modelfile.loader import AUProbabilities

    videos = _videos(tmp_path)
    cfg = _cfg()
    net = _net()
    result = create_validation(net, videos, cfg)()
    intensity = result["intensity"]
    assert intensity["au_names"] == HEAD
    net.set_train(False)  # validation leaves the network training again
    _, outputs = predict_video_outputs(AUProbabilities(net), videos, cfg.data)
    pred = np.concatenate([p for _, p in outputs]).astype(np.float64)
    truth = np.concatenate([v.intensity for v in videos]).astype(np.float64)
    assert pred.shape == truth.shape and np.all((pred >= 0) & (pred <= 5))
    for k, name in enumerate(HEAD):
        keep = truth[:, k] >= 0
        t, p = truth[keep, k], pred[keep, k]
        assert intensity["coded_frames"][name] == int(keep.sum())
        assert intensity["mae"][name] == pytest.approx(np.mean(np.abs(p - t)), abs=1e-6)
        if name == "AU25":
            assert intensity["icc"][name] is None and intensity["pcc"][name] is None
            continue
        assert intensity["icc"][name] == pytest.approx(_icc_3_1(t, p), abs=1e-6)
        assert intensity["pcc"][name] == pytest.approx(np.corrcoef(t, p)[0, 1], abs=1e-6)
    assert intensity["mean_icc"] == pytest.approx(np.mean([intensity["icc"][n] for n in HEAD[:3]]), abs=1e-12)
    assert intensity["mean_aus"] == {"icc": 3, "pcc": 3, "mae": 4}
    text = json.dumps(result)
    assert json.loads(text)["intensity"]["icc"]["AU25"] is None and '"AU25": null' in text


def test_sharded_validation_gives_the_single_process_intensity_scores(tmp_path):
    """A fake 4-rank run over 3 videos (one rank scores nothing): the ranks' packed arrays summed give every rank
    the single-process result, ICC included, to the last digit. (The embedding head, ARL off: a quicker graph.)"""
    from mindface_au.engine.validation import create_validation

    videos = _videos(tmp_path, (6, 5, 3), seed=1)
    cfg = _cfg()
    net = _net(seed=1, arl=False, lrp=False, fusion="none")
    single = create_validation(net, videos, cfg)()
    assert single["intensity"]["mean_icc"] is not None
    world, packed, total = 4, {}, []

    def combine(rank):
        def run(values):
            if total:  # second pass: every rank gets the sum
                return total[0]
            packed[rank] = np.array(values)
            return values

        return run

    ranks = [create_validation(net, videos, cfg, rank=r, world_size=world, combine=combine(r)) for r in range(world)]
    for validate in ranks:
        validate()
    total.append(sum(packed.values()))
    for validate in ranks:
        assert validate() == single


def test_truncated_validation_keeps_the_intensity_prefix(tmp_path):
    from mindface_au.engine.validation import truncate_videos

    videos = _videos(tmp_path, (10, 10))
    short, kept = truncate_videos(videos, 10)
    assert kept == 10 and [len(v) for v in short] == [5, 5]
    assert np.array_equal(short[1].intensity, videos[1].intensity[:5])
    assert short[0].intensity_au_names == tuple(HEAD)


def test_video_intensity_matches_columns_by_name():
    from mindface_au.engine.evaluator import video_intensity

    v = Video("v", np.arange(1, 3), None, [None, None], 2, intensity=np.array([[1, 2], [3, 4]], np.float32),
              intensity_au_names=("AU12", "AU1"))  # fmt: skip
    assert video_intensity(v, ["AU1", "AU12", "AU6"]).tolist() == [[2, 1, -1], [4, 3, -1]]
    assert video_intensity(dataclasses.replace(v, intensity=None), ["AU1"]).tolist() == [[-1], [-1]]


# ---- best.ckpt by mean F1 or mean ICC ----


def _validator(tmp_path, results, best_metric):
    from mindspore import nn

    from mindface_au.engine.callbacks import EpochValidator, ProgressLogger
    from mindface_au.engine.run_dir import RunDirectory

    logger = logging.getLogger("test_intensity_train")
    lrs = [0.1] * 10
    progress = ProgressLogger(logger, lrs, steps_per_epoch=1, images_per_step=4, bar=False)
    net = nn.Dense(2, 1)
    run = RunDirectory(str(tmp_path / best_metric), keep_last=3)
    scores = iter(results)

    def evaluate():
        f1, icc = next(scores)
        names = ["AU1", "AU2"]
        intensity = {
            "icc": {"AU1": icc, "AU2": None}, "pcc": {"AU1": icc, "AU2": None}, "mae": {"AU1": 0.5, "AU2": 0.25},
            "mean_icc": icc, "mean_pcc": icc, "mean_mae": 0.375, "mean_aus": {"icc": 1, "pcc": 1, "mae": 2},
            "coded_frames": {"AU1": 3, "AU2": 3}, "au_names": names,
        }  # fmt: skip
        return {"mean_f1": f1, "per_au": {"AU1": f1}, "mean_f1_smoothed": f1, "intensity": intensity}

    validator = EpochValidator(logger, progress, evaluate, run, net, net, [], lrs, 1, best_metric=best_metric)
    return progress, validator, run


class _Context:
    def __init__(self, epoch, loss=0.5):
        self.args = type("Args", (), {"cur_epoch_num": epoch, "net_outputs": np.float32(loss)})()

    def original_args(self):
        return self.args


@pytest.mark.parametrize("best_metric,expected", [("f1", 1), ("icc", 2)])
def test_best_checkpoint_by_mean_f1_or_mean_icc(tmp_path, caplog, best_metric, expected):
    """Epoch 1 has the higher F1, epoch 2 the higher ICC; epoch 3's ICC is n/a and never becomes best."""
    progress, validator, run = _validator(tmp_path, [(0.6, 0.2), (0.5, 0.4), (0.9, None)], best_metric)
    with caplog.at_level(logging.INFO, logger="test_intensity_train"):
        for epoch in (1, 2, 3):
            progress.on_train_epoch_begin(_Context(epoch))
            progress.on_train_step_end(_Context(epoch))
            validator.on_train_epoch_end(_Context(epoch))
    expected = 3 if best_metric == "f1" else expected  # F1 0.9 at epoch 3 wins by F1
    assert validator.best["epoch"] == expected
    saved = json.load(open(run.metrics_path))
    assert saved["best"] == validator.best
    record = saved["epochs"][0]
    assert record["val_mean_icc"] == 0.2 and record["val_mean_mae"] == 0.375
    assert record["val_intensity"]["icc"]["AU2"] is None
    assert saved["epochs"][2]["val_mean_icc"] is None
    if best_metric == "icc":
        assert validator.best["mean_icc"] == 0.4 and "ICC" in validator.best["metric"]
    else:
        assert "mean_icc" not in validator.best
    log = caplog.text
    assert "val mean ICC 0.200, PCC 0.200 over 1 of 2 AUs" in log or "val mean ICC 0.200 over 1 of 2 AUs" in log
    assert "n/a" in log and "MAE" in log


def test_best_metric_is_checked():
    from mindface_au.engine.callbacks import EpochValidator

    with pytest.raises(ValueError, match="best_metric"):
        EpochValidator(None, None, None, None, None, None, [], [], 1, best_metric="mae")


# ---- train.init_checkpoint and train.intensity_only ----


def _save(net, path, model_cfg):
    from mindface_au.models.checkpoint import save_checkpoint_atomic

    save_checkpoint_atomic(net, str(path), model_config=dataclasses.asdict(model_cfg))
    return str(path)


def _randomise(net, seed):
    from helpers import randomise_params

    return randomise_params(net, seed)


def test_init_checkpoint_loads_every_weight_but_the_head(tmp_path):
    from mindface_au.engine.trainer import load_init_checkpoint

    plain = _randomise(_net(intensity=False, seed=3), 3)
    path = _save(plain, tmp_path / "occurrence.ckpt", _model_cfg())
    net = _net(seed=4)
    head_before = {n: p.asnumpy().copy() for n, p in net.parameters_and_names() if n.startswith("intensity_head.")}
    note = load_init_checkpoint(net, _model_cfg(intensity=True, intensity_au_names=HEAD), path)
    assert "but the intensity head's" in note
    theirs = {n: p.asnumpy() for n, p in plain.parameters_and_names()}
    for name, param in net.parameters_and_names():
        if name.startswith("intensity_head."):
            assert np.array_equal(param.asnumpy(), head_before[name])
        else:
            assert np.array_equal(param.asnumpy(), theirs[name]), name
    assert head_before and set(theirs) == {n for n, _ in net.parameters_and_names()} - set(head_before)


def test_init_checkpoint_refuses_another_architecture_in_one_line(tmp_path):
    from mindface_au.engine.trainer import load_init_checkpoint

    path = _save(_net(intensity=False), tmp_path / "occurrence.ckpt", _model_cfg())
    other = _model_cfg(head_dim=8, intensity=True, intensity_au_names=HEAD)
    with pytest.raises(UserError) as err:
        load_init_checkpoint(_net(head_dim=8), other, path)
    message = str(err.value)
    assert "\n" not in message and "model.head_dim 16 in the file, 8 in the config" in message
    assert "no head" in message and "intensity head on AU1, AU6, AU12, AU25" in message
    head_path = _save(_net(), tmp_path / "head.ckpt", _model_cfg(intensity=True, intensity_au_names=HEAD))
    with pytest.raises(UserError, match="model.intensity_au_names"):
        load_init_checkpoint(_net(intensity_au_names=["AU1"]), _model_cfg(intensity=True, intensity_au_names=["AU1"]),
                             head_path)  # fmt: skip
    with pytest.raises(UserError, match="train.init_checkpoint not found"):
        load_init_checkpoint(_net(), other, str(tmp_path / "missing.ckpt"))


def test_intensity_only_training_keeps_the_occurrence_outputs(tmp_path):
    """An occurrence model's weights into a network with the head, trained a few steps with train.intensity_only:
    the occurrence logits (and every weight and BatchNorm statistic outside the head) are bit-identical after, the
    head's weights moved."""
    import mindspore as ms
    from mindspore import dataset as ds
    from mindspore.train import Model

    from mindface_au.config import Config
    from mindface_au.engine.optim import create_optimizer
    from mindface_au.engine.trainer import freeze_all_but_intensity_head, load_init_checkpoint
    from mindface_au.losses import create_loss

    plain = _randomise(_net(intensity=False, seed=5), 5)
    path = _save(plain, tmp_path / "occurrence.ckpt", _model_cfg())
    model_cfg = _model_cfg(intensity=True, intensity_au_names=HEAD)
    net = _net(seed=6)
    load_init_checkpoint(net, model_cfg, path)
    trainable, frozen = freeze_all_but_intensity_head(net)
    assert trainable == 2 and frozen > 0  # the node head's weight and bias
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    labels = np.concatenate(
        [(rng.random((8, 12)) < 0.5).astype(np.float32), rng.integers(0, 6, (8, len(HEAD))).astype(np.float32)], 1
    )
    net.set_train(False)
    logits_before = net(ms.Tensor(x))[0].asnumpy()
    before = {n: p.asnumpy().copy() for n, p in net.parameters_and_names()}

    cfg = Config()
    cfg.model, cfg.train.intensity_only, cfg.train.lr = model_cfg, True, 0.5
    data = ds.NumpySlicesDataset({"image": x, "label": labels}, shuffle=False).batch(4)
    optimizer = create_optimizer(net, cfg.train, [0.5] * 4)
    net.set_train(True)
    Model(net, loss_fn=create_loss(cfg.loss, model_cfg, intensity_only=True), optimizer=optimizer).train(
        2, data, dataset_sink_mode=False
    )
    net.set_train(False)
    assert np.array_equal(net(ms.Tensor(x))[0].asnumpy(), logits_before)
    for name, param in net.parameters_and_names():
        if name.startswith("intensity_head."):
            assert not np.array_equal(param.asnumpy(), before[name]), name
        else:
            assert np.array_equal(param.asnumpy(), before[name]), name


def test_intensity_only_needs_the_head():
    from mindface_au.engine.trainer import freeze_all_but_intensity_head

    with pytest.raises(UserError, match="no intensity head"):
        freeze_all_but_intensity_head(_net(intensity=False))


# ---- cv: per-fold tables and the mean over folds ----


def _fold(icc1, icc2, mae=0.5):
    return {
        "icc": {"AU1": icc1, "AU6": icc2}, "pcc": {"AU1": icc1, "AU6": icc2}, "mae": {"AU1": mae, "AU6": mae},
        "mean_icc": None, "mean_pcc": None, "mean_mae": mae, "mean_aus": {}, "coded_frames": {},
        "au_names": ["AU1", "AU6"],
    }  # fmt: skip


def test_cv_intensity_mean_over_folds_skips_na():
    from mindface_au.engine.cv import format_intensity_tables, intensity_fold_means

    folds = {"fold1": _fold(0.5, None), "fold2": _fold(0.25, 0.75), "fold3": None}
    mean = intensity_fold_means(folds)
    assert mean["icc"] == {"AU1": 0.375, "AU6": 0.75} and mean["folds"]["icc"] == {"AU1": 2, "AU6": 1}
    assert mean["mean_icc"] == pytest.approx((0.375 + 0.75) / 2) and mean["mean_mae"] == 0.5
    text = format_intensity_tables(folds)
    lines = text.splitlines()
    assert lines[0].split() == ["Val", "Set", "AU1", "AU6", "ICC"]
    assert lines[1].split() == ["Fold-1", "0.50", "n/a", "0.50", "(mean", "over", "1", "of", "2", "AUs)"]
    assert lines[3].split() == ["Fold-3", "n/a", "n/a", "n/a"]
    assert lines[4].split()[:4] == ["Mean", "0.38", "0.75", "0.56"] and "over 2 of 3 folds" in lines[4]
    assert "MAE" in text and "PCC" in text
    assert intensity_fold_means({"fold1": None}) is None


def test_run_cv_carries_intensity_per_fold(tmp_path):
    from mindface_au.config import Config
    from mindface_au.engine.cv import run_cv

    cfg = Config()
    cfg.model.intensity = True
    cfg.data.au_names = ["AU1", "AU6"]
    cfg.train.epochs = 1
    folds = {"fold1": _fold(0.5, None), "fold2": _fold(0.25, 0.75)}

    def fake_train(split_cfg, overwrite=False, **_):
        split = os.path.basename(split_cfg.train.out_dir)
        record = {"epoch": 1, "val_per_au": {"AU1": 0.5, "AU6": 0.5}, "val_intensity": folds[split]}
        return {"epochs": [record], "best": {"epoch": 1}}

    summary = run_cv(cfg, str(tmp_path), ["fold1", "fold2"], train_fn=fake_train)
    assert summary["intensity"] == folds and summary["intensity_mean"]["icc"] == {"AU1": 0.375, "AU6": 0.75}
    saved = json.load(open(tmp_path / "cv.json"))
    assert saved["intensity"]["fold1"]["icc"]["AU6"] is None


# ---- the evidence baseline ----


def test_training_mean_baseline_against_numpy(tmp_path):
    """Each AU predicted as its coded training mean: MAE as numpy computes it, ICC 0, PCC n/a (constant
    predictions), AU25 (constant labels) no ICC."""
    from mindface_au.engine.evaluator import training_mean_baseline

    train, val = _videos(tmp_path, (6, 5), seed=3), _videos(tmp_path, (4, 3), seed=4)
    result = training_mean_baseline(train, val, HEAD)
    t_train = np.concatenate([v.intensity for v in train]).astype(np.float64)
    t_val = np.concatenate([v.intensity for v in val]).astype(np.float64)
    for k, name in enumerate(HEAD):
        mean = t_train[t_train[:, k] >= 0, k].mean()
        keep = t_val[:, k] >= 0
        assert result["train_mean"][name] == pytest.approx(mean, abs=1e-12)
        assert result["mae"][name] == pytest.approx(np.mean(np.abs(t_val[keep, k] - np.float32(mean))), abs=1e-6)
        assert result["pcc"][name] is None
        assert result["icc"][name] is None if name == "AU25" else result["icc"][name] == pytest.approx(0, abs=1e-6)
    assert json.loads(json.dumps(result))["mean_pcc"] is None


def test_evidence_tool_refuses_a_model_without_the_head(tmp_path):
    """tools/intensity_evidence.py as a user runs it: an occurrence-only model file is one line, exit 2."""
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = _save(_net(intensity=False), tmp_path / "occurrence.ckpt", _model_cfg())
    config = tmp_path / "c.yaml"
    config.write_text("train:\n  epochs: 1\n")
    tool = os.path.join(root, "tools", "intensity_evidence.py")
    proc = subprocess.run(
        [sys.executable, tool, "--config", str(config), "--model", path],
        capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": root},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert (
        proc.stderr.strip().splitlines()[-1]
        == f"error: {path}: the model has no intensity head (model.intensity false)"
    )


# ---- eval: the command's text and JSON output (the model loader and the data reader stubbed) ----


class _StubModel:
    """What `eval` needs of an InferenceModel with the head (the inference contract: `predict_outputs`,
    `intensity_au_names`), running a tiny network in memory."""

    def __init__(self, net, mf):
        from mindface_au.modelfile.loader import AUProbabilities

        self.prob = AUProbabilities(net)
        self.prob.set_train(False)
        self.face_input, self.input_size = mf.preprocessing, mf.preprocessing.size
        self.au_names = list(mf.model_config.au_names)
        self.intensity_au_names = list(mf.model_config.intensity_au_names)

    def predict_outputs(self, x, pad=False):
        import mindspore as ms

        probs, levels = self.prob(ms.Tensor(x))
        return probs.asnumpy(), levels.asnumpy()

    def card_text(self):
        return "# a tiny model"


def test_eval_prints_and_json_carries_intensity(tmp_path, monkeypatch, cli_in_process):
    """`mindface-au eval` of a model with the head: ICC/PCC/MAE rows after the F1 lines, and --json's "intensity"
    equal to numpy on the model's predictions, null ICC/PCC for the constant-label AU25."""
    import mindface_au.engine.evaluator as evaluator
    import mindface_au.modelfile.loader as loader
    from mindface_au.modelfile.reader import read_model_file

    net = _net(seed=7)
    path = _save(net, tmp_path / "head.ckpt", _model_cfg(intensity=True, intensity_au_names=HEAD))
    videos = _videos(tmp_path, (6, 4), seed=5)
    stub = _StubModel(net, read_model_file(path))
    monkeypatch.setattr(evaluator, "split_videos", lambda cfg: ([], videos))
    monkeypatch.setattr(loader, "load_inference_model", lambda *a, **k: stub)
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  eval_batch_size: 16\n  num_workers: 1\n")

    proc = cli_in_process("eval", "--config", config, "--model", path, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["intensity"]
    from mindface_au.config import load_config

    _, outputs = evaluator.predict_video_outputs(stub, videos, load_config(str(config)).data)
    pred = np.concatenate([p for _, p in outputs]).astype(np.float64)
    truth = np.concatenate([v.intensity for v in videos]).astype(np.float64)
    for k, name in enumerate(HEAD):
        keep = truth[:, k] >= 0
        assert result["mae"][name] == pytest.approx(np.mean(np.abs(pred[keep, k] - truth[keep, k])), abs=1e-6)
        if name != "AU25":
            assert result["icc"][name] == pytest.approx(_icc_3_1(truth[keep, k], pred[keep, k]), abs=1e-6)
            assert result["pcc"][name] == pytest.approx(np.corrcoef(truth[keep, k], pred[keep, k])[0, 1], abs=1e-6)
    assert result["icc"]["AU25"] is None and result["pcc"]["AU25"] is None and '"AU25": null' in proc.stdout

    text = cli_in_process("eval", "--config", config, "--model", path)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("intensity"))
    assert lines[head].split() == ["intensity", *HEAD, "mean"]
    icc = lines[head + 1].split()
    assert icc[0] == "ICC" and icc[4] == "n/a" and "(mean over 3 of 4 AUs)" in lines[head + 1]
    assert icc[1] == f"{result['icc']['AU1']:.2f}" and icc[5] == f"{result['mean_icc']:.2f}"
    assert lines[head + 3].split()[0] == "MAE" and "n/a" not in lines[head + 3]


def test_train_refuses_an_init_checkpoint_of_another_network(tiny_synthau, tmp_path, cli):
    """`mindface-au train` with train.init_checkpoint of another architecture: one line naming both, exit 2, and
    no run directory written."""
    from helpers import tiny_config

    other = dict(input_size=64)  # the config trains the tiny network at 32 px
    path = _save(_net(intensity=False, **other), tmp_path / "other.ckpt", _model_cfg(**other))
    config = tiny_config(tiny_synthau, tmp_path / "c.yaml", init_checkpoint=path)
    run = tmp_path / "run"
    proc = cli("train", "--config", config, "--out", run, "--device", "CPU")
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f"error: {path}: train.init_checkpoint is aunet_iresnet18 on " in last
    assert last.endswith("no head: the architectures differ (model.input_size 64 in the file, 32 in the config)")
    assert not run.exists()
