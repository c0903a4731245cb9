"""Variational autoencoders: convolutional (pixels) and MLP (2-D features)."""

from __future__ import annotations

import torch
from torch import nn

from ._autoencoder import ConvDecoder, ConvEncoder, _mlp

__all__ = ["ConvVAE", "MLPVAE", "gaussian_kl"]


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample (summed over latent dims)."""
    return 0.5 * torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=1)


def _sample(mu, logvar, sample):
    if not sample:
        return mu
    return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)


class ConvVAE(nn.Module):
    """Convolutional VAE: conv encoder -> (mu, logvar) of ``latent_dim`` -> conv decoder.

    ``forward(x, sample=True)`` returns ``(reconstruction, mu, logvar)``; with
    ``sample=False`` the decoder gets the posterior mean (deterministic).
    """

    def __init__(self, in_channels: int, image_shape, base_channels: int = 32, depth: int = 3,
                 latent_dim: int = 64):
        super().__init__()
        h, w = image_shape
        self.encoder = ConvEncoder(in_channels, base_channels, depth)
        c = self.encoder.out_channels
        self._grid = (c, h // 2**depth, w // 2**depth)
        flat = c * self._grid[1] * self._grid[2]
        self.to_stats = nn.Linear(flat, 2 * latent_dim)
        self.from_latent = nn.Sequential(nn.Linear(latent_dim, flat), nn.ReLU(inplace=True))
        self.decoder = ConvDecoder(in_channels, base_channels, depth)

    def forward(self, x, sample: bool = True):
        mu, logvar = self.to_stats(self.encoder(x).flatten(1)).chunk(2, dim=1)
        logvar = logvar.clamp(-12.0, 12.0)
        z = _sample(mu, logvar, sample)
        recon = self.decoder(self.from_latent(z).view(-1, *self._grid))
        return recon, mu, logvar


class MLPVAE(nn.Module):
    """Fully connected VAE for (standardised) feature vectors; linear output.

    ``forward(x, sample=True)`` returns ``(reconstruction, mu, logvar)``.
    """

    def __init__(self, n_features: int, hidden_sizes=(64,), latent_dim: int = 8):
        super().__init__()
        hidden = list(hidden_sizes)
        self.encoder = _mlp([n_features, *hidden], final_activation=True) if hidden else nn.Identity()
        self.to_stats = nn.Linear(hidden[-1] if hidden else n_features, 2 * latent_dim)
        self.decoder = _mlp([latent_dim, *hidden[::-1], n_features])

    def forward(self, x, sample: bool = True):
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        logvar = logvar.clamp(-12.0, 12.0)
        z = _sample(mu, logvar, sample)
        return self.decoder(z), mu, logvar
