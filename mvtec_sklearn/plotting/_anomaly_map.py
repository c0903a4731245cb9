"""Anomaly-map overlays: a scikit-learn style Display and a grid of best and worst cases."""

from __future__ import annotations

import os
from numbers import Integral, Real
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils._param_validation import Interval, validate_params

from mvtec_sklearn.datasets import load_images, read_mask

if TYPE_CHECKING:
    from collections.abc import Sequence

    from matplotlib.figure import Figure
    from numpy.typing import ArrayLike

__all__ = ["AnomalyMapDisplay", "plot_anomaly_grid"]


def _as_images(images):
    """Paths or an array -> float (n, H, W, C) in [0, 1] at their own resolution."""
    return load_images(images)


def _as_maps(maps, shape):
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.shape != shape:
        raise ValueError(f"maps must have shape {shape} (one per image), got {maps.shape}.")
    if not np.all(np.isfinite(maps)):
        raise ValueError("maps contain NaN or infinite values.")
    return maps


def _as_masks(masks: Any, shape: tuple[int, int, int]) -> np.ndarray | None:
    """Masks as arrays, or a sequence of mask paths / None (good image) -> bool (n, H, W)."""
    if masks is None:
        return None
    is_sequence = isinstance(masks, (list, tuple)) or (
        isinstance(masks, np.ndarray) and masks.dtype == object
    )
    if is_sequence and any(m is None or isinstance(m, (str, os.PathLike)) for m in masks):
        if len(masks) != shape[0]:
            raise ValueError(f"Expected {shape[0]} masks, got {len(masks)}.")
        out = np.zeros(shape, dtype=bool)
        for i, m in enumerate(masks):
            if m is None:
                continue
            out[i] = read_mask(m, size=shape[1:]) if isinstance(m, (str, os.PathLike)) else (
                np.asarray(m) != 0
            )
        return out
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.shape != shape:
        raise ValueError(f"masks must have shape {shape} (one per image), got {masks.shape}.")
    return masks != 0


def _show_one(ax, image, amap, mask, threshold, *, cmap, alpha, vmin, vmax, overlay=True):
    """Draw one image (and optionally its heatmap and contours) on ``ax``; return artists."""
    rgb = image[..., 0] if image.shape[-1] == 1 else image
    ax.imshow(rgb, cmap="gray" if rgb.ndim == 2 else None, vmin=0, vmax=1)
    heat = mask_contour = threshold_contour = None
    if overlay:
        heat = ax.imshow(amap, cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax)
        if mask is not None and mask.any():
            mask_contour = ax.contour(mask.astype(float), levels=[0.5], colors="lime",
                                      linewidths=1.2)
        if threshold is not None and (amap >= threshold).any() and (amap < threshold).any():
            threshold_contour = ax.contour(amap, levels=[threshold], colors="white",
                                           linewidths=1.0, linestyles="dashed")
    ax.set_xticks([])
    ax.set_yticks([])
    return heat, mask_contour, threshold_contour


