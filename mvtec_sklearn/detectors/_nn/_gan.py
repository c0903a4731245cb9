"""GANomaly: an encoder-decoder-encoder generator and a discriminator (Akcay et al., 2018)."""

from __future__ import annotations

import math

from torch import nn

__all__ = ["DCGANEncoder", "DCGANDecoder", "GANomalyGenerator", "GANomalyDiscriminator", "GANomaly"]


def _n_down(image_size: int) -> int:
    n = int(round(math.log2(image_size)))
    if 2**n != image_size or image_size < 16:
        raise ValueError(
            f"GANomaly needs square images whose side is a power of two >= 16, got {image_size}."
        )
    return n - 2  # down to 4x4


class DCGANEncoder(nn.Module):
    """DCGAN encoder (n, C, S, S) -> (n, latent_dim, 1, 1); ``features`` is the last 4x4 map."""

    def __init__(self, in_channels: int, image_size: int, base_channels: int, latent_dim: int):
        super().__init__()
        layers = [nn.Conv2d(in_channels, base_channels, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        c = base_channels
        for _ in range(_n_down(image_size) - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c),
                       nn.LeakyReLU(0.2, inplace=True)]
            c *= 2
        self.features = nn.Sequential(*layers)
        self.final = nn.Conv2d(c, latent_dim, 4, 1, 0, bias=False)

    def forward(self, x):
        return self.final(self.features(x))


class DCGANDecoder(nn.Module):
    """DCGAN decoder (n, latent_dim, 1, 1) -> (n, C, S, S) in [-1, 1] (tanh)."""

    def __init__(self, out_channels: int, image_size: int, base_channels: int, latent_dim: int):
        super().__init__()
        n = _n_down(image_size)
        c = base_channels * 2 ** (n - 1)
        layers = [nn.ConvTranspose2d(latent_dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c),
                  nn.ReLU(inplace=True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2),
                       nn.ReLU(inplace=True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, out_channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class GANomalyGenerator(nn.Module):
    """Encoder -> decoder -> encoder; ``forward`` returns ``(x_hat, z, z_hat)``."""

    def __init__(self, in_channels: int, image_size: int, base_channels: int = 32, latent_dim: int = 100):
        super().__init__()
        self.encoder1 = DCGANEncoder(in_channels, image_size, base_channels, latent_dim)
        self.decoder = DCGANDecoder(in_channels, image_size, base_channels, latent_dim)
        self.encoder2 = DCGANEncoder(in_channels, image_size, base_channels, latent_dim)

    def forward(self, x):
        z = self.encoder1(x)
        x_hat = self.decoder(z)
        z_hat = self.encoder2(x_hat)
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

    def __init__(self, in_channels: int, image_size: int, base_channels: int = 32, latent_dim: int = 100):
        super().__init__()
        self.generator = GANomalyGenerator(in_channels, image_size, base_channels, latent_dim)
        self.discriminator = GANomalyDiscriminator(in_channels, image_size, base_channels)

    def forward(self, x):
        return self.generator(x)
