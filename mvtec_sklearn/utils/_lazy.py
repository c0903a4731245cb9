"""Names of a package imported from their modules on first use (PEP 562)."""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["lazy_attributes"]


def lazy_attributes(
    package: str, modules: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` that import each name's module when asked.

    A package that re-exports names from a heavy private module (one that
    imports torch) this way stays cheap to import: the module is imported the
    first time one of its names is looked up.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    modules : mapping of str to str
        Public name -> private module of ``package`` that defines it
        (``"_deep"`` for ``package._deep``).

    Returns
    -------
    __getattr__ : callable
        Imports the module of a name in ``modules``; raises
        :class:`AttributeError` for any other name.
    __dir__ : callable
        The package's names, the lazy ones included.

    Examples
    --------
    >>> from mvtec_sklearn.utils import lazy_attributes
    >>> getattr_, dir_ = lazy_attributes("os", {"join": "path"})
    >>> getattr_("join").__module__ in ("posixpath", "ntpath"), "join" in dir_()
    (True, True)
    """

    def __getattr__(name: str) -> Any:
        if name in modules:
            return getattr(importlib.import_module(f".{modules[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        module = sys.modules[package]
        return sorted(set(vars(module)) | set(getattr(module, "__all__", ())) | set(modules))

    return __getattr__, __dir__
