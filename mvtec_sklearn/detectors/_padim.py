"""PaDiM: a multivariate Gaussian of patch features at every position."""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING, Literal

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._patch_base import (
    BasePatchDetector,
    _FEATURIZER_CONSTRAINTS,
    _image_batches,
    _image_source,
    _make_featurizer,
    _network_size,
    _postprocess_maps,
)

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    import torch
    from numpy.typing import ArrayLike

__all__ = ["PaDiMDetector"]


def ledoit_wolf_covariance(X):
    """Ledoit-Wolf shrunk covariances of a batch of data sets.

    The same estimate as :func:`sklearn.covariance.ledoit_wolf`
    (``assume_centered=False``), vectorised over a leading batch axis.

    Parameters
    ----------
    X : tensor of shape (n_sets, n_samples, n_features)
        Float tensor (use float64 for accuracy).

    Returns
    -------
    covariance : tensor of shape (n_sets, n_features, n_features)
    shrinkage : tensor of shape (n_sets,)

    Examples
    --------
    >>> import torch
    >>> from mvtec_sklearn.detectors._padim import ledoit_wolf_covariance
    >>> cov, shrink = ledoit_wolf_covariance(torch.randn(3, 20, 4, dtype=torch.float64))
    >>> cov.shape, shrink.shape
    (torch.Size([3, 4, 4]), torch.Size([3]))
    """
    import torch

    n_samples, n_features = X.shape[1], X.shape[2]
    Xc = X - X.mean(dim=1, keepdim=True)
    emp_cov = torch.bmm(Xc.transpose(1, 2), Xc) / n_samples
    sq = Xc * Xc
    emp_cov_trace = sq.sum(dim=1) / n_samples  # (B, p)
    mu = emp_cov_trace.sum(dim=1) / n_features  # (B,)
    beta_ = (sq.sum(dim=2) ** 2).sum(dim=1)  # sum of (X2.T @ X2)
    delta_ = (emp_cov * n_samples).pow(2).sum(dim=(1, 2)) / n_samples**2
    beta = (beta_ / n_samples - delta_) / (n_features * n_samples)
    delta = (delta_ - 2.0 * mu * emp_cov_trace.sum(dim=1) + n_features * mu**2) / n_features
    beta = torch.minimum(beta, delta)
    shrinkage = torch.where(beta == 0, torch.zeros_like(beta), beta / delta)
    eye = torch.eye(n_features, dtype=X.dtype, device=X.device)
    cov = (1.0 - shrinkage)[:, None, None] * emp_cov + (shrinkage * mu)[:, None, None] * eye
    return cov, shrinkage


