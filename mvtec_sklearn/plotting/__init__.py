"""Display objects and benchmark figures."""

from ._anomaly_map import AnomalyMapDisplay, plot_anomaly_grid
from ._benchmark import plot_mean_ranks, plot_model_bars, plot_roc_curves, plot_score_heatmap

__all__ = [
    "AnomalyMapDisplay",
    "plot_anomaly_grid",
    "plot_mean_ranks",
    "plot_model_bars",
    "plot_roc_curves",
    "plot_score_heatmap",
]
