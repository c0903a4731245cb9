"""mvtec_sklearn: scikit-learn-compatible unsupervised visual anomaly detection.

Subpackages
-----------
datasets         MVTec AD reader, torch Dataset, cache, synthetic MVTec-format data
analysis         the dataset exploration report
features         image -> 2-D feature transformers (deep CNN, hand-crafted, loading)
detectors        outlier detectors (kNN, PyOD adapter, deep models, PatchCore, PaDiM)
metrics          image and pixel metrics, scorers for GridSearchCV
model_selection  normal-only cross-validation, calibrated decision thresholds
plotting         Display objects and benchmark figures
benchmark        every category x every model
deploy           save / load with metadata, scoring image folders, TorchScript / ONNX export
"""

__version__ = "0.1.0"
