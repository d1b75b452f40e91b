"""cv's table and summary never average a fold without a score, nor an AU without coded frames (issue 26 item 4)."""

import json

import numpy as np
import pytest

from mindface_au.au_sets import DISFA_AUS
from mindface_au.engine.cv import format_table1, run_cv


def test_mean_row_skips_an_empty_fold_and_an_uncoded_au():
    rng = np.random.default_rng(1)
    rows = {f"fold{k}": dict(zip(DISFA_AUS, rng.random(8).tolist())) for k in (1, 2, 3)}
    rows["fold2"] = dict.fromkeys(DISFA_AUS)  # a fold with no score at all
    rows["fold3"]["AU9"] = None  # AU9 not coded in fold 3's validation part
    lines = format_table1(rows, mean_row=True).splitlines()
    assert lines[2].split()[1:] == ["n/a"] * 9  # Fold-2: every AU and its mean n/a
    fold3 = lines[3].split()
    assert fold3[1 + DISFA_AUS.index("AU9")] == "n/a"
    expect3 = 100 * np.mean([v for v in rows["fold3"].values() if v is not None])
    assert fold3[9] == f"{expect3:.2f}" and lines[3].endswith("(mean over 7 of 8 AUs)")
    mean = lines[-1].split()
    assert mean[0] == "Mean" and lines[-1].endswith("(over 2 of 3 folds; the others have no score)")
    per_au = [
        np.mean([rows[f][a] for f in ("fold1", "fold3") if rows[f][a] is not None]) * 100 for a in DISFA_AUS
    ]  # fold 2 left out; AU9 from fold 1 only
    assert mean[1:9] == [f"{v:.2f}" for v in per_au]
    assert mean[9] == f"{np.mean(per_au):.2f}"


def test_run_cv_goes_on_past_a_fold_with_an_empty_validation_part(tmp_path, capsys):
    from mindface_au.config import AU_NAMES, Config
    from mindface_au.engine.validation import EmptyValidationPart

    def fake_train(cfg, **kwargs):
        if cfg.data.split == "fold2":
            raise EmptyValidationPart(f"{cfg.data.root}: the validation part of data.split fold2 has no frame")
        per_au = {n: 0.5 for n in AU_NAMES}
        per_au["AU26"] = None
        return {"epochs": [{"epoch": 1, "val_per_au": per_au}], "best": {"epoch": 1, "mean_f1": 0.5}}

    summary = run_cv(Config(), str(tmp_path), splits=["fold1", "fold2", "fold3"], train_fn=fake_train)
    assert summary["unscored"] == ["fold2"] and "fold2: not trained, no score" in capsys.readouterr().err
    saved = json.load(open(tmp_path / "cv.json"))
    assert saved["mean_f1"] == {"fold1": pytest.approx(0.5), "fold2": None, "fold3": pytest.approx(0.5)}
    assert saved["splits"]["fold2"] == dict.fromkeys(AU_NAMES) and saved["splits"]["fold1"]["AU26"] is None
    mean = format_table1(summary["splits"], mean_row=True).splitlines()[-1]
    assert mean.split()[1:13] == ["50.00"] * 11 + ["n/a"] and "(over 2 of 3 folds" in mean
