"""AU detection for users: one loader for every model file, face detection and alignment, `Predictor`, streaming
`detect` to CSV, MindIR/ONNX export.

Submodules import MindSpore only when used: `loader` (`load_inference_model`: .ckpt, .mindir, .onnx), `faces`
(MTCNN / Haar / ArcFace alignment / IoU tracking), `predictor` (`Predictor`), `detect` (a package: images,
folders, videos, folders of videos -> CSV, overlay, report), `export` (MindIR and ONNX, int8), `fold` (BatchNorm
folding for inference).
"""

__all__ = ["Predictor", "detect", "export_model", "export_network", "load_inference_model"]

_WHERE = {
    "Predictor": "predictor",
    "detect": "detect",
    "export_model": "export",
    "export_network": "export",
    "load_inference_model": "loader",
}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"mindface_au.inference.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'mindface_au.inference' has no attribute {name!r}")
