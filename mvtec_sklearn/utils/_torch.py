"""Small torch helpers shared by every torch-backed estimator."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["resolve_device", "torch_generator", "seed_from_random_state"]


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


def as_numpy(tensor: torch.Tensor) -> np.ndarray:
    """Detach a tensor to a float numpy array on the CPU."""
    return tensor.detach().float().cpu().numpy()
