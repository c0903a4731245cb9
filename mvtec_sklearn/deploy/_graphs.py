"""The torch graphs that export traces: preprocessing, network, patch features and scoring.

A graph takes a float32 batch ``(n, H, W, 3)`` in [0, 1] at the model's
``image_size`` and returns the anomaly scores ``(n,)`` (higher = more
anomalous) and, for PatchCore and PaDiM, the smoothed anomaly maps
``(n, H, W)``. The graphs reuse the fitted estimators' own (private)
functions, so that they compute exactly what the estimators compute.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from mvtec_sklearn.detectors._nn._functional import anomaly_maps
from mvtec_sklearn.detectors._nn._patch import pooling_matrix
from mvtec_sklearn.detectors._nn._search import nearest_neighbors

from ._heads import EXPORTABLE_DETECTORS, head_for

__all__ = ["build_graph"]


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
                else pooling_matrix(layer_channels, det._pool_dim))
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
        smooth, _ = anomaly_maps(patch.view(n, self.h, self.w), self.network_size,
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
        smooth, _ = anomaly_maps(patch, self.network_size, self.network_size, self.sigma)
        return smooth.flatten(1).amax(dim=1), smooth


class FeaturePipelineGraph(nn.Module):
    """DeepFeaturizer -> affine preprocessing (float64) -> a detector head."""

    def __init__(self, featurizer, linear, head):
        super().__init__()
        self.features = Features(featurizer)
        weight, bias = linear
        self.register_buffer("weight", torch.from_numpy(np.asarray(weight, dtype=np.float64)))
        self.register_buffer("bias", torch.from_numpy(np.asarray(bias, dtype=np.float64)))
        self.head = head

    def forward(self, images):
        pooled = self.features.featurizer._pool(self.features(images))
        return (self.head(pooled.double() @ self.weight + self.bias),)


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


def _flat_steps(model):
    """The (name, step) pairs of a pipeline, nested pipelines inlined; None for no pipeline."""
    steps = getattr(model, "steps", None)
    if steps is None:
        return None
    flat = []
    for name, step in steps:
        inner = _flat_steps(step)
        flat.extend(inner if inner is not None else [(name, step)])
    return flat


def build_graph(model):
    """The nn.Module computing ``model``'s scores (and maps), whether it has maps, its input size."""
    from mvtec_sklearn.detectors import PaDiMDetector, PatchCoreDetector
    from mvtec_sklearn.features import DeepFeaturizer

    final = getattr(model, "estimator_", model)
    if isinstance(final, PatchCoreDetector):
        return PatchCoreGraph(final), True, final._network_size
    if isinstance(final, PaDiMDetector):
        return PaDiMGraph(final), True, final._network_size
    steps = _flat_steps(final)
    if steps and isinstance(steps[0][1], DeepFeaturizer) and len(steps) > 1:
        featurizer, detector = steps[0][1], steps[-1][1]
        weight, bias = _linear_steps(steps[1:-1], featurizer.n_features_out_)
        head = head_for(detector, weight.shape[1])
        return FeaturePipelineGraph(featurizer, (weight, bias), head), False, featurizer._size
    raise ValueError(
        f"Cannot export {type(final).__name__}: export supports PatchCoreDetector, PaDiMDetector "
        "and pipelines DeepFeaturizer -> [StandardScaler / PCA] -> detector, where the detector "
        f"is one of {EXPORTABLE_DETECTORS} (each optionally inside CalibratedThresholdDetector)."
    )
