"""mindface-au: facial action unit detection on MindSpore (LRP + graph ARL + feature fusion, ABAW5)."""

from mindface_au.config import AU_NAMES

__version__ = "0.1.0"

__all__ = ["AU_NAMES", "__version__", "Predictor"]


def __getattr__(name):
    # Lazy so that `import mindface_au` stays light (no MindSpore import) for config and data tools.
    if name == "Predictor":
        from mindface_au.inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'mindface_au' has no attribute {name!r}")
