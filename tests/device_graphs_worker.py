"""One training step as engine/trainer.py builds it, and a script that dumps its compiled graphs (IR).

`train_one_step(cfg)` repeats the trainer's set-up (runtime resolution, jit level, BatchNorm mode, PReLU form,
optimiser, AMP and loss scale, Model) on a tiny in-memory batch and runs one step. Run as a script
(`python device_graphs_worker.py OUT_DIR KIND...`, with MS_DEV_SAVE_GRAPHS=1, MS_DEV_SAVE_GRAPHS_PATH=OUT_DIR and
MS_DEV_DUMP_IR_PASSES=validate) it compiles each KIND (forward, O0, O2, dp) and moves that compile's
`*_validate_*.ir` files into OUT_DIR/KIND; `dp` runs under msrun (2 workers), whose ranks write to
OUT_DIR/rank_N. Not collected by pytest.
"""

import glob
import os
import shutil
import sys

import numpy as np
from helpers import load_tiny_config, tiny_aunet  # tests/ is on sys.path: pytest's, or this script's folder

BATCH = 4


def build_step(cfg, device="CPU", world_size=1):
    """(Model, dataset) of one training step, set up as engine/trainer.py does."""
    import mindspore as ms
    import mindspore.dataset as ds
    from mindspore.train import Model

    from mindface_au.engine.distributed import freeze_batchnorm, sync_batchnorm
    from mindface_au.engine.optim import create_optimizer, create_scheduler
    from mindface_au.engine.runtime import amp_rewrite_folder, apply_jit_level, resolve_runtime
    from mindface_au.losses import create_loss
    from mindface_au.models import create_model_from_config
    from mindface_au.models.iresnet import set_prelu_form

    runtime = resolve_runtime(cfg.train, device, world_size, BATCH)
    ms.set_seed(0)
    net = create_model_from_config(cfg.model)
    apply_jit_level(runtime.jit_level, net)
    if cfg.train.sync_bn:
        sync_batchnorm(net)
    elif cfg.train.freeze_bn:
        freeze_batchnorm(net)
    if cfg.train.prelu_form != "native":
        set_prelu_form(net, cfg.train.prelu_form)
    optimizer = create_optimizer(net, cfg.train, create_scheduler(cfg.train, 1), runtime.optimizer_loss_scale)
    manager = runtime.loss_scale_manager()
    kwargs = {"loss_scale_manager": manager} if manager is not None else {}
    with amp_rewrite_folder(runtime.amp_level):
        loss_fn = create_loss(cfg.loss, cfg.model, intensity_only=cfg.train.intensity_only)
        model = Model(net, loss_fn, optimizer=optimizer, amp_level=runtime.amp_level, **kwargs)
    rng = np.random.default_rng(0)
    size = cfg.model.input_size
    labels = (rng.random((BATCH, cfg.model.num_classes)) < 0.3).astype(np.float32)
    if cfg.model.intensity:  # occurrence, then the intensities (0-5) of the head's AUs, as the trainer's batches
        levels = rng.integers(0, 6, (BATCH, len(cfg.model.intensity_au_names))).astype(np.float32)
        labels = np.concatenate([labels, levels], axis=1)
    data = ds.NumpySlicesDataset(
        {"image": rng.uniform(-1, 1, (BATCH, 3, size, size)).astype(np.float32), "label": labels}, shuffle=False
    ).batch(BATCH)
    return model, data, net


def train_one_step(cfg, device="CPU", world_size=1):
    """Compile and run one training step; returns (loss, net)."""
    from mindspore.train import Callback

    model, data, net = build_step(cfg, device, world_size)
    losses = []

    class Keep(Callback):
        def on_train_step_end(self, run_context):
            out = run_context.original_args().net_outputs
            losses.append(float((out[0] if isinstance(out, (tuple, list)) else out).asnumpy()))

    model.train(1, data, callbacks=[Keep()], dataset_sink_mode=False)
    return losses[0], net


def _collect(out_dir, kind):
    """Move the validate IR files written so far directly under out_dir into out_dir/kind."""
    target = os.path.join(out_dir, kind)
    os.makedirs(target, exist_ok=True)
    for path in glob.glob(os.path.join(out_dir, "*_validate_*.ir")):
        shutil.move(path, os.path.join(target, os.path.basename(path)))


def main(out_dir, kinds):
    import mindspore as ms

    from mindface_au.utils.device import init_context

    init_context("CPU", "graph")
    for kind in kinds:
        if kind == "forward":
            net = create_tiny_net()
            net.set_train(False)
            net(ms.Tensor(np.zeros((2, 3, 32, 32), np.float32)))
            _collect(out_dir, kind)
        elif kind == "dp":  # under msrun, MindSpore writes each rank's graphs to OUT_DIR/rank_<rank>
            from mindface_au.engine.distributed import init_distributed

            _, world = init_distributed()
            train_one_step(load_tiny_config(), world_size=world)
        else:
            train_one_step(load_tiny_config(None, [f"train.amp_level={kind}"]))
            _collect(out_dir, kind)
        print(f"compiled {kind}", flush=True)


def create_tiny_net():
    return tiny_aunet()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
