"""AUNet: the paper's AU detector, IResNet backbone + LRP + graph ARL + feature fusion.

Yu et al., "Local Region Perception and Relationship Learning Combined with Feature Fusion for Facial Action
Unit Detection", CVPRW 2023 (ABAW5). Data flow, with the attribute that holds each part:

    image -> backbone.forward_features -> map (B, C, h, w)
      AU branch (model.arl):       lrp(map) -> node_features -> graph -> au_head -> AU logits (B, 12)
      backbone branch:             backbone.forward_head(map) -> backbone token (B, E) -> backbone_head -> logits
      fusion (model.fusion):       w = fusion(backbone token, AU tokens); logits = w * AU + (1 - w) * backbone

What each switch combination means (the rows of the paper's Table 3 and the fixed-fusion variant):

- arl off, fusion none: the baseline "IResNet100 + classifier head": backbone embedding -> FC -> 12 logits.
- arl on, fusion none: AU logits only; the backbone branch is not built and the IResNet's own embedding layers
  (bn2, fc, features) are frozen because nothing reads them (they stay so a Glint360K checkpoint loads strictly).
- lrp on, arl on: the attention map gates the map that feeds the AU branch only; the backbone branch keeps the
  raw map (paper Fig. 1: the backbone output goes to two branches, LRP sits on the AU branch).
- lrp on, arl off: there is no AU branch, so the attention gates the map that feeds the backbone head, the only
  branch left (the LANets then learn a spatial attention for the whole-face classifier). No Table 3 row uses it.
- fusion fixed / transformer: both branches are built; fusion needs the AU branch, so arl off with fusion on is
  a configuration error.

With `intensity_au_names` (model.intensity) the network also has an intensity head (models/intensity.py) and
construct returns (logits, intensity (B, k)) in [0, 5]: on the graph's node features of those AUs with ARL on,
on the backbone embedding with ARL off. Without it nothing changes: same parameters, same single output.

`return_all=True` makes construct return (logits, backbone_logits, au_logits, fusion_weight (B, 12),
attention (B, 1, h, w)) so the parts can be inspected and plotted; a branch that is not built reports zeros
(its fusion weight says it was not used: 1 = AU logits only, 0 = backbone logits only) and attention is all ones
without LRP, so logits == w * au_logits + (1 - w) * backbone_logits holds in every configuration; with the
intensity head the intensities follow as a sixth element.
"""

from typing import Dict, List, Sequence

import mindspore as ms
from mindspore import nn, ops

from mindface_au.au_sets import ABAW_AUS, default_au_names
from mindface_au.models.checkpoint import load_checkpoint_strict
from mindface_au.models.fusion import FixedFusion, TransformerFusion
from mindface_au.models.graph import AUClassifier, AUNodeFeatures, AURelationGraph
from mindface_au.models.intensity import EmbeddingIntensityHead, NodeIntensityHead
from mindface_au.models.iresnet import (
    FACE_INPUT_CFG,
    IRESNET_LAYERS,
    IResNet,
    create_iresnet,
    glint360k_checkpoint_name,
)
from mindface_au.models.lrp import LocalRegionPerception
from mindface_au.models.registry import register_model

__all__ = ["AUNet", "FUSIONS", "PARAM_GROUPS", "create_aunet"]

FUSIONS = ("none", "fixed", "transformer")
PARAM_GROUPS = ("backbone", "lrp", "node_features", "graph", "au_head", "backbone_head", "fusion", "intensity_head")


