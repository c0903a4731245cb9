"""Image and pixel metrics, scorers for GridSearchCV."""

from ._delong import delong_test
from ._image import aupr, f1_max, image_auroc, precision_recall_at, select_threshold
from ._pixel import aupro, pixel_auroc
from ._scorers import (
    SCORERS,
    anomaly_scores,
    get_scorer,
    get_scorer_names,
    make_anomaly_scorer,
    warn_if_inverted_scoring,
)
from ._statistics import (
    ConfidenceInterval,
    PairedTestResult,
    bootstrap_ci,
    paired_bootstrap_test,
    per_defect_type_auroc,
)

__all__ = [
    "ConfidenceInterval",
    "PairedTestResult",
    "SCORERS",
    "anomaly_scores",
    "aupr",
    "aupro",
    "bootstrap_ci",
    "delong_test",
    "f1_max",
    "get_scorer",
    "get_scorer_names",
    "image_auroc",
    "make_anomaly_scorer",
    "paired_bootstrap_test",
    "per_defect_type_auroc",
    "pixel_auroc",
    "precision_recall_at",
    "select_threshold",
    "warn_if_inverted_scoring",
]
