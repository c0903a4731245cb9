"""β-VAE detectors: convolutional on pixels, MLP on 2-D features."""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Literal

from sklearn.utils._param_validation import Interval, StrOptions

from ._nn import MLPVAE, ConvVAE, gaussian_kl
from ._torch_base import (
    _IMAGE_PARAMS,
    _MAP_PARAMS,
    _POSITIVE_INT,
    AnomalyMapMixin,
    BaseTorchDetector,
)
from ._torch_inputs import ImageInputMixin, VectorInputMixin

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import torch

__all__ = ["VAEDetector", "FeatureVAEDetector"]


class _ELBOMixin:
    """Loss and score from the ELBO terms of a module returning (recon, mu, logvar).

    Reconstruction term: sum of squared errors over the input's elements
    (a Gaussian likelihood up to constants); regularisation: ``beta`` times
    the KL divergence of the posterior from N(0, I). Scores use the posterior
    mean (deterministic). Image models also offer ``score_mode="max"`` or
    ``"quantile"``: a reduction of the smoothed per-pixel error map
    (``_map_scores`` of :class:`AnomalyMapMixin`).
    """

    def _terms(self, module, batch, sample):
        recon, mu, logvar = module(batch, sample=sample)
        rec = (recon - batch).pow(2).flatten(1).sum(dim=1)
        return rec, gaussian_kl(mu, logvar), recon

    def _loss(self, module, batch):
        rec, kl, _ = self._terms(module, batch, sample=True)
        loss = (rec + self.beta * kl).mean()
        return loss, {"reconstruction": rec.mean().detach(), "kl": kl.mean().detach()}

    def _validation_loss(self, module, batch):
        rec, kl, _ = self._terms(module, batch, sample=False)
        return (rec + self.beta * kl).mean()

    def _map_reduction(self):
        return self.score_mode if self.score_mode in ("max", "quantile") else None

    def _batch_scores(self, module, batch):
        if self._map_reduction() is not None:
            return self._map_scores(module, batch)
        rec, kl, _ = self._terms(module, batch, sample=False)
        if self.score_mode == "reconstruction":
            return rec
        if self.score_mode == "kl":
            return kl
        return rec + self.beta * kl


_VAE_PARAMS = {
    "latent_dim": _POSITIVE_INT,
    "beta": [Interval(Real, 0, None, closed="left")],
    "score_mode": [StrOptions({"elbo", "reconstruction", "kl"})],
}


