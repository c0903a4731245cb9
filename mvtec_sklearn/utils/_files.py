"""Safe file output: atomic writes, the "never inside the dataset" guard, stale temporaries.

Every file the package writes (results, caches, reports, figures, models)
goes through :func:`atomic_write` or :func:`atomic_path`: the content is
written to a temporary file in the destination folder and renamed over the
destination with :func:`os.replace`, so a reader sees the old file or the
new one, never a partial one, whatever moment the writer is killed at.
Every output folder is checked with :func:`check_outside_dataset` first.
:func:`file_signature` is what caches record of the files they were
computed from.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "atomic_path",
    "atomic_write",
    "check_outside_dataset",
    "file_signature",
    "remove_stale_temporaries",
    "safe_filename",
    "TMP_PREFIX",
]

#: Prefix of the temporary files :func:`atomic_write` creates (``.tmp-<pid>-<random>``).
TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path that replaces ``path`` only when the block succeeds.

    For writers that take a file name (``joblib.dump``, ``torch.jit.save``,
    ONNX export): the temporary file lies in the folder of ``path`` (created
    if needed) and is named ``.tmp-<pid>-...`` so that
    :func:`remove_stale_temporaries` can tell abandoned ones from those of a
    live writer. On an exception the temporary file is removed and ``path``
    is left as it was.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.

    Yields
    ------
    str
        The temporary file (it exists, empty; it keeps the suffix of
        ``path``, from which some writers pick the format).

    See Also
    --------
    atomic_write : The same, yielding an open file.

    Examples
    --------
    >>> import os, tempfile
    >>> from mvtec_sklearn.utils import atomic_path
    >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_path(path) as tmp:
    ...     _ = open(tmp, "w").write("done")
    >>> open(path).read(), sorted(os.listdir(os.path.dirname(path)))
    ('done', ['out.txt'])
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str], mode: str = "wb", encoding: str | None = None
) -> Iterator[Any]:
    """Open a temporary file that replaces ``path`` only when the block succeeds.

    The file is an :func:`atomic_path` temporary, flushed and fsync-ed before
    the rename.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    mode : {"wb", "w"}, default="wb"
        Binary or text.
    encoding : str or None, default=None
        Text encoding (text mode only; None means UTF-8).

    Yields
    ------
    file object
        Open for writing; flushed and fsync-ed before the rename.

    Examples
    --------
    >>> import os, tempfile
    >>> from mvtec_sklearn.utils import atomic_write
    >>> path = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_write(path, "w") as fh:
    ...     _ = fh.write("done")
    >>> open(path).read(), sorted(os.listdir(os.path.dirname(path)))
    ('done', ['out.txt'])
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}.")
    with atomic_path(path) as tmp:
        opened = (
            open(tmp, "w", encoding=encoding or "utf-8", newline="")  # noqa: SIM115
            if mode == "w"
            else open(tmp, "wb")  # noqa: SIM115
        )
        with opened as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def file_signature(path: str | os.PathLike[str]) -> str:
    """``"<absolute path>|<mtime in ns>|<size>"``: what cache keys record of a source file.

    An edited, replaced or moved file gets another signature.

    Parameters
    ----------
    path : str or os.PathLike
        An existing file.

    Returns
    -------
    str

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.

    Examples
    --------
    >>> import os, tempfile
    >>> from mvtec_sklearn.utils import file_signature
    >>> path = os.path.join(tempfile.mkdtemp(), "a.txt")
    >>> _ = open(path, "w").write("abc")
    >>> file_signature(path).endswith("|3")
    True
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"File not found: {os.fspath(path)!r}")
    st = os.stat(path)
    return f"{os.path.abspath(path)}|{st.st_mtime_ns}|{st.st_size}"


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process: assume it is alive
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str], max_age: float = 3600.0) -> list[str]:
    """Delete temporaries left in ``folder`` by writers that were killed.

    A file named by :func:`atomic_write` (``.tmp-<pid>-...``) is stale when
    its process no longer runs, or when it is older than ``max_age`` seconds
    (the process id may have been reused, or it came from another machine).

    Parameters
    ----------
    folder : str or os.PathLike
        Folder to clean (not recursive); a missing folder is fine.
    max_age : float, default=3600.0
        Age in seconds after which any temporary is stale.

    Returns
    -------
    removed : list of str
        The files deleted.

    Examples
    --------
    >>> import os, tempfile
    >>> from mvtec_sklearn.utils import remove_stale_temporaries
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, ".tmp-999999999-x.npz"), "w").close()
    >>> [os.path.basename(p) for p in remove_stale_temporaries(folder)]
    ['.tmp-999999999-x.npz']
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return []
    removed = []
    now = time.time()
    for name in os.listdir(folder):
        if not name.startswith(TMP_PREFIX):
            continue
        path = os.path.join(folder, name)
        pid_text = name[len(TMP_PREFIX):].split("-", 1)[0]
        try:
            stale = not pid_text.isdigit() or not _pid_alive(int(pid_text))
            stale = stale or now - os.path.getmtime(path) > max_age
            if stale and os.path.isfile(path):
                os.remove(path)
                removed.append(path)
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            continue
    return removed


