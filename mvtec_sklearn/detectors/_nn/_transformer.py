"""A transformer that reconstructs masked tokens from their context."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MaskedTokenTransformer"]


class MaskedTokenTransformer(nn.Module):
    """Masked token reconstruction (SimMIM-style) with learned position embeddings.

    Tokens (n, L, token_dim) are embedded linearly; masked positions get a
    learned mask embedding instead, every position gets its position
    embedding, a pre-norm transformer encoder mixes them and a linear head
    predicts every token.

    ``forward(tokens, mask)`` with ``mask`` bool (n, L) or (L,) (True =
    hidden from the model) returns the predicted tokens (n, L, token_dim).
    """

    def __init__(self, token_dim: int, n_tokens: int, dim: int = 64, depth: int = 2,
                 heads: int = 4, mlp_ratio: float = 2.0, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Linear(token_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.pos = nn.Parameter(torch.zeros(1, n_tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, int(dim * mlp_ratio), dropout=dropout, activation="gelu",
            batch_first=True, norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, token_dim)

    def forward(self, tokens, mask):
        x = self.embed(tokens)
        mask = mask.expand(x.shape[0], -1) if mask.ndim == 1 else mask
        x = torch.where(mask.unsqueeze(-1), self.mask_token.to(x.dtype), x) + self.pos
        return self.head(self.norm(self.encoder(x)))
