"""The dataset exploration report: per-image statistics, per-category tables, plots.

Start from :func:`image_statistics` (one row per image, with provenance), summarise
with :func:`category_table`, draw with the ``plot_*`` functions, or write everything
at once with :func:`write_summary_report` (``mvtec-sklearn summary``).
"""

from ._frames import PROVENANCE_COLUMNS
from ._markdown import to_markdown
from ._plots import (
    group_categories,
    plot_channel_density,
    plot_correlation_heatmap,
    plot_defect_area_violin,
    plot_feature_scatter,
    plot_sample_grid,
)
from ._report import write_summary_report
from ._statistics import CHANNELS, MEASURE_COLUMNS, image_statistics
from ._tables import category_table, count_table, feature_table

__all__ = [
    "CHANNELS",
    "MEASURE_COLUMNS",
    "PROVENANCE_COLUMNS",
    "category_table",
    "count_table",
    "feature_table",
    "group_categories",
    "image_statistics",
    "plot_channel_density",
    "plot_correlation_heatmap",
    "plot_defect_area_violin",
    "plot_feature_scatter",
    "plot_sample_grid",
    "to_markdown",
    "write_summary_report",
]
