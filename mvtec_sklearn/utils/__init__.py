"""Shared helpers: torch device and seeding, progress bars, safe file output, lazy imports, input tags."""

from ._allocator import tune_cpu_allocator
from ._estimator import ImageEstimatorMixin
from ._files import (
    atomic_path,
    atomic_write,
    check_outside_dataset,
    file_signature,
    remove_stale_temporaries,
    safe_filename,
)
from ._lazy import lazy_attributes
from ._progress import progress
from ._torch import resolve_device, seed_from_random_state, torch_generator, torch_threads
from ._validation import check_size_pair

__all__ = [
    "ImageEstimatorMixin",
    "atomic_path",
    "atomic_write",
    "check_outside_dataset",
    "check_size_pair",
    "file_signature",
    "lazy_attributes",
    "progress",
    "remove_stale_temporaries",
    "resolve_device",
    "safe_filename",
    "seed_from_random_state",
    "torch_generator",
    "torch_threads",
    "tune_cpu_allocator",
]
