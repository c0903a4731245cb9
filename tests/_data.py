"""Helpers shared by the tests: tiny generated datasets, snapshots of folders, metric inputs."""

from __future__ import annotations

import os

import numpy as np
from hypothesis import strategies as st

from mvtec_sklearn.datasets import make_mvtec_like


def tiny_mvtec(folder, categories, *, n_train=3, n_test_good=2, n_test_defect=3, image_size=32,
               random_state=0):
    """A small :func:`make_mvtec_like` dataset in ``folder``; returns its root."""
    return make_mvtec_like(folder, categories=categories, n_train=n_train,
                           n_test_good=n_test_good, n_test_defect=n_test_defect,
                           image_size=image_size, random_state=random_state)


def file_contents(root):
    """Relative path -> bytes of every file under ``root``."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as fh:
                out[os.path.relpath(path, root)] = fh.read()
    return out


def file_states(root):
    """Relative path -> (size, modification time) of every file and folder under ``root``.

    Equal snapshots before and after an operation prove that it wrote nothing there.
    """
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            state[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return state


@st.composite
def labels_and_scores(draw, min_size=2, max_size=40, bound=50):
    """Labels with both classes and integer-valued scores in [-bound, bound].

    Integer values, so that increasing transforms keep order and ties.
    """
    n = draw(st.integers(min_size, max_size))
    both_classes = st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(
        lambda v: 0 < sum(v) < len(v)
    )
    y = draw(both_classes)
    scores = draw(st.lists(st.integers(-bound, bound), min_size=n, max_size=n))
    return np.array(y), np.array(scores, dtype=float)


def normal_and_shifted(shift):
    """60 normal training points in 3-D, 20 normal and 10 shifted test points, test labels.

    Returns ``(X_train, X_test, y_test)``; the anomalies are shifted by ``shift``.
    """
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(60, 3))
    X_test = np.vstack([rng.normal(size=(20, 3)), rng.normal(shift, 1, size=(10, 3))])
    y_test = np.r_[np.zeros(20, dtype=int), np.ones(10, dtype=int)]
    return X_train, X_test, y_test
