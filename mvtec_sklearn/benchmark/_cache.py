"""A content-keyed on-disk cache of computed features."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile

import numpy as np

from mvtec_sklearn.utils import atomic_write, file_signature, remove_stale_temporaries

__all__ = ["FeatureCache", "stable_repr"]


def stable_repr(obj) -> str:
    """A repr without memory addresses: estimators by class and parameters, recursively.

    Parameters
    ----------
    obj : object

    Returns
    -------
    str

    Examples
    --------
    >>> from sklearn.svm import OneClassSVM
    >>> from mvtec_sklearn.benchmark._cache import stable_repr
    >>> stable_repr(OneClassSVM(nu=0.2)) == stable_repr(OneClassSVM(nu=0.2))
    True
    """
    if hasattr(obj, "get_params") and not isinstance(obj, type):
        params = obj.get_params(deep=False)
        inner = ", ".join(f"{k}={stable_repr(v)}" for k, v in sorted(params.items()))
        return f"{type(obj).__module__}.{type(obj).__qualname__}({inner})"
    if isinstance(obj, dict):
        return (
            "{"
            + ", ".join(
                f"{stable_repr(k)}: {stable_repr(v)}" for k, v in sorted(obj.items(), key=str)
            )
            + "}"
        )
    if isinstance(obj, (list, tuple)):
        body = ", ".join(stable_repr(v) for v in obj)
        return f"[{body}]" if isinstance(obj, list) else f"({body})"
    if isinstance(obj, np.ndarray):
        digest = hashlib.sha1(np.ascontiguousarray(obj).tobytes()).hexdigest()
        return f"ndarray({obj.dtype}, {obj.shape}, {digest})"
    if callable(obj) and hasattr(obj, "__qualname__"):
        return f"{getattr(obj, '__module__', '')}.{obj.__qualname__}"
    return repr(obj)


class FeatureCache:
    """Features of (featurizer configuration, image files) stored as ``.npz`` files.

    The key hashes the featurizer's class and parameters, the image paths with
    their modification times and sizes, the benchmark's image size and the
    package version, so an edited image, a different configuration or a new
    release recomputes. Each file stores its own key and is read without
    pickle (``allow_pickle=False``); a file that is damaged (truncated, not an
    archive) or holds another key (swapped or renamed by hand) is reported
    with a warning naming it and recomputed. Writes are atomic (temporary file
    + rename), so parallel writers and an interrupted run never leave a
    partial entry; temporaries left by killed writers are removed when the
    cache is opened.

    Parameters
    ----------
    directory : str or os.PathLike or None
        Folder of the cache; None disables the disk (``load`` always misses,
        ``save`` does nothing).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from mvtec_sklearn.benchmark._cache import FeatureCache
    >>> cache = FeatureCache(tempfile.mkdtemp())
    >>> cache.save("k", {"train": np.zeros((2, 3))}, seconds=1.5)
    >>> entry = cache.load("k")
    >>> entry["train"].shape, entry["seconds"]
    ((2, 3), 1.5)
    """

    def __init__(self, directory):
        self.directory = None if directory is None else os.fspath(directory)
        if self.directory is not None:
            remove_stale_temporaries(self.directory)

    @staticmethod
    def key(featurizer, path_groups, image_size=None) -> str:
        """Content key of ``featurizer`` applied to the files in ``path_groups``.

        Parameters
        ----------
        featurizer : transformer
        path_groups : dict of str -> list of paths
            E.g. ``{"train": [...], "test": [...]}``.
        image_size : int or None

        Returns
        -------
        str
            A hexadecimal digest.
        """
        from mvtec_sklearn import __version__

        payload = {
            "featurizer": stable_repr(featurizer),
            "files": {
                name: [file_signature(p) for p in paths]
                for name, paths in sorted(path_groups.items())
            },
            "image_size": image_size,
            "version": __version__,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]

    def _path(self, key):
        return os.path.join(self.directory, f"{key}.npz")

    def load(self, key):
        """The stored arrays and ``seconds`` for ``key``, or None when absent.

        A damaged file, or one that stores another key, warns (naming the
        file) and returns None, so the caller recomputes and overwrites it.
        """
        if self.directory is None or not os.path.isfile(self._path(key)):
            return None
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as data:
                entry = {name: data[name] for name in data.files}
            stored = str(entry.pop("key", ""))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            problem = f"is damaged ({type(exc).__name__}: {exc})"
        else:
            if stored == key:
                entry["seconds"] = float(entry.get("seconds", float("nan")))
                return entry
            problem = f"holds key {stored!r}, not {key!r} (renamed or replaced)"
        warnings.warn(
            f"Feature cache file {path!r} {problem}; recomputing it.", UserWarning, stacklevel=2
        )
        return None

    def save(self, key, arrays, seconds=float("nan")):
        """Store ``arrays`` (dict name -> ndarray), the time they took and ``key`` itself."""
        if self.directory is None:
            return
        if "key" in arrays or "seconds" in arrays:
            raise ValueError("'key' and 'seconds' are reserved names in a FeatureCache entry.")
        with atomic_write(self._path(key)) as fh:
            np.savez(
                fh,
                key=np.asarray(key),
                seconds=np.float64(seconds),
                **{k: np.asarray(v) for k, v in arrays.items()},
            )
