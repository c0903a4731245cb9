"""A disk cache of decoded, resized images and masks with their provenance.

Files are ``.npz`` archives read with ``allow_pickle=False`` (no code runs on
load), written atomically (temporary file in the same folder, then
:func:`os.replace`). :class:`DatasetCache` names each file after a key that
hashes the source files (path, size, modification time), the image size, the
channel mode and the cache version, so a different size or a changed source
never returns stale data.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from mvtec_sklearn.utils import (
    atomic_write,
    check_outside_dataset,
    check_size_pair,
    file_signature,
    remove_stale_temporaries,
)

from ._io import load_images
from ._mvtec import load_masks

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = ["CACHE_VERSION", "DatasetCache", "load_cache", "save_cache"]

#: Bumped whenever what the cache stores changes.
CACHE_VERSION = "1"

_FRAME_PREFIX = "frame__"


def save_cache(
    path: str | os.PathLike[str],
    images: ArrayLike,
    masks: ArrayLike | None = None,
    frame: pd.DataFrame | None = None,
    key: str = "",
) -> str:
    """Save images, masks and provenance to one ``.npz`` file, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (``.npz``). Its folder is created if needed.
    images : ndarray, shape (n, H, W, C) or (n, H, W)
        Decoded images (any numeric dtype).
    masks : ndarray of bool, shape (n, H, W), or None, default=None
        Ground-truth masks.
    frame : DataFrame or None, default=None
        Provenance, one row per image (e.g. ``load_mvtec(...).frame``). Stored
        column by column as strings / integers; missing entries (None, NaN)
        come back as None.
    key : str, default=""
        Stored with the data; :func:`load_cache` can check it.

    Returns
    -------
    path : str

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from mvtec_sklearn.datasets import save_cache, load_cache
    >>> path = save_cache(os.path.join(tempfile.mkdtemp(), "c.npz"), np.zeros((2, 4, 4, 3)),
    ...                   key="abc")
    >>> load_cache(path, key="abc").images.shape
    (2, 4, 4, 3)
    """
    path = os.fspath(path)
    images = np.asarray(images)
    n = len(images)
    arrays = {"images": images, "key": np.asarray(str(key)), "version": np.asarray(CACHE_VERSION)}
    if masks is not None:
        masks = np.asarray(masks, dtype=bool)
        if len(masks) != n:
            raise ValueError(f"masks has {len(masks)} entries but images has {n}.")
        arrays["masks"] = masks
    if frame is not None:
        if len(frame) != n:
            raise ValueError(f"frame has {len(frame)} rows but images has {n}.")
        for col in frame.columns:
            values = frame[col].tolist()
            if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
                arrays[_FRAME_PREFIX + col] = np.asarray(values, dtype=np.int64)
            else:
                # None -> "" and a parallel "is None" column, so None round-trips exactly
                missing = [v is None or (np.isscalar(v) and pd.isna(v)) for v in values]
                arrays[_FRAME_PREFIX + col] = np.asarray(
                    ["" if miss else str(v) for v, miss in zip(values, missing)], dtype=str
                )
                arrays[_FRAME_PREFIX + col + "__isnone"] = np.asarray(missing, dtype=bool)
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)  # type: ignore[arg-type]  # no key is "allow_pickle"
    return path


def load_cache(path: str | os.PathLike[str], key: str | None = None) -> Bunch:
    """Load a file written by :func:`save_cache`.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.
    key : str or None, default=None
        When given, the stored key must equal it.

    Returns
    -------
    data : Bunch
        ``images``, ``masks`` (or None), ``frame`` (DataFrame or None), ``key``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not a cache file of this version, or its key differs
        from ``key`` (stale data).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from mvtec_sklearn.datasets import save_cache, load_cache
    >>> path = save_cache(os.path.join(tempfile.mkdtemp(), "c.npz"), np.ones((1, 2, 2)))
    >>> float(load_cache(path).images.sum())
    4.0
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Cache file not found: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"Cannot read cache file {path!r}: {exc}") from exc
    if "images" not in arrays or str(arrays.get("version", "")) != CACHE_VERSION:
        raise ValueError(
            f"{path!r} is not a version-{CACHE_VERSION} cache file; delete it to rebuild."
        )
    stored_key = str(arrays["key"])
    if key is not None and stored_key != key:
        raise ValueError(f"Cache file {path!r} holds key {stored_key!r}, not {key!r} (stale data).")
    frame = None
    cols = [
        n[len(_FRAME_PREFIX) :]
        for n in arrays
        if n.startswith(_FRAME_PREFIX) and not n.endswith("__isnone")
    ]
    if cols:
        data = {}
        for col in cols:
            values = arrays[_FRAME_PREFIX + col]
            isnone = arrays.get(_FRAME_PREFIX + col + "__isnone")
            if isnone is None:
                data[col] = values
            elif isnone.any():
                data[col] = pd.Series(
                    [None if miss else v for v, miss in zip(values.tolist(), isnone)], dtype=object
                )
            else:
                data[col] = values.tolist()
        frame = pd.DataFrame(data)
    return Bunch(images=arrays["images"], masks=arrays.get("masks"), frame=frame, key=stored_key)


