"""TorchScript and ONNX export of the patch detectors and deep-feature kNN pipelines.

The exported graph takes a float32 batch ``(n, H, W, 3)`` in [0, 1] at the
model's ``image_size`` (what :func:`mvtec_sklearn.datasets.load_images`
returns with ``size=image_size, channels=3``) and contains the rest of the
preprocessing (channel layout, normalisation), the network, the patch
features and the scoring. It returns the image anomaly scores ``(n,)``
(higher = more anomalous) and, for PatchCore and PaDiM, the smoothed anomaly
maps ``(n, H, W)`` at ``image_size``. :class:`ExportedDetector` wraps a
file with the decoding, the resizing and the maps' resizing back to each
input's resolution, so it scores like the estimator.

The code here reaches into the fitted detectors' private helpers on
purpose: the graph must compute exactly what the estimator computes, so it
reuses the estimator's own functions rather than a copy of them.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from ._files import atomic_path
from ._model_file import model_thresholds

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

__all__ = ["ExportedDetector", "export_onnx", "export_torchscript"]

_METADATA_KEY = "mvtec_sklearn.json"


def _torch_modules():
    """The nn.Module classes, defined on first use so that importing needs no torch."""
    import torch
    from torch import nn

    from mvtec_sklearn.detectors._nn._search import nearest_neighbors
    from mvtec_sklearn.detectors._nn._functional import anomaly_maps as _postprocess_maps
    from mvtec_sklearn.detectors._nn._patch import pooling_matrix as _pooling_matrix

    class Features(nn.Module):
        """(n, H, W, 3) in [0, 1] -> normalised network input -> patch features (n, C, h, w)."""

        def __init__(self, featurizer):
            super().__init__()
            if featurizer.precision != "fp32" or featurizer._crop is not None:
                raise ValueError("Export needs a featurizer with precision='fp32' and no crop_size.")
            featurizer = copy.copy(featurizer)
            featurizer.model_ = copy.deepcopy(featurizer.model_).to(
                "cpu", memory_format=torch.contiguous_format).float().eval()
            featurizer.device_ = torch.device("cpu")
            self.featurizer = featurizer
            self.backbone = featurizer.model_  # registers the parameters with this module
            self.register_buffer("mean", torch.tensor(featurizer.mean_).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(featurizer.std_).view(1, 3, 1, 1))

        def forward(self, images):
            x = (images.permute(0, 3, 1, 2) - self.mean) / self.std
            return self.featurizer._patch_tensor(x)

    class PatchCoreGraph(nn.Module):
        def __init__(self, det):
            super().__init__()
            self.features = Features(det.featurizer_)
            _, self.h, self.w = det.feature_map_shape_
            c = det.featurizer_.feature_map_shape_[0]
            layer_channels = tuple(det.featurizer_.layer_channels_.values())
            pool = (torch.eye(c) if det._pool_dim is None
                    else _pooling_matrix(layer_channels, det._pool_dim))
            bank = torch.from_numpy(det.memory_bank_).float()
            self.register_buffer("pool", pool.float())
            self.register_buffer("bank", bank)
            self.register_buffer("bank_sq", torch.einsum("ij,ij->i", bank, bank))
            self.n_neighbors = min(det.n_neighbors, bank.shape[0])
            support = nearest_neighbors(bank, bank, self.n_neighbors)[1] if self.n_neighbors > 1 \
                else torch.zeros(bank.shape[0], 1, dtype=torch.long)
            self.register_buffer("support", support)
            self.network_size = tuple(det._network_size)
            self.sigma = float(det.smoothing_sigma)

        def forward(self, images):
            feats = self.features(images)
            n = feats.shape[0]
            queries = feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1]) @ self.pool
            q_sq = torch.einsum("ij,ij->i", queries, queries)[:, None]
            d2 = torch.addmm(self.bank_sq[None, :] + q_sq, queries, self.bank.T, alpha=-2.0)
            best_d2, best_i = d2.min(dim=1)
            patch = best_d2.clamp(min=0).sqrt().view(n, self.h * self.w)
            s_star, top = patch.max(dim=1)
            rows = torch.arange(n) * (self.h * self.w) + top
            scores = s_star
            if self.n_neighbors > 1:
                neighbours = self.bank[self.support[best_i[rows]]]  # (n, b, d)
                dists = torch.linalg.vector_norm(queries[rows][:, None, :] - neighbours, dim=2)
                scores = (1.0 - torch.exp(s_star - torch.logsumexp(dists, dim=1))) * s_star
            smooth, _ = _postprocess_maps(patch.view(n, self.h, self.w), self.network_size,
                                          self.network_size, self.sigma)
            return scores, smooth

    class PaDiMGraph(nn.Module):
        def __init__(self, det):
            super().__init__()
            self.features = Features(det.featurizer_)
            _, self.h, self.w = det.feature_map_shape_
            self.register_buffer("channels", torch.from_numpy(det.channels_))
            self.register_buffer("mean", torch.from_numpy(det.mean_))
            self.register_buffer("whitening", torch.from_numpy(det.whitening_))
            self.network_size = tuple(det._network_size)
            self.sigma = float(det.smoothing_sigma)

        def forward(self, images):
            feats = self.features(images).index_select(1, self.channels).flatten(2)  # (n, k, P)
            diff = feats.permute(2, 1, 0) - self.mean[:, :, None]
            dist = torch.linalg.vector_norm(torch.bmm(self.whitening, diff), dim=1)
            patch = dist.T.reshape(-1, self.h, self.w)
            smooth, _ = _postprocess_maps(patch, self.network_size, self.network_size, self.sigma)
            return smooth.flatten(1).amax(dim=1), smooth

    class KNNPipelineGraph(nn.Module):
        def __init__(self, featurizer, linear, knn):
            super().__init__()
            self.features = Features(featurizer)
            weight, bias = linear
            self.register_buffer("weight", torch.from_numpy(weight).float())
            self.register_buffer("bias", torch.from_numpy(bias).float())
            train = torch.from_numpy(np.asarray(knn.fit_X_, dtype=np.float32))
            self.metric, self.method, self.k = knn.metric, knn.method, knn.n_neighbors_
            if self.metric == "cosine":
                train = torch.nn.functional.normalize(train, dim=1)
            self.register_buffer("train_x", train)
            self.register_buffer("train_sq", (train * train).sum(dim=1))

        def forward(self, images):
            pooled = self.features.featurizer._pool(self.features(images))
            x = pooled @ self.weight + self.bias
            if self.metric == "cosine":
                x = torch.nn.functional.normalize(x, dim=1)
                dist = (1.0 - x @ self.train_x.T).clamp(min=0.0)
            else:
                dist = (torch.addmm(self.train_sq, x, self.train_x.T, alpha=-2.0)
                        + (x * x).sum(dim=1, keepdim=True)).clamp(min=0.0)
            nearest = torch.topk(dist, self.k, dim=1, largest=False, sorted=True).values
            if self.metric == "euclidean":
                nearest = nearest.sqrt()
            return (nearest.mean(dim=1) if self.method == "mean" else nearest[:, -1]),

    return PatchCoreGraph, PaDiMGraph, KNNPipelineGraph


def _linear_steps(steps, n_features):
    """Compose StandardScaler / PCA steps into one affine map ``x @ W + b``."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    weight, bias = np.eye(n_features), np.zeros(n_features)
    for name, step in steps:
        if isinstance(step, StandardScaler):
            scale = step.scale_ if step.scale_ is not None else np.ones(weight.shape[1])
            mean = step.mean_ if step.mean_ is not None else np.zeros(weight.shape[1])
            weight, bias = weight / scale, (bias - mean) / scale
        elif isinstance(step, PCA):
            proj = step.components_.T
            if step.whiten:
                proj = proj / np.sqrt(step.explained_variance_)
            weight, bias = weight @ proj, (bias - step.mean_) @ proj
        else:
            raise ValueError(
                f"Cannot export pipeline step {name!r} ({type(step).__name__}); between the "
                "featurizer and the detector only StandardScaler and PCA are supported."
            )
    return weight, bias


