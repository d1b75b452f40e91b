"""Training, evaluation, prediction (voting, challenge files), cross-validation and the demo.

- `trainer.train(cfg, resume=..., distributed=...)`: Model.train with callbacks into a run directory.
  Its parts: `run_dir.RunDirectory` (the run's files), `optim.create_scheduler` / `optim.create_optimizer`,
  `callbacks` (progress, per-epoch validation and checkpoints, skipped images), `validation` (per-epoch F1),
  `runtime` (device, sink mode, jit level, AMP and loss scaling), `distributed` (msrun data parallel).
- `evaluator.evaluate(cfg, ckpt, prob_k, label_k, do_sweep)`: per-AU F1 with the paper's smoothing and k sweep.
- `predict.predict(cfg, ckpts, split, out_dir, vote)`: one ABAW txt per video, voting over checkpoints.
- `cv.run_cv(cfg, out_root)`: the official split and the four folds, Table 1.
- `demo.run_demo(out_dir)`: SynthAU end to end.

Submodules import MindSpore; import them directly (this package stays light).
"""
