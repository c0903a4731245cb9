"""Methods of a meta-estimator that hand a call on to its fitted ``estimator_``."""

from __future__ import annotations

import numpy as np
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

__all__ = ["delegated_method", "estimator_has"]

_DOC = """{summary}

Parameters
----------
X : array-like or sequence of paths
    {what}.

Returns
-------
{returns}
"""


def estimator_has(name):
    """``available_if`` check: the fitted estimator, else the unfitted one, has ``name``.

    Parameters
    ----------
    name : str
        Method name.

    Returns
    -------
    callable
        ``check(meta_estimator) -> bool``.
    """

    def check(self):
        return hasattr(getattr(self, "estimator_", self.estimator), name)

    return check


def delegated_method(name, summary, returns, what="Samples", dtype=None):
    """A method ``name(self, X)`` that returns ``self.estimator_.<name>(X)``.

    The method exists only when the estimator has ``name``
    (:func:`~sklearn.utils.metaestimators.available_if`) and raises
    ``NotFittedError`` before ``fit``.

    Parameters
    ----------
    name : str
        Name of the estimator's method, and of the new one.
    summary : str
        First line of the docstring.
    returns : str
        The numpydoc ``Returns`` section's body.
    what : str, default="Samples"
        Description of ``X``.
    dtype : numpy dtype or None, default=None
        Convert the result to an array of this dtype; None returns it as is.

    Returns
    -------
    descriptor
        To assign to the class attribute ``name``.
    """

    def method(self, X):
        check_is_fitted(self)
        out = getattr(self.estimator_, name)(X)
        return out if dtype is None else np.asarray(out, dtype=dtype)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = _DOC.format(summary=summary, what=what, returns=returns)
    return available_if(estimator_has(name))(method)