class VAEDetector(_ELBOMixin, ImageInputMixin, AnomalyMapMixin, BaseTorchDetector):
    """Convolutional β-VAE on pixels; the score is the local reconstruction error or the ELBO.

    Training minimises the negative ELBO: the sum of squared errors over the
    pixels plus ``beta`` times the KL divergence of the posterior from
    N(0, I). With this sum-of-squares reconstruction term, ``beta`` plays the
    role of ``2 * sigma**2`` for a Gaussian decoder of noise ``sigma`` (on
    intensities in [0, 1]): the default ``beta=0.01`` (``sigma`` about 0.07)
    lets the decoder reproduce detail instead of the blurry average that
    ``beta=1`` (``sigma`` about 0.7, larger than the whole intensity range)
    yields. At inference the decoder gets the posterior mean.

    Defects are local, and the ELBO sums over the whole image, where a small
    defect is a minor part of the error. The default score is therefore a
    high ``quantile`` of the smoothed per-pixel error map (the
    ``anomaly_map``); ``score_mode`` selects the ELBO or one of its terms
    instead.

    Parameters
    ----------
    image_size : int or None, default=64
        Side of the square working resolution; a multiple of ``2**depth``.
        ``None`` keeps the training images' size and requires it at prediction.
    base_channels : int, default=32
        Width of the first convolution block (doubled at each block).
    depth : int, default=3
        Number of stride-2 blocks.
    latent_dim : int, default=64
        Dimension of the latent Gaussian.
    beta : float, default=0.01
        Weight of the KL term (β-VAE; 1 is the plain VAE, see above).
    score_mode : {"quantile", "max", "elbo", "reconstruction", "kl"}, default="quantile"
        Anomaly score: the ``quantile`` or the maximum of the smoothed
        per-pixel error map; or the negative ELBO (reconstruction + ``beta``
        * KL, both summed over the image) or one of its two terms.
    quantile : float, default=0.99
        Quantile used with ``score_mode="quantile"``.
    smoothing_sigma : float, default=4.0
        Gaussian smoothing of the per-pixel squared error of the
        reconstruction (``anomaly_map`` and the map-based scores), in working
        pixels.
    augment : None, "flip", "default" or callable, default=None
        Training-time augmentation.
    {training}

    Attributes
    ----------
    module_ : ConvVAE
        The trained network (eval mode).
    history_ : pandas.DataFrame
        Losses per epoch, with ``train_reconstruction`` and ``train_kl``.
    {fitted}

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.detectors import VAEDetector
    >>> X = np.random.default_rng(0).uniform(size=(8, 32, 32, 3))
    >>> det = VAEDetector(image_size=32, base_channels=4, depth=2, latent_dim=4,
    ...                   max_epochs=2, random_state=0).fit(X)
    >>> det.score_samples(X).shape, det.anomaly_map(X).shape
    ((8,), (8, 32, 32))
    """

    _parameter_constraints: dict = {
        **BaseTorchDetector._parameter_constraints,
        **_IMAGE_PARAMS,
        **_MAP_PARAMS,
        **_VAE_PARAMS,
        "score_mode": [StrOptions({"quantile", "max", "elbo", "reconstruction", "kl"})],
        "base_channels": _POSITIVE_INT,
        "depth": _POSITIVE_INT,
    }

    def __init__(
        self,
        *,
        image_size: int | None = 64,
        base_channels: int = 32,
        depth: int = 3,
        latent_dim: int = 64,
        beta: float = 0.01,
        score_mode: Literal["quantile", "max", "elbo", "reconstruction", "kl"] = "quantile",
        quantile: float = 0.99,
        smoothing_sigma: float = 4.0,
        augment: Literal["flip", "default"] | Callable[[torch.Tensor], torch.Tensor] | None = None,
        contamination: float | Literal["auto"] = "auto",
        max_epochs: int = 50,
        batch_size: int = 16,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        validation_fraction: float | None = 0.1,
        patience: int = 5,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.image_size = image_size
        self.base_channels = base_channels
        self.depth = depth
        self.latent_dim = latent_dim
        self.beta = beta
        self.score_mode = score_mode
        self.quantile = quantile
        self.smoothing_sigma = smoothing_sigma
        self.augment = augment
        self.contamination = contamination
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _size_multiple(self):
        return 2**self.depth, f"depth={self.depth}"

    def _build_module(self):
        return ConvVAE(
            self.n_channels_, self.image_shape_, self.base_channels, self.depth, self.latent_dim
        )

    def _error_maps(self, module, batch):
        recon, _, _ = module(batch, sample=False)
        return (recon - batch).pow(2).mean(dim=1)


class FeatureVAEDetector(_ELBOMixin, VectorInputMixin, BaseTorchDetector):
    """MLP β-VAE on 2-D feature vectors; the score is the negative ELBO (or one term).

    Features are standardised with the training mean and standard deviation.

    Parameters
    ----------
    hidden_sizes : tuple of int, default=(128,)
        Widths of the encoder's hidden layers (mirrored in the decoder).
    latent_dim : int, default=16
        Dimension of the latent Gaussian.
    beta : float, default=1.0
        Weight of the KL term.
    score_mode : {"elbo", "reconstruction", "kl"}, default="elbo"
        Anomaly score: reconstruction + ``beta`` * KL, or one of the terms.
    {training}

    Attributes
    ----------
    module_ : MLPVAE
        The trained network (eval mode).
    history_ : pandas.DataFrame
        Losses per epoch, with ``train_reconstruction`` and ``train_kl``.
    {fitted}

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.detectors import FeatureVAEDetector
    >>> X = np.random.default_rng(0).normal(size=(50, 6))
    >>> det = FeatureVAEDetector(max_epochs=5, random_state=0).fit(X)
    >>> det.score_samples(X).shape
    (50,)
    """

    _parameter_constraints: dict = {
        **BaseTorchDetector._parameter_constraints,
        **_VAE_PARAMS,
        "hidden_sizes": ["array-like"],
    }

    def __init__(
        self,
        *,
        hidden_sizes: tuple[int, ...] = (128,),
        latent_dim: int = 16,
        beta: float = 1.0,
        score_mode: Literal["elbo", "reconstruction", "kl"] = "elbo",
        contamination: float | Literal["auto"] = "auto",
        max_epochs: int = 100,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        validation_fraction: float | None = 0.1,
        patience: int = 10,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.hidden_sizes = hidden_sizes
        self.latent_dim = latent_dim
        self.beta = beta
        self.score_mode = score_mode
        self.contamination = contamination
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _build_module(self):
        return MLPVAE(self.n_features_in_, tuple(int(h) for h in self.hidden_sizes), self.latent_dim)
