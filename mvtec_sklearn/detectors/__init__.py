"""Outlier detectors following scikit-learn's score convention.

Each detector's module is imported when the detector is first asked for, so
that importing this subpackage does not import torch.
"""

from typing import TYPE_CHECKING

from mvtec_sklearn.utils import lazy_attributes

if TYPE_CHECKING:
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

#: Public name -> private module that defines it.
_MODULES = {
    "AutoencoderDetector": "_autoencoder",
    "FeatureAutoencoderDetector": "_autoencoder",
    "FeatureMapAutoencoderDetector": "_autoencoder",
    "FeatureVAEDetector": "_vae",
    "GANDetector": "_gan",
    "KNNDetector": "_knn",
    "PaDiMDetector": "_padim",
    "PatchCoreDetector": "_patchcore",
    "PyODDetector": "_pyod",
    "TransformerDetector": "_transformer",
    "VAEDetector": "_vae",
}

__all__ = sorted(_MODULES)

__getattr__, __dir__ = lazy_attributes(__name__, _MODULES)
