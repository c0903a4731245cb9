"""Anomaly-aware ROC and precision-recall displays for any detector or pipeline."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.ensemble import IsolationForest  # noqa: E402
from sklearn.metrics import RocCurveDisplay, get_scorer  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import OneClassSVM  # noqa: E402

from mvtec_sklearn.detectors import KNNDetector  # noqa: E402
from mvtec_sklearn.metrics import anomaly_scores, aupr, image_auroc  # noqa: E402
from mvtec_sklearn.plotting import AnomalyPrecisionRecallDisplay, AnomalyRocCurveDisplay  # noqa: E402
from tests._data import normal_and_shifted  # noqa: E402


@pytest.fixture
def data():
    return normal_and_shifted(1.5)


@pytest.mark.parametrize(
    "detector",
    [OneClassSVM(nu=0.1), IsolationForest(random_state=0), KNNDetector(device="cpu"),
     make_pipeline(StandardScaler(), OneClassSVM(nu=0.1))],
    ids=["ocsvm", "iforest", "knn", "pipeline"],
)
def test_displays_match_the_anomaly_metrics(data, detector):
    X_train, X_test, y_test = data
    detector.fit(X_train)
    scores = anomaly_scores(detector, X_test)
    roc = AnomalyRocCurveDisplay.from_estimator(detector, X_test, y_test)
    assert isinstance(roc, RocCurveDisplay)
    assert roc.roc_auc == pytest.approx(image_auroc(y_test, scores))
    assert 0.5 < roc.roc_auc < 1.0  # overlapping classes: a curve worth drawing
    # scikit-learn's own roc_auc scorer reads decision_function as the anomalous score
    if hasattr(detector, "decision_function"):
        assert get_scorer("roc_auc")(detector, X_test, y_test) == pytest.approx(1 - roc.roc_auc)
    assert roc.name == type(detector[-1] if hasattr(detector, "steps") else detector).__name__
    pr = AnomalyPrecisionRecallDisplay.from_estimator(detector, X_test, y_test, name="mine")
    assert pr.average_precision == pytest.approx(aupr(y_test, scores)) and pr.name == "mine"
    plt.close("all")


def test_from_predictions_and_bad_input(data):
    _, _, y_test = data
    scores = np.linspace(0, 1, len(y_test))
    fig, ax = plt.subplots()
    roc = AnomalyRocCurveDisplay.from_predictions(y_test, scores, ax=ax, plot_chance_level=True)
    assert roc.ax_ is ax and roc.roc_auc == pytest.approx(image_auroc(y_test, scores))
    pr = AnomalyPrecisionRecallDisplay.from_predictions(y_test.astype(bool), scores)
    assert pr.average_precision == pytest.approx(aupr(y_test, scores))
    with pytest.raises(ValueError, match="look like predict"):
        AnomalyRocCurveDisplay.from_predictions(np.where(y_test == 1, -1, 1), scores)
    with pytest.raises(TypeError, match="pos_label is always 1"):
        AnomalyPrecisionRecallDisplay.from_predictions(y_test, scores, pos_label=0)
    with pytest.raises(TypeError, match="no score_samples"):
        AnomalyRocCurveDisplay.from_estimator(object(), np.zeros((2, 2)), [0, 1])
    plt.close("all")
