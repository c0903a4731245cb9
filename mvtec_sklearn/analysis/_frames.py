"""The input of the analysis functions: image paths, ``load_mvtec`` Bunches or a DataFrame.

Every public function of this subpackage turns its input into one provenance
frame with :func:`_as_frame`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import pandas as pd

from mvtec_sklearn.datasets import is_path_sequence

__all__ = ["PROVENANCE_COLUMNS"]

#: Provenance columns, as in the ``frame`` of :func:`mvtec_sklearn.datasets.load_mvtec`.
PROVENANCE_COLUMNS = ("category", "split", "defect_type", "label", "image_id", "path", "mask_path")


def _as_frame(X) -> pd.DataFrame:
    """Turn paths, a Bunch, a list of Bunches or a DataFrame into a provenance frame."""
    if isinstance(X, (str, os.PathLike)):
        raise ValueError(
            f"Expected a sequence of image paths, got the single path {os.fspath(X)!r}; "
            "wrap it in a list."
        )
    if isinstance(X, (list, tuple)) and len(X) == 0:
        raise ValueError("Found no images: the input is empty.")
    if isinstance(X, pd.DataFrame):
        frame = X
    elif isinstance(X, Mapping) and "frame" in X:
        frame = X["frame"]
    elif hasattr(X, "frame") and isinstance(X.frame, pd.DataFrame):
        frame = X.frame
    elif (
        isinstance(X, (list, tuple))
        and len(X) > 0
        and all(isinstance(b, pd.DataFrame) or hasattr(b, "frame") for b in X)
    ):
        frame = pd.concat([_as_frame(b) for b in X], ignore_index=True)
    elif is_path_sequence(X):
        frame = pd.DataFrame({"path": [os.fspath(p) for p in X]})
    else:
        raise ValueError(
            "Expected a sequence of image paths, a Bunch from load_mvtec (or a list of them), "
            f"or a DataFrame with a 'path' column; got {type(X).__name__}."
        )
    if "path" not in frame.columns:
        raise ValueError(
            f"The frame needs a 'path' column; it has columns {list(frame.columns)}."
        )
    if len(frame) == 0:
        raise ValueError("Found no images: the input is empty.")
    frame = frame.reset_index(drop=True).copy()
    for col in PROVENANCE_COLUMNS:
        if col not in frame.columns:
            frame[col] = None
    frame["path"] = frame["path"].map(os.fspath)
    return frame


def _missing(value) -> bool:
    """True for None, NaN and pd.NA (an absent mask path or category)."""
    return value is None or (not isinstance(value, (str, os.PathLike)) and bool(pd.isna(value)))
