"""PatchCore: a coreset memory bank of patch features and nearest-neighbour scores."""

from __future__ import annotations

from numbers import Integral, Real
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from ._coreset import greedy_coreset
from ._nn._functional import anomaly_maps
from ._nn._patch import patch_embeddings, pooling_matrix, reweighted_scores
from ._nn._search import nearest_neighbors
from ._patch_base import BasePatchDetector

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

__all__ = ["PatchCoreDetector"]

def _embedding_size(n_channels, embedding_dim):
    """Dimension of the patch embeddings: ``embedding_dim`` capped at the channel count."""
    return n_channels if embedding_dim is None else min(int(embedding_dim), n_channels)


class PatchCoreDetector(BasePatchDetector):
    """PatchCore: nearest-neighbour distances to a coreset of normal patch features.

    Training images are turned into locally aggregated multi-layer patch
    features by :class:`mvtec_sklearn.features.DeepFeaturizer` (3x3 average,
    layers resized to the finest grid and concatenated), and each patch's
    feature vector is reduced to ``embedding_dim`` values by average pooling
    over channels as in the reference implementation: every layer's channels
    are pooled to ``embedding_dim``, then the layers' vectors together
    (so the layers weigh equally). The reduction runs one batch at a time:
    full-dimension features of all training images never exist at once.
    A memory bank keeps a
    ``coreset_ratio`` fraction of all training patches, chosen by greedy
    k-center selection on a seeded random projection of the features
    (Roth et al., 2022). A test patch's score is its Euclidean distance to the
    nearest bank item; the image's anomaly score is the largest patch score
    ``s*`` re-weighted as in the paper's eq. 7,
    ``w = 1 - exp(|m_test* - m*|) / sum_{m in N_b(m*)} exp(|m_test* - m|)``,
    where ``m*`` is the bank item nearest to the highest-scoring test patch
    ``m_test*`` and ``N_b(m*)`` its ``n_neighbors`` nearest bank items
    (including itself). Anomaly maps are the patch scores upsampled
    bilinearly to ``image_size``, smoothed with a Gaussian of sigma
    ``smoothing_sigma`` and resized to the input resolution.

    Parameters
    ----------
    backbone : str or torch.nn.Module, default="wide_resnet50_2"
        Any backbone of :class:`~mvtec_sklearn.features.DeepFeaturizer`,
        including the offline pretrained ``"efficientnet_lite0"``.
    weights : None, str or os.PathLike, default="DEFAULT"
        As in :class:`~mvtec_sklearn.features.DeepFeaturizer` (downloaded
        on first use); ``None`` is random initialisation.
    layers : sequence of str or None, default=("layer2", "layer3")
        Layers read. ``None`` uses the featurizer's default for the backbone
        (e.g. ``("_blocks.4", "_blocks.10")`` for ``"efficientnet_lite0"``).
    patch_size : int, default=3
        Side (odd) of the neighbourhood averaged into each patch feature
        (``AvgPool2d(3, 1, 1)`` with the zero padding counted, as PatchCore's
        reference code and anomalib); 1 averages nothing.
    coreset_ratio : float in (0, 1], default=0.1
        Fraction of training patches kept in the memory bank; 1 keeps all.
    n_neighbors : int, default=9
        ``b``, the size of the neighbourhood used for re-weighting the image
        score. ``1`` disables the re-weighting (the score is ``s*``).
    image_size : int or (int, int), default=224
        Images are resized to this size before the network.
    smoothing_sigma : float >= 0, default=4.0
        Standard deviation, in pixels at ``image_size``, of the Gaussian that
        smooths the upsampled anomaly maps (4 in both reference
        implementations); 0 disables the smoothing.
    embedding_dim : int or None, default=1024
        Dimension of the patch embeddings (the reference's pretrain and
        target embedding dimension); capped at the number of channels of the
        layers (384 for resnet18's layer2 + layer3, 1536 for
        wide_resnet50_2's). ``None`` keeps every channel unpooled. The memory
        used by :meth:`fit` is about ``n_images * h * w * embedding_dim * 4``
        bytes (1.3 GB for 400 images at 224 px).
    projection_dim : int or None, default=128
        Dimension of the random projection used for the coreset selection
        (``None``: select on the full features).
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, default="auto"
        Where the network and the searches run.
    batch_size : int, default=32
        Images per forward pass; the search works on one batch at a time.
    contamination : "auto" or float in (0, 0.5], default="auto"
        Fraction of training images below ``offset_``.
    random_state : int, RandomState instance or None, default=None
        Seeds the random initialisation (``weights=None``), the projection
        and the first coreset point.
    verbose : bool, default=False
        Progress bars over batches.

    Attributes
    ----------
    featurizer_ : DeepFeaturizer
        The fitted featurizer.
    memory_bank_ : ndarray of float32, shape (n_bank, n_dims)
        The coreset of training patch embeddings (``n_dims`` is
        ``embedding_dim`` capped at the channel count, or every channel).
    coreset_indices_ : ndarray of int64, shape (n_bank,)
        Rows of the training patches (image-major, then row, column) kept.
    feature_map_shape_ : tuple of int
        ``(n_dims, h, w)`` of one image's patch embeddings.
    offset_ : float
        Threshold of :meth:`decision_function`.

    See Also
    --------
    PaDiMDetector : Per-position Gaussian model of patch features.

    Notes
    -----
    ``offset_`` comes from approximate training scores, computed without a
    full search: each training patch is scored by its distance to the bank
    item that was nearest to it in the projected space during the coreset
    selection (an upper bound of its nearest-neighbour distance), and only
    each image's highest such patch gets the exact search and re-weighting.
    With ``coreset_ratio=1`` training patches are their own neighbours.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.detectors import PatchCoreDetector
    >>> rng = np.random.default_rng(0)
    >>> X = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    >>> det = PatchCoreDetector(backbone="resnet18", weights=None, image_size=32,
    ...                         device="cpu", random_state=0).fit(X)
    >>> det.score_samples(X[:2]).shape, det.anomaly_map(X[:2]).shape
    ((2,), (2, 32, 32))
    """

    _parameter_constraints: dict = {
        **BasePatchDetector._parameter_constraints,
        "coreset_ratio": [Interval(Real, 0, 1, closed="right")],
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "embedding_dim": [None, Interval(Integral, 1, None, closed="left")],
        "projection_dim": [None, Interval(Integral, 1, None, closed="left")],
    }
    _transient_attrs = ("_bank_cache",)
    _fitted_attr = "memory_bank_"
    _progress_name = "PatchCore"

    def __init__(
        self,
        backbone: str | torch.nn.Module = "wide_resnet50_2",
        weights: str | os.PathLike[str] | None = "DEFAULT",
        layers: Sequence[str] | None = ("layer2", "layer3"),
        patch_size: int = 3,
        coreset_ratio: float = 0.1,
        n_neighbors: int = 9,
        image_size: int | tuple[int, int] = 224,
        smoothing_sigma: float = 4.0,
        embedding_dim: int | None = 1024,
        projection_dim: int | None = 128,
        device: str | torch.device = "auto",
        batch_size: int = 32,
        contamination: float | Literal["auto"] = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.backbone = backbone
        self.weights = weights
        self.layers = layers
        self.patch_size = patch_size
        self.coreset_ratio = coreset_ratio
        self.n_neighbors = n_neighbors
        self.image_size = image_size
        self.smoothing_sigma = smoothing_sigma
        self.embedding_dim = embedding_dim
        self.projection_dim = projection_dim
        self.device = device
        self.batch_size = batch_size
        self.contamination = contamination
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    def _fit(self, source, rng):
        """Build the memory bank; return the training anomaly scores (see Notes)."""
        n = len(source)
        feat_seed, coreset_seed = (int(s) for s in rng.randint(0, 2**31 - 1, size=2))

        featurizer = candidates = None
        with torch.inference_mode():
            for start, featurizer, feats, _ in self._feature_batches(source, seed=feat_seed):
                if candidates is None:
                    c, h, w = featurizer.feature_map_shape_
                    d = _embedding_size(c, self.embedding_dim)
                    self._pool_dim = None if self.embedding_dim is None else d
                    pooling = self._pooling(featurizer)
                    candidates = torch.empty(n * h * w, d, dtype=torch.float32,
                                             device=featurizer.device_)
                patch_embeddings(feats, pooling,
                                 candidates[start * h * w:(start + len(feats)) * h * w])
                del feats
            assert candidates is not None  # _image_source rejects empty input
            indices, nearest = greedy_coreset(candidates, self.coreset_ratio,
                                              projection_dim=self.projection_dim,
                                              random_state=coreset_seed)
            bank = candidates if self.coreset_ratio == 1 else candidates[indices]
            train_scores = self._training_scores(candidates, bank, nearest, n, h * w)
        del candidates

        self.featurizer_ = featurizer
        self.feature_map_shape_ = (d, h, w)
        self.memory_bank_ = bank.cpu().numpy()
        self.coreset_indices_ = indices.cpu().numpy().astype(np.int64)
        return train_scores

    def _pooling(self, featurizer):
        """The channel pooling matrix on the featurizer's device, or None (no pooling)."""
        if self._pool_dim is None:
            return None
        layer_channels = tuple(featurizer.layer_channels_.values())
        return pooling_matrix(layer_channels, self._pool_dim).to(featurizer.device_)

    def _training_scores(self, candidates, bank, nearest, n_images, n_patches):
        """Cheap image scores of the training images (see Notes)."""
        approx = torch.empty(candidates.shape[0], dtype=candidates.dtype, device=candidates.device)
        step = max(1, (1 << 22) // candidates.shape[1])  # bounds the gathered block (16 MiB)
        for s in range(0, candidates.shape[0], step):
            diff = candidates[s:s + step] - bank[nearest[s:s + step]]
            approx[s:s + step] = torch.linalg.vector_norm(diff, dim=1)
        top = approx.view(n_images, n_patches).argmax(dim=1)
        queries = candidates.view(n_images, n_patches, -1)[torch.arange(n_images), top]
        dist, idx = nearest_neighbors(queries, bank, 1)
        return reweighted_scores(queries, dist[:, 0], idx[:, 0], bank,
                                 self.n_neighbors).cpu().numpy()

    # ------------------------------------------------------------------ scoring
    def _scoring_state(self):
        """The bank on the featurizer's device, its squared row norms, the pooling."""
        device = self.featurizer_.device_
        bank = getattr(self, "_bank_cache", None)
        if bank is None or bank.device != device:
            bank = torch.from_numpy(self.memory_bank_).to(device)
            self._bank_cache = bank
        return bank, torch.einsum("ij,ij->i", bank, bank), self._pooling(self.featurizer_)

    def _batch_scores(self, feats, input_size, with_maps, state):
        bank, bank_sq, pooling = state
        d, h, w = self.feature_map_shape_
        queries = patch_embeddings(
            feats, pooling,
            torch.empty(len(feats) * h * w, d, dtype=bank.dtype, device=bank.device))
        dist, idx = nearest_neighbors(queries, bank, 1, bank_sq_norms=bank_sq)
        patch = dist[:, 0].view(-1, h * w)
        s_star, top = patch.max(dim=1)
        rows = torch.arange(patch.shape[0], device=patch.device) * (h * w) + top
        scores = reweighted_scores(queries[rows], s_star, idx[rows, 0], bank, self.n_neighbors)
        if not with_maps:
            return scores, None
        _, at_input = anomaly_maps(patch.view(-1, h, w), self._network_size, input_size,
                                   self.smoothing_sigma)
        return scores, at_input
