"""mindface-au: facial action unit detection on MindSpore (LRP + graph ARL + feature fusion, ABAW5)."""

# The one place the version is written: setup.py reads this line; a test checks CITATION.cff against it.
__version__ = "0.1.0"

__all__ = ["AU_NAMES", "__version__", "Predictor"]


def __getattr__(name):
    # Lazy so that `import mindface_au` stays light (no MindSpore import) for config and data tools, and so that
    # `python -m mindface_au` reaches its signal handlers before any import that takes time.
    if name == "AU_NAMES":
        from mindface_au.config import AU_NAMES

        return AU_NAMES
    if name == "Predictor":
        from mindface_au.inference.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'mindface_au' has no attribute {name!r}")
