"""`Predictor`: AU probabilities from a trained checkpoint (.ckpt) or an exported MindIR file, for Python users.

    from mindface_au import Predictor
    predictor = Predictor("runs/synthau/best.ckpt")           # network rebuilt from the config inside the ckpt
    probs = predictor.predict_images([cv2.imread("face.jpg")])  # (N, 12), NaN rows where no face was found
    rows = predictor.predict_video("clip.mp4")                  # one dict per frame and face (the CSV columns)

A training checkpoint embeds its ModelConfig, so the checkpoint alone rebuilds the network; a MindIR file carries
its input size and batch size in its metadata (written by `export_mindir`). Both paths share the preprocessing of
evaluation (BGR -> RGB, resize to the input size, (x - 127.5) / 127.5, HWC -> CHW) and output sigmoid
probabilities computed inside the network, so a ckpt and its MindIR give identical numbers.
"""

import dataclasses
import json
import os
from typing import Iterable, List, Sequence, Union

import cv2
import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mindface_au.config import AU_NAMES, Config, ModelConfig, load_config
from mindface_au.errors import UserError

__all__ = ["Predictor", "AUProbabilities", "load_model_config", "preprocess_faces", "MINDIR_INFO_KEY"]

MINDIR_INFO_KEY = "mindface_au"  # user_info key of the JSON metadata stored in exported MindIR files


class AUProbabilities(nn.Cell):
    """Wrap a logits network: (B, 3, S, S) normalised RGB -> (B, 12) sigmoid probabilities (what MindIR outputs)."""

    def __init__(self, logits_net: nn.Cell) -> None:
        super().__init__()
        self.net = logits_net
        self.sigmoid = ops.Sigmoid()

    def construct(self, x):
        return self.sigmoid(self.net(x))


def load_model_config(ckpt_path: str, config: Union[None, str, Config, ModelConfig] = None) -> ModelConfig:
    """The ModelConfig for a checkpoint: `config` if given (YAML path, Config or ModelConfig), else the one embedded
    in the checkpoint by training; a UserError if neither exists."""
    if isinstance(config, ModelConfig):
        return dataclasses.replace(config)
    if isinstance(config, Config):
        return dataclasses.replace(config.model)
    if isinstance(config, str) and config:
        return load_config(config).model
    from mindface_au.models.checkpoint import read_model_config

    embedded = read_model_config(ckpt_path)
    if embedded is None:
        raise UserError(f"{ckpt_path}: checkpoint has no embedded model config; pass --config with its model section")
    valid = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(embedded) - valid)
    if unknown:
        raise UserError(f"{ckpt_path}: embedded model config has unknown keys {', '.join(unknown)}; pass --config")
    return ModelConfig(**embedded)


def preprocess_faces(crops: Sequence[np.ndarray], size: int, rgb: bool = False) -> np.ndarray:
    """Face crops (H, W, 3) uint8, BGR unless `rgb` -> (N, 3, size, size) float32 as in evaluation."""
    out = np.empty((len(crops), 3, size, size), dtype=np.float32)
    for i, crop in enumerate(crops):
        img = np.asarray(crop)
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if img.ndim != 3 or img.shape[2] not in (3, 4):
            raise UserError(f"image {i}: expected an (H, W, 3) array, got shape {img.shape}")
        img = img[:, :, :3]
        if img.dtype != np.uint8:
            img = np.clip(img, 0, 255).astype(np.uint8)
        if img.shape[0] != size or img.shape[1] != size:
            shrink = img.shape[0] > size or img.shape[1] > size
            img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        if not rgb:
            img = img[:, :, ::-1]
        out[i] = ((img.astype(np.float32) - 127.5) / 127.5).transpose(2, 0, 1)
    return out


