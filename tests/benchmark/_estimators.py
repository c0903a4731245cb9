"""Small estimators used by the benchmark tests (importable, so loky and Dask can pickle them)."""

from __future__ import annotations

import os

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, TransformerMixin

from mvtec_sklearn.datasets import load_images


def _record(log, text):
    if log is not None:
        with open(log, "a") as fh:
            fh.write(text + "\n")


class PixelDeviation(OutlierMixin, BaseEstimator):
    """Mean-image model: anomaly map = |image - mean| / std, score = -mean of the map's top pixels.

    ``log`` (a file) receives one line per ``fit``: the first training path's
    category folder, so tests can count fits.
    """

    def __init__(self, size=32, log=None):
        self.size = size
        self.log = log

    def fit(self, X, y=None):
        images = load_images(X, size=self.size, channels=1)[..., 0]
        self.mean_ = images.mean(axis=0)
        self.std_ = images.std(axis=0) + 0.05
        _record(self.log, f"fit {_category(X)}")
        return self

    def anomaly_map(self, X):
        images = load_images(X, size=self.size, channels=1)[..., 0]
        return np.abs(images - self.mean_) / self.std_

    def score_samples(self, X):
        maps = self.anomaly_map(X).reshape(len(X), -1)
        return -np.sort(maps, axis=1)[:, -20:].mean(axis=1)


class OnePassDeviation(PixelDeviation):
    """PixelDeviation whose scores and maps must come from ``score_samples_and_anomaly_map``."""

    def score_samples_and_anomaly_map(self, X):
        maps = PixelDeviation.anomaly_map(self, X)
        return -np.sort(maps.reshape(len(X), -1), axis=1)[:, -20:].mean(axis=1), maps

    def score_samples(self, X):
        raise AssertionError("score_samples called although one pass gives scores and maps")

    def anomaly_map(self, X):
        raise AssertionError("anomaly_map called although one pass gives scores and maps")


class Failing(OutlierMixin, BaseEstimator):
    """Raises ``ValueError`` in ``fit`` on the categories listed in ``fail_on``."""

    def __init__(self, fail_on=("grid",)):
        self.fail_on = fail_on

    def fit(self, X, y=None):
        category = _category(X)
        if category in self.fail_on:
            raise ValueError(f"boom on {category}")
        self.n_ = len(X)
        return self

    def score_samples(self, X):
        return -np.arange(len(X), dtype=float)


class Interrupting(OutlierMixin, BaseEstimator):
    """Raises ``KeyboardInterrupt`` in ``fit`` (a simulated Ctrl-C)."""

    def fit(self, X, y=None):
        raise KeyboardInterrupt

    def score_samples(self, X):  # pragma: no cover - never fitted
        return np.zeros(len(X))


class CountingLoader(TransformerMixin, BaseEstimator):
    """Flattened grayscale pixels; appends one line per ``transform`` call to ``log``."""

    def __init__(self, size=16, log=None):
        self.size = size
        self.log = log

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        _record(self.log, f"transform {_category(X)}")
        return load_images(X, size=self.size, channels=1).reshape(len(X), -1)


class BrokenFeaturizer(TransformerMixin, BaseEstimator):
    """A featurizer whose ``fit`` raises."""

    def fit(self, X, y=None):
        raise RuntimeError("featurizer exploded")

    def transform(self, X):  # pragma: no cover - never fitted
        return np.zeros((len(X), 1))


def _category(paths):
    """``root/<category>/<split>/<type>/000.png`` -> category."""
    return os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(os.fspath(paths[0])))))


def read_log(path):
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return fh.read().split()[1::2]


class SleepingFit(OutlierMixin, BaseEstimator):
    """Writes ``<folder>/worker-<pid>`` when ``fit`` starts, then sleeps ``seconds``."""

    def __init__(self, folder=None, seconds=120.0):
        self.folder = folder
        self.seconds = seconds

    def fit(self, X, y=None):
        import time

        with open(os.path.join(self.folder, f"worker-{os.getpid()}"), "w"):
            pass
        time.sleep(self.seconds)
        return self

    def score_samples(self, X):
        return np.zeros(len(X))
