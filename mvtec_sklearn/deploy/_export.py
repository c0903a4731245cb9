"""TorchScript and ONNX writers of the patch detectors and deep-feature pipelines.

The written graph (built by :mod:`._graphs`) takes a float32 batch
``(n, H, W, 3)`` in [0, 1] at the model's ``image_size`` (what
:func:`mvtec_sklearn.datasets.load_images` returns with ``size=image_size,
channels=3``) and contains the rest of the preprocessing (channel layout,
normalisation), the network, the features and the scoring. It returns the
image anomaly scores ``(n,)`` (higher = more anomalous) and, for PatchCore
and PaDiM, the smoothed anomaly maps ``(n, H, W)`` at ``image_size``.
:class:`ExportedDetector` reads the files back.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from mvtec_sklearn.utils import atomic_path

from ._exported import METADATA_KEY, ExportedDetector
from ._model_file import model_thresholds

__all__ = ["ExportedDetector", "export_onnx", "export_torchscript"]


def _graph_and_metadata(model, extra):
    """The traced module, its example input and the metadata: what both writers need."""
    import torch

    from ._graphs import build_graph

    graph, has_maps, size = build_graph(model)
    threshold, pixel_threshold = model_thresholds(model)
    meta = {"estimator": type(model).__name__, "image_size": [int(s) for s in size],
            "has_maps": has_maps, "threshold": threshold, "pixel_threshold": pixel_threshold,
            **(extra or {})}
    example = torch.rand(2, int(size[0]), int(size[1]), 3,
                         generator=torch.Generator().manual_seed(0))
    return graph.eval(), example, meta


def export_torchscript(model: Any, path: str | os.PathLike[str], *, metadata: dict | None = None) -> dict:
    """Export a fitted detector to a TorchScript file (traced), preprocessing included.

    Parameters
    ----------
    model : estimator
        A fitted :class:`~mvtec_sklearn.detectors.PatchCoreDetector`,
        :class:`~mvtec_sklearn.detectors.PaDiMDetector`, a pipeline
        ``DeepFeaturizer -> [StandardScaler / PCA] -> detector`` (nested
        pipelines are fine) whose detector is a
        :class:`~mvtec_sklearn.detectors.KNNDetector`,
        :class:`~sklearn.svm.OneClassSVM` (RBF kernel),
        :class:`~sklearn.neighbors.LocalOutlierFactor` (``novelty=True``,
        euclidean), :class:`~sklearn.ensemble.IsolationForest`,
        :class:`~mvtec_sklearn.detectors.FeatureAutoencoderDetector` or
        :class:`~mvtec_sklearn.detectors.FeatureVAEDetector`, or a
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

    graph, example, meta = _graph_and_metadata(model, metadata)
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on shape checks that are constant here
        traced = torch.jit.trace(graph, example, check_trace=False)
        with atomic_path(path) as tmp:
            torch.jit.save(traced, tmp, _extra_files={METADATA_KEY: json.dumps(meta)})
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
    A deep-feature pipeline ending in an isolation forest:

    >>> import os, tempfile
    >>> import numpy as np
    >>> from sklearn.ensemble import IsolationForest
    >>> from sklearn.pipeline import make_pipeline
    >>> from mvtec_sklearn.deploy import export_onnx, load_model
    >>> from mvtec_sklearn.features import DeepFeaturizer
    >>> X = np.random.default_rng(0).uniform(size=(8, 32, 32, 3)).astype(np.float32)
    >>> pipe = make_pipeline(
    ...     DeepFeaturizer(weights=None, image_size=32, device="cpu", random_state=0),
    ...     IsolationForest(n_estimators=20, random_state=0)).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "iforest.onnx")
    >>> _ = export_onnx(pipe, path)
    >>> bool(np.allclose(load_model(path).score_samples(X), pipe.score_samples(X), atol=1e-4))
    True
    """
    import torch

    try:
        import onnx
    except ImportError as exc:
        raise ImportError(
            "ONNX export needs the onnx package: pip install 'mvtec-sklearn[export]'."
        ) from exc
    graph, example, meta = _graph_and_metadata(model, metadata)
    outputs = ["anomaly_score", "anomaly_map"] if meta["has_maps"] else ["anomaly_score"]
    axes = {name: {0: "n"} for name in ["images", *outputs]}
    with atomic_path(path) as tmp:
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(graph, (example,), tmp, dynamo=False,
                              input_names=["images"], output_names=outputs, dynamic_axes=axes,
                              opset_version=opset_version)
        proto = onnx.load(tmp)
        onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(meta)})
        onnx.save(proto, tmp)
    return meta
