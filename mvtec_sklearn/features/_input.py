"""Batch helpers over the output of :func:`mvtec_sklearn.datasets.check_image_input`."""

from __future__ import annotations

from mvtec_sklearn.datasets import check_image_input

__all__ = ["check_image_input", "image_slice", "n_images"]


def n_images(paths, array):
    """Number of images in the output of :func:`check_image_input`."""
    return len(paths) if paths is not None else array.shape[0]


def image_slice(paths, array, start, stop):
    """A slice of the images, in the form :func:`load_images` accepts."""
    return paths[start:stop] if paths is not None else array[start:stop]
