"""Torch modules that score feature vectors exactly as a fitted detector does.

Each head maps a float64 batch of features ``(n, d)`` (the output of the
pipeline's preprocessing steps) to the detector's anomaly score ``(n,)``
(``-score_samples``), in float64 like scikit-learn. The formulas are
scikit-learn's own:

- :class:`~sklearn.svm.OneClassSVM` (RBF): ``score_samples = sum_i
  dual_coef_i exp(-gamma |x - sv_i|^2)``;
- :class:`~sklearn.neighbors.LocalOutlierFactor` (``novelty=True``): the
  mean ratio of the neighbours' local reachability density to the sample's;
- :class:`~sklearn.ensemble.IsolationForest`: every tree walked by a
  fixed-depth gather loop (features compared in float32, as scikit-learn's
  trees do), path length plus the average-path-length correction of the
  leaf, ``2 ** (-mean / c(max_samples))``;
- :class:`~mvtec_sklearn.detectors.KNNDetector`,
  :class:`~mvtec_sklearn.detectors.FeatureAutoencoderDetector` and
  :class:`~mvtec_sklearn.detectors.FeatureVAEDetector` through their own
  scoring code.

The heads read the fitted estimators' private attributes on purpose: the
graph must compute what the estimator computes.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from mvtec_sklearn.detectors._nn._search import distance_block, squared_norms

__all__ = ["EXPORTABLE_DETECTORS", "head_for"]

#: What a featurizer pipeline may end with, as named in export errors.
EXPORTABLE_DETECTORS = (
    "KNNDetector (method 'mean' or 'max'; metric 'euclidean', 'sqeuclidean' or 'cosine'), "
    "OneClassSVM (kernel 'rbf'), LocalOutlierFactor (novelty=True, euclidean), "
    "IsolationForest, FeatureAutoencoderDetector, FeatureVAEDetector"
)


def _double(array):
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float64))


def _sq_distances(x, train, train_sq):
    """Squared euclidean distances ``(n, m)`` in KNNDetector's arithmetic, clipped at 0."""
    x_sq = squared_norms(x, fold_norms=False)[:, None]
    return distance_block(x, train, x_sq, train_sq, "sqeuclidean", fold_norms=False).clamp(min=0.0)


class KNNHead(nn.Module):
    """:class:`~mvtec_sklearn.detectors.KNNDetector`: mean or k-th neighbour distance."""

    def __init__(self, knn):
        super().__init__()
        train = torch.from_numpy(np.asarray(knn.fit_X_, dtype=np.float32))
        self.metric, self.method, self.k = knn.metric, knn.method, knn.n_neighbors_
        if self.metric == "cosine":
            train = nn.functional.normalize(train, dim=1)
        self.register_buffer("train_x", train)
        self.register_buffer("train_sq", squared_norms(train, fold_norms=False))

    def forward(self, x):
        x = x.float()
        if self.metric == "cosine":
            x = nn.functional.normalize(x, dim=1)
            dist = distance_block(x, self.train_x, None, None, "cosine", False).clamp(min=0.0)
        else:
            dist = _sq_distances(x, self.train_x, self.train_sq)
        nearest = torch.topk(dist, self.k, dim=1, largest=False, sorted=True).values
        if self.metric == "euclidean":
            nearest = nearest.sqrt()
        return (nearest.mean(dim=1) if self.method == "mean" else nearest[:, -1]).double()


class OneClassSVMHead(nn.Module):
    """RBF one-class SVM: ``-score_samples = -sum_i dual_coef_i exp(-gamma |x - sv_i|^2)``."""

    def __init__(self, svm):
        super().__init__()
        sv = _double(svm.support_vectors_)
        self.register_buffer("sv", sv)
        self.register_buffer("sv_sq", squared_norms(sv, fold_norms=False))
        self.register_buffer("dual_coef", _double(svm.dual_coef_).reshape(-1))
        self.gamma = float(svm._gamma)

    def forward(self, x):
        kernel = torch.exp(-self.gamma * _sq_distances(x, self.sv, self.sv_sq))
        return -(kernel @ self.dual_coef)


class LOFHead(nn.Module):
    """Novelty LOF: mean of ``lrd(neighbour) / lrd(x)`` over the k nearest training samples."""

    def __init__(self, lof):
        super().__init__()
        train = _double(lof._fit_X)
        self.k = int(lof.n_neighbors_)
        self.register_buffer("train_x", train)
        self.register_buffer("train_sq", squared_norms(train, fold_norms=False))
        self.register_buffer("k_distance", _double(lof._distances_fit_X_[:, self.k - 1]))
        self.register_buffer("lrd", _double(lof._lrd))

    def forward(self, x):
        d2, idx = torch.topk(_sq_distances(x, self.train_x, self.train_sq), self.k, dim=1,
                             largest=False, sorted=True)
        reach = torch.maximum(d2.sqrt(), self.k_distance[idx])
        lrd_x = 1.0 / (reach.mean(dim=1) + 1e-10)
        return (self.lrd[idx] / lrd_x[:, None]).mean(dim=1)


