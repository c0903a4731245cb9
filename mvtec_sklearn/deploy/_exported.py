"""Exported TorchScript / ONNX files read back as detectors."""

from __future__ import annotations

import json
import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["METADATA_KEY", "ExportedDetector"]

#: Where the metadata lies in a file: TorchScript extra file / ONNX ``metadata_props`` key.
METADATA_KEY = "mvtec_sklearn.json"


class ExportedDetector:
    """A detector loaded from an exported TorchScript or ONNX file.

    It decodes and resizes images to the stored ``image_size`` (as the
    estimator does), runs the file (TorchScript with torch, ONNX with
    onnxruntime, on the CPU) and resizes maps back to each input's
    resolution. Use :func:`mvtec_sklearn.deploy.load_model` to make one.
    When the graph has maps (PatchCore, PaDiM), it also has
    ``anomaly_map(X)`` and ``score_samples_and_anomaly_map(X)``, as the
    estimator.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.pt``/``.ts`` (TorchScript) or ``.onnx`` file written by
        :func:`export_torchscript` or :func:`export_onnx`.
    batch_size : int, default=16
        Images per call of the graph.

    Attributes
    ----------
    metadata : dict
        What the export stored.
    image_size : tuple of int
        The graph's input size.
    threshold_ : float or None
        Image threshold on the anomaly score.
    pixel_threshold_ : float or None
        Threshold on the anomaly maps.
    """

    def __init__(self, path: str | os.PathLike[str], batch_size: int = 16) -> None:
        self.path = os.fspath(path)
        self.batch_size = batch_size
        if self.path.lower().endswith(".onnx"):
            try:
                import onnxruntime
            except ImportError as exc:
                raise ImportError(
                    "Running an ONNX file needs onnxruntime: pip install 'mvtec-sklearn[export]'."
                ) from exc
            self._session = onnxruntime.InferenceSession(self.path, providers=["CPUExecutionProvider"])
            raw = self._session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
            self._module = None
        else:
            import torch

            extra = {METADATA_KEY: ""}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
                self._module = torch.jit.load(self.path, map_location="cpu", _extra_files=extra)
            raw = extra[METADATA_KEY]
        if not raw:
            raise ValueError(f"{self.path!r} was not written by mvtec_sklearn's export (no metadata).")
        self.metadata = json.loads(raw)
        self.image_size = tuple(self.metadata["image_size"])
        self.threshold_ = self.metadata.get("threshold")
        self.pixel_threshold_ = self.metadata.get("pixel_threshold")

    def _run(self, images):
        if self._module is None:
            return [np.asarray(o) for o in self._session.run(None, {"images": images})]
        import torch

        with torch.inference_mode():
            return [o.numpy() for o in self._module(torch.from_numpy(images))]

    def _score(self, X, with_maps):
        import torch
        import torch.nn.functional as F

        from mvtec_sklearn.datasets import check_image_input, load_images, read_image

        paths, array = check_image_input(X)
        n = len(paths) if paths is not None else array.shape[0]
        scores, maps = [], []
        for start in range(0, n, self.batch_size):
            part = paths[start:start + self.batch_size] if paths is not None \
                else array[start:start + self.batch_size]
            images = load_images(part, size=self.image_size, channels=3)
            out = self._run(np.ascontiguousarray(images, dtype=np.float32))
            scores.append(out[0].astype(np.float64))
            if with_maps:
                sizes = ([read_image(p).shape[:2] for p in part] if paths is not None
                         else [part.shape[1:3]] * len(part))
                for amap, size in zip(out[1], sizes):
                    t = torch.from_numpy(np.ascontiguousarray(amap))[None, None]
                    if tuple(size) != self.image_size:
                        t = F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False)
                    maps.append(t[0, 0].numpy())
        return np.concatenate(scores), (np.stack(maps) if with_maps else None)

    def score_samples(self, X: Any) -> NDArray[np.float64]:
        """Opposite of the anomaly score: higher is more normal.

        Parameters
        ----------
        X : sequence of paths or ndarray of shape (n, H, W[, C])
            Images.

        Returns
        -------
        ndarray of shape (n,)
        """
        return -self._score(X, with_maps=False)[0]

    def __getattr__(self, name):
        # anomaly_map and score_samples_and_anomaly_map exist only for graphs with maps
        if name in ("anomaly_map", "score_samples_and_anomaly_map") and \
                self.__dict__.get("metadata", {}).get("has_maps"):
            return getattr(self, "_" + name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _anomaly_map(self, X: ArrayLike) -> NDArray[np.float32]:
        return self._score(X, with_maps=True)[1]

    def _score_samples_and_anomaly_map(self, X: ArrayLike):
        scores, maps = self._score(X, with_maps=True)
        return -scores, maps

