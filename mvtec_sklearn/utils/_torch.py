"""Small torch helpers shared by every torch-backed estimator."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator

    import torch

__all__ = ["resolve_device", "torch_generator", "seed_from_random_state", "torch_threads"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a ``device`` parameter into a :class:`torch.device`.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device
        ``"auto"`` picks CUDA when it is available, else the CPU.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        For an unknown device string, or CUDA asked for where none is.

    Examples
    --------
    >>> from mvtec_sklearn.utils import resolve_device
    >>> resolve_device("cpu").type
    'cpu'
    """
    import torch

    if isinstance(device, torch.device):
        dev = device
    elif device == "auto" or device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"Unknown device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available; use device='cpu' "
            "or device='auto'."
        )
    return dev


def seed_from_random_state(random_state: int | np.random.RandomState | None) -> int:
    """Draw a 31-bit integer seed from a scikit-learn ``random_state``."""
    from sklearn.utils import check_random_state

    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def torch_generator(
    random_state: int | np.random.RandomState | None, device: str | torch.device = "cpu"
) -> torch.Generator:
    """A seeded :class:`torch.Generator` from a scikit-learn ``random_state``."""
    import torch

    gen = torch.Generator(device=device)
    gen.manual_seed(seed_from_random_state(random_state))
    return gen


@contextlib.contextmanager
def torch_threads(n_threads: int, enabled: bool = True) -> Iterator[None]:
    """Run the block with ``n_threads`` torch intra-op CPU threads, then restore.

    For chains of small operations (per-image resizes, the greedy coreset
    loop) the thread pool adds only wake-up latency, which is severe on a
    busy machine: resizing 256 px images to 224 px one plane at a time took
    71 ms per image with 2 threads and 3 ms with 1 on a loaded 2-core machine.

    Parameters
    ----------
    n_threads : int
        Threads inside the block.
    enabled : bool, default=True
        False leaves the setting alone (for blocks that run on a GPU, or
        that may resize nothing); torch is then not even imported.

    Examples
    --------
    >>> import torch
    >>> from mvtec_sklearn.utils import torch_threads
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if not enabled:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
