"""PyTorch reference networks for parity checks (needs the optional `torch` extra).

Importing this package does not import torch; `import mindface_au.reference.torch_iresnet` does, and
`require_torch()` turns a missing PyTorch into a one-line UserError.
"""

from mindface_au.errors import UserError

__all__ = ["require_torch"]


def require_torch(purpose: str):
    """Import and return torch, or raise a UserError saying `purpose` needs it."""
    try:
        import torch
    except ImportError:
        raise UserError(f"{purpose} needs PyTorch; install it with pip install 'mindface-au[torch]'") from None
    return torch
