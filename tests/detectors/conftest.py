"""Fixtures of the detector tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests on one torch thread and restore the count afterwards.

    Tiny networks run fastest on one thread (and do not fight other tests).
    """
    import torch

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)
