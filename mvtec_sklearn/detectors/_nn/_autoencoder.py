"""Autoencoders: convolutional (pixels), MLP (2-D features), 1x1-conv (feature maps)."""

from __future__ import annotations

from torch import nn

__all__ = ["ConvEncoder", "ConvDecoder", "ConvAutoencoder", "MLPAutoencoder", "Conv1x1Autoencoder"]


class ConvEncoder(nn.Sequential):
    """``depth`` stride-2 conv blocks doubling the width from ``base_channels``.

    (n, in_channels, H, W) -> (n, base_channels * 2**(depth-1), H / 2**depth, W / 2**depth).
    """

    def __init__(self, in_channels: int, base_channels: int, depth: int):
        layers = []
        c_in = in_channels
        for i in range(depth):
            c_out = base_channels * 2**i
            layers += [
                nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            c_in = c_out
        super().__init__(*layers)
        self.out_channels = c_in


class ConvDecoder(nn.Sequential):
    """Mirror of :class:`ConvEncoder` ending in a sigmoid (images in [0, 1])."""

    def __init__(self, out_channels: int, base_channels: int, depth: int):
        layers = []
        c_in = base_channels * 2 ** (depth - 1)
        for i in reversed(range(depth)):
            c_out = base_channels * 2 ** max(i - 1, 0)
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
            c_in = c_out
        layers += [nn.Conv2d(c_in, out_channels, 3, padding=1), nn.Sigmoid()]
        super().__init__(*layers)


class ConvAutoencoder(nn.Module):
    """Convolutional autoencoder with a spatial bottleneck of ``latent_channels``.

    Input (n, C, H, W) in [0, 1] with H and W divisible by ``2**depth``;
    output of the same shape in [0, 1].
    """

    def __init__(self, in_channels: int, base_channels: int = 32, depth: int = 3,
                 latent_channels: int = 16):
        super().__init__()
        self.encoder = ConvEncoder(in_channels, base_channels, depth)
        c = self.encoder.out_channels
        self.to_latent = nn.Conv2d(c, latent_channels, 1)
        self.from_latent = nn.Sequential(
            nn.Conv2d(latent_channels, c, 1), nn.BatchNorm2d(c), nn.ReLU(inplace=True)
        )
        self.decoder = ConvDecoder(in_channels, base_channels, depth)

    def forward(self, x):
        return self.decoder(self.from_latent(self.to_latent(self.encoder(x))))


def _mlp(sizes, final_activation=False, dropout=0.0):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or final_activation:
            layers.append(nn.LeakyReLU(0.2))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class MLPAutoencoder(nn.Module):
    """Fully connected autoencoder for (standardised) feature vectors.

    ``n_features -> hidden_sizes -> latent_dim -> reversed(hidden_sizes) -> n_features``
    with LeakyReLU activations (and optional dropout) and a linear output.
    """

    def __init__(self, n_features: int, hidden_sizes=(64,), latent_dim: int = 8,
                 dropout: float = 0.0):
        super().__init__()
        hidden = list(hidden_sizes)
        self.encoder = _mlp([n_features, *hidden, latent_dim], dropout=dropout)
        self.decoder = _mlp([latent_dim, *hidden[::-1], n_features], dropout=dropout)

    def forward(self, x):
        return self.decoder(self.encoder(x))


class Conv1x1Autoencoder(nn.Module):
    """Per-location autoencoder on feature maps (n, C, h, w): 1x1 convolutions only.

    Each spatial position is encoded independently (``C -> hidden -> latent ->
    hidden -> C``), so the reconstruction error is a map at the feature
    resolution.
    """

    def __init__(self, in_channels: int, hidden_channels: int = 128, latent_channels: int = 32):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(in_channels, hidden_channels, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(hidden_channels, latent_channels, 1),
        )
        self.decoder = nn.Sequential(
            nn.LeakyReLU(0.2), nn.Conv2d(latent_channels, hidden_channels, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(hidden_channels, in_channels, 1),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))
