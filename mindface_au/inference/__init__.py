"""AU detection for users: face detection and alignment, `Predictor`, streaming `detect` to CSV, MindIR export.

Submodules import MindSpore only when used: `faces` (MTCNN / Haar / ArcFace alignment / IoU tracking),
`predictor` (`Predictor` from a .ckpt or .mindir), `detect` (images, folders, videos -> CSV), `export` (MindIR).
"""

__all__ = ["Predictor", "detect", "export_mindir"]


def __getattr__(name):
    if name == "Predictor":
        from mindface_au.inference.predictor import Predictor

        return Predictor
    if name == "detect":
        from mindface_au.inference.detect import detect

        return detect
    if name == "export_mindir":
        from mindface_au.inference.export import export_mindir

        return export_mindir
    raise AttributeError(f"module 'mindface_au.inference' has no attribute {name!r}")