class AnomalyMapDisplay:
    """Images with their anomaly-map overlays, ground-truth and threshold contours.

    Build it with :meth:`from_estimator` or :meth:`from_predictions`; each
    image gets a row of two panels: the image, and the image under its
    heatmap with the ground-truth defect outline (green) and the outline of
    the pixels at or above ``threshold`` (white, dashed).

    Parameters
    ----------
    images : ndarray of shape (n, H, W, C)
        Images, floats in [0, 1].
    anomaly_maps : ndarray of shape (n, H, W)
        Anomaly maps (higher = more anomalous).
    masks : ndarray of bool, shape (n, H, W), or None
        Ground-truth defect masks.
    threshold : float or None
        Map value drawn as a contour.
    titles : list of str or None
        One title per image.

    Attributes
    ----------
    ax_ : ndarray of matplotlib Axes, shape (n, 2)
        The axes (image, overlay) of each row.
    figure_ : matplotlib Figure
    heatmaps_ : list of AxesImage
        The heatmap layer of each row.
    mask_contours_ : list
        Ground-truth contour sets (None where the mask is empty or absent).
    threshold_contours_ : list
        Threshold contour sets (None where no threshold or no crossing).
    colorbar_ : matplotlib Colorbar or None

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.plotting import AnomalyMapDisplay
    >>> images = np.zeros((2, 16, 16, 3))
    >>> maps = np.random.default_rng(0).random((2, 16, 16))
    >>> disp = AnomalyMapDisplay.from_predictions(images, maps, threshold=0.5)
    >>> disp.ax_.shape
    (2, 2)
    """

    def __init__(
        self,
        images: np.ndarray,
        anomaly_maps: np.ndarray,
        masks: np.ndarray | None = None,
        threshold: float | None = None,
        titles: Sequence[str] | None = None,
    ) -> None:
        self.images = images
        self.anomaly_maps = anomaly_maps
        self.masks = masks
        self.threshold = threshold
        self.titles = titles

    def plot(
        self,
        ax: Any = None,
        *,
        cmap: str = "jet",
        alpha: float = 0.5,
        vmin: float | None = None,
        vmax: float | None = None,
        colorbar: bool = True,
    ) -> "AnomalyMapDisplay":
        """Draw the panels.

        Parameters
        ----------
        ax : array-like of matplotlib Axes of shape (n, 2) or (2,) for one image, or None
            Where to draw; ``None`` creates a new figure.
        cmap : str, default="jet"
            Heatmap colour map.
        alpha : float, default=0.5
            Heatmap opacity.
        vmin, vmax : float or None
            Colour range shared by all maps; defaults to the maps' range.
        colorbar : bool, default=True
            Add one colour bar for the heatmaps.

        Returns
        -------
        self : AnomalyMapDisplay
        """
        import matplotlib.pyplot as plt

        n = self.images.shape[0]
        if ax is None:
            fig, ax = plt.subplots(n, 2, figsize=(5.0, 2.5 * n), squeeze=False)
        else:
            ax = np.asarray(ax, dtype=object).reshape(-1, 2) if np.ndim(ax) else None
            if ax is None or ax.shape != (n, 2):
                raise ValueError(f"ax must hold {n} x 2 axes (image, overlay) for {n} images.")
            fig = ax[0, 0].figure
        vmin = float(self.anomaly_maps.min()) if vmin is None else vmin
        vmax = float(self.anomaly_maps.max()) if vmax is None else vmax
        self.heatmaps_, self.mask_contours_, self.threshold_contours_ = [], [], []
        for i in range(n):
            mask = None if self.masks is None else self.masks[i]
            _show_one(ax[i, 0], self.images[i], None, None, None, cmap=cmap, alpha=alpha,
                      vmin=vmin, vmax=vmax, overlay=False)
            heat, mc, tc = _show_one(ax[i, 1], self.images[i], self.anomaly_maps[i], mask,
                                     self.threshold, cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax)
            self.heatmaps_.append(heat)
            self.mask_contours_.append(mc)
            self.threshold_contours_.append(tc)
            if self.titles is not None:
                ax[i, 0].set_title(str(self.titles[i]), fontsize=8)
        ax[0, 1].set_title("anomaly map", fontsize=8)
        self.colorbar_ = (
            fig.colorbar(self.heatmaps_[0], ax=list(ax[:, 1]), shrink=0.8) if colorbar else None
        )
        self.ax_, self.figure_ = ax, fig
        return self

    @classmethod
    @validate_params({"threshold": [Real, None]}, prefer_skip_nested_validation=True)
    def from_predictions(
        cls,
        images: Sequence[str | os.PathLike[str]] | ArrayLike,
        anomaly_maps: ArrayLike,
        masks: ArrayLike | Sequence[str | os.PathLike[str] | None] | None = None,
        threshold: float | None = None,
        *,
        titles: Sequence[str] | None = None,
        ax: Any = None,
        **plot_kwargs: Any,
    ) -> "AnomalyMapDisplay":
        """Plot precomputed anomaly maps over their images.

        Parameters
        ----------
        images : sequence of paths or ndarray of shape (n, H, W[, C])
            Images (read with :func:`mvtec_sklearn.datasets.load_images`).
        anomaly_maps : array-like of shape (n, H, W)
            Maps at the images' resolution.
        masks : array-like of bool of shape (n, H, W), sequence of mask paths / None, or None
            Ground truth; ``None`` entries are good images.
        threshold : float or None, default=None
            Map value drawn as a contour.
        titles : list of str or None, default=None
            One title per image.
        ax : axes or None, default=None
            See :meth:`plot`.
        **plot_kwargs
            Passed to :meth:`plot`.

        Returns
        -------
        display : AnomalyMapDisplay
        """
        imgs = _as_images(images)
        maps = _as_maps(anomaly_maps, imgs.shape[:3])
        masks = _as_masks(masks, imgs.shape[:3])
        return cls(imgs, maps, masks, threshold, titles).plot(ax=ax, **plot_kwargs)

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        X: Sequence[str | os.PathLike[str]] | ArrayLike,
        masks: ArrayLike | Sequence[str | os.PathLike[str] | None] | None = None,
        threshold: float | None = None,
        *,
        titles: Sequence[str] | None = None,
        ax: Any = None,
        **plot_kwargs: Any,
    ) -> "AnomalyMapDisplay":
        """Compute anomaly maps with a fitted detector and plot them.

        Parameters
        ----------
        estimator : fitted detector with ``anomaly_map``
            E.g. :class:`~mvtec_sklearn.detectors.PatchCoreDetector`.
        X : sequence of paths or ndarray of shape (n, H, W[, C])
            Images.
        masks, threshold, titles, ax, **plot_kwargs
            As in :meth:`from_predictions`.

        Returns
        -------
        display : AnomalyMapDisplay
        """
        if not hasattr(estimator, "anomaly_map"):
            raise ValueError(f"{type(estimator).__name__} has no anomaly_map method.")
        maps = estimator.anomaly_map(X)
        return cls.from_predictions(X, maps, masks, threshold, titles=titles, ax=ax,
                                    **plot_kwargs)


