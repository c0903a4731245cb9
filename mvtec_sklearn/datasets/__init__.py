"""Reading MVTec AD, the torch Dataset, the cache and the synthetic generator."""

from ._io import load_images, read_image, read_mask

__all__ = ["load_images", "read_image", "read_mask"]
