"""Per-image statistics of an image collection, streamed, parallel and cached."""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from typing import TYPE_CHECKING, Literal, overload

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from mvtec_sklearn.datasets import read_image, read_mask
from mvtec_sklearn.features import compute_image_statistics
from mvtec_sklearn.utils import (
    atomic_write,
    file_signature,
    progress,
    remove_stale_temporaries,
)

from ._frames import PROVENANCE_COLUMNS, _as_frame, _missing

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sklearn.utils import Bunch

__all__ = ["image_statistics", "MEASURE_COLUMNS", "CHANNELS"]

#: Per-image measures, in the order :func:`image_statistics` returns them.
MEASURE_COLUMNS = (
    "width",
    "height",
    "channels",
    "brightness",
    "contrast",
    "mean_r",
    "mean_g",
    "mean_b",
    "std_r",
    "std_g",
    "std_b",
    "sum_r",
    "sum_g",
    "sum_b",
    "defect_area_px",
    "defect_area_pct",
)

#: Channel names of the intensity histograms.
CHANNELS = ("R", "G", "B")

# Bump whenever a measure's definition changes, so stale cache entries are ignored.
_CACHE_VERSION = "image-statistics-2"
_CACHE_SUBDIR = "image_statistics"


def _cache_key(path, mask_path) -> str:
    parts = [_CACHE_VERSION, file_signature(path)]
    parts.append("-" if mask_path is None else file_signature(mask_path))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _measure(path, mask_path):
    """Decode one image (and its mask) and compute its measures and histograms."""
    image = read_image(path, mode="keep")
    stats = compute_image_statistics(image, features=("brightness", "contrast", "channel_stats"))
    height, width = image.shape[:2]
    grayscale = image.ndim == 2 or (
        np.array_equal(image[..., 0], image[..., 1])
        and np.array_equal(image[..., 1], image[..., 2])
    )
    record = {
        "width": width,
        "height": height,
        "channels": 1 if grayscale else 3,
        "brightness": stats["brightness"],
        "contrast": stats["contrast"],
    }
    record.update({f"mean_{c}": stats[f"mean_{c}"] for c in "rgb"})
    record.update({f"std_{c}": stats[f"std_{c}"] for c in "rgb"})
    record.update({f"sum_{c}": stats[f"mean_{c}"] * (width * height) for c in "rgb"})
    if mask_path is None:
        record["defect_area_px"] = np.nan
        record["defect_area_pct"] = np.nan
    else:
        mask = read_mask(mask_path, size=(height, width))
        area = int(mask.sum())
        record["defect_area_px"] = area
        record["defect_area_pct"] = 100.0 * area / (height * width)
    rgb = image[..., None] if image.ndim == 2 else image
    hist = np.stack(
        [np.bincount(rgb[..., c % rgb.shape[-1]].ravel(), minlength=256) for c in range(3)]
    ).astype(np.int64)
    return record, hist


