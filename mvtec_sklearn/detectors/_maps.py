"""The anomaly-map API of every detector that localises (patch and torch map detectors)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    import numpy as np
    from numpy.typing import ArrayLike, NDArray

__all__ = ["LocalizationMixin"]


class LocalizationMixin:
    """``anomaly_map`` and ``score_samples_and_anomaly_map`` from one hook.

    The detector implements ``_scores_and_maps(X, with_scores)``: the image
    anomaly scores (n,) as float64 (higher = more anomalous; may be None
    when ``with_scores`` is False) and the anomaly maps (n, H, W) as float32
    at the input resolution, both numpy arrays, from one pass over the
    images. The maps come from
    :func:`~mvtec_sklearn.detectors._nn._functional.anomaly_maps`.
    """

    def _scores_and_maps(self, X, with_scores):
        raise NotImplementedError

    def anomaly_map(self, X: Sequence[str | os.PathLike[str]] | ArrayLike) -> NDArray[np.float32]:
        """Pixel anomaly maps at the resolution of the input images.

        Parameters
        ----------
        X : sequence of str / os.PathLike, or ndarray of shape (n, H, W[, C])
            Images of one size.

        Returns
        -------
        ndarray of float32, shape (n, H, W)
            Higher = more anomalous.
        """
        return self._scores_and_maps(X, with_scores=False)[1]

    def score_samples_and_anomaly_map(
        self, X: Sequence[str | os.PathLike[str]] | ArrayLike
    ) -> tuple[NDArray[np.float64], NDArray[np.float32]]:
        """``score_samples(X)`` and ``anomaly_map(X)`` from one pass over the images.

        When the image score comes from the same pass as the map (PatchCore
        and PaDiM, and the torch detectors' every ``score_mode`` but the
        VAE's ELBO terms and the GAN's vector latent score), the network
        runs once for both; otherwise a second pass computes the scores.

        Parameters
        ----------
        X : sequence of str / os.PathLike, or ndarray of shape (n, H, W[, C])
            Images of one size.

        Returns
        -------
        scores : ndarray of float64, shape (n,)
            As :meth:`score_samples`: higher is more normal.
        maps : ndarray of float32, shape (n, H, W)
            As :meth:`anomaly_map`: higher is more anomalous.

        Examples
        --------
        >>> import numpy as np
        >>> from mvtec_sklearn.detectors import PaDiMDetector
        >>> X = np.random.default_rng(0).uniform(size=(6, 32, 32, 3)).astype(np.float32)
        >>> det = PaDiMDetector(weights=None, image_size=32, random_state=0).fit(X)
        >>> scores, maps = det.score_samples_and_anomaly_map(X[:2])
        >>> scores.shape, maps.shape
        ((2,), (2, 32, 32))
        """
        scores, maps = self._scores_and_maps(X, with_scores=True)
        return -scores, maps
