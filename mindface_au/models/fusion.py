"""Feature Fusion (FF): how much each AU trusts the AU-graph logits versus the whole-face backbone logits.

Paper section 3.3. Both fusion modules return a per-AU weight w (B, n) and `AUNet` mixes
logits = w * AU logits + (1 - w) * backbone logits.

- `FixedFusion`: w is a constant from the config (the variant that won on some cross-validation folds).
- `TransformerFusion`: the paper's self-attention fusion (Fig. 3). A learnable weight token (like ViT's class
  token), the backbone token and the n AU tokens form a sequence of n + 2 tokens; `layers` post-norm transformer
  encoder layers mix them; the weight token goes through a fully connected layer and a sigmoid to give w.

The encoder layer is written out here (same maths and parameter layout as PyTorch's
`nn.TransformerEncoderLayer` with batch_first=True, norm_first=False, ReLU) so that it compiles in GRAPH mode on
CPU and exports to MindIR; no dynamic shapes are involved.
"""

import math

import mindspore as ms
from mindspore import nn, ops
from mindspore.common.initializer import TruncatedNormal, initializer

__all__ = ["SelfAttention", "EncoderLayer", "FixedFusion", "TransformerFusion"]


class SelfAttention(nn.Cell):
    """Multi-head self-attention over a token sequence (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, heads: int = 8) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"SelfAttention: dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.in_proj = nn.Dense(dim, 3 * dim)  # rows: query, key, value (PyTorch's in_proj_weight layout)
        self.out_proj = nn.Dense(dim, dim)
        self.softmax = nn.Softmax(axis=-1)
        self.bmm = ops.BatchMatMul()
        self.bmm_t = ops.BatchMatMul(transpose_b=True)

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        _, t, d = x.shape  # the batch stays -1 in reshapes: an exported graph keeps a dynamic batch axis
        qkv = self.in_proj(x).reshape(-1, t, 3, self.heads, self.head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # (B, H, T, d)
        attn = self.softmax(self.bmm_t(q * self.scale, k))  # (B, H, T, T)
        out = self.bmm(attn, v).transpose(0, 2, 1, 3).reshape(-1, t, d)
        return self.out_proj(out)


class EncoderLayer(nn.Cell):
    """Post-norm transformer encoder layer: x = LN(x + SA(x)); x = LN(x + FFN(x)), FFN = Dense-ReLU-Dense."""

    def __init__(self, dim: int, heads: int = 8, ffn_dim: int = 2048, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1 = nn.Dense(dim, ffn_dim)
        self.linear2 = nn.Dense(ffn_dim, dim)
        self.relu = nn.ReLU()
        self.norm1 = nn.LayerNorm((dim,), epsilon=1e-5)
        self.norm2 = nn.LayerNorm((dim,), epsilon=1e-5)
        self.dropout1 = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()

    def construct(self, x: ms.Tensor) -> ms.Tensor:
        x = self.norm1(x + self.dropout1(self.self_attn(x)))
        return self.norm2(x + self.dropout2(self.linear2(self.relu(self.linear1(x)))))


class FixedFusion(nn.Cell):
    """Constant per-AU weight w (no parameters): returns a (B, n) tensor filled with `weight`."""

    def __init__(self, weight: float = 0.5, num_nodes: int = 12) -> None:
        super().__init__()
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"FixedFusion weight must be in [0, 1], got {weight}")
        self.weight = float(weight)
        self.num_nodes = num_nodes

    def construct(self, backbone_token: ms.Tensor, au_tokens: ms.Tensor) -> ms.Tensor:
        # (B, n) computed from the input, not a constant of the compiled batch: an export keeps a dynamic batch
        return au_tokens[:, :, 0] * 0.0 + self.weight


class TransformerFusion(nn.Cell):
    """[weight token, backbone token, AU tokens] -> encoder layers -> weight token -> Dense -> sigmoid -> w (B, n).

    Args:
        dim: token size D (backbone token and AU tokens).
        num_nodes: number of AUs n (size of the output weight).
        layers: encoder layers (2 in the paper).
        heads: attention heads (must divide dim).
        ffn_dim: hidden size of each encoder layer's feed-forward block (default 4 * dim).
        dropout: dropout inside the encoder layers while training.
    """

    def __init__(
        self,
        dim: int,
        num_nodes: int = 12,
        layers: int = 2,
        heads: int = 8,
        ffn_dim: int = 0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if layers < 1:
            raise ValueError(f"TransformerFusion needs at least one encoder layer, got {layers}")
        self.weight_token = ms.Parameter(
            initializer(TruncatedNormal(0.02), (1, 1, dim), ms.float32), name="weight_token"
        )
        self.encoder = nn.SequentialCell([EncoderLayer(dim, heads, ffn_dim or 4 * dim, dropout) for _ in range(layers)])
        self.head = nn.Dense(dim, num_nodes)
        self.sigmoid = nn.Sigmoid()
        self.concat = ops.Concat(axis=1)

    def construct(self, backbone_token: ms.Tensor, au_tokens: ms.Tensor) -> ms.Tensor:
        # shapes from the input with a -1 batch (not a broadcast to, or expand_dims of, the compiled batch size):
        # an exported graph keeps a dynamic batch axis
        token = backbone_token.reshape(-1, 1, backbone_token.shape[-1])  # (B, 1, D)
        weight_token = token * 0.0 + self.weight_token.astype(au_tokens.dtype)
        tokens = self.concat((weight_token, token, au_tokens))  # (B, n + 2, D)
        encoded = self.encoder(tokens)
        return self.sigmoid(self.head(encoded[:, 0]))