class Predictor:
    """AU probabilities from a .ckpt (network rebuilt from its embedded or the given config) or a .mindir file.

    Args:
        path: training checkpoint (.ckpt) or exported MindIR (.mindir).
        device: "auto", "CPU", "GPU" or "Ascend" (set once per process).
        config: for a .ckpt without an embedded config (or to override it): YAML path, Config or ModelConfig.
        batch_size: frames per forward pass for a .ckpt; a MindIR runs at the batch size it was exported with.
    """

    def __init__(
        self,
        path: str,
        device: str = "auto",
        config: Union[None, str, Config, ModelConfig] = None,
        batch_size: int = 32,
    ) -> None:
        from mindface_au.utils.device import init_context

        if not os.path.isfile(path):
            raise UserError(f"{path}: model file not found")
        if batch_size < 1:
            raise UserError(f"--batch-size: got {batch_size}, expected a positive integer")
        self.path = path
        self.device = init_context(device)
        self.au_names = list(AU_NAMES)
        if path.lower().endswith(".mindir"):
            self._load_mindir(path)
        else:
            self._load_ckpt(path, config, batch_size)

    def _load_ckpt(self, path: str, config, batch_size: int) -> None:
        from mindface_au.models import create_model_from_config
        from mindface_au.models.checkpoint import load_checkpoint_strict

        model_cfg = load_model_config(path, config)
        model_cfg.backbone_checkpoint = ""  # the trained checkpoint holds the backbone weights too
        net = create_model_from_config(model_cfg)
        load_checkpoint_strict(net, path)
        net.set_train(False)
        self.kind = "ckpt"
        self.model_config = model_cfg
        self.input_size = int(model_cfg.input_size)
        self.batch_size = int(batch_size)
        self.fixed_batch = False
        self.net = AUProbabilities(net)
        self.net.set_train(False)

    def _load_mindir(self, path: str) -> None:
        try:
            proto = ms.load_mindir(path)
            info = json.loads(dict(proto.user_info).get(MINDIR_INFO_KEY, "{}"))
            graph = ms.load(path)
        except Exception as exc:  # noqa: BLE001 - MindSpore raises RuntimeError/ValueError for bad files
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UserError(f"{path}: not a readable MindIR file ({first})") from exc
        if not info:
            raise UserError(f"{path}: MindIR has no mindface-au metadata; export it with `mindface-au export`")
        self.kind = "mindir"
        self.model_config = ModelConfig(**info["model"]) if "model" in info else None
        self.input_size = int(info["input_size"])
        self.batch_size = int(info["batch_size"])
        self.au_names = list(info.get("au_names", AU_NAMES))
        self.fixed_batch = True
        self.net = nn.GraphCell(graph)

    # ----------------------------------------------------------------------------------------------- core
    def predict_array(self, x: np.ndarray, pad: bool = False) -> np.ndarray:
        """(N, 3, S, S) normalised float32 -> (N, 12) probabilities, in batches of `batch_size`.

        A MindIR runs at its fixed batch (the last batch is padded with zeros); a .ckpt pads too when more than
        one batch is needed or `pad` is set (streams), so its graph is compiled for one shape only.
        """
        x = np.ascontiguousarray(x, dtype=np.float32)
        n = x.shape[0]
        if n == 0:
            return np.zeros((0, len(self.au_names)), dtype=np.float32)
        step = self.batch_size if (pad or self.fixed_batch or n > self.batch_size) else n
        outs = []
        for start in range(0, n, step):
            chunk = x[start : start + step]
            real = chunk.shape[0]
            if real < step:
                chunk = np.concatenate([chunk, np.zeros((step - real,) + chunk.shape[1:], np.float32)])
            outs.append(self.net(ms.Tensor(chunk)).asnumpy()[:real])
        return np.concatenate(outs).astype(np.float32)

    def predict_faces(self, crops: Sequence[np.ndarray], rgb: bool = False) -> np.ndarray:
        """Aligned face crops (BGR uint8 unless `rgb`) -> (N, 12) probabilities."""
        return self.predict_array(preprocess_faces(crops, self.input_size, rgb=rgb))

    def predict_images(
        self, images: Iterable[np.ndarray], aligned: bool = False, detector: str = "mtcnn", rgb: bool = False
    ) -> np.ndarray:
        """Whole images (BGR uint8 unless `rgb`) -> (N, 12) probabilities of the largest face in each.

        Rows are NaN where no face was found. `aligned=True` treats each image as an aligned face crop.
        """
        images = list(images)
        if aligned:
            return self.predict_faces(images, rgb=rgb)
        from mindface_au.inference.faces import create_detector

        det = create_detector(detector)
        crops, where = [], []
        for i, img in enumerate(images):
            bgr = np.ascontiguousarray(np.asarray(img)[:, :, ::-1]) if rgb else np.asarray(img)
            faces = det.detect(bgr)
            if faces:
                face = max(faces, key=lambda f: f.area)
                crops.append(det.crop(bgr, face, self.input_size))
                where.append(i)
        out = np.full((len(images), len(self.au_names)), np.nan, dtype=np.float32)
        if crops:
            out[where] = self.predict_faces(crops)
        return out

    def predict_video(self, path: str, threshold: float = 0.5, **options) -> List[dict]:
        """Rows ({column: value}, the `detect` CSV columns) for every frame and face of a video, image or folder.

        `options` go to `mindface_au.inference.detect.iter_detections` (aligned, detector, all_faces,
        min_face_size). Every row is kept in memory: for long videos stream to a CSV with `detect`.
        """
        from mindface_au.inference.detect import iter_detections

        return [row.as_dict(threshold) for row in iter_detections(path, self, **options)]

    def describe(self) -> str:
        name = self.model_config.name if self.model_config is not None else "model"
        return f"{name} from {os.path.basename(self.path)} ({self.kind}, input {self.input_size}, device {self.device})"