class AUNet(nn.Cell):
    """IResNet backbone + optional LRP, ARL and fusion; (B, 3, S, S) normalised RGB -> (B, num_classes) logits.

    Args:
        backbone: an IResNet (any depth); its `forward_features` map feeds the heads.
        num_classes: number of AUs (12 for ABAW); 0 = len(au_names).
        au_names: the AUs predicted, in output order (kept as `net.au_names`); empty = the ABAW 12.
        head_dim: size D of the AU node features (and of the fusion tokens).
        lrp, lrp_num, lrp_reduction: Local Region Perception switch, number of LANets, channel compression rate.
        arl, arl_k: AU Relationship Learning switch and neighbours per node in the graph.
        fusion: "none", "fixed" or "transformer".
        fusion_weight: AU-logit weight w of the fixed fusion.
        fusion_layers, fusion_heads: encoder layers and attention heads of the transformer fusion.
        return_all: return (logits, backbone_logits, au_logits, fusion_weight, attention) instead of logits.
        intensity, intensity_au_names: the intensity head switch and its AUs (each one of au_names; empty = all).
    """

    def __init__(
        self,
        backbone: IResNet,
        num_classes: int = 0,
        head_dim: int = 512,
        lrp: bool = True,
        lrp_num: int = 4,
        lrp_reduction: int = 16,
        arl: bool = True,
        arl_k: int = 4,
        fusion: str = "transformer",
        fusion_weight: float = 0.5,
        fusion_layers: int = 2,
        fusion_heads: int = 8,
        return_all: bool = False,
        au_names: Sequence[str] = (),
        intensity: bool = False,
        intensity_au_names: Sequence[str] = (),
    ) -> None:
        super().__init__()
        # no AU names: the ABAW 12 when the output count allows it, else unnamed outputs
        au_names = default_au_names(au_names) if au_names or num_classes in (0, len(ABAW_AUS)) else ()
        num_classes = num_classes or len(au_names)
        if au_names and len(au_names) != num_classes:
            raise ValueError(f"AUNet num_classes {num_classes} differs from the {len(au_names)} au_names")
        self.au_names = au_names
        if fusion not in FUSIONS:
            raise ValueError(f"AUNet fusion must be one of {FUSIONS}, got {fusion!r}")
        if fusion != "none" and not arl:
            raise ValueError(f"AUNet fusion {fusion!r} needs the AU branch (arl=True)")
        channels = backbone.num_features
        embedding_size = backbone.fc.out_channels
        self.num_classes = num_classes
        self.use_lrp = bool(lrp)
        self.use_arl = bool(arl)
        self.use_backbone_branch = (not arl) or fusion != "none"
        self.fusion_mode = fusion
        self.return_all = return_all
        self.feature_size = backbone.feature_size

        self.backbone = backbone
        self.lrp = LocalRegionPerception(channels, lrp_num, lrp_reduction) if self.use_lrp else None
        self.node_features = AUNodeFeatures(channels, num_classes, head_dim) if self.use_arl else None
        self.graph = AURelationGraph(head_dim, num_classes, arl_k) if self.use_arl else None
        self.au_head = AUClassifier(head_dim, num_classes) if self.use_arl else None
        self.backbone_head = nn.Dense(embedding_size, num_classes) if self.use_backbone_branch else None
        self.token_proj = None
        if fusion == "transformer":
            self.fusion = TransformerFusion(head_dim, num_classes, fusion_layers, fusion_heads)
            if embedding_size != head_dim:
                self.token_proj = nn.Dense(embedding_size, head_dim)
        elif fusion == "fixed":
            self.fusion = FixedFusion(fusion_weight, num_classes)
        else:
            self.fusion = None
        self.intensity_au_names = tuple(intensity_au_names or au_names) if intensity else ()
        self.use_intensity = bool(self.intensity_au_names)
        self.intensity_head = None
        if self.use_intensity:
            missing = [au for au in self.intensity_au_names if au not in au_names]
            if missing:
                raise ValueError(f"AUNet intensity_au_names {missing} are not among au_names {list(au_names)}")
            if self.use_arl:
                indices = [list(au_names).index(au) for au in self.intensity_au_names]
                self.intensity_head = NodeIntensityHead(head_dim, indices, num_classes)
            else:
                self.intensity_head = EmbeddingIntensityHead(embedding_size, len(self.intensity_au_names))
        if not self.use_backbone_branch:
            for cell in (backbone.bn2, backbone.fc, backbone.features):
                for param in cell.get_parameters():
                    param.requires_grad = False

    def param_groups(self) -> Dict[str, List[ms.Parameter]]:
        """Trainable parameters by module: backbone, lrp, node_features, graph, au_head, backbone_head, fusion,
        intensity_head."""
        groups = {}
        for name in PARAM_GROUPS:
            cell = getattr(self, name)
            groups[name] = list(cell.trainable_params()) if cell is not None else []
        if self.token_proj is not None:
            groups["fusion"] += list(self.token_proj.trainable_params())
        return groups

    def construct(self, x: ms.Tensor):
        feats = self.backbone.forward_features(x)
        batch = feats.shape[0]
        zeros = ops.zeros((batch, self.num_classes), feats.dtype)
        if self.use_lrp:
            attended, attention = self.lrp(feats)
        else:
            attended = feats
            attention = ops.ones((batch, 1, feats.shape[2], feats.shape[3]), feats.dtype)

        au_logits = zeros
        nodes = None
        if self.use_arl:
            nodes = self.graph(self.node_features(attended))
            au_logits = self.au_head(nodes)

        backbone_logits = zeros
        token = None
        if self.use_backbone_branch:
            token = self.backbone.forward_head(feats if self.use_arl else attended)
            backbone_logits = self.backbone_head(token)

        if self.fusion is not None:
            if self.token_proj is not None:
                token = self.token_proj(token)
            weight = self.fusion(token, nodes)
            logits = weight * au_logits + (1.0 - weight) * backbone_logits
        elif self.use_arl:
            weight = ops.ones((batch, self.num_classes), feats.dtype)
            logits = au_logits
        else:
            weight = zeros
            logits = backbone_logits
        if self.use_intensity:
            intensity = self.intensity_head(nodes if self.use_arl else token)
            if self.return_all:
                return logits, backbone_logits, au_logits, weight, attention, intensity
            return logits, intensity
        if self.return_all:
            return logits, backbone_logits, au_logits, weight, attention
        return logits


