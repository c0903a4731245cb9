"""PaDiM: a multivariate Gaussian of patch features at every position."""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from ._nn._functional import anomaly_maps
from ._nn._patch import gaussian_whitening, mahalanobis_distances
from ._patch_base import BasePatchDetector

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

__all__ = ["PaDiMDetector"]


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
        "n_features": [None, Interval(Integral, 1, None, closed="left")],
        "shrinkage": [StrOptions({"ledoit_wolf"}), Interval(Real, 0, None, closed="left")],
    }
    _transient_attrs = ("_mean_t", "_whitening_t")
    _fitted_attr = "whitening_"
    _progress_name = "PaDiM"

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

    def _fit(self, source, rng):
        """Fit the per-position Gaussians; return the training anomaly scores."""
        n = len(source)
        feat_seed = int(rng.randint(0, 2**31 - 1))

        featurizer = feats = None
        with torch.inference_mode():
            for start, featurizer, batch, _ in self._feature_batches(source, seed=feat_seed):
                if feats is None:
                    c_all, h, w = featurizer.feature_map_shape_
                    k = c_all if self.n_features is None else min(self.n_features, c_all)
                    channels = np.sort(rng.choice(c_all, size=k, replace=False)).astype(np.int64)
                    channel_index = torch.from_numpy(channels).to(featurizer.device_)
                    feats = torch.empty(h * w, n, k, dtype=torch.float32,
                                        device=featurizer.device_)
                batch = batch.index_select(1, channel_index).flatten(2)  # (b, k, P)
                feats[:, start:start + batch.shape[0]] = batch.permute(2, 0, 1)

            assert feats is not None  # _image_source rejects empty input
            mean = feats.mean(dim=1)
            whitening = gaussian_whitening(feats, self.shrinkage)

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
        return train_scores.cpu().numpy()

    def _params_on_device(self):
        device = self.featurizer_.device_
        mean = getattr(self, "_mean_t", None)
        if mean is None or mean.device != device:
            self._mean_t = torch.from_numpy(self.mean_).to(device)
            self._whitening_t = torch.from_numpy(self.whitening_).to(device)
        return self._mean_t, self._whitening_t

    def _maps_from_features(self, feats, input_size):
        """Image scores (b,) and maps at ``input_size`` from selected features (b, k, P)."""
        mean, whitening = self._params_on_device()
        k, h, w = self.feature_map_shape_
        patch = mahalanobis_distances(feats, mean, whitening).reshape(-1, h, w)
        smooth, at_input = anomaly_maps(patch, self._network_size,
                                        input_size or self._network_size, self.smoothing_sigma)
        return smooth.flatten(1).amax(dim=1), at_input

    def _scoring_state(self):
        """The selected channels on the featurizer's device."""
        return torch.from_numpy(self.channels_).to(self.featurizer_.device_)

    def _batch_scores(self, feats, input_size, with_maps, state):
        return self._maps_from_features(feats.index_select(1, state).flatten(2), input_size)