class DatasetCache:
    """Decode a :func:`load_mvtec` selection once and keep it on disk.

    Parameters
    ----------
    cache_dir : str or os.PathLike
        Folder for the cache files; never inside the dataset folder (nor
        inside a category folder that is a symbolic link elsewhere).

    Notes
    -----
    A cache file that is damaged (truncated, not an archive) or stores
    another key is reported with a warning that names it, and rebuilt.
    Temporaries left by killed writers are removed.

    Examples
    --------
    >>> import tempfile
    >>> from mvtec_sklearn.datasets import DatasetCache, load_mvtec, make_mvtec_like
    >>> root = make_mvtec_like(tempfile.mkdtemp(), categories=["tile"], n_train=1,
    ...                        n_test_good=1, n_test_defect=2, image_size=32)
    >>> cache = DatasetCache(tempfile.mkdtemp())
    >>> test = cache.load(load_mvtec(root, "tile", split="test"), image_size=16)
    >>> test.images.shape, test.masks.shape, test.from_cache
    ((3, 16, 16, 3), (3, 16, 16), False)
    >>> cache.load(load_mvtec(root, "tile", split="test"), image_size=16).from_cache
    True
    """

    def __init__(self, cache_dir: str | os.PathLike[str]) -> None:
        self.cache_dir = os.fspath(cache_dir)

    def key(
        self,
        data: Bunch,
        image_size: int | tuple[int, int] | None = None,
        channels: int | Literal["keep"] = "keep",
    ) -> str:
        """The hash that names the cache file of ``data`` at ``image_size`` / ``channels``.

        Parameters
        ----------
        data : Bunch
            A :func:`load_mvtec` result.
        image_size : int or (int, int) or None, default=None
            Size the images are resized to.
        channels : {"keep", 1, 3}, default="keep"
            Channel mode (see :func:`load_images`).

        Returns
        -------
        key : str
            Hex digest over the source files' paths, sizes and modification
            times, ``image_size``, ``channels`` and the cache version.
        """
        if image_size is not None:
            # a tuple: the same JSON as a list
            image_size = check_size_pair(image_size, "image_size")
        files: list[str | None] = [file_signature(p) for p in data["paths"]]
        files += [None if m is None else file_signature(m) for m in data["mask_paths"]]
        payload = {
            "version": CACHE_VERSION,
            "image_size": image_size,
            "channels": channels,
            "files": files,
        }
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()

    def path(
        self,
        data: Bunch,
        image_size: int | tuple[int, int] | None = None,
        channels: int | Literal["keep"] = "keep",
    ) -> str:
        """The cache file that :meth:`load` reads or writes for these arguments."""
        key = self.key(data, image_size, channels)
        name = f"{data['category']}-{data['split']}-{key[:20]}.npz"
        return os.path.join(self.cache_dir, name)

    def load(
        self,
        data: Bunch,
        image_size: int | tuple[int, int] | None = None,
        channels: int | Literal["keep"] = "keep",
    ) -> Bunch:
        """Decoded images and masks of ``data``: from the cache, or decoded and cached now.

        Parameters
        ----------
        data : Bunch
            A :func:`load_mvtec` result.
        image_size : int or (int, int) or None, default=None
            Resize to this size (see :func:`load_images`); needed when the
            images differ in size.
        channels : {"keep", 1, 3}, default="keep"
            Channel mode (see :func:`load_images`).

        Returns
        -------
        cached : Bunch
            ``images`` float32 (n, H, W, C) in [0, 1] (exactly what
            :func:`load_images` returns for ``data.paths``), ``masks`` bool
            (n, H, W), ``target``, ``paths``, ``mask_paths``, ``defect_type``,
            ``frame``, ``category``, ``split``, ``cache_path`` and
            ``from_cache`` (whether the data were read from the cache file).
        """
        check_outside_dataset(self.cache_dir, data.get("root"), what="cache_dir")
        remove_stale_temporaries(self.cache_dir)
        key = self.key(data, image_size, channels)
        path = self.path(data, image_size, channels)
        from_cache = os.path.isfile(path)
        if from_cache:
            try:
                stored = load_cache(path, key=key)
                images, masks = stored.images, stored.masks
            except ValueError as exc:  # damaged or stale: say so and rebuild it
                warnings.warn(f"{exc} Rebuilding it.", UserWarning, stacklevel=2)
                from_cache = False
        if not from_cache:
            images = load_images(data["paths"], size=image_size, channels=channels)
            masks = load_masks(data["mask_paths"], size=images.shape[1:3])
            save_cache(path, images, masks, frame=data["frame"], key=key)
        return Bunch(
            images=images,
            masks=masks,
            target=np.asarray(data["target"]),
            paths=list(data["paths"]),
            mask_paths=list(data["mask_paths"]),
            defect_type=np.asarray(data["defect_type"], dtype=object),
            frame=data["frame"],
            category=data["category"],
            split=data["split"],
            cache_path=path,
            from_cache=from_cache,
        )

    def __repr__(self):
        return f"DatasetCache({self.cache_dir!r})"
