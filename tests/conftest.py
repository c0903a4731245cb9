"""Shared fixtures: tiny image files and a tiny synthetic MVTec-format dataset."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def image_paths(tmp_path_factory):
    """Eight 32x32 RGB PNG files: smooth blobs plus noise (seeded)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("images")
    yy, xx = np.mgrid[0:32, 0:32]
    paths = []
    for i in range(8):
        cy, cx = rng.uniform(8, 24, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 40.0)
        img = np.stack([blob, 0.5 * blob + 0.3, 1 - blob], axis=-1) * 200
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        path = folder / f"{i:03d}.png"
        Image.fromarray(img).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture(scope="session")
def mvtec_root(tmp_path_factory):
    """A tiny synthetic MVTec-format dataset (3 categories, 64 px)."""
    from mvtec_sklearn.datasets import make_mvtec_like

    root = tmp_path_factory.mktemp("mvtec")
    make_mvtec_like(
        root,
        categories=["bottle", "grid", "carpet"],
        n_train=10,
        n_test_good=4,
        n_test_defect=6,
        image_size=64,
        random_state=0,
    )
    return str(root)
