"""Markdown tables: :func:`to_markdown`, used by the exploration and the benchmark reports."""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd

__all__ = ["to_markdown"]


def _format_cell(value, decimals) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if value is None or (isinstance(value, (float, np.floating)) and not np.isfinite(value)):
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{value:,.{decimals}f}"
    if isinstance(value, (int, np.integer)):
        magnitude = cast("int | np.integer[Any]", abs(value))  # mypy infers object for the union
        return f"{value:,}" if magnitude >= 10000 else str(value)
    if not isinstance(value, str) and pd.isna(value):
        return "–"
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(
    table: pd.DataFrame,
    headers: dict[str, str] | None = None,
    decimals: dict[str, int] | int | None = None,
    index: bool = True,
) -> str:
    """Render a DataFrame as a GitHub-flavoured Markdown table.

    Parameters
    ----------
    table : DataFrame
        The table.
    headers : dict or None, default=None
        Column name -> header text.
    decimals : dict or int or None, default=None
        Decimals of float columns (per column name, or one int for all; default 2).
    index : bool, default=True
        Write the index as the first column.

    Returns
    -------
    markdown : str

    Examples
    --------
    >>> import pandas as pd
    >>> from mvtec_sklearn.analysis import to_markdown
    >>> print(to_markdown(pd.DataFrame({"x": [1.234]}, index=pd.Index(["a"], name="category"))))
    | category | x |
    |---|---:|
    | a | 1.23 |
    """
    headers = headers or {}
    frame = table.reset_index() if index else table
    columns = list(frame.columns)

    def ndec(col):
        if isinstance(decimals, int):
            return decimals
        return (decimals or {}).get(col, 2)

    numeric = [pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
               for c in columns]
    lines = ["| " + " | ".join(str(headers.get(c, c)) for c in columns) + " |",
             "|" + "|".join("---:" if num else "---" for num in numeric) + "|"]
    for row in frame.itertuples(index=False):
        cells = (_format_cell(v, ndec(c)) for c, v in zip(columns, row))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
