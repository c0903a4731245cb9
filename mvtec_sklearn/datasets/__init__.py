"""Reading MVTec AD, the torch Dataset, the cache, the rendered and real-photo generators
and pseudo-defects for threshold calibration."""

from typing import TYPE_CHECKING

from mvtec_sklearn.utils import lazy_attributes

from ._cache import CACHE_VERSION, DatasetCache, load_cache, save_cache
from ._io import (
    IMAGE_EXTENSIONS,
    check_image_input,
    is_path_sequence,
    load_images,
    read_image,
    read_image_size,
    read_mask,
)
from ._mvtec import (
    CATEGORIES,
    CATEGORY_GROUPS,
    OBJECT_CATEGORIES,
    TEXTURE_CATEGORIES,
    list_categories,
    load_masks,
    load_mvtec,
)
from ._photos import (
    PHOTO_CATEGORIES,
    PHOTO_GENERATOR_VERSION,
    make_mvtec_photos,
    photo_defect_types,
    photos_root,
)
from ._pseudo_defects import PSEUDO_DEFECT_RECIPES, pseudo_defects
from ._synthetic import GENERATOR_VERSION, make_mvtec_like, synthetic_defect_types, synthetic_root

if TYPE_CHECKING:
    from ._torch_dataset import MVTecDataset, collate_with_provenance

__all__ = [
    "CACHE_VERSION",
    "CATEGORIES",
    "CATEGORY_GROUPS",
    "DatasetCache",
    "GENERATOR_VERSION",
    "IMAGE_EXTENSIONS",
    "MVTecDataset",
    "OBJECT_CATEGORIES",
    "PHOTO_CATEGORIES",
    "PHOTO_GENERATOR_VERSION",
    "PSEUDO_DEFECT_RECIPES",
    "TEXTURE_CATEGORIES",
    "check_image_input",
    "collate_with_provenance",
    "is_path_sequence",
    "list_categories",
    "load_cache",
    "load_images",
    "load_masks",
    "load_mvtec",
    "make_mvtec_like",
    "make_mvtec_photos",
    "photo_defect_types",
    "photos_root",
    "pseudo_defects",
    "read_image",
    "read_image_size",
    "read_mask",
    "save_cache",
    "synthetic_defect_types",
    "synthetic_root",
]


# torch is imported only when the torch Dataset is asked for, so that
# reading, generating and analysing data (and joblib workers doing it)
# start without paying for the torch import.
__getattr__, __dir__ = lazy_attributes(
    __name__, {"MVTecDataset": "_torch_dataset", "collate_with_provenance": "_torch_dataset"}
)
