"""Shared helpers: torch device and seeding, progress bars, safe file output, input tags."""

from ._estimator import ImageEstimatorMixin
from ._files import atomic_write, check_outside_dataset, remove_stale_temporaries, safe_filename
from ._progress import progress
from ._torch import (
    as_numpy,
    resolve_device,
    seed_from_random_state,
    torch_generator,
    torch_threads,
)

__all__ = [
    "ImageEstimatorMixin",
    "as_numpy",
    "atomic_write",
    "check_outside_dataset",
    "progress",
    "remove_stale_temporaries",
    "resolve_device",
    "safe_filename",
    "seed_from_random_state",
    "torch_generator",
    "torch_threads",
]