@validate_params(
    {"n": [Interval(Integral, 1, None, closed="left")], "threshold": [Real, None]},
    prefer_skip_nested_validation=True,
)
def plot_anomaly_grid(
    images: Sequence[str | os.PathLike[str]] | ArrayLike,
    anomaly_maps: ArrayLike,
    y_true: ArrayLike,
    scores: ArrayLike,
    masks: ArrayLike | Sequence[str | os.PathLike[str] | None] | None = None,
    n: int = 4,
    *,
    threshold: float | None = None,
    cmap: str = "jet",
    alpha: float = 0.5,
) -> Figure:
    """Grid of the top-scored test images and the worst-missed defective ones.

    The first row shows the ``n`` images with the highest anomaly scores
    (whatever their label); the second the ``n`` defective images
    (``y_true == 1``) with the lowest scores, the easiest to miss. Each panel
    overlays the anomaly map (shared colour range) and the ground-truth outline.

    Parameters
    ----------
    images : sequence of paths or ndarray of shape (n_samples, H, W[, C])
        Test images.
    anomaly_maps : array-like of shape (n_samples, H, W)
        Their anomaly maps.
    y_true : array-like of shape (n_samples,)
        0 = good, 1 = anomalous.
    scores : array-like of shape (n_samples,)
        Image anomaly scores (higher = more anomalous).
    masks : array-like of bool of shape (n_samples, H, W), sequence of paths / None, or None
        Ground truth.
    n : int, default=4
        Images per row (fewer if there are fewer images).
    threshold : float or None, default=None
        Map value drawn as a contour.
    cmap : str, default="jet"
    alpha : float, default=0.5

    Returns
    -------
    fig : matplotlib Figure
        Axes in ``fig.axes`` (rows of ``n``), titled with label and score.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.plotting import plot_anomaly_grid
    >>> rng = np.random.default_rng(0)
    >>> fig = plot_anomaly_grid(rng.random((6, 16, 16, 3)), rng.random((6, 16, 16)),
    ...                         [0, 0, 0, 1, 1, 1], rng.random(6), n=2)
    >>> len(fig.axes)
    4
    """
    import matplotlib.pyplot as plt

    imgs = _as_images(images)
    maps = _as_maps(anomaly_maps, imgs.shape[:3])
    masks = _as_masks(masks, imgs.shape[:3])
    y_true = np.asarray(y_true).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if y_true.shape[0] != imgs.shape[0] or scores.shape[0] != imgs.shape[0]:
        raise ValueError(
            f"y_true and scores must have one entry per image ({imgs.shape[0]}); got "
            f"{y_true.shape[0]} and {scores.shape[0]}."
        )
    top = np.argsort(-scores, kind="stable")[:n]
    defective = np.flatnonzero(y_true == 1)
    missed = defective[np.argsort(scores[defective], kind="stable")][:n]
    rows = [("top-scored", top)] + ([("worst-missed", missed)] if missed.size else [])
    ncols = max(len(idx) for _, idx in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(2.4 * ncols, 2.6 * len(rows)),
                             squeeze=False)
    vmin, vmax = float(maps.min()), float(maps.max())
    for r, (name, idx) in enumerate(rows):
        for c in range(ncols):
            ax = axes[r, c]
            if c >= len(idx):
                ax.remove()
                continue
            i = idx[c]
            _show_one(ax, imgs[i], maps[i], None if masks is None else masks[i], threshold,
                      cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax)
            label = "defect" if y_true[i] == 1 else "good"
            ax.set_title(f"{name}: {label}\nscore {scores[i]:.3g}", fontsize=8)
    fig.tight_layout()
    return fig
