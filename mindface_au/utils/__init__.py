"""Small shared helpers (atomic file output, device context)."""

from mindface_au.utils.io import atomic_path, atomic_write

__all__ = ["atomic_path", "atomic_write"]
