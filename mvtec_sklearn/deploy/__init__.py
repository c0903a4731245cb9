"""Deploying a detector: save and load with metadata, score new images, export.

Nothing here imports torch until it is needed.
"""

from ._export import export_onnx, export_torchscript
from ._exported import ExportedDetector
from ._model_file import MODEL_FORMAT, load_model, model_thresholds, save_model, training_signature
from ._predict import SCORE_COLUMNS, overlay_heatmap, predict_images

__all__ = [
    "ExportedDetector",
    "MODEL_FORMAT",
    "SCORE_COLUMNS",
    "export_onnx",
    "export_torchscript",
    "load_model",
    "model_thresholds",
    "overlay_heatmap",
    "predict_images",
    "save_model",
    "training_signature",
]
