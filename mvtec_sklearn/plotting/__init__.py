"""Display objects and benchmark figures.

:class:`AnomalyRocCurveDisplay` and :class:`AnomalyPrecisionRecallDisplay` are
scikit-learn's ROC and precision-recall displays for any detector or pipeline,
with the anomalous class positive; :class:`AnomalyMapDisplay` overlays anomaly
maps; the ``plot_*`` functions draw benchmark results.
"""

from ._anomaly_map import AnomalyMapDisplay, plot_anomaly_grid
from ._benchmark import plot_mean_ranks, plot_model_bars, plot_roc_curves, plot_score_heatmap
from ._roc import AnomalyPrecisionRecallDisplay, AnomalyRocCurveDisplay

__all__ = [
    "AnomalyMapDisplay",
    "AnomalyPrecisionRecallDisplay",
    "AnomalyRocCurveDisplay",
    "plot_anomaly_grid",
    "plot_mean_ranks",
    "plot_model_bars",
    "plot_roc_curves",
    "plot_score_heatmap",
]
