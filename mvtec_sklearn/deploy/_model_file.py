"""Saving a fitted model with its metadata, and loading it (or an exported file) back."""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
from typing import TYPE_CHECKING, Any

import numpy as np

from mvtec_sklearn.datasets import is_path_sequence
from mvtec_sklearn.utils import atomic_path

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["MODEL_FORMAT", "load_model", "model_thresholds", "save_model", "training_signature"]

#: Name and version of the file layout written by :func:`save_model`.
MODEL_FORMAT = ("mvtec_sklearn.model", 1)

_EXPORT_SUFFIXES = (".pt", ".ts", ".onnx")


def training_signature(X: Sequence[str | os.PathLike[str]] | Any) -> dict:
    """A fingerprint of the training images: their number and a SHA-256 of their content.

    Parameters
    ----------
    X : sequence of paths or ndarray
        The training images as given to ``fit``. Files are hashed in the
        given order (bytes of every file), arrays by their dtype, shape and
        bytes.

    Returns
    -------
    dict
        ``{"n_images": int, "sha256": str}``.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.deploy import training_signature
    >>> training_signature(np.zeros((2, 8, 8), np.uint8))["n_images"]
    2
    """
    digest = hashlib.sha256()
    if is_path_sequence(X):
        paths = [os.fspath(p) for p in X]
        for path in paths:
            digest.update(os.path.basename(path).encode())
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        n = len(paths)
    else:
        array = np.ascontiguousarray(X)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
        n = int(array.shape[0])
    return {"n_images": n, "sha256": digest.hexdigest()}


def model_thresholds(model: Any) -> tuple[float | None, float | None]:
    """Image and pixel thresholds (on the anomaly score and map) a fitted model carries.

    Parameters
    ----------
    model : estimator
        A :class:`~mvtec_sklearn.model_selection.CalibratedThresholdDetector`
        (its ``threshold_`` and ``pixel_threshold_``), any detector with
        ``offset_`` (image threshold ``-offset_``; no pixel threshold), or a
        pipeline ending in one.

    Returns
    -------
    image_threshold, pixel_threshold : float or None
        An image is anomalous when its anomaly score (``-score_samples``)
        exceeds ``image_threshold``; a pixel when its map value exceeds
        ``pixel_threshold``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.ensemble import IsolationForest
    >>> from mvtec_sklearn.deploy import model_thresholds
    >>> det = IsolationForest(random_state=0).fit(np.zeros((10, 2)))
    >>> model_thresholds(det) == (-det.offset_, None)
    True
    """
    final = model[-1] if hasattr(model, "steps") else model
    if hasattr(final, "threshold_"):
        pixel = getattr(final, "pixel_threshold_", None)
        return float(final.threshold_), (None if pixel is None else float(pixel))
    if hasattr(final, "offset_"):
        return -float(final.offset_), None
    return None, None


def _input_size(model):
    params = model.get_params(deep=True) if hasattr(model, "get_params") else {}
    for key, value in params.items():
        if key == "image_size" or key.endswith("__image_size"):
            return value if isinstance(value, int) else list(value)
    return None


def _versions():
    import sklearn

    import mvtec_sklearn

    versions = {"mvtec_sklearn": mvtec_sklearn.__version__, "scikit-learn": sklearn.__version__,
                "numpy": np.__version__, "python": platform.python_version()}
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    else:
        versions["torch"] = torch.__version__
    return versions


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    training_data: Sequence[str | os.PathLike[str]] | Any = None,
    extra: dict | None = None,
) -> dict:
    """Save a fitted model and its metadata to one joblib file, atomically.

    Parameters
    ----------
    model : estimator
        Any fitted detector or pipeline (a
        :class:`~mvtec_sklearn.model_selection.CalibratedThresholdDetector`
        keeps its thresholds).
    path : str or os.PathLike
        File to write (conventionally ``*.joblib``). A temporary file is
        written next to it and renamed, so a reader never sees half a file.
    training_data : sequence of paths or ndarray, default=None
        The training images, fingerprinted by :func:`training_signature`.
    extra : dict, default=None
        More metadata to store (strings, numbers, lists, dicts).

    Returns
    -------
    dict
        The metadata written: ``format``, ``created`` (UTC, ISO 8601),
        ``versions`` (mvtec_sklearn, scikit-learn, numpy, torch, Python),
        ``estimator`` (class name), ``image_size`` (the model's
        ``image_size`` parameter, or None), ``threshold`` and
        ``pixel_threshold`` (:func:`model_thresholds`), ``training``
        (:func:`training_signature` or None) and the ``extra`` items.

    See Also
    --------
    load_model : Load it back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.ensemble import IsolationForest
    >>> from mvtec_sklearn.deploy import load_model, save_model
    >>> X = np.random.default_rng(0).normal(size=(20, 3))
    >>> det = IsolationForest(random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.joblib")
    >>> meta = save_model(det, path, training_data=X)
    >>> model, meta = load_model(path, with_metadata=True)
    >>> meta["training"]["n_images"], type(model).__name__
    (20, 'IsolationForest')
    """
    import joblib

    threshold, pixel_threshold = model_thresholds(model)
    metadata = {
        "format": list(MODEL_FORMAT),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "estimator": type(model).__name__,
        "image_size": _input_size(model),
        "threshold": threshold,
        "pixel_threshold": pixel_threshold,
        "training": None if training_data is None else training_signature(training_data),
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        joblib.dump({"format": MODEL_FORMAT, "metadata": metadata, "model": model}, tmp)
    return metadata


def load_model(path: str | os.PathLike[str], *, with_metadata: bool = False) -> Any:
    """Load a model saved by :func:`save_model`, a plain joblib estimator, or an exported file.

    ``joblib`` files execute code when loaded: load only files you trust.
    Exported files (``.pt``/``.ts`` TorchScript, ``.onnx``) hold no Python
    code; they load as :class:`ExportedDetector`.

    Parameters
    ----------
    path : str or os.PathLike
        The model file.
    with_metadata : bool, default=False
        Also return the metadata (``{}`` for a plain joblib estimator).

    Returns
    -------
    model : estimator or ExportedDetector
    metadata : dict
        Only with ``with_metadata=True``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file holds no estimator.
    """
    import joblib

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path!r}.")
    if path.lower().endswith(_EXPORT_SUFFIXES):
        from ._exported import ExportedDetector

        model = ExportedDetector(path)
        return (model, dict(model.metadata)) if with_metadata else model
    content = joblib.load(path)
    if isinstance(content, dict) and tuple(content.get("format", ())) == MODEL_FORMAT:
        model, metadata = content["model"], content["metadata"]
    elif hasattr(content, "score_samples"):
        model, metadata = content, {}
    else:
        raise ValueError(
            f"{path!r} holds a {type(content).__name__}, not a model saved by save_model or an "
            "estimator with score_samples."
        )
    return (model, metadata) if with_metadata else model
