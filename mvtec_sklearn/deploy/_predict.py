"""Scoring new image files: scores.csv, heatmap overlays and binary masks."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mvtec_sklearn.datasets import read_image
from mvtec_sklearn.utils import atomic_path, progress

from ._files import collect_images
from ._model_file import model_thresholds

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["SCORE_COLUMNS", "overlay_heatmap", "predict_images"]

#: Columns of ``scores.csv``.
SCORE_COLUMNS = ("path", "anomaly_score", "decision", "threshold")


def overlay_heatmap(
    image: np.ndarray, amap: np.ndarray, *, vmax: float | None = None, alpha: float = 0.5,
    cmap: str = "jet",
) -> np.ndarray:
    """Blend a colour-mapped anomaly map over an image.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
        The image.
    amap : ndarray of shape (H, W)
        Its anomaly map (higher = more anomalous).
    vmax : float or None, default=None
        Map value shown at the top of the colour map (0 at the bottom);
        ``None`` stretches this map's own range.
    alpha : float, default=0.5
        Weight of the heatmap.
    cmap : str, default="jet"
        A matplotlib colour map.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.deploy import overlay_heatmap
    >>> overlay_heatmap(np.zeros((4, 4, 3), np.uint8), np.eye(4)).shape
    (4, 4, 3)
    """
    from matplotlib import colormaps

    amap = np.asarray(amap, dtype=np.float64)
    if vmax is None:
        low, high = float(amap.min()), float(amap.max())
    else:
        low, high = 0.0, float(vmax)
    scaled = np.clip((amap - low) / max(high - low, 1e-12), 0.0, 1.0)
    colours = colormaps[cmap](scaled)[..., :3] * 255.0
    blended = (1.0 - alpha) * image.astype(np.float64) + alpha * colours
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def _save_png(array, path):
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def _image_size(path):
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def _output_name(name):
    return os.path.splitext(name)[0] + ".png"


def predict_images(
    model: Any,
    inputs: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    pixel_threshold: float | None = None,
    batch_size: int = 16,
    verbose: bool = False,
) -> pd.DataFrame:
    """Score image files and write ``scores.csv``, heatmap overlays and masks.

    Images may have any size: files of one size are scored together (in
    batches of ``batch_size``), and maps are at each image's resolution.
    Every file is written atomically (temporary file, then rename).

    Parameters
    ----------
    model : estimator or ExportedDetector
        A fitted detector or pipeline (``score_samples``: higher = more
        normal), e.g. from :func:`load_model`.
    inputs : sequence of str or os.PathLike
        Image files and folders (searched recursively).
    out : str or os.PathLike
        Output folder: ``scores.csv`` with the columns
        :data:`SCORE_COLUMNS`, and, for models with ``anomaly_map``,
        ``overlays/NAME.png`` (heatmap over the image) and, when a pixel
        threshold is known, ``masks/NAME.png`` (white = anomalous), where
        NAME is the image's path relative to the folder it was found in.
    threshold : float or None, default=None
        Image threshold on the anomaly score; ``None`` takes the model's
        (:func:`model_thresholds`).
    pixel_threshold : float or None, default=None
        Map threshold of the masks; ``None`` takes the model's.
    batch_size : int, default=16
        Images scored per call.
    verbose : bool, default=False
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        The content of ``scores.csv``: ``decision`` is ``"anomalous"`` when
        ``anomaly_score > threshold``, else ``"normal"``.

    Raises
    ------
    FileNotFoundError
        If an input does not exist or holds no image.
    ValueError
        If no image threshold is given and the model has none.
    """
    model_threshold, model_pixel = model_thresholds(model)
    threshold = model_threshold if threshold is None else float(threshold)
    pixel_threshold = model_pixel if pixel_threshold is None else float(pixel_threshold)
    if threshold is None:
        raise ValueError(
            f"{type(model).__name__} carries no threshold (no threshold_ or offset_); pass "
            "threshold=..., or calibrate with CalibratedThresholdDetector."
        )
    files = collect_images(inputs)
    with_maps = hasattr(model, "anomaly_map")
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, (path, _) in enumerate(files):
        by_size.setdefault(_image_size(path), []).append(i)
    batches = [idx[s:s + batch_size] for idx in by_size.values()
               for s in range(0, len(idx), batch_size)]
    scores = np.empty(len(files), dtype=np.float64)
    bar = progress(total=len(files), verbose=verbose, desc="predict")
    for batch in batches:
        paths = [files[i][0] for i in batch]
        if with_maps and hasattr(model, "score_samples_and_anomaly_map"):
            normality, maps = model.score_samples_and_anomaly_map(paths)
        elif with_maps:
            normality, maps = model.score_samples(paths), model.anomaly_map(paths)
        else:
            normality, maps = model.score_samples(paths), None
        scores[batch] = -np.asarray(normality, dtype=np.float64)
        for j, i in enumerate(batch):
            if maps is None:
                continue
            path, name = files[i]
            amap = np.asarray(maps[j])
            vmax = None if pixel_threshold is None else 2.0 * pixel_threshold
            _save_png(overlay_heatmap(read_image(path, mode="RGB"), amap, vmax=vmax),
                      os.path.join(out, "overlays", _output_name(name)))
            if pixel_threshold is not None:
                mask = np.where(amap > pixel_threshold, 255, 0).astype(np.uint8)
                _save_png(mask, os.path.join(out, "masks", _output_name(name)))
        bar.update(len(batch))
    bar.close()
    table = pd.DataFrame({
        "path": [path for path, _ in files],
        "anomaly_score": scores,
        "decision": np.where(scores > threshold, "anomalous", "normal"),
        "threshold": threshold,
    }, columns=list(SCORE_COLUMNS))
    with atomic_path(os.path.join(out, "scores.csv")) as tmp:
        table.to_csv(tmp, index=False)
    return table
