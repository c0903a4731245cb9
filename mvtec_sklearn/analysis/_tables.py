"""Per-category tables: image counts and image / defect features."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._frames import _as_frame

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sklearn.utils import Bunch

__all__ = ["count_table", "feature_table", "category_table"]

_FEATURE_INPUTS = (
    "width", "height", "channels", "brightness", "contrast", "defect_area_px", "defect_area_pct"
)


def _categories(frame: pd.DataFrame) -> pd.Series:
    return frame["category"].where(frame["category"].notna(), "all").astype(str)


def count_table(X: Bunch | Sequence[Bunch] | pd.DataFrame) -> pd.DataFrame:
    """Image counts per category.

    Parameters
    ----------
    X : Bunch, list of Bunch, or DataFrame
        Images with provenance: :func:`mvtec_sklearn.datasets.load_mvtec`
        results (``split="all"`` gives every count) or a frame with columns
        ``category, split, label, defect_type`` such as the result of
        :func:`image_statistics`. No image is decoded.

    Returns
    -------
    table : DataFrame
        Index ``category`` (sorted), columns

        ``train_normal``
            Images in ``train`` (all good).
        ``test_normal``
            Good images in ``test`` (``label == 0``).
        ``test_anomalous``
            Defective images in ``test`` (``label == 1``).
        ``n_anomaly_types``
            Number of distinct ``defect_type`` values among the defective images.

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.analysis import count_table
    >>> frame = pd.DataFrame({"category": ["a", "a", "a", "a"], "path": list("wxyz"),
    ...                       "split": ["train", "test", "test", "test"], "label": [0, 0, 1, 1],
    ...                       "defect_type": ["good", "good", "crack", "hole"]})
    >>> count_table(frame).loc["a"].tolist()
    [1, 1, 2, 2]
    """
    frame = _as_frame(X)
    category = _categories(frame)
    split = frame["split"].astype(str)
    label = pd.to_numeric(frame["label"], errors="coerce")
    flags = pd.DataFrame(
        {
            "train_normal": (split == "train") & (label != 1),
            "test_normal": (split == "test") & (label == 0),
            "test_anomalous": (split == "test") & (label == 1),
        }
    )
    table = flags.groupby(category).sum().astype(np.int64)
    anomalous = label == 1
    types = frame.loc[anomalous, "defect_type"].groupby(category[anomalous]).nunique()
    table["n_anomaly_types"] = types.reindex(table.index, fill_value=0).astype(np.int64)
    table.index.name = "category"
    return table


def _mode(values: pd.Series):
    return values.mode().iloc[0] if values.notna().any() else np.nan


def feature_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Image and defect features per category, from :func:`image_statistics`.

    Parameters
    ----------
    stats : DataFrame
        The result of :func:`image_statistics`.

    Returns
    -------
    table : DataFrame
        Index ``category`` (sorted), columns

        ``width``, ``height``
            The most frequent image width and height in pixels.
        ``constant_size``
            True when every image of the category has that width and height.
        ``channels``
            1 when every image is grayscale (a 1-channel file, or three equal
            channels), else 3.
        ``avg_defect_area_px``, ``avg_defect_area_pct``
            Mean defect area of the anomalous images (``label == 1``) in pixels
            and in percent of the image, from the ground-truth masks (NaN when
            the category has none).
        ``avg_brightness``
            Mean over the category's images of the perceived brightness (mean of
            ``0.299 R + 0.587 G + 0.114 B``, 0-255).
        ``avg_contrast``
            Mean over the category's images of the RMS contrast (standard
            deviation of that luminance).

    Raises
    ------
    ValueError
        If ``stats`` lacks a measure column.

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.analysis import feature_table
    >>> stats = pd.DataFrame({"category": ["a", "a"], "label": [0, 1], "width": [8, 8],
    ...                       "height": [8, 8], "channels": [1, 1], "brightness": [10.0, 30.0],
    ...                       "contrast": [2.0, 4.0], "defect_area_px": [0, 16],
    ...                       "defect_area_pct": [0.0, 25.0]})
    >>> feature_table(stats).loc["a", ["avg_defect_area_pct", "avg_brightness"]].tolist()
    [25.0, 20.0]
    """
    if not isinstance(stats, pd.DataFrame):
        raise ValueError(
            "feature_table expects the DataFrame returned by image_statistics, got "
            f"{type(stats).__name__}."
        )
    missing = [c for c in ("category", "label", *_FEATURE_INPUTS) if c not in stats.columns]
    if missing:
        raise ValueError(
            f"stats lacks the columns {missing}; pass the DataFrame returned by image_statistics."
        )
    stats = stats.reset_index(drop=True)
    category = _categories(stats)
    grouped = stats.groupby(category)
    anomalous = stats[pd.to_numeric(stats["label"], errors="coerce") == 1]
    areas = anomalous[["defect_area_px", "defect_area_pct"]]
    defects = areas.groupby(category[anomalous.index]).mean()
    table = pd.DataFrame(
        {
            "width": grouped["width"].agg(_mode),
            "height": grouped["height"].agg(_mode),
            "constant_size": grouped["width"].nunique().eq(1) & grouped["height"].nunique().eq(1),
            "channels": grouped["channels"].max(),
        }
    )
    table["avg_defect_area_px"] = defects["defect_area_px"].reindex(table.index)
    table["avg_defect_area_pct"] = defects["defect_area_pct"].reindex(table.index)
    table["avg_brightness"] = grouped["brightness"].mean()
    table["avg_contrast"] = grouped["contrast"].mean()
    table.index.name = "category"
    return table


def category_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Counts (:func:`count_table`) and features (:func:`feature_table`) per category.

    Parameters
    ----------
    stats : DataFrame
        The result of :func:`image_statistics` (with provenance columns).

    Returns
    -------
    table : DataFrame
        Index ``category``; columns ``train_normal, test_normal, test_anomalous,
        n_anomaly_types`` followed by ``width, height, constant_size, channels,
        avg_defect_area_px, avg_defect_area_pct, avg_brightness, avg_contrast``
        (defined in :func:`count_table` and :func:`feature_table`).

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.analysis import category_table
    >>> stats = pd.DataFrame({"category": ["a", "a"], "split": ["train", "test"],
    ...                       "defect_type": ["good", "hole"], "label": [0, 1],
    ...                       "path": ["x.png", "y.png"], "width": [8, 8],
    ...                       "height": [8, 8], "channels": [3, 3], "brightness": [10.0, 30.0],
    ...                       "contrast": [2.0, 4.0], "defect_area_px": [0, 16],
    ...                       "defect_area_pct": [0.0, 25.0]})
    >>> table = category_table(stats)
    >>> int(table.loc["a", "test_anomalous"]), float(table.loc["a", "avg_contrast"])
    (1, 3.0)
    """
    return count_table(stats).join(feature_table(stats))
