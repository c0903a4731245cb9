"""Transformers from images to 2-D features.

- :class:`DeepFeaturizer` / :class:`ResNetFeaturizer`: multi-scale CNN
  features from any backbone (``patch_features`` gives the un-pooled maps).
- :class:`HandcraftedFeaturizer`: image statistics from
  :func:`compute_image_statistics` (shared with the exploration report).
- :class:`ImageLoader`: raw pixels; :class:`GrayscaleReducer`: drop colour
  when it carries nothing.

Dimension reduction is scikit-learn's: put :class:`sklearn.decomposition.PCA`
after any featurizer, e.g. ``make_pipeline(ImageLoader(image_size=64),
PCA(n_components=50), OneClassSVM())``.

torch is imported only when a deep featurizer is first asked for, so that the
hand-crafted features (and the exploration report built on them) start fast.
"""

from typing import TYPE_CHECKING

from mvtec_sklearn.utils import lazy_attributes

from ._handcrafted import (
    FEATURE_GROUPS,
    HandcraftedFeaturizer,
    compute_image_statistics,
    image_statistic_names,
    luminance,
)
from ._preprocessing import GrayscaleReducer, ImageLoader

if TYPE_CHECKING:
    from ._deep import DeepFeaturizer, ResNetFeaturizer

__all__ = [
    "FEATURE_GROUPS",
    "DeepFeaturizer",
    "GrayscaleReducer",
    "HandcraftedFeaturizer",
    "ImageLoader",
    "ResNetFeaturizer",
    "compute_image_statistics",
    "image_statistic_names",
    "luminance",
]


__getattr__, __dir__ = lazy_attributes(
    __name__, {"DeepFeaturizer": "_deep", "ResNetFeaturizer": "_deep"}
)
