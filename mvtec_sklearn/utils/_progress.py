"""Progress bars (tqdm) that respect a ``verbose`` parameter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["progress"]


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    verbose: bool | int = False,
    total: int | None = None,
    desc: str | None = None,
    leave: bool = False,
    **kwargs: Any,
) -> Any:
    """Wrap ``iterable`` in a tqdm bar when ``verbose`` is truthy.

    Parameters
    ----------
    iterable : iterable or None
        What to iterate over.
    verbose : bool or int, default=False
        Show the bar when truthy.
    total, desc, leave, **kwargs
        Passed to :class:`tqdm.auto.tqdm`.

    Returns
    -------
    iterable or tqdm
        ``iterable`` itself (or a disabled bar) when not verbose.

    Examples
    --------
    >>> from mvtec_sklearn.utils import progress
    >>> list(progress(range(3)))
    [0, 1, 2]
    """
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=leave, disable=not verbose, **kwargs)
