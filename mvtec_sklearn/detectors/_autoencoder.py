"""Autoencoder detectors: on pixels, on 2-D deep features and on CNN feature maps."""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Literal

import torch.nn.functional as F
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._nn import Conv1x1Autoencoder, ConvAutoencoder, MLPAutoencoder
from ._nn._functional import ssim_map
from ._torch_base import (
    _IMAGE_PARAMS,
    _MAP_PARAMS,
    _POSITIVE_INT,
    AnomalyMapMixin,
    BaseTorchDetector,
)
from ._torch_inputs import FeatureMapInputMixin, ImageInputMixin, VectorInputMixin

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Sequence

    import numpy as np
    import torch
    from numpy.typing import ArrayLike, NDArray

    from mvtec_sklearn.features import DeepFeaturizer

__all__ = ["AutoencoderDetector", "FeatureAutoencoderDetector", "FeatureMapAutoencoderDetector"]

class AutoencoderDetector(ImageInputMixin, AnomalyMapMixin, BaseTorchDetector):
    """Convolutional autoencoder on pixels; anomalies are poorly reconstructed.

    Images are resized to ``image_size``, encoded by ``depth`` stride-2
    convolution blocks to a spatial bottleneck of ``latent_channels`` and
    decoded back. The per-pixel error is the squared error averaged over
    channels (plus ``ssim_weight * (1 - SSIM)`` with ``loss="mse+ssim"``),
    smoothed with a Gaussian of ``smoothing_sigma`` pixels; the image score is
    its mean, maximum or ``quantile``.

    Parameters
    ----------
    image_size : int or None, default=64
        Side of the square working resolution; a multiple of ``2**depth``.
        ``None`` keeps the size of the training images (all of one size) and
        requires that size at prediction.
    base_channels : int, default=32
        Width of the first convolution block (doubled at each block).
    depth : int, default=3
        Number of stride-2 blocks.
    latent_channels : int, default=16
        Channels of the bottleneck at ``image_size / 2**depth`` resolution.
    loss : {"mse", "mse+ssim"}, default="mse"
        Training loss: mean squared error, optionally plus
        ``ssim_weight * (1 - mean SSIM)``.
    ssim_weight : float, default=1.0
        Weight of the SSIM term (training loss and per-pixel error).
    score_mode : {"mean", "max", "quantile"}, default="quantile"
        Reduction of the smoothed error map to the image score.
    quantile : float, default=0.99
        Quantile used with ``score_mode="quantile"``.
    smoothing_sigma : float, default=4.0
        Gaussian smoothing of the error map, in pixels of the working
        resolution (0 disables it).
    augment : None, "flip", "default" or callable, default=None
        Training-time augmentation (flips; flips, small rotations and colour
        jitter; or your own function of a batch tensor).
    {training}

    Attributes
    ----------
    module_ : ConvAutoencoder
        The trained network (eval mode).
    history_ : pandas.DataFrame
        Losses per epoch (``epoch``, ``train_loss``, ``val_loss``, ...).
    {fitted}

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.detectors import AutoencoderDetector
    >>> X = np.random.default_rng(0).uniform(size=(8, 32, 32, 3))
    >>> det = AutoencoderDetector(image_size=32, base_channels=4, depth=2,
    ...                           max_epochs=2, random_state=0).fit(X)
    >>> det.score_samples(X).shape, det.anomaly_map(X).shape
    ((8,), (8, 32, 32))
    """

    _parameter_constraints: dict = {
        **BaseTorchDetector._parameter_constraints,
        **_IMAGE_PARAMS,
        **_MAP_PARAMS,
        "base_channels": _POSITIVE_INT,
        "depth": _POSITIVE_INT,
        "latent_channels": _POSITIVE_INT,
        "loss": [StrOptions({"mse", "mse+ssim"})],
        "ssim_weight": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        *,
        image_size: int | None = 64,
        base_channels: int = 32,
        depth: int = 3,
        latent_channels: int = 16,
        loss: Literal["mse", "mse+ssim"] = "mse",
        ssim_weight: float = 1.0,
        score_mode: Literal["mean", "max", "quantile"] = "quantile",
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
        self.latent_channels = latent_channels
        self.loss = loss
        self.ssim_weight = ssim_weight
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
        return ConvAutoencoder(
            self.n_channels_, self.base_channels, self.depth, self.latent_channels
        )

    def _loss(self, module, batch):
        recon = module(batch)
        mse = F.mse_loss(recon, batch)
        if self.loss == "mse":
            return mse, {}
        ssim = ssim_map(recon, batch).mean()
        return mse + self.ssim_weight * (1.0 - ssim), {"mse": mse.detach(), "ssim": ssim.detach()}

    def _error_maps(self, module, batch):
        recon = module(batch)
        err = (recon - batch).pow(2).mean(dim=1)
        if self.loss == "mse+ssim":
            err = err + self.ssim_weight * (1.0 - ssim_map(recon, batch)).mean(dim=1)
        return err

    def reconstruct(self, X: Sequence[str | os.PathLike[str]] | ArrayLike) -> NDArray[np.float32]:
        """Reconstructed images at the working resolution.

        Parameters
        ----------
        X : sequence of str / os.PathLike, or ndarray (n, H, W[, C])
            Images.

        Returns
        -------
        ndarray of float32, shape (n, H', W', C)
            Values in [0, 1]; ``(H', W') = image_shape_``.
        """
        check_is_fitted(self, "module_")
        out = self._run(self._predict_data(X), lambda module, batch: module(batch))
        return out.permute(0, 2, 3, 1).numpy()


class FeatureAutoencoderDetector(VectorInputMixin, BaseTorchDetector):
    """MLP autoencoder on 2-D feature vectors (e.g. after ``ResNetFeaturizer``).

    Features are standardised with the training mean and standard deviation;
    the anomaly score is the mean squared reconstruction error over features.

    Parameters
    ----------
    hidden_sizes : tuple of int, default=(128,)
        Widths of the hidden layers of the encoder (mirrored in the decoder).
    latent_dim : int, default=16
        Width of the bottleneck.
    dropout : float in [0, 1), default=0.0
        Dropout after each hidden layer during training.
    {training}

    Attributes
    ----------
    module_ : MLPAutoencoder
        The trained network (eval mode).
    history_ : pandas.DataFrame
        Losses per epoch.
    {fitted}

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.detectors import FeatureAutoencoderDetector
    >>> X = np.random.default_rng(0).normal(size=(50, 6))
    >>> det = FeatureAutoencoderDetector(max_epochs=5, random_state=0).fit(X)
    >>> det.score_samples(X).shape
    (50,)
    """

    _parameter_constraints: dict = {
        **BaseTorchDetector._parameter_constraints,
        "hidden_sizes": ["array-like"],
        "latent_dim": _POSITIVE_INT,
        "dropout": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        *,
        hidden_sizes: tuple[int, ...] = (128,),
        latent_dim: int = 16,
        dropout: float = 0.0,
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
        self.dropout = dropout
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
        return MLPAutoencoder(
            self.n_features_in_, tuple(int(h) for h in self.hidden_sizes), self.latent_dim,
            self.dropout,
        )

    def _loss(self, module, batch):
        return F.mse_loss(module(batch), batch), {}

    def _batch_scores(self, module, batch):
        return (module(batch) - batch).pow(2).mean(dim=1)


class FeatureMapAutoencoderDetector(FeatureMapInputMixin, AnomalyMapMixin, BaseTorchDetector):
    """Per-location (1x1 convolution) autoencoder on CNN feature maps, with localization.

    Images go through ``featurizer.patch_features`` (a
    :class:`~mvtec_sklearn.features.DeepFeaturizer`); every location of the
    standardised feature map is encoded and decoded on its own, and the
    per-location mean squared error, upsampled to the featurizer's input
    resolution and smoothed, is the anomaly map.

    Parameters
    ----------
    featurizer : DeepFeaturizer or None, default=None
        Source of the feature maps (cloned and fitted); ``None`` uses
        ``DeepFeaturizer()`` (pretrained ResNet-18).
    hidden_channels : int, default=128
        Width of the hidden 1x1 layers.
    latent_channels : int, default=32
        Width of the bottleneck.
    score_mode : {"mean", "max", "quantile"}, default="quantile"
        Reduction of the smoothed error map to the image score.
    quantile : float, default=0.99
        Quantile used with ``score_mode="quantile"``.
    smoothing_sigma : float, default=4.0
        Gaussian smoothing, in pixels of the featurizer's input resolution.
    {training}

    Attributes
    ----------
    module_ : Conv1x1Autoencoder
        The trained network (eval mode).
    history_ : pandas.DataFrame
        Losses per epoch.
    {fitted}

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.detectors import FeatureMapAutoencoderDetector
    >>> from mvtec_sklearn.features import DeepFeaturizer
    >>> X = np.random.default_rng(0).uniform(size=(8, 32, 32, 3))
    >>> det = FeatureMapAutoencoderDetector(
    ...     featurizer=DeepFeaturizer(weights=None, image_size=32), max_epochs=2,
    ...     random_state=0).fit(X)
    >>> det.anomaly_map(X).shape
    (8, 32, 32)
    """

    _parameter_constraints: dict = {
        **BaseTorchDetector._parameter_constraints,
        **_MAP_PARAMS,
        "featurizer": [None, HasMethods(["fit", "patch_features"])],
        "hidden_channels": _POSITIVE_INT,
        "latent_channels": _POSITIVE_INT,
    }

    def __init__(
        self,
        *,
        featurizer: DeepFeaturizer | None = None,
        hidden_channels: int = 128,
        latent_channels: int = 32,
        score_mode: Literal["mean", "max", "quantile"] = "quantile",
        quantile: float = 0.99,
        smoothing_sigma: float = 4.0,
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
        self.featurizer = featurizer
        self.hidden_channels = hidden_channels
        self.latent_channels = latent_channels
        self.score_mode = score_mode
        self.quantile = quantile
        self.smoothing_sigma = smoothing_sigma
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
        return Conv1x1Autoencoder(self.feature_shape_[0], self.hidden_channels, self.latent_channels)

    def _loss(self, module, batch):
        return F.mse_loss(module(batch), batch), {}

    def _error_maps(self, module, batch):
        return (module(batch) - batch).pow(2).mean(dim=1)

