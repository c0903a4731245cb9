"""Fixtures of the benchmark tests: a tiny synthetic dataset and temporary registry entries."""

import pytest

from mvtec_sklearn.benchmark import MODEL_REGISTRY, register_model


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """Two categories (RGB and grayscale), 32 px, 6 train / 3 good + 4 defective test images."""
    from mvtec_sklearn.datasets import make_mvtec_like

    root = tmp_path_factory.mktemp("tiny_mvtec")
    make_mvtec_like(
        root,
        categories=["bottle", "grid"],
        n_train=6,
        n_test_good=3,
        n_test_defect=4,
        image_size=32,
        random_state=0,
    )
    return str(root)


@pytest.fixture
def temp_register():
    """``register_model`` that removes its entries after the test."""
    added = []

    def register(name, *args, **kwargs):
        spec = register_model(name, *args, **kwargs)
        added.append(name)
        return spec

    yield register
    for name in added:
        MODEL_REGISTRY.pop(name, None)
