"""Exact k-nearest-neighbour distance detector (chunked torch matrix products)."""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import TYPE_CHECKING, Literal, cast

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..utils import resolve_device
from ._base import BaseDetector, TrainingScoreDetector
from ._nn._search import nearest_neighbors

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["KNNDetector"]


class KNNDetector(TrainingScoreDetector):
    """Anomaly score = distance to the k nearest training samples.

    An exact nearest-neighbour search in torch: chunked matrix products and
    :func:`torch.topk` (no Python loop over samples), on the CPU or a GPU.
    ``score_samples`` is the opposite of the aggregated distance (higher = more
    normal). The training scores that set ``offset_`` are leave-one-out: each
    training sample's own match is excluded (exactly one, by index, so
    duplicated training rows still see each other at distance 0). The
    threshold is therefore calibrated for *unseen* samples: a fresh normal
    sample is flagged with probability about ``contamination``.
    :meth:`fit_predict` labels the training samples from those same
    leave-one-out scores, so it flags a ``contamination`` fraction of them (as
    :class:`~sklearn.neighbors.LocalOutlierFactor` and PyOD's ``labels_``
    do), whereas ``fit(X).predict(X)`` scores the training samples as new
    queries, each its own nearest neighbour at distance 0, and flags fewer.

    Parameters
    ----------
    n_neighbors : int, default=5
        Number of neighbours. When it is at least the number of training
        samples, ``n_samples - 1`` neighbours are used (with a warning) and
        recorded in ``n_neighbors_``, as :class:`~sklearn.neighbors.LocalOutlierFactor`
        does.
    method : {"mean", "max", "median"}, default="mean"
        How the ``n_neighbors`` distances are aggregated: their mean, the
        distance to the k-th neighbour, or their median (the mean of the two
        middle ones for even k).
    metric : {"euclidean", "sqeuclidean", "cosine", "manhattan"}, default="euclidean"
        Distance between feature vectors. ``"cosine"`` is ``1 - cos(a, b)``.
    contamination : "auto" or float in (0, 0.5], default="auto"
        Fraction of (leave-one-out) training scores below ``offset_``; "auto"
        is 10 %.
    batch_size : int, default=1024
        Query samples per distance-matrix chunk; memory is about
        ``batch_size * n_train`` floats.
    device : str, default="auto"
        Torch device for the search: "auto" (CUDA when available), "cpu",
        "cuda", "cuda:N", "mps".

    Attributes
    ----------
    n_neighbors_ : int
        Number of neighbours actually used.
    fit_X_ : ndarray of shape (n_samples, n_features)
        Training samples (float32 or float64, as given), kept on the CPU so
        that the fitted detector pickles and loads anywhere.
    offset_ : float
        Threshold on ``score_samples``: ``decision_function = score_samples - offset_``.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of str
        Feature names seen during fit, when X had string column names.

    See Also
    --------
    PyODDetector : Any PyOD model (e.g. ``pyod.models.knn.KNN``) as a detector.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.detectors import KNNDetector
    >>> rng = np.random.default_rng(0)
    >>> X_train = rng.normal(size=(100, 4))
    >>> det = KNNDetector(n_neighbors=3, device="cpu").fit(X_train)
    >>> det.predict([[0.0, 0.0, 0.0, 0.0], [8.0, 8.0, 8.0, 8.0]])
    array([ 1, -1])
    >>> labels = KNNDetector(contamination=0.1, device="cpu").fit_predict(X_train)
    >>> int((labels == -1).sum())
    10
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "method": [StrOptions({"mean", "max", "median"})],
        "metric": [StrOptions({"euclidean", "sqeuclidean", "cosine", "manhattan"})],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
    }

    def __init__(
        self,
        n_neighbors: int = 5,
        *,
        method: Literal["mean", "max", "median"] = "mean",
        metric: Literal["euclidean", "sqeuclidean", "cosine", "manhattan"] = "euclidean",
        contamination: float | Literal["auto"] = "auto",
        batch_size: int = 1024,
        device: str | torch.device = "auto",
    ) -> None:
        self.n_neighbors = n_neighbors
        self.method = method
        self.metric = metric
        self.contamination = contamination
        self.batch_size = batch_size
        self.device = device

    def _fit(self, X):
        """Store the training samples; return their leave-one-out scores."""
        X = cast(  # sklearn is untyped; validate_data returns an ndarray
            "np.ndarray",
            validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2),
        )
        n_samples = X.shape[0]
        self.n_neighbors_ = int(self.n_neighbors)
        if self.n_neighbors_ > n_samples - 1:
            warnings.warn(
                f"n_neighbors ({self.n_neighbors}) is not smaller than the number of "
                f"training samples ({n_samples}); n_neighbors = n_samples - 1 = "
                f"{n_samples - 1} will be used.",
                UserWarning,
                stacklevel=5,
            )
            self.n_neighbors_ = n_samples - 1
        # writeable and C-contiguous (torch.from_numpy needs both; copies only read-only input)
        self.fit_X_ = np.require(X, requirements=["C", "W"])
        return -self._aggregated_distances(X, exclude_self=True)

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Opposite of the aggregated distance to the nearest training samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Query samples.

        Returns
        -------
        ndarray of shape (n_samples,)
            Higher = more normal. A query identical to a training sample counts
            that sample as its nearest neighbour (distance 0).
        """
        check_is_fitted(self, "fit_X_")
        X = validate_data(self, X, dtype=self.fit_X_.dtype, reset=False)
        return -self._aggregated_distances(X, exclude_self=False)

    def _aggregated_distances(self, X, exclude_self):
        device = resolve_device(self.device)
        # Squared norms of large features (about 1e19 in float32) overflow to inf and
        # inf - inf gives NaN distances; such inputs are scaled down first and the
        # distances scaled back in float64.
        scale = max(float(np.abs(self.fit_X_).max(initial=0.0)), float(np.abs(X).max(initial=0.0)))
        safe = float(np.sqrt(np.finfo(self.fit_X_.dtype).max / (4.0 * max(1, X.shape[1]))))
        scale = scale if scale > safe else 1.0
        with torch.inference_mode():
            train = torch.from_numpy(self.fit_X_).to(device)
            query = train if exclude_self else torch.from_numpy(np.require(X, requirements=["C", "W"])).to(device)
            if scale != 1.0:
                train = train / scale
                query = train if exclude_self else query / scale
            dist, _ = nearest_neighbors(
                query, train, self.n_neighbors_, metric=self.metric, exclude_self=exclude_self,
                query_chunk=self.batch_size, fold_norms=False,
            )
            if self.method == "mean":
                agg = dist.mean(dim=1)
            elif self.method == "max":
                agg = dist[:, -1]
            else:
                agg = torch.quantile(dist, 0.5, dim=1)
            agg = agg.cpu().numpy().astype(np.float64)
        if self.metric != "cosine":
            agg *= scale**2 if self.metric == "sqeuclidean" else scale
        return agg
