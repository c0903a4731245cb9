"""Pure torch patch-feature math of PatchCore and PaDiM.

PatchCore: channel pooling of multi-layer patch features into embeddings
(:func:`pooling_matrix`, :func:`patch_embeddings`) and the re-weighted image
score (:func:`reweighted_scores`). PaDiM: per-position Gaussians
(:func:`ledoit_wolf_covariance`, :func:`gaussian_whitening`) and the
Mahalanobis distance to them (:func:`mahalanobis_distances`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._search import nearest_neighbors

__all__ = [
    "gaussian_whitening",
    "ledoit_wolf_covariance",
    "mahalanobis_distances",
    "patch_embeddings",
    "pooling_matrix",
    "reweighted_scores",
]


def pooling_matrix(layer_channels, dim):
    """The channel pooling of the reference PatchCore as a (C, dim) matrix.

    Each layer's channels of a patch are average-pooled to ``dim`` values
    (``adaptive_avg_pool1d``), the layers' vectors are concatenated and pooled
    again to ``dim``, as in the reference PatchCore's preprocessing and
    aggregation. With two layers and an even ``dim`` every layer contributes
    ``dim / 2`` values, whatever its channel count. The pooling is linear, so
    it is computed once, on the identity, and applied as one matrix product.

    Parameters
    ----------
    layer_channels : sequence of int
        Channels of each layer, in order (summing to ``C``).
    dim : int
        Embedding dimension.

    Returns
    -------
    tensor of float32, shape (C, dim)

    Examples
    --------
    >>> from mvtec_sklearn.detectors._nn._patch import pooling_matrix
    >>> pooling_matrix((4, 8), 6).shape
    torch.Size([12, 6])
    """
    eye = torch.eye(sum(layer_channels))
    pooled, start = [], 0
    for n_layer in layer_channels:
        pooled.append(F.adaptive_avg_pool1d(eye[:, None, start:start + n_layer], dim))
        start += n_layer
    return F.adaptive_avg_pool1d(torch.cat(pooled, dim=2), dim)[:, 0]


def patch_embeddings(feats, pooling, out):
    """Multi-layer patch features -> one row per patch, pooled over channels.

    Parameters
    ----------
    feats : tensor (b, C, h, w)
        Patch features, layers' channels concatenated in order.
    pooling : tensor (C, dim) or None
        :func:`pooling_matrix` on ``feats``' device; None keeps the channels.
    out : tensor (b * h * w, dim or C)
        Filled with the embeddings, image-major, then row, column.

    Returns
    -------
    out : tensor
    """
    rows = feats.flatten(2).transpose(1, 2)  # (b, h * w, C) view
    dest = out.view(feats.shape[0], -1, out.shape[1])
    if pooling is None:
        dest.copy_(rows)
    else:
        torch.matmul(rows, pooling, out=dest)
    return out


def reweighted_scores(queries, s_star, m_star, bank, n_neighbors):
    """Image scores from each image's top patch (eq. 7 of the PatchCore paper).

    ``w = 1 - exp(|m_test* - m*|) / sum_{m in N_b(m*)} exp(|m_test* - m|)``
    and the score is ``w * s*``.

    Parameters
    ----------
    queries : tensor (n, d)
        Each image's highest-scoring patch embedding ``m_test*``.
    s_star : tensor (n,)
        Its distance to the nearest bank item.
    m_star : LongTensor (n,)
        That bank item's row.
    bank : tensor (n_bank, d)
        The memory bank.
    n_neighbors : int
        ``b``, the size of the neighbourhood ``N_b(m*)`` (capped at the
        bank's size); 1 returns ``s_star``.

    Returns
    -------
    tensor (n,)
    """
    b = min(n_neighbors, bank.shape[0])
    if b <= 1:
        return s_star
    _, support = nearest_neighbors(bank[m_star], bank, b)
    dists = torch.linalg.vector_norm(queries[:, None, :] - bank[support], dim=2)
    weights = 1.0 - torch.exp(s_star - torch.logsumexp(dists, dim=1))
    return weights * s_star


def ledoit_wolf_covariance(X):
    """Ledoit-Wolf shrunk covariances of a batch of data sets.

    The same estimate as :func:`sklearn.covariance.ledoit_wolf`
    (``assume_centered=False``), vectorised over a leading batch axis.

    Parameters
    ----------
    X : tensor of shape (n_sets, n_samples, n_features)
        Float tensor (use float64 for accuracy).

    Returns
    -------
    covariance : tensor of shape (n_sets, n_features, n_features)
    shrinkage : tensor of shape (n_sets,)

    Examples
    --------
    >>> import torch
    >>> from mvtec_sklearn.detectors._nn._patch import ledoit_wolf_covariance
    >>> cov, shrink = ledoit_wolf_covariance(torch.randn(3, 20, 4, dtype=torch.float64))
    >>> cov.shape, shrink.shape
    (torch.Size([3, 4, 4]), torch.Size([3]))
    """
    n_samples, n_features = X.shape[1], X.shape[2]
    Xc = X - X.mean(dim=1, keepdim=True)
    emp_cov = torch.bmm(Xc.transpose(1, 2), Xc) / n_samples
    sq = Xc * Xc
    emp_cov_trace = sq.sum(dim=1) / n_samples  # (B, p)
    mu = emp_cov_trace.sum(dim=1) / n_features  # (B,)
    beta_ = (sq.sum(dim=2) ** 2).sum(dim=1)  # sum of (X2.T @ X2)
    delta_ = (emp_cov * n_samples).pow(2).sum(dim=(1, 2)) / n_samples**2
    beta = (beta_ / n_samples - delta_) / (n_features * n_samples)
    delta = (delta_ - 2.0 * mu * emp_cov_trace.sum(dim=1) + n_features * mu**2) / n_features
    beta = torch.minimum(beta, delta)
    shrinkage = torch.where(beta == 0, torch.zeros_like(beta), beta / delta)
    eye = torch.eye(n_features, dtype=X.dtype, device=X.device)
    cov = (1.0 - shrinkage)[:, None, None] * emp_cov + (shrinkage * mu)[:, None, None] * eye
    return cov, shrinkage


def gaussian_whitening(feats, shrinkage):
    """Inverse Cholesky factors of the per-position covariances of patch features.

    Covariances are computed in float64, a block of positions at a time
    (about 2**22 elements of features per block).

    Parameters
    ----------
    feats : tensor of shape (n_positions, n_samples, n_features)
        Every position's features of every training image.
    shrinkage : float >= 0 or "ledoit_wolf"
        A float ``eps`` gives the unbiased sample covariance plus ``eps I``;
        ``"ledoit_wolf"`` the Ledoit-Wolf shrunk covariance
        (:func:`ledoit_wolf_covariance`) plus a ``1e-6`` relative ridge.

    Returns
    -------
    tensor of float32, shape (n_positions, n_features, n_features)
        ``L^-1`` where ``Sigma = L L^T``, so that the Mahalanobis distance is
        ``|L^-1 (x - mean)|`` (:func:`mahalanobis_distances`).

    Raises
    ------
    ValueError
        When a covariance is singular (no positive shrinkage, too few
        images).

    Examples
    --------
    >>> import torch
    >>> from mvtec_sklearn.detectors._nn._patch import gaussian_whitening
    >>> gaussian_whitening(torch.randn(6, 10, 3), 0.01).shape
    torch.Size([6, 3, 3])
    """
    n_positions, n, k = feats.shape
    whitening = torch.empty(n_positions, k, k, dtype=torch.float32, device=feats.device)
    eye = torch.eye(k, dtype=torch.float64, device=feats.device)
    step = max(1, (1 << 22) // max(n * k, 1))
    for s in range(0, n_positions, step):
        block = feats[s:s + step].double()
        if shrinkage == "ledoit_wolf":
            cov, _ = ledoit_wolf_covariance(block)
            scale = torch.diagonal(cov, dim1=1, dim2=2).mean(dim=1).clamp(min=1e-12)
            cov = cov + 1e-6 * scale[:, None, None] * eye
        else:
            centred = block - block.mean(dim=1, keepdim=True)
            cov = torch.bmm(centred.transpose(1, 2), centred) / max(n - 1, 1)
            cov = cov + float(shrinkage) * eye
        chol, info = torch.linalg.cholesky_ex(cov)
        if bool((info != 0).any()):
            raise ValueError(
                "The patch-feature covariance is singular at some positions; use a "
                "positive shrinkage (e.g. shrinkage=0.01) or more training images."
            )
        inv = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False)
        whitening[s:s + step] = inv.float()
    return whitening


def mahalanobis_distances(feats, mean, whitening):
    """Distance of every patch to the Gaussian of its position.

    Parameters
    ----------
    feats : tensor of shape (b, n_features, n_positions)
        Patch features of ``b`` images.
    mean : tensor of shape (n_positions, n_features)
        Per-position means.
    whitening : tensor of shape (n_positions, n_features, n_features)
        :func:`gaussian_whitening` of the per-position covariances.

    Returns
    -------
    tensor of shape (b, n_positions)
        ``|L^-1 (x - mean)|``.
    """
    diff = feats.permute(2, 1, 0) - mean[:, :, None]  # (P, k, b)
    return torch.linalg.vector_norm(torch.bmm(whitening, diff), dim=1).T