class IsolationForestHead(nn.Module):
    """Isolation forest: all trees walked together, one gather per level."""

    def __init__(self, forest, n_features):
        super().__init__()
        from sklearn.ensemble._iforest import _average_path_length

        trees = [est.tree_ for est in forest.estimators_]
        width = max(tree.node_count for tree in trees)
        n_trees = len(trees)
        subsample = forest._max_features != n_features
        feature = np.zeros((n_trees, width), np.int64)
        threshold = np.full((n_trees, width), np.inf)
        left = np.tile(np.arange(width), (n_trees, 1))
        right = left.copy()
        value = np.zeros((n_trees, width))
        for t, (tree, features) in enumerate(zip(trees, forest.estimators_features_)):
            m = tree.node_count
            split = tree.children_left >= 0
            used = np.where(split, tree.feature, 0)
            feature[t, :m] = np.asarray(features)[used] if subsample else used
            threshold[t, :m] = np.where(split, tree.threshold, np.inf)
            left[t, :m] = np.where(split, tree.children_left, np.arange(m))
            right[t, :m] = np.where(split, tree.children_right, np.arange(m))
            value[t, :m] = (forest._decision_path_lengths[t]
                            + forest._average_path_length_per_tree[t] - 1.0)
        offset = (np.arange(n_trees) * width)[:, None]  # flat id of each tree's root
        self.register_buffer("feature", torch.from_numpy(feature.ravel()))
        self.register_buffer("threshold", _double(threshold.ravel()))
        self.register_buffer("left", torch.from_numpy((left + offset).ravel()))
        self.register_buffer("right", torch.from_numpy((right + offset).ravel()))
        self.register_buffer("value", _double(value.ravel()))
        self.register_buffer("root", torch.from_numpy(offset[:, 0]))
        self.depth = max(tree.max_depth for tree in trees)
        self.denominator = float(n_trees * _average_path_length([forest._max_samples])[0])

    def forward(self, x):
        x = x.float().double()  # scikit-learn's trees compare float32 features
        node = self.root[None, :].expand(x.shape[0], -1)  # (n, n_trees), flat node ids
        for _ in range(self.depth):
            go_left = x.gather(1, self.feature[node]) <= self.threshold[node]
            node = torch.where(go_left, self.left[node], self.right[node])
        depth = self.value[node].sum(dim=1)
        if self.denominator == 0.0:  # one training sample: scikit-learn's score is 1
            return torch.ones_like(depth)
        return torch.pow(2.0, -depth / self.denominator)


class TorchDetectorHead(nn.Module):
    """A feature autoencoder or VAE: standardise, then the detector's own batch score."""

    def __init__(self, det):
        super().__init__()
        self.detector = copy.copy(det)
        self.module = copy.deepcopy(det.module_).to("cpu", torch.float64).eval()
        self.register_buffer("mean", _double(det.mean_))
        self.register_buffer("scale", _double(det.scale_))

    def forward(self, x):
        return self.detector._batch_scores(self.module, (x - self.mean) / self.scale).double()


def head_for(detector, n_features):
    """The head of ``detector`` (the last step of a featurizer pipeline), or a ValueError."""
    from sklearn.ensemble import IsolationForest
    from sklearn.neighbors import LocalOutlierFactor
    from sklearn.svm import OneClassSVM

    from mvtec_sklearn.detectors import FeatureAutoencoderDetector, FeatureVAEDetector, KNNDetector

    name = type(detector).__name__
    if isinstance(detector, KNNDetector):
        if detector.method not in ("mean", "max") or detector.metric == "manhattan":
            problem = f"method={detector.method!r}, metric={detector.metric!r}"
        else:
            return KNNHead(detector)
    elif isinstance(detector, OneClassSVM):
        if detector.kernel != "rbf":
            problem = f"kernel={detector.kernel!r}"
        else:
            return OneClassSVMHead(detector)
    elif isinstance(detector, LocalOutlierFactor):
        euclidean = detector.effective_metric_ == "euclidean" or (
            detector.effective_metric_ == "minkowski" and detector.effective_metric_params_.get("p") == 2)
        if not detector.novelty or not euclidean:
            problem = f"novelty={detector.novelty!r}, metric={detector.effective_metric_!r}"
        else:
            return LOFHead(detector)
    elif isinstance(detector, IsolationForest):
        return IsolationForestHead(detector, n_features)
    elif isinstance(detector, (FeatureAutoencoderDetector, FeatureVAEDetector)):
        return TorchDetectorHead(detector)
    else:
        problem = "an unsupported detector"
    raise ValueError(
        f"Cannot export a pipeline ending in {name} ({problem}); a featurizer pipeline may end "
        f"in {EXPORTABLE_DETECTORS}."
    )
