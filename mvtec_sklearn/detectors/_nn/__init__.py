"""Pure torch ``nn.Module`` building blocks used by the scikit-learn wrappers."""

from ._autoencoder import Conv1x1Autoencoder, ConvAutoencoder, MLPAutoencoder
from ._gan import (
    GANomaly,
    GANomalyDiscriminator,
    GANomalyGenerator,
    SkipGANomaly,
    SkipGANomalyGenerator,
)
from ._transformer import MaskedTokenTransformer
from ._vae import ConvVAE, MLPVAE, gaussian_kl

__all__ = [
    "Conv1x1Autoencoder",
    "ConvAutoencoder",
    "ConvVAE",
    "GANomaly",
    "GANomalyDiscriminator",
    "GANomalyGenerator",
    "MLPAutoencoder",
    "MLPVAE",
    "MaskedTokenTransformer",
    "SkipGANomaly",
    "SkipGANomalyGenerator",
    "gaussian_kl",
]
