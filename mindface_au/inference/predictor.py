"""`Predictor`: AU probabilities (and intensities, for a model with the intensity head) from a checkpoint (.ckpt),
a MindIR file or an ONNX file, for Python users.

    from mindface_au import Predictor
    predictor = Predictor("runs/synthau/best.ckpt")           # or model.mindir, model.onnx
    probs = predictor.predict_images([cv2.imread("face.jpg")])  # (N, C), C = len(predictor.au_names); NaN: no face
    probs, intensities = predictor.predict_images(images, intensity=True)  # + (N, K) 0-5, K = intensity_au_names
    rows = predictor.predict_video("clip.mp4")                  # one dict per frame and face (the CSV columns)

The model is loaded by `mindface_au.inference.loader.load_inference_model` (the loader `eval`, `predict`,
`detect` and `bench` use) and faces are preprocessed by `mindface_au.data.transforms.preprocess_faces` with the
model's own input size and normalisation, so every format gives the same numbers. Videos stream through
`mindface_au.inference.detect.iter_detections`, the one streaming loop `detect` runs too.
"""

import sys
from typing import Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from mindface_au.config import Config, ModelConfig
from mindface_au.data.transforms import preprocess_faces
from mindface_au.errors import UserError
from mindface_au.inference.loader import InferenceModel, load_inference_model

__all__ = ["Predictor"]

Outputs = Union[np.ndarray, Tuple[np.ndarray, Optional[np.ndarray]]]  # probabilities, or (probabilities, intensities)


class Predictor:
    """AU probabilities from a .ckpt, .mindir or .onnx file.

    Args:
        path: training checkpoint (.ckpt), exported MindIR (.mindir) or ONNX (.onnx) file.
        device: "auto", "CPU", "GPU" or "Ascend" (MindSpore, set once per process); auto, CPU or GPU for ONNX.
        config: for a .ckpt without an embedded config: YAML path, Config or ModelConfig.
        batch_size: faces per forward pass (a MindIR file runs at the batch size it was exported with).
        threads: ONNX Runtime threads (0 = all cores).
        show_card: print the model card (AU set, face crop, what it was trained on) to stderr on start.

    Attributes include `au_names` (the output columns), `intensity_au_names` (the intensity head's columns, 0-5;
    empty for a model without the head: its `intensity=True` results give None), `card` (the model card dict, or
    None), `crop` and `file`
    (what the model-file reader read: preprocessing, evaluation settings, sha256; mindface_au.inference.model_file).
    """

    def __init__(
        self,
        path: Union[str, InferenceModel],
        device: str = "auto",
        config: Union[None, str, Config, ModelConfig] = None,
        batch_size: int = 32,
        threads: int = 0,
        show_card: bool = True,
    ) -> None:
        if isinstance(path, InferenceModel):
            self.model = path
        else:
            self.model = load_inference_model(
                path, device=device, threads=threads, config=config, batch_size=batch_size
            )
        model = self.model
        if not model.au_names:
            raise UserError(f"{model.path}: {model.model_config.name} outputs an embedding, not AU probabilities")
        self.path = model.path
        self.kind = model.kind
        self.device = model.device
        self.au_names = list(model.au_names)
        self.intensity_au_names = list(model.intensity_au_names)
        self.card = model.card
        self.crop = model.crop
        if show_card:
            print(model.card_text(), file=sys.stderr, flush=True)
        self.model_config = model.model_config
        self.file = model.file
        self.face_input = model.face_input
        self.input_size = model.input_size

    @property
    def batch_size(self) -> int:
        return self.model.batch_size

    @property
    def backend(self) -> str:
        return self.model.backend

    # ----------------------------------------------------------------------------------------------- core
    def predict(self, x: np.ndarray, pad: bool = False) -> np.ndarray:
        """(N, 3, S, S) normalised float32 -> (N, C) probabilities, columns `self.au_names` (InferenceModel.predict)."""
        return self.model.predict(x, pad=pad)

    predict_array = predict

    def predict_outputs(self, x: np.ndarray, pad: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """(N, 3, S, S) normalised float32 -> (probabilities (N, C), intensities (N, K) on the 0-5 scale, columns
        `self.intensity_au_names`, or None for a model without the intensity head)."""
        return self.model.predict_outputs(x, pad=pad)

    def predict_faces(self, crops: Sequence[np.ndarray], rgb: bool = False, intensity: bool = False) -> Outputs:
        """Aligned face crops (BGR uint8 unless `rgb`) -> (N, C) probabilities, columns `self.au_names`; with
        `intensity`, (probabilities, intensities) as `predict_outputs` gives them."""
        x = preprocess_faces(crops, self.face_input, rgb=rgb)
        return self.predict_outputs(x) if intensity else self.predict(x)

    def predict_images(
        self,
        images: Iterable[np.ndarray],
        aligned: bool = False,
        detector: str = "mtcnn",
        rgb: bool = False,
        intensity: bool = False,
    ) -> Outputs:
        """Whole images (BGR uint8 unless `rgb`) -> (N, C) probabilities of the largest face in each; with
        `intensity`, (probabilities, intensities (N, K) or None without the head).

        Rows are NaN where no face was found. `aligned=True` treats each image as an aligned face crop.
        """
        images = list(images)
        if aligned:
            return self.predict_faces(images, rgb=rgb, intensity=intensity)
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
        heads = np.full((len(images), len(self.intensity_au_names)), np.nan, dtype=np.float32)
        if crops:
            probs, intensities = self.predict_faces(crops, intensity=True)
            out[where] = probs
            if intensities is not None:
                heads[where] = intensities
        if not intensity:
            return out
        return out, (heads if self.intensity_au_names else None)

    def predict_video(self, path: str, threshold: Optional[float] = None, **options) -> List[dict]:
        """Rows ({column: value}, the `detect` CSV columns, with its AUxx_intensity columns for a model with the
        intensity head) for every processed frame and face of a video, image or
        folder; the 0/1 columns at `threshold` (None: the threshold the model file was validated with).

        `options` go to `mindface_au.inference.detect.iter_detections` (aligned, detector, all_faces,
        min_face_size, every, detect_size). Every row is kept in memory: for long videos stream to a CSV with
        `detect`.
        """
        from mindface_au.inference.detect import iter_detections
        from mindface_au.inference.detect.model import model_threshold

        if threshold is None:
            threshold = model_threshold(self.file)
        return [row.as_dict(threshold) for row in iter_detections(path, self.model, **options)]

    def describe(self) -> str:
        return self.model.describe()
