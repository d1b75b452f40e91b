"""The model loader's former home: it lives in `mindface_au.modelfile.loader` (below the engine); its public names
stay importable from here."""

from mindface_au.modelfile import loader as _loader
from mindface_au.modelfile.loader import *  # noqa: F403 - the same public names, listed once in modelfile.loader

__all__ = list(_loader.__all__)