def create_aunet(
    arch: str = "iresnet100",
    input_size: int = 112,
    widths: Sequence[int] = (64, 128, 256, 512),
    layers: Sequence[int] = (),
    embedding_size: int = 512,
    dropout: float = 0.0,
    backbone_checkpoint: str = "",
    **head_kwargs,
) -> AUNet:
    """Build an AUNet on IResNet depth `arch` (`layers`/`widths` override it, e.g. tiny nets for tests).

    `backbone_checkpoint`: a converted Glint360K IResNet checkpoint, loaded strictly into the backbone before the
    heads are attached (so its parameter names need no prefix). `head_kwargs` are AUNet's arguments.
    """
    backbone = create_iresnet(
        arch, widths=widths, layers=layers, embedding_size=embedding_size, input_size=input_size, dropout=dropout
    )
    if backbone_checkpoint:
        load_checkpoint_strict(backbone, backbone_checkpoint)
    return AUNet(backbone, **head_kwargs)


def _register_depths() -> None:
    """aunet_iresnet18 ... aunet_iresnet200: one factory per backbone depth, from one table."""
    for arch in IRESNET_LAYERS:

        def factory(_arch=arch, **kwargs) -> AUNet:
            return create_aunet(_arch, **kwargs)

        name = f"aunet_{arch}"
        factory.__name__ = name
        factory.__doc__ = f"{name}: AUNet (LRP + graph ARL + fusion) on an {arch} backbone."
        register_model(
            factory,
            default_cfg={
                **FACE_INPUT_CFG,
                "au_names": ABAW_AUS,
                "backbone": arch,
                "backbone_checkpoint": glint360k_checkpoint_name(arch),
                "checkpoint": f"{name}_affwild2.ckpt",
                "sha256": None,
            },
        )


_register_depths()
