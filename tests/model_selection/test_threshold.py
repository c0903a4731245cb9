"""CalibratedThresholdDetector: estimator checks, the threshold rules, masks, persistence."""

import joblib
import numpy as np
import pytest
from sklearn.ensemble import IsolationForest
from sklearn.metrics import f1_score, roc_curve
from sklearn.utils.estimator_checks import parametrize_with_checks

from mvtec_sklearn.datasets import PSEUDO_DEFECT_RECIPES, pseudo_defects
from mvtec_sklearn.detectors import KNNDetector, PaDiMDetector
from mvtec_sklearn.metrics import f1_max
from mvtec_sklearn.model_selection import CalibratedThresholdDetector

@parametrize_with_checks(
    [
        CalibratedThresholdDetector(KNNDetector(device="cpu"), random_state=0),
        CalibratedThresholdDetector(IsolationForest(random_state=0), target_fpr=0.2,
                                    output="sign", random_state=0),
    ],
)
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _data(seed=0, n_normal=200, n_anomalous=40):
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(size=(n_normal, 3)), rng.normal(loc=3.0, size=(n_anomalous, 3))]
    y = np.r_[np.zeros(n_normal, int), np.ones(n_anomalous, int)]
    return X, y


def test_fpr_threshold_flags_target_share_of_held_out_normals():
    X, _ = _data()
    det = CalibratedThresholdDetector(KNNDetector(device="cpu"), target_fpr=0.1,
                                      refit=False, random_state=0).fit(X[:200])
    calib = det.calibration_indices_
    assert calib.size == 40
    held = -det.score_samples(X[calib])
    assert np.mean(held > det.threshold_) <= 0.1
    assert np.mean(held >= det.threshold_) > 0.05
    assert set(det.predict(X)) <= {-1, 1}
    np.testing.assert_array_equal(det.predict(X) == -1, -det.score_samples(X) > det.threshold_)


def test_f1_and_youden_thresholds_are_optimal_on_calibration_set():
    X, y = _data()
    for method in ("f1", "youden"):
        det = CalibratedThresholdDetector(KNNDetector(device="cpu"), method=method, refit=False,
                                          output="binary", random_state=0).fit(X, y)
        calib = det.calibration_indices_
        assert (y[calib] == 1).sum() == 40  # every anomaly is calibrated on, none fitted
        scores = -det.score_samples(X[calib])
        pred = det.predict(X[calib])
        assert set(pred) <= {0, 1}
        candidates = np.unique(scores)
        if method == "f1":
            best = max(f1_score(y[calib], scores >= t) for t in candidates)
            assert f1_score(y[calib], pred) == pytest.approx(best)
        else:
            fpr, tpr, _ = roc_curve(y[calib], scores)
            got = pred[y[calib] == 1].mean() - pred[y[calib] == 0].mean()
            assert got == pytest.approx((tpr - fpr).max())


def test_anomalies_are_never_fitted_on():
    X, y = _data()
    det = CalibratedThresholdDetector(IsolationForest(random_state=0), method="f1",
                                      refit=False, random_state=0).fit(X, y)
    reference = IsolationForest(random_state=0).fit(X[np.sort(np.setdiff1d(
        np.flatnonzero(y == 0), det.calibration_indices_))])
    np.testing.assert_allclose(det.score_samples(X), reference.score_samples(X))
    refitted = CalibratedThresholdDetector(IsolationForest(random_state=0), method="f1",
                                           random_state=0).fit(X, y)
    np.testing.assert_allclose(refitted.score_samples(X),
                               IsolationForest(random_state=0).fit(X[y == 0]).score_samples(X))


def test_errors_name_the_problem():
    X, y = _data()
    with pytest.raises(ValueError, match="needs labels y"):
        CalibratedThresholdDetector(KNNDetector(), method="f1").fit(X)
    with pytest.raises(ValueError, match="needs anomalous images"):
        CalibratedThresholdDetector(KNNDetector(), method="youden").fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="anomaly_map"):
        CalibratedThresholdDetector(KNNDetector(), pixel_method="fpr").fit(X)
    with pytest.raises(ValueError, match="target_fpr"):
        CalibratedThresholdDetector(KNNDetector(), target_fpr=1.5).fit(X)


@pytest.fixture(scope="module")
def images_and_masks():
    rng = np.random.default_rng(0)
    X = rng.uniform(0.3, 0.5, size=(16, 32, 32, 3)).astype(np.float32)
    masks = np.zeros((16, 32, 32), bool)
    masks[12:, 8:20, 8:20] = True
    X[masks] = 1.0
    y = masks.any(axis=(1, 2)).astype(int)
    return X, y, masks


def _padim():
    return PaDiMDetector(weights=None, image_size=32, n_features=10, device="cpu", random_state=0)


def test_pixel_thresholds_and_masks(images_and_masks, tmp_path):
    X, y, masks = images_and_masks
    det = CalibratedThresholdDetector(_padim(), pixel_method="fpr", pixel_target_fpr=0.05,
                                      calibration_fraction=0.25, random_state=0).fit(X[y == 0])
    pred = det.predict_mask(X)
    assert pred.shape == masks.shape and pred.dtype == bool
    assert det.pixel_threshold_ is not None
    np.testing.assert_array_equal(pred, det.anomaly_map(X) > det.pixel_threshold_)
    f1 = CalibratedThresholdDetector(_padim(), method="f1", pixel_method="f1", refit=False,
                                     calibration_fraction=0.25, random_state=0).fit(X, y, masks=masks)
    calib = f1.calibration_indices_
    maps = f1.anomaly_map(X[calib])
    best = max(f1_score(masks[calib].ravel(), maps.ravel() >= t)
               for t in np.quantile(maps, np.linspace(0, 1, 200)))
    assert f1_score(masks[calib].ravel(), f1.predict_mask(X[calib]).ravel()) >= best - 1e-9
    assert det.calibration_indices_.size == 3

    joblib.dump(det, tmp_path / "m.joblib")
    loaded = joblib.load(tmp_path / "m.joblib")
    assert loaded.threshold_ == det.threshold_ and loaded.pixel_threshold_ == det.pixel_threshold_
    np.testing.assert_array_equal(loaded.predict(X), det.predict(X))


def test_predict_mask_without_pixel_threshold_says_how(images_and_masks):
    X, _, _ = images_and_masks
    det = CalibratedThresholdDetector(_padim(), random_state=0).fit(X[:12])
    with pytest.raises(ValueError, match="pixel_method"):
        det.predict_mask(X[:2])


def test_synthetic_pixel_threshold_is_best_f1_on_the_recipes_pseudo_defects(images_and_masks):
    X, y, _ = images_and_masks
    det = CalibratedThresholdDetector(_padim(), pixel_method="synthetic", refit=False,
                                      calibration_fraction=0.25, random_state=0).fit(X[y == 0])
    fake, fake_masks, recipes = pseudo_defects(X[y == 0][det.calibration_indices_], n_copies=4,
                                               random_state=0)
    assert sorted(set(recipes)) == sorted(PSEUDO_DEFECT_RECIPES)
    maps = det.anomaly_map(fake)
    chosen = f1_score(fake_masks.ravel(), det.predict_mask(fake).ravel())
    assert chosen == pytest.approx(f1_max(fake_masks.ravel(), maps.ravel())[0])
