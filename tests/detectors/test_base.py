"""The shared detector bases: the score convention and training-score labels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from mvtec_sklearn.detectors._base import TrainingScoreDetector


class _MeanDistance(TrainingScoreDetector):
    """Score = minus the distance to the training mean; training scores halved."""

    def __init__(self, contamination="auto"):
        self.contamination = contamination

    def _fit(self, X):
        X = np.asarray(X, dtype=np.float64)
        self.mean_ = X.mean(axis=0)
        self.n_fits_ = getattr(self, "n_fits_", 0) + 1
        return self.score_samples(X) / 2.0

    def score_samples(self, X):
        return -np.linalg.norm(np.asarray(X, dtype=np.float64) - self.mean_, axis=1)


X = np.r_[np.zeros((9, 1)), [[10.0]]]


def test_fit_sets_offset_from_the_training_scores():
    det = _MeanDistance(contamination=0.1).fit(X)
    train_scores = det.score_samples(X) / 2.0
    assert det.offset_ == pytest.approx(np.percentile(train_scores, 10.0))


def test_fit_predict_labels_the_training_scores_in_one_fit():
    det = _MeanDistance(contamination=0.1)
    labels = det.fit_predict(X)
    assert det.n_fits_ == 1
    expected = np.where(det.score_samples(X) / 2.0 < det.offset_, -1, 1)
    np.testing.assert_array_equal(labels, expected)
    assert labels.tolist() == [1] * 9 + [-1]


@pytest.mark.parametrize("method", ["fit", "fit_predict"])
def test_fit_and_fit_predict_validate_the_parameters(method):
    with pytest.raises(InvalidParameterError, match="contamination"):
        getattr(_MeanDistance(contamination=0.9), method)(X)