class PaDiMDetector(BasePatchDetector):
    """PaDiM: Mahalanobis distance to a Gaussian of patch features per position.

    Patch features (3x3 local average of several layers, resized to the
    finest grid and concatenated; :class:`mvtec_sklearn.features.DeepFeaturizer`)
    are reduced to a seeded random subset of ``n_features`` channels. At every
    grid position a multivariate Gaussian is fitted to the training images'
    features (Defard et al., 2021). A test patch scores its Mahalanobis
    distance to the Gaussian of its position; the map is upsampled
    bilinearly to ``image_size``, smoothed with a Gaussian of sigma
    ``smoothing_sigma`` and resized to the input resolution. The image anomaly score is the maximum
    of the smoothed map (at ``image_size``).

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="resnet18"
        Any backbone of :class:`~mvtec_sklearn.features.DeepFeaturizer`,
        including the offline pretrained ``"efficientnet_lite0"``.
    weights : None, str or os.PathLike, default="DEFAULT"
        As in :class:`~mvtec_sklearn.features.DeepFeaturizer` (downloaded
        on first use); ``None`` is random initialisation.
    layers : sequence of str or None, default=("layer1", "layer2", "layer3")
        Layers read; ``None`` uses the featurizer's default for the backbone.
    patch_size : int, default=3
        Side (odd) of the neighbourhood averaged into each patch feature
        (``AvgPool2d(3, 1, 1)`` with the zero padding counted, as PatchCore's
        reference code and anomalib); 1 averages nothing.
    n_features : int or None, default=100
        Channels kept (a random subset, seeded by ``random_state``); ``None``
        or a value at least the number of channels keeps them all.
    shrinkage : float >= 0 or "ledoit_wolf", default=0.01
        Covariance regularisation. A float ``eps`` gives the paper's
        ``Sigma + eps I`` (unbiased sample covariance); ``"ledoit_wolf"`` the
        Ledoit-Wolf shrunk covariance (:func:`sklearn.covariance.ledoit_wolf`).
    image_size : int or (int, int), default=224
        Images are resized to this size before the network.
    smoothing_sigma : float >= 0, default=4.0
        Standard deviation, in pixels at ``image_size``, of the Gaussian that
        smooths the upsampled anomaly maps (4 in both reference
        implementations); 0 disables the smoothing.
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, default="auto"
        Where the network and the distances run.
    batch_size : int, default=32
        Images per forward pass.
    contamination : "auto" or float in (0, 0.5], default="auto"
        Fraction of training images below ``offset_``.
    random_state : int, RandomState instance or None, default=None
        Seeds the channel subset and the random initialisation
        (``weights=None``).
    verbose : bool, default=False
        Progress bars over batches.

    Attributes
    ----------
    featurizer_ : DeepFeaturizer
        The fitted featurizer.
    channels_ : ndarray of int64, shape (n_channels,)
        The selected channels, sorted.
    mean_ : ndarray of float32, shape (h * w, n_channels)
        Per-position means.
    whitening_ : ndarray of float32, shape (h * w, n_channels, n_channels)
        Per-position inverse Cholesky factor ``L^-1`` of the covariance
        (``Sigma = L L^T``), so the Mahalanobis distance is ``|L^-1 (x - mean)|``.
    feature_map_shape_ : tuple of int
        ``(n_channels, h, w)`` after the channel selection.
    offset_ : float
        Threshold of :meth:`decision_function`.

    See Also
    --------
    PatchCoreDetector : Nearest-neighbour memory bank of patch features.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.detectors import PaDiMDetector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    >>> det = PaDiMDetector(weights=None, image_size=32, n_features=20, device="cpu",
    ...                     random_state=0).fit(X)
    >>> det.score_samples(X[:2]).shape, det.anomaly_map(X[:2]).shape
    ((2,), (2, 32, 32))
    """

    _parameter_constraints: dict = {
        **BasePatchDetector._parameter_constraints,
        **_FEATURIZER_CONSTRAINTS,
        "n_features": [None, Interval(Integral, 1, None, closed="left")],
        "shrinkage": [StrOptions({"ledoit_wolf"}), Interval(Real, 0, None, closed="left")],
    }
    _transient_attrs = ("_mean_t", "_whitening_t")

    def __init__(
        self,
        backbone: str | torch.nn.Module = "resnet18",
        weights: str | os.PathLike[str] | None = "DEFAULT",
        layers: Sequence[str] | None = ("layer1", "layer2", "layer3"),
        patch_size: int = 3,
        n_features: int | None = 100,
        shrinkage: float | Literal["ledoit_wolf"] = 0.01,
        image_size: int | tuple[int, int] = 224,
        smoothing_sigma: float = 4.0,
        device: str | torch.device = "auto",
        batch_size: int = 32,
        contamination: float | Literal["auto"] = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.backbone = backbone
        self.weights = weights
        self.layers = layers
        self.patch_size = patch_size
        self.n_features = n_features
        self.shrinkage = shrinkage
        self.image_size = image_size
        self.smoothing_sigma = smoothing_sigma
        self.device = device
        self.batch_size = batch_size
        self.contamination = contamination
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(
        self, X: Sequence[str | os.PathLike[str]] | ArrayLike, y: None = None
    ) -> "PaDiMDetector":
        """Fit the per-position Gaussians on normal training images.

        Parameters
        ----------
        X : sequence of str / os.PathLike, or ndarray of shape (n, H, W[, C])
            Normal images (uint8 0-255 or float in [0, 1]).
        y : None
            Ignored.

        Returns
        -------
        self : PaDiMDetector
        """
        import torch

        self._network_size = _network_size(self.image_size)
        source = _image_source(X)
        n = len(source)
        rng = check_random_state(self.random_state)
        feat_seed = int(rng.randint(0, 2**31 - 1))

        featurizer = feats = channels = None
        with torch.inference_mode():
            for start, images, _ in _image_batches(source, self.batch_size, self._network_size,
                                                   self.verbose, "PaDiM fit"):
                if featurizer is None:
                    featurizer = _make_featurizer(self, feat_seed).fit(images)
                    c_all, h, w = featurizer.feature_map_shape_
                    k = c_all if self.n_features is None else min(self.n_features, c_all)
                    channels = np.sort(rng.choice(c_all, size=k, replace=False)).astype(np.int64)
                    channel_index = torch.from_numpy(channels).to(featurizer.device_)
                    feats = torch.empty(h * w, n, k, dtype=torch.float32,
                                        device=featurizer.device_)
                batch = featurizer.patch_features(images, return_tensor=True)
                batch = batch.index_select(1, channel_index).flatten(2)  # (b, k, P)
                assert feats is not None  # allocated on the first batch
                feats[:, start:start + batch.shape[0]] = batch.permute(2, 0, 1)

            assert feats is not None  # _image_source rejects empty input
            mean = feats.mean(dim=1)
            whitening = torch.empty(h * w, k, k, dtype=torch.float32, device=feats.device)
            eye = torch.eye(k, dtype=torch.float64, device=feats.device)
            step = max(1, (1 << 22) // max(n * k, 1))
            for s in range(0, h * w, step):
                block = feats[s:s + step].double()
                if self.shrinkage == "ledoit_wolf":
                    cov, _ = ledoit_wolf_covariance(block)
                    scale = torch.diagonal(cov, dim1=1, dim2=2).mean(dim=1).clamp(min=1e-12)
                    cov = cov + 1e-6 * scale[:, None, None] * eye
                else:
                    centred = block - block.mean(dim=1, keepdim=True)
                    cov = torch.bmm(centred.transpose(1, 2), centred) / max(n - 1, 1)
                    cov = cov + float(self.shrinkage) * eye
                chol, info = torch.linalg.cholesky_ex(cov)
                if bool((info != 0).any()):
                    raise ValueError(
                        "The patch-feature covariance is singular at some positions; use a "
                        "positive shrinkage (e.g. shrinkage=0.01) or more training images."
                    )
                inv = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False)
                whitening[s:s + step] = inv.float()

            self.featurizer_ = featurizer
            self.channels_ = channels
            self.feature_map_shape_ = (k, h, w)
            self._mean_t, self._whitening_t = mean, whitening
            train_scores = torch.cat([
                self._maps_from_features(feats[:, s:s + self.batch_size].permute(1, 2, 0), None)[0]
                for s in range(0, n, self.batch_size)
            ])
        del feats
        self.mean_ = mean.cpu().numpy()
        self.whitening_ = whitening.cpu().numpy()
        self._set_offset(-train_scores.cpu().numpy())
        return self

    def _params_on_device(self):
        import torch

        device = self.featurizer_.device_
        mean = getattr(self, "_mean_t", None)
        if mean is None or mean.device != device:
            self._mean_t = torch.from_numpy(self.mean_).to(device)
            self._whitening_t = torch.from_numpy(self.whitening_).to(device)
        return self._mean_t, self._whitening_t

    def _maps_from_features(self, feats, input_size):
        """Image scores (b,) and maps at ``input_size`` from selected features (b, k, P)."""
        import torch

        mean, whitening = self._params_on_device()
        k, h, w = self.feature_map_shape_
        diff = feats.permute(2, 1, 0) - mean[:, :, None]  # (P, k, b)
        dist = torch.linalg.vector_norm(torch.bmm(whitening, diff), dim=1)  # (P, b)
        patch = dist.T.reshape(-1, h, w)
        smooth, at_input = _postprocess_maps(patch, self._network_size,
                                             input_size or self._network_size,
                                             self.smoothing_sigma)
        return smooth.flatten(1).amax(dim=1), at_input

    def _score(self, X, with_maps):
        import torch

        check_is_fitted(self, "whitening_")
        source = _image_source(X)
        index = torch.from_numpy(self.channels_).to(self.featurizer_.device_)
        scores, maps = [], []
        with torch.inference_mode():
            for _, images, input_size in _image_batches(source, self.batch_size,
                                                        self._network_size, self.verbose,
                                                        "PaDiM"):
                batch = self.featurizer_.patch_features(images, return_tensor=True)
                batch = batch.index_select(1, index).flatten(2)
                score, at_input = self._maps_from_features(batch, input_size)
                scores.append(score.cpu())
                if with_maps:
                    maps.append(at_input.cpu())
        scores = torch.cat(scores).double().numpy()
        return scores, (torch.cat(maps).numpy() if with_maps else None)