def _dataset_folders(root: str | os.PathLike[str]) -> list[str]:
    """Real paths of ``root`` and of every folder directly below it (symlinked categories)."""
    real_root = os.path.realpath(root)
    folders = [real_root]
    with contextlib.suppress(OSError):
        for entry in os.scandir(real_root):
            if entry.is_dir():  # follows symlinks
                folders.append(os.path.realpath(entry.path))
    return folders


def check_outside_dataset(
    path: str | os.PathLike[str], root: str | os.PathLike[str] | None, what: str = "output"
) -> str:
    """Refuse an output location inside the dataset folder ``root``.

    Both paths are resolved with :func:`os.path.realpath`, and the real
    location of every folder directly below ``root`` is checked too, so a
    category that is a symbolic link to another disk is protected as well.

    Parameters
    ----------
    path : str or os.PathLike
        Where something would be written (need not exist yet).
    root : str or os.PathLike or None
        The dataset folder; None checks nothing.
    what : str, default="output"
        Name of the argument, used in the error message.

    Returns
    -------
    path : str
        ``path`` as an absolute path.

    Raises
    ------
    ValueError
        If ``path`` is ``root``, or lies inside it or inside one of its
        (possibly symlinked) sub-folders.

    Examples
    --------
    >>> import os, tempfile
    >>> from mvtec_sklearn.utils import check_outside_dataset
    >>> root = tempfile.mkdtemp()
    >>> try:
    ...     check_outside_dataset(os.path.join(root, "out"), root, what="out")
    ... except ValueError as exc:
    ...     print("refused")
    refused
    """
    absolute = os.path.abspath(os.fspath(path))
    if root is None:
        return absolute
    real = os.path.join(os.path.realpath(absolute), "")
    for folder in _dataset_folders(root):
        if real.startswith(os.path.join(folder, "")):
            raise ValueError(
                f"{what} {os.fspath(path)!r} lies inside the dataset folder "
                f"{os.fspath(root)!r}; the dataset folder is never written to."
            )
    return absolute


def safe_filename(text: object) -> str:
    """A file-name-safe version of ``text``, distinct for distinct texts.

    A name made of letters, digits, ``.``, ``_`` and ``-`` is kept as it is;
    any other text has its unsafe runs replaced by ``_`` and a short hash of
    the original appended, so ``"cat a"`` and ``"cat_a"`` never share a file.

    Parameters
    ----------
    text : object
        Converted with :class:`str`.

    Returns
    -------
    str

    Examples
    --------
    >>> from mvtec_sklearn.utils import safe_filename
    >>> safe_filename("cat_a"), safe_filename("cat a") == safe_filename("cat_a")
    ('cat_a', False)
    """
    text = str(text)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.") or "_"
    if safe != text:
        safe = f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
    return safe
