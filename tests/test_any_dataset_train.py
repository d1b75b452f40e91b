"""The library end to end on SynthAU in the BP4D layout: train the tiny network, evaluate, and cv on DISFA folds."""

import numpy as np
import pytest
from helpers import tiny_overrides

from mindface_au.au_sets import BP4D_AUS, DISFA_AUS
from mindface_au.config import load_config
from mindface_au.data.synthau import write_synthau
from mindface_au.errors import UserError

TINY = tiny_overrides()


def bp4d_config(tmp_path):
    write_synthau(str(tmp_path / "b"), format="bp4d", frames=40, seed=2, subjects_per_part=1)
    over = [f"model.au_names=[{', '.join(BP4D_AUS)}]", "data.format=bp4d", f"data.root={tmp_path / 'b'}"]
    over += ["data.split=fold1", "data.rare_aus=[AU14, AU17]", "data.batch_size=8", "data.sample_rate=1.0"]
    over += ["data.num_workers=1", "train.epochs=1", f"train.out_dir={tmp_path / 'run'}", "train.lr=0.01"]
    return load_config(None, TINY + over)


def test_train_and_evaluate_follow_the_bp4d_au_set(tmp_path):
    from mindface_au.engine.evaluator import evaluate
    from mindface_au.engine.trainer import train
    from mindface_au.inference.loader import checkpoint_model_config

    cfg = bp4d_config(tmp_path)
    result = train(cfg)
    record = result["epochs"][-1]
    assert list(record["val_per_au"]) == list(BP4D_AUS)
    ckpt = str(tmp_path / "run" / "checkpoints" / "best.ckpt")
    assert checkpoint_model_config(ckpt).au_names == list(BP4D_AUS)  # the AU set travels in the checkpoint
    scores = evaluate(cfg, ckpt)
    assert list(scores["per_au"]) == list(BP4D_AUS) and 0.0 <= scores["mean_f1"] <= 1.0
    np.testing.assert_allclose(scores["mean_f1"], record["val_mean_f1"], atol=1e-6)
    write_synthau(str(tmp_path / "d"), format="disfa", frames=12, seed=2, subjects_per_part=1)
    over = [f"model.au_names=[{', '.join(DISFA_AUS)}]", "data.format=disfa", f"data.root={tmp_path / 'd'}"]
    disfa = load_config(None, TINY + over + ["data.rare_aus=[AU9]", "model.arl_k=3"])
    with pytest.raises(UserError, match="the model predicts AU1, AU2, AU4, AU6, AU7, AU10, AU12, AU14.*differ"):
        evaluate(disfa, ckpt)


def test_cv_runs_the_three_disfa_folds_and_prints_the_table(tmp_path):
    from mindface_au.engine.cv import format_table1, run_cv

    cfg = load_config(None, [f"model.au_names=[{', '.join(DISFA_AUS)}]", "data.format=disfa", "data.rare_aus=[AU9]"])
    seen = []

    def fake_train(split_cfg, **_):
        seen.append(split_cfg.data.split)
        per_au = {au: 0.1 * (i + 1) for i, au in enumerate(DISFA_AUS)}
        return {"epochs": [{"epoch": 1, "val_per_au": per_au}], "best": {"epoch": 1}}

    summary = run_cv(cfg, str(tmp_path), train_fn=fake_train)
    assert seen == ["fold1", "fold2", "fold3"]
    assert format_table1(summary["splits"], mean_row=True).splitlines()[-1].split()[0] == "Mean"
