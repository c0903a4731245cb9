"""torch_threads: a block with a fixed number of torch CPU threads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mvtec_sklearn.datasets import load_images
from mvtec_sklearn.utils import torch_threads


def test_sets_and_restores_even_on_error():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with torch_threads(1, enabled=False):
        assert torch.get_num_threads() == before


def test_resizing_images_leaves_the_thread_count_alone():
    before = torch.get_num_threads()
    images = np.random.default_rng(0).integers(0, 256, (3, 40, 40, 3), dtype=np.uint8)
    assert load_images(images, size=32, channels=3).shape == (3, 32, 32, 3)
    assert torch.get_num_threads() == before
