"""The benchmark runner, model registry and report writer."""

from ._registry import resnet_weights
from ._report import write_report
from ._results import CI_METRICS, METRICS, RESULT_COLUMNS, load_results, load_scores
from ._runner import run_benchmark
from ._spec import MODEL_REGISTRY, ModelSpec, list_models, register_model

__all__ = [
    "CI_METRICS",
    "METRICS",
    "MODEL_REGISTRY",
    "ModelSpec",
    "RESULT_COLUMNS",
    "list_models",
    "load_results",
    "load_scores",
    "register_model",
    "resnet_weights",
    "run_benchmark",
    "write_report",
]
