"""The image files under folders."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mvtec_sklearn.datasets import IMAGE_EXTENSIONS

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["collect_images"]


def collect_images(inputs: Sequence[str | os.PathLike[str]]) -> list[tuple[str, str]]:
    """Image files named by ``inputs`` (files, or folders searched recursively).

    Returns
    -------
    list of (path, name)
        ``name`` is the path relative to the folder it was found in (the file
        name for files given directly), used to name the outputs. Sorted per
        input, inputs in order; duplicates are dropped.

    Raises
    ------
    FileNotFoundError
        If an input does not exist, or no image file is found.
    """
    found: list[tuple[str, str]] = []
    seen = set()
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            entries = []
            for dirpath, dirnames, filenames in os.walk(item):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                entries += [os.path.join(dirpath, f) for f in filenames
                            if f.lower().endswith(IMAGE_EXTENSIONS) and not f.startswith(".")]
            pairs = [(p, os.path.relpath(p, item)) for p in sorted(entries)]
        elif os.path.isfile(item):
            pairs = [(item, os.path.basename(item))]
        else:
            raise FileNotFoundError(f"No such file or folder: {item!r}.")
        for path, name in pairs:
            key = os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                found.append((path, name))
    if not found:
        raise FileNotFoundError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) found in {[os.fspath(i) for i in inputs]}."
        )
    return found
