"""Model zoo: IResNet backbones and the AU detection network, built by name through the registry."""

from mindface_au.models import iresnet  # noqa: F401  (registers iresnet18 ... iresnet200)
from mindface_au.models.aunet import AUNet, create_aunet  # registers aunet_iresnet*
from mindface_au.models.build import build_network, create_model_from_config
from mindface_au.models.factory import create_model
from mindface_au.models.iresnet import IResNet, create_iresnet
from mindface_au.models.registry import default_face_input, face_input, get_default_cfg, list_models, register_model

__all__ = ["create_model", "list_models", "register_model", "get_default_cfg", "IResNet", "create_iresnet"]
__all__ += ["AUNet", "create_aunet", "create_model_from_config", "build_network", "face_input", "default_face_input"]