def _read_record(cache_file, key):
    """A cached ``(record, histogram)``; None (with a warning naming the file) when unusable.

    Entries are ``.npz`` archives read with ``allow_pickle=False``: a planted
    or damaged file can only be rejected, never run.
    """
    try:
        with np.load(cache_file, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        if str(arrays.pop("key")) == key:
            hist = arrays.pop("histogram")
            return {name[2:]: value.item() for name, value in arrays.items()}, hist
        problem = "holds another key"
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        problem = f"is damaged ({type(exc).__name__}: {exc})"
    warnings.warn(
        f"Image-statistics cache file {cache_file!r} {problem}; measuring the image again.",
        UserWarning,
        stacklevel=3,
    )
    return None


def _image_record(path, mask_path, cache_dir):
    """One image's ``(record, histogram)``, read from / written to the cache."""
    if cache_dir is None:
        return _measure(path, mask_path)
    key = _cache_key(path, mask_path)
    cache_file = os.path.join(cache_dir, _CACHE_SUBDIR, key[:2], key + ".npz")
    if os.path.isfile(cache_file):
        cached = _read_record(cache_file, key)
        if cached is not None:
            return cached
    record, hist = _measure(path, mask_path)
    with atomic_write(cache_file) as fh:  # concurrent writers never leave a partial file
        np.savez(
            fh,
            key=np.asarray(key),
            histogram=hist,
            **{f"r_{name}": np.asarray(value) for name, value in record.items()},
        )
    return record, hist


@overload
def image_statistics(
    X: Sequence[str | os.PathLike[str]] | Bunch | Sequence[Bunch] | pd.DataFrame,
    *,
    n_jobs: int = ...,
    cache_dir: str | os.PathLike[str] | None = ...,
    verbose: bool = ...,
    return_histograms: Literal[False] = ...,
) -> pd.DataFrame: ...


@overload
def image_statistics(
    X: Sequence[str | os.PathLike[str]] | Bunch | Sequence[Bunch] | pd.DataFrame,
    *,
    n_jobs: int = ...,
    cache_dir: str | os.PathLike[str] | None = ...,
    verbose: bool = ...,
    return_histograms: Literal[True],
) -> tuple[pd.DataFrame, pd.DataFrame]: ...


def image_statistics(
    X: Sequence[str | os.PathLike[str]] | Bunch | Sequence[Bunch] | pd.DataFrame,
    *,
    n_jobs: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    verbose: bool = False,
    return_histograms: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Per-image statistics of a collection of images, with provenance.

    Images are decoded one at a time with :func:`mvtec_sklearn.datasets.read_image`
    (never all in memory), in parallel with joblib, and each image's result can
    be cached on disk so that a second call only reads the cache.

    The measures per image (``image`` is the decoded uint8 array, ``R, G, B`` its
    channels as floats in 0-255; a 1-channel image has ``R = G = B``):

    ``width``, ``height``
        Size in pixels.
    ``channels``
        3 for a colour image, 1 for a grayscale one: a 1-channel file, or a
        colour file whose three channels are equal at every pixel.
    ``brightness``
        Perceived brightness: the mean over pixels of the luminance
        ``Y = 0.299 R + 0.587 G + 0.114 B`` (ITU-R BT.601), in 0-255.
    ``contrast``
        RMS contrast: the (population, ``ddof=0``) standard deviation over
        pixels of the same luminance ``Y``, in 0-127.5.
    ``mean_r``, ``mean_g``, ``mean_b``
        Mean intensity of each channel, in 0-255.
    ``std_r``, ``std_g``, ``std_b``
        Standard deviation (``ddof=0``) of each channel's intensity.
    ``sum_r``, ``sum_g``, ``sum_b``
        Sum of each channel's intensities over all pixels, ``mean_c * width * height``.
    ``defect_area_px``
        Number of defect (non-zero) pixels in the ground-truth mask, read with
        :func:`mvtec_sklearn.datasets.read_mask` at the image's size. 0 for a
        good image (``label == 0``) without a mask; NaN where the area is
        unknown (no mask and not known to be good).
    ``defect_area_pct``
        ``100 * defect_area_px / (width * height)``.

    ``brightness``, ``contrast`` and the per-channel means and standard
    deviations come from :func:`mvtec_sklearn.features.compute_image_statistics`,
    the same code as the hand-crafted featurizer.

    Parameters
    ----------
    X : sequence of str / os.PathLike, Bunch, list of Bunch, or DataFrame
        The images: file paths, the result of
        :func:`mvtec_sklearn.datasets.load_mvtec` (or a list of them), or a
        DataFrame with a ``path`` column and optionally the other provenance
        columns (``category, split, defect_type, label, image_id, mask_path``).
    n_jobs : int, default=1
        Parallel jobs (joblib; ``-1`` = all cores).
    cache_dir : str or os.PathLike or None, default=None
        Folder of the per-image cache. An entry is keyed by the absolute path,
        modification time and size of the image file and of its mask file, so
        a changed file is measured again. ``None`` disables caching. Entries
        are ``.npz`` files that store their key and are read without pickle; a
        damaged or foreign entry is reported with a warning and measured again.
    verbose : bool, default=False
        Show a progress bar.
    return_histograms : bool, default=False
        Also return the per-category channel intensity histograms.

    Returns
    -------
    stats : DataFrame
        One row per image, in input order: the provenance columns
        ``category, split, defect_type, label, image_id, path, mask_path``
        followed by the measures above.
    histograms : DataFrame
        Only when ``return_histograms=True``. Index ``(category, channel)``
        with channel in ``"R", "G", "B"``, columns ``0 ... 255``: the number of
        pixels of that intensity, summed over every image of the category
        (a grayscale image counts its one channel as R, G and B). Images
        without a category are counted under ``"all"``.

    Raises
    ------
    ValueError
        Empty or unsupported input.
    FileNotFoundError
        An image or mask file that does not exist (the message names it).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from mvtec_sklearn.analysis import image_statistics
    >>> path = os.path.join(tempfile.mkdtemp(), "gray.png")
    >>> Image.fromarray(np.full((4, 6), 100, np.uint8)).save(path)
    >>> stats = image_statistics([path])
    >>> stats[["width", "height", "channels", "brightness", "contrast"]].to_dict("records")
    [{'width': 6, 'height': 4, 'channels': 1, 'brightness': 100.0, 'contrast': 0.0}]
    """
    frame = _as_frame(X)
    if cache_dir is not None:
        cache_dir = os.fspath(cache_dir)
        entries = os.path.join(cache_dir, _CACHE_SUBDIR)
        for sub in os.listdir(entries) if os.path.isdir(entries) else []:
            remove_stale_temporaries(os.path.join(entries, sub))
    paths = frame["path"].tolist()
    masks = [None if _missing(m) else os.fspath(m) for m in frame["mask_path"]]
    jobs = (delayed(_image_record)(p, m, cache_dir) for p, m in zip(paths, masks))
    results = Parallel(n_jobs=n_jobs, return_as="generator")(jobs)

    categories = ["all" if _missing(c) else str(c) for c in frame["category"]]
    hist_sums: dict[str, np.ndarray] = {}
    records = []
    for category, (record, hist) in zip(
        categories,
        progress(results, verbose=verbose, total=len(paths), desc="Image statistics"),
    ):
        records.append(record)
        if return_histograms:
            if category in hist_sums:
                hist_sums[category] += hist
            else:
                hist_sums[category] = hist.copy()

    measures = pd.DataFrame.from_records(records, columns=list(MEASURE_COLUMNS))
    for col in ("width", "height", "channels"):
        measures[col] = measures[col].astype(np.int64)
    good = (frame["label"] == 0).to_numpy() & measures["defect_area_px"].isna().to_numpy()
    measures.loc[good, ["defect_area_px", "defect_area_pct"]] = 0.0
    stats = pd.concat([frame[list(PROVENANCE_COLUMNS)], measures], axis=1)
    if not return_histograms:
        return stats
    index = pd.MultiIndex.from_product(
        [list(hist_sums), list(CHANNELS)], names=["category", "channel"]
    )
    values = np.concatenate(list(hist_sums.values()))
    histograms = pd.DataFrame(values, index=index, columns=pd.RangeIndex(256))
    return stats, histograms
