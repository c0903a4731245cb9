"""Greedy k-center coreset selection, the memory bank of :class:`PatchCoreDetector`.

Its memory-bounded building blocks (the bank is searched by
:func:`~mvtec_sklearn.detectors._nn._search.nearest_neighbors`):

- :func:`k_center_greedy` is the exact greedy farthest-point (k-center)
  selection of PatchCore. Each step needs the distance of every point to the
  newly selected centre only; points that provably cannot get closer are
  skipped, and the rest are updated in chunks with the
  ``|x|^2 - 2 x.c + |c|^2`` trick, so no N x N matrix and no N x d temporary
  is ever built. A lower bound of the distance to the new centre decides
  which points are skipped: above 64 features, the distance between the
  projections onto the features' 32 leading principal directions (an
  orthogonal projection never lengthens a difference), which reads a few
  columns per point instead of all and prunes texture-like data, where
  patches are alike; below, the triangle inequality through a point's
  current nearest centre. On the CPU the loop runs on numpy views of the
  tensors, whose small operations cost a fraction of torch's.
- :func:`greedy_coreset` first maps the features to a low dimension with a
  seeded Gaussian (Johnson-Lindenstrauss) random projection, as PatchCore does.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.utils import check_random_state
from threadpoolctl import threadpool_limits

from mvtec_sklearn.utils import torch_generator

from ._nn._search import BLOCK_ELEMENTS, check_features

__all__ = ["greedy_coreset", "k_center_greedy", "random_projection"]

#: Rank of the principal subspace whose projections bound distances from below.
_BOUND_RANK = 32
#: Rows of the sample the principal directions are computed from.
_BOUND_SAMPLE = 4096


def random_projection(features, n_components=128, random_state=None):
    """Project features with a seeded Gaussian random matrix.

    The matrix has i.i.d. ``N(0, 1 / n_components)`` entries, so squared
    distances are preserved in expectation (Johnson-Lindenstrauss). Features
    with at most ``n_components`` columns are returned unchanged.

    Parameters
    ----------
    features : tensor of shape (n_samples, n_features)
        Points to project.
    n_components : int, default=128
        Output dimension.
    random_state : int, RandomState instance or None, default=None
        Seeds the projection matrix.

    Returns
    -------
    tensor of shape (n_samples, min(n_features, n_components))

    Examples
    --------
    >>> import torch
    >>> from mvtec_sklearn.detectors._coreset import random_projection
    >>> random_projection(torch.randn(10, 300), 16, random_state=0).shape
    torch.Size([10, 16])
    """
    features = check_features(features)
    n_features = features.shape[1]
    if n_components is None or n_features <= n_components:
        return features
    gen = torch_generator(random_state)
    matrix = torch.randn(n_features, n_components, generator=gen, dtype=torch.float64)
    matrix = (matrix / np.sqrt(n_components)).to(device=features.device, dtype=features.dtype)
    out = torch.empty(features.shape[0], n_components, dtype=features.dtype, device=features.device)
    step = max(1, BLOCK_ELEMENTS // max(n_features, 1))
    for start in range(0, features.shape[0], step):
        torch.mm(features[start:start + step], matrix, out=out[start:start + step])
    return out


def k_center_greedy(features, n_centers, *, start_index=0, chunk_size=65536):
    """Exact greedy k-center (farthest-point) selection.

    Starting from ``start_index``, repeatedly add the point whose distance to
    its nearest selected centre is largest (the first such point on ties).

    Parameters
    ----------
    features : tensor of shape (n_samples, n_features)
        Points (on any device; computations stay there, in their dtype).
    n_centers : int
        Number of centres to select, in ``[1, n_samples]``.
    start_index : int, default=0
        The first centre.
    chunk_size : int, default=65536
        Rows updated at a time; bounds the temporary memory.

    Returns
    -------
    indices : LongTensor of shape (n_centers,)
        The selected points, in selection order.
    nearest : LongTensor of shape (n_samples,)
        For every point, the position in ``indices`` of its nearest centre.
    min_sq_distances : tensor of shape (n_samples,)
        Squared distance of every point to its nearest centre.

    Examples
    --------
    >>> import torch
    >>> from mvtec_sklearn.detectors._coreset import k_center_greedy
    >>> x = torch.tensor([[0.0], [1.0], [10.0], [4.0]])
    >>> k_center_greedy(x, 3)[0].tolist()
    [0, 2, 3]
    """
    x = check_features(features)
    n, d = x.shape
    n_centers = int(n_centers)
    if not 1 <= n_centers <= n:
        raise ValueError(f"n_centers must be in [1, {n}], got {n_centers}.")
    if not 0 <= int(start_index) < n:
        raise ValueError(f"start_index must be in [0, {n}), got {start_index}.")
    chunk_size = max(1, int(chunk_size))
    dev, dtype = x.device, x.dtype

    sq = torch.einsum("ij,ij->i", x, x)
    low = _principal_projection(x) if d > 2 * _BOUND_RANK else None
    centers = torch.empty(n_centers, d, dtype=dtype, device=dev)
    center_sq = torch.empty(n_centers, dtype=dtype, device=dev)
    indices = torch.empty(n_centers, dtype=torch.long, device=dev)
    min_d2 = torch.full((n,), float("inf"), dtype=dtype, device=dev)
    nearest = torch.zeros(n, dtype=torch.long, device=dev)

    xp = _array_namespace(dev)
    buffers = (x, sq, centers, center_sq, indices, min_d2, nearest)
    if xp is np:  # views: the loop fills the tensors
        buffers = tuple(t.numpy() for t in buffers)
        low = None if low is None else tuple(t.numpy() for t in low)
    # The loop is a long chain of small dependent steps: on the CPU it uses
    # as many BLAS threads as torch may use threads, no more.
    with threadpool_limits(torch.get_num_threads(), user_api="blas"):
        _greedy_loop(xp, *buffers, low, int(start_index), chunk_size,
                     float(torch.finfo(dtype).eps))
    return indices, nearest, min_d2


def _array_namespace(device):
    """numpy for tensors on the CPU, else torch: the array library the greedy loop runs in.

    Each of the loop's thousands of steps is a handful of small operations. On
    the CPU numpy's per-call cost is a fraction of torch's (a matrix-vector
    product of 47,040 x 32 float32 values: 40-50 us against 115 us; an argmax
    over 47,040 values: 3 us against 27 us), and its views share the tensors'
    memory, so the same arithmetic runs about 2.5 times faster.
    """
    return np if device.type == "cpu" else torch


def _principal_projection(x):
    """Centred projections of ``x`` onto its ``_BOUND_RANK`` leading principal directions.

    ``|P(a) - P(b)| <= |a - b|`` for the orthogonal projection ``P``, so the
    projections bound distances from below. Returns ``(y, |y|^2)``.
    """
    centred = x - x.mean(dim=0)
    sample = centred[::max(1, x.shape[0] // _BOUND_SAMPLE)]
    _, _, vh = torch.linalg.svd(sample, full_matrices=False)
    y = centred @ vh[:_BOUND_RANK].T
    return y, torch.einsum("ij,ij->i", y, y)


def _greedy_loop(xp, x, sq, centers, center_sq, indices, min_d2, nearest, low, idx, chunk_size,
                 eps):
    """The greedy k-center iterations of :func:`k_center_greedy` (fills its buffers).

    Written once for numpy arrays and torch tensors alike (``xp`` is the
    module): only operators, indexing and functions both libraries share.
    ``low`` is None or ``(y, |y|^2)`` of :func:`_principal_projection`;
    ``eps`` is the machine epsilon of the features' dtype.
    """
    n, n_centers = x.shape[0], centers.shape[0]
    if low is not None:
        # The bound is computed in floating point: a point is kept unless the
        # bound exceeds its distance by more than rounding can explain.
        slack = 1.0 + 64 * eps
        y, y_sq = low
        y_sq = y_sq / slack
    for t in range(n_centers):
        c = x[idx]
        c_sq = sq[idx]
        if t == 0:
            candidates = None
        elif low is not None:
            # |P(x) - P(c)|^2 (scaled by 1 / slack) < min_d2: the only points
            # that can get closer to c.
            bound = y_sq - (2.0 / slack) * (y @ y[idx]) + y_sq[idx]
            candidates = xp.where(bound < min_d2)[0]
        else:
            # Triangle inequality: |x - c| >= |c - a(x)| - |x - a(x)|, so a point
            # whose nearest centre a(x) satisfies |c - a(x)| >= 2 |x - a(x)|
            # cannot get closer to c. Work with squared distances.
            dcc = 0.25 * (center_sq[:t] + c_sq) - 0.5 * (centers[:t] @ c)  # |c - a|^2 / 4
            candidates = xp.where(dcc[nearest] < min_d2)[0]
        if candidates is not None and candidates.shape[0] > n // 4:
            candidates = None  # most rows change: a dense sweep is cheaper
        if candidates is None:
            for s in range(0, n, chunk_size):
                e = min(s + chunk_size, n)
                d2 = sq[s:e] - 2.0 * (x[s:e] @ c) + c_sq
                d2[d2 < 0] = 0
                md = min_d2[s:e]
                nearest[s:e][d2 < md] = t
                xp.minimum(md, d2, out=md)
        else:
            for s in range(0, candidates.shape[0], chunk_size):
                rows = candidates[s:s + chunk_size]
                d2 = sq[rows] - 2.0 * (x[rows] @ c) + c_sq
                d2[d2 < 0] = 0
                better = d2 < min_d2[rows]
                rows = rows[better]
                min_d2[rows] = d2[better]
                nearest[rows] = t
        min_d2[idx] = 0
        nearest[idx] = t
        centers[t] = c
        center_sq[t] = c_sq
        indices[t] = idx
        if t + 1 < n_centers:
            idx = int(xp.argmax(min_d2))


def greedy_coreset(features, coreset_ratio=0.1, *, projection_dim=128, random_state=None,
                   chunk_size=65536):
    """PatchCore's coreset: k-center greedy on randomly projected features.

    Parameters
    ----------
    features : tensor of shape (n_samples, n_features)
        The memory bank candidates.
    coreset_ratio : float in (0, 1], default=0.1
        Fraction of points kept (at least one); ``1.0`` keeps every point.
    projection_dim : int or None, default=128
        Dimension of the Gaussian random projection used for the selection;
        ``None`` selects on the features themselves.
    random_state : int, RandomState instance or None, default=None
        Seeds the projection and the first centre.
    chunk_size : int, default=65536
        Rows updated at a time.

    Returns
    -------
    indices : LongTensor of shape (n_selected,)
        Selected rows, in selection order (``arange(n_samples)`` for ratio 1).
    nearest : LongTensor of shape (n_samples,)
        For every point, the position in ``indices`` of its nearest selected
        point in the projected space.

    Examples
    --------
    >>> import torch
    >>> from mvtec_sklearn.detectors._coreset import greedy_coreset
    >>> idx, nearest = greedy_coreset(torch.randn(200, 64), 0.1, random_state=0)
    >>> idx.shape, nearest.shape
    (torch.Size([20]), torch.Size([200]))
    """
    x = check_features(features)
    n = x.shape[0]
    if not 0 < coreset_ratio <= 1:
        raise ValueError(f"coreset_ratio must be in (0, 1], got {coreset_ratio}.")
    if coreset_ratio == 1:
        all_idx = torch.arange(n, device=x.device)
        return all_idx, all_idx.clone()
    rng = check_random_state(random_state)
    n_centers = min(n, max(1, int(n * coreset_ratio)))
    projected = random_projection(x, projection_dim, random_state=rng)
    start = int(rng.randint(n))
    indices, nearest, _ = k_center_greedy(projected, n_centers, start_index=start,
                                          chunk_size=chunk_size)
    return indices, nearest

