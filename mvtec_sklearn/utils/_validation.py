"""Checks of parameter values that scikit-learn's constraints do not express."""

from __future__ import annotations

from numbers import Integral
from typing import Any

__all__ = ["check_size_pair"]


def check_size_pair(size: Any, name: str = "size") -> tuple[int, int]:
    """An image size given as an int or a pair of ints, as ``(height, width)``.

    Parameters
    ----------
    size : int or (int, int)
        A scalar gives a square; numpy integers are accepted.
    name : str, default="size"
        Name of the argument, used in the error message.

    Returns
    -------
    (int, int)
        Height and width as Python ints.

    Raises
    ------
    ValueError
        If ``size`` is not a positive int or a pair of positive ints.

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.utils import check_size_pair
    >>> check_size_pair(64), check_size_pair((np.int64(48), 64))
    ((64, 64), (48, 64))
    """
    pair = (size, size) if isinstance(size, Integral) else size
    try:
        pair = tuple(pair)
    except TypeError:
        pair = ()
    if len(pair) != 2 or not all(
        isinstance(v, Integral) and not isinstance(v, bool) and int(v) > 0 for v in pair
    ):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {size!r}.")
    return int(pair[0]), int(pair[1])
