"""Outlier detectors following scikit-learn's score convention."""

from ._autoencoder import (
    AutoencoderDetector,
    FeatureAutoencoderDetector,
    FeatureMapAutoencoderDetector,
)
from ._gan import GANDetector
from ._knn import KNNDetector
from ._padim import PaDiMDetector
from ._patchcore import PatchCoreDetector
from ._pyod import PyODDetector
from ._transformer import TransformerDetector
from ._vae import FeatureVAEDetector, VAEDetector

__all__ = [
    "AutoencoderDetector",
    "FeatureAutoencoderDetector",
    "FeatureMapAutoencoderDetector",
    "FeatureVAEDetector",
    "GANDetector",
    "TransformerDetector",
    "VAEDetector",
    "KNNDetector", "PyODDetector",
    "PaDiMDetector",
    "PatchCoreDetector",
]
