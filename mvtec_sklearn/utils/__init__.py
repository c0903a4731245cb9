"""Shared helpers: torch device and seeding, progress bars."""

from ._progress import progress
from ._torch import as_numpy, resolve_device, seed_from_random_state, torch_generator

__all__ = ["as_numpy", "progress", "resolve_device", "seed_from_random_state", "torch_generator"]
