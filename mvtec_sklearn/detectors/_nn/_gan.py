"""GANomaly (Akcay et al., 2018) and Skip-GANomaly (Akcay et al., 2019) modules."""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "DCGANEncoder",
    "DCGANDecoder",
    "GANomalyGenerator",
    "GANomalyDiscriminator",
    "GANomaly",
    "SkipGANomalyGenerator",
    "SkipGANomaly",
]


def _n_down(image_size: int) -> int:
    n = int(round(math.log2(image_size)))
    if 2**n != image_size or image_size < 16:
        raise ValueError(
            f"GANomaly needs square images whose side is a power of two >= 16, got {image_size}."
        )
    return n - 2  # down to 4x4


#: Stride-2 stages of a spatial bottleneck: the latent map is 1/8 of the image side.
SPATIAL_DOWNSAMPLING = 3


class DCGANEncoder(nn.Module):
    """DCGAN encoder; ``features`` is the last map before the latent projection.

    With ``spatial=False``: (n, C, S, S) -> (n, latent_dim, 1, 1), the
    resolution halved down to 4x4 and a 4x4 convolution on top (DCGAN).
    With ``spatial=True``: (n, C, S, S) -> (n, latent_dim, S/8, S/8), three
    stride-2 stages and a 3x3 convolution, so every latent position codes one
    region of the image.
    """

    def __init__(self, in_channels: int, image_size: int, base_channels: int, latent_dim: int,
                 spatial: bool = False):
        super().__init__()
        n_down = SPATIAL_DOWNSAMPLING if spatial else _n_down(image_size)
        layers = [nn.Conv2d(in_channels, base_channels, 4, 2, 1, bias=False),
                  nn.LeakyReLU(0.2, inplace=True)]
        c = base_channels
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c),
                       nn.LeakyReLU(0.2, inplace=True)]
            c *= 2
        self.features = nn.Sequential(*layers)
        self.final = (nn.Conv2d(c, latent_dim, 3, 1, 1, bias=False) if spatial
                      else nn.Conv2d(c, latent_dim, 4, 1, 0, bias=False))

    def forward(self, x):
        return self.final(self.features(x))


class DCGANDecoder(nn.Module):
    """Mirror of :class:`DCGANEncoder`: latent -> (n, C, S, S) in [-1, 1] (tanh)."""

    def __init__(self, out_channels: int, image_size: int, base_channels: int, latent_dim: int,
                 spatial: bool = False):
        super().__init__()
        n = SPATIAL_DOWNSAMPLING if spatial else _n_down(image_size)
        c = base_channels * 2 ** (n - 1)
        first = (nn.Conv2d(latent_dim, c, 3, 1, 1, bias=False) if spatial
                 else nn.ConvTranspose2d(latent_dim, c, 4, 1, 0, bias=False))
        layers: list[nn.Module] = [first, nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2),
                       nn.ReLU(inplace=True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class GANomalyGenerator(nn.Module):
    """Encoder -> decoder -> encoder; ``forward`` returns ``(x_hat, z, z_hat)``.

    ``z`` and ``z_hat`` are (n, latent_dim) vectors, or (n, latent_dim, S/8,
    S/8) maps with ``spatial=True``.
    """

    def __init__(self, in_channels: int, image_size: int, base_channels: int = 32,
                 latent_dim: int = 100, spatial: bool = False):
        super().__init__()
        self.spatial = spatial
        args = (in_channels, image_size, base_channels, latent_dim, spatial)
        self.encoder1 = DCGANEncoder(*args)
        self.decoder = DCGANDecoder(*args)
        self.encoder2 = DCGANEncoder(*args)

    def forward(self, x):
        z = self.encoder1(x)
        x_hat = self.decoder(z)
        z_hat = self.encoder2(x_hat)
        if self.spatial:
            return x_hat, z, z_hat
        return x_hat, z.flatten(1), z_hat.flatten(1)


class GANomalyDiscriminator(nn.Module):
    """DCGAN discriminator; ``forward`` returns ``(logit, features)``."""

    def __init__(self, in_channels: int, image_size: int, base_channels: int = 32):
        super().__init__()
        self.encoder = DCGANEncoder(in_channels, image_size, base_channels, 1)

    def forward(self, x):
        features = self.encoder.features(x)
        return self.encoder.final(features).flatten(), features


class GANomaly(nn.Module):
    """The generator and the discriminator in one module (one state dict)."""

    def __init__(self, in_channels: int, image_size: int, base_channels: int = 32,
                 latent_dim: int = 100, spatial: bool = False):
        super().__init__()
        self.generator = GANomalyGenerator(in_channels, image_size, base_channels, latent_dim,
                                           spatial)
        self.discriminator = GANomalyDiscriminator(in_channels, image_size, base_channels)

    def forward(self, x):
        return self.generator(x)


class SkipGANomalyGenerator(nn.Module):
    """U-Net generator of Skip-GANomaly; ``forward`` returns ``x_hat`` in [-1, 1].

    The encoder halves the resolution down to 4x4 (DCGAN blocks, width
    doubling from ``base_channels``) and a 4x4 convolution maps that to a
    ``latent_dim`` bottleneck; the decoder mirrors it and concatenates each
    encoder level's output to the decoder input of the same resolution.
    """

    def __init__(
        self, in_channels: int, image_size: int, base_channels: int = 32, latent_dim: int = 100
    ):
        super().__init__()
        n = _n_down(image_size)
        self.down = nn.ModuleList()
        c_in, widths = in_channels, []
        for i in range(n):
            c = base_channels * 2**i
            block: list[nn.Module] = [nn.Conv2d(c_in, c, 4, 2, 1, bias=False)]
            if i > 0:
                block.append(nn.BatchNorm2d(c))
            block.append(nn.LeakyReLU(0.2, inplace=True))
            self.down.append(nn.Sequential(*block))
            widths.append(c)
            c_in = c
        self.bottleneck = nn.Sequential(
            nn.Conv2d(c_in, latent_dim, 4, 1, 0, bias=False), nn.ReLU(inplace=True)
        )
        # Bottleneck (1x1) -> 4x4, then one up-block per encoder level, fed [decoder, skip].
        self.up = nn.ModuleList([nn.Sequential(
            nn.ConvTranspose2d(latent_dim, widths[-1], 4, 1, 0, bias=False),
            nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True),
        )])
        for i in range(n - 1, 0, -1):
            self.up.append(nn.Sequential(
                nn.ConvTranspose2d(2 * widths[i], widths[i - 1], 4, 2, 1, bias=False),
                nn.BatchNorm2d(widths[i - 1]), nn.ReLU(inplace=True),
            ))
        self.out = nn.Sequential(
            nn.ConvTranspose2d(2 * widths[0], in_channels, 4, 2, 1, bias=False), nn.Tanh()
        )

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        h = self.up[0](self.bottleneck(x))
        for block, skip in zip(self.up[1:], reversed(skips[1:])):
            h = block(torch.cat([h, skip], dim=1))
        return self.out(torch.cat([h, skips[0]], dim=1))


class SkipGANomaly(nn.Module):
    """Skip-GANomaly's U-Net generator and DCGAN discriminator in one module."""

    def __init__(
        self, in_channels: int, image_size: int, base_channels: int = 32, latent_dim: int = 100
    ):
        super().__init__()
        self.generator = SkipGANomalyGenerator(in_channels, image_size, base_channels, latent_dim)
        self.discriminator = GANomalyDiscriminator(in_channels, image_size, base_channels)

    def forward(self, x):
        return self.generator(x)
