"""The benchmark runner, model registry and report writer."""

from ._registry import MODEL_REGISTRY, ModelSpec, list_models, register_model, resnet_weights
from ._report import write_report
from ._runner import CI_METRICS, METRICS, RESULT_COLUMNS, load_results, load_scores, run_benchmark

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