def _graph(model):
    """The nn.Module computing ``model``'s scores (and maps), and whether it has maps."""
    from mvtec_sklearn.detectors import KNNDetector, PaDiMDetector, PatchCoreDetector
    from mvtec_sklearn.features import DeepFeaturizer

    PatchCoreGraph, PaDiMGraph, KNNPipelineGraph = _torch_modules()
    final = getattr(model, "estimator_", model)
    if isinstance(final, PatchCoreDetector):
        return PatchCoreGraph(final), True, final._network_size
    if isinstance(final, PaDiMDetector):
        return PaDiMGraph(final), True, final._network_size
    steps = getattr(final, "steps", None)
    if steps and isinstance(steps[0][1], DeepFeaturizer) and isinstance(steps[-1][1], KNNDetector):
        featurizer, knn = steps[0][1], steps[-1][1]
        if knn.method not in ("mean", "max") or knn.metric == "manhattan":
            raise ValueError(
                "Export supports KNNDetector with method 'mean' or 'max' and metric 'euclidean', "
                f"'sqeuclidean' or 'cosine'; got method={knn.method!r}, metric={knn.metric!r}."
            )
        linear = _linear_steps(steps[1:-1], featurizer.n_features_out_)
        return KNNPipelineGraph(featurizer, linear, knn), False, featurizer._size
    raise ValueError(
        f"Cannot export {type(final).__name__}: export supports PatchCoreDetector, PaDiMDetector "
        "and pipelines DeepFeaturizer -> [StandardScaler/PCA] -> KNNDetector (optionally inside "
        "CalibratedThresholdDetector)."
    )


def _metadata(model, has_maps, size, extra):
    threshold, pixel_threshold = model_thresholds(model)
    return {"estimator": type(model).__name__, "image_size": [int(s) for s in size],
            "has_maps": has_maps, "threshold": threshold, "pixel_threshold": pixel_threshold,
            **(extra or {})}


def _example(size):
    import torch

    return torch.rand(2, int(size[0]), int(size[1]), 3, generator=torch.Generator().manual_seed(0))


def export_torchscript(model: Any, path: str | os.PathLike[str], *, metadata: dict | None = None) -> dict:
    """Export a fitted detector to a TorchScript file (traced), preprocessing included.

    Parameters
    ----------
    model : estimator
        A fitted :class:`~mvtec_sklearn.detectors.PatchCoreDetector`,
        :class:`~mvtec_sklearn.detectors.PaDiMDetector`, a pipeline
        ``DeepFeaturizer -> [StandardScaler / PCA] -> KNNDetector``, or a
        :class:`~mvtec_sklearn.model_selection.CalibratedThresholdDetector`
        around one of them (its thresholds are stored in the file).
    path : str or os.PathLike
        Output file (``.pt``), written atomically.
    metadata : dict, default=None
        More JSON-serialisable metadata to store.

    Returns
    -------
    dict
        The metadata stored in the file (``image_size``, ``has_maps``,
        ``threshold``, ``pixel_threshold``, ...).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from mvtec_sklearn.deploy import export_torchscript, load_model
    >>> from mvtec_sklearn.detectors import PaDiMDetector
    >>> X = np.random.default_rng(0).uniform(size=(6, 32, 32, 3)).astype(np.float32)
    >>> det = PaDiMDetector(weights=None, image_size=32, n_features=10, device="cpu",
    ...                     random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "padim.pt")
    >>> _ = export_torchscript(det, path)
    >>> bool(np.allclose(load_model(path).score_samples(X), det.score_samples(X), atol=1e-4))
    True
    """
    import torch

    graph, has_maps, size = _graph(model)
    meta = _metadata(model, has_maps, size, metadata)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape checks that are constant here
        traced = torch.jit.trace(graph.eval(), _example(size), check_trace=False)
        with atomic_path(path) as tmp:
            torch.jit.save(traced, tmp, _extra_files={_METADATA_KEY: json.dumps(meta)})
    return meta


def export_onnx(
    model: Any, path: str | os.PathLike[str], *, metadata: dict | None = None, opset_version: int = 17
) -> dict:
    """Export a fitted detector to an ONNX file, preprocessing included.

    Needs the ``onnx`` package (``pip install mvtec-sklearn[export]``, which
    also installs ``onnxruntime`` to run the file). The batch dimension is
    dynamic; the image size is fixed to the model's ``image_size``.

    Parameters
    ----------
    model : estimator
        As in :func:`export_torchscript`.
    path : str or os.PathLike
        Output file (``.onnx``), written atomically.
    metadata : dict, default=None
        More JSON-serialisable metadata, stored in the model's
        ``metadata_props`` under ``"mvtec_sklearn.json"``.
    opset_version : int, default=17
        ONNX opset.

    Returns
    -------
    dict
        The metadata stored in the file.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from mvtec_sklearn.deploy import export_onnx, load_model
    >>> from mvtec_sklearn.detectors import PaDiMDetector
    >>> X = np.random.default_rng(0).uniform(size=(6, 32, 32, 3)).astype(np.float32)
    >>> det = PaDiMDetector(weights=None, image_size=32, n_features=10, device="cpu",
    ...                     random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "padim.onnx")
    >>> _ = export_onnx(det, path)
    >>> bool(np.allclose(load_model(path).score_samples(X), det.score_samples(X), atol=1e-4))
    True
    """
    import torch

    try:
        import onnx
    except ImportError as exc:
        raise ImportError(
            "ONNX export needs the onnx package: pip install 'mvtec-sklearn[export]'."
        ) from exc
    graph, has_maps, size = _graph(model)
    meta = _metadata(model, has_maps, size, metadata)
    outputs = ["anomaly_score", "anomaly_map"] if has_maps else ["anomaly_score"]
    axes = {name: {0: "n"} for name in ["images", *outputs]}
    with atomic_path(path) as tmp:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(graph.eval(), (_example(size),), tmp, dynamo=False,
                              input_names=["images"], output_names=outputs, dynamic_axes=axes,
                              opset_version=opset_version)
        proto = onnx.load(tmp)
        onnx.helper.set_model_props(proto, {_METADATA_KEY: json.dumps(meta)})
        onnx.save(proto, tmp)
    return meta


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
            raw = self._session.get_modelmeta().custom_metadata_map.get(_METADATA_KEY)
            self._module = None
        else:
            import torch

            extra = {_METADATA_KEY: ""}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
                self._module = torch.jit.load(self.path, map_location="cpu", _extra_files=extra)
            raw = extra[_METADATA_KEY]
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

