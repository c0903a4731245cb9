"""lazy_attributes and check_size_pair."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from mvtec_sklearn.utils import check_size_pair, lazy_attributes


def test_lazy_attributes_import_on_first_use(monkeypatch):
    package = types.ModuleType("fake_pkg")
    package.__path__ = []  # a package, so that ".heavy" is relative to it
    package.__all__ = ["Heavy", "light"]
    package.light = 1
    heavy = types.ModuleType("fake_pkg._heavy")
    heavy.Heavy = object()
    imported = []

    def fake_import(name, pkg):
        imported.append((name, pkg))
        return heavy

    monkeypatch.setitem(sys.modules, "fake_pkg", package)
    monkeypatch.setattr("importlib.import_module", fake_import)
    getattr_, dir_ = lazy_attributes("fake_pkg", {"Heavy": "_heavy"})
    assert imported == []
    assert getattr_("Heavy") is heavy.Heavy
    assert imported == [("._heavy", "fake_pkg")]
    with pytest.raises(AttributeError, match="module 'fake_pkg' has no attribute 'Nope'"):
        getattr_("Nope")
    assert {"Heavy", "light", "__all__"} <= set(dir_())
    assert dir_() == sorted(dir_())


def test_subpackages_resolve_their_lazy_names():
    import mvtec_sklearn.datasets as datasets

    assert datasets.MVTecDataset.__module__ == "mvtec_sklearn.datasets._torch_dataset"
    assert {"MVTecDataset", "collate_with_provenance", "load_mvtec"} <= set(dir(datasets))


@pytest.mark.parametrize(
    ("size", "expected"),
    [(64, (64, 64)), (np.int64(8), (8, 8)), ((48, 64), (48, 64)), ([np.int32(3), 5], (3, 5))],
)
def test_check_size_pair(size, expected):
    pair = check_size_pair(size)
    assert pair == expected and all(type(v) is int for v in pair)


@pytest.mark.parametrize("size", [0, -1, (4, 0), (4,), (1, 2, 3), 4.0, (4.0, 4), "64", True, None])
def test_check_size_pair_rejects(size):
    with pytest.raises(ValueError, match=r"^crop_size must be a positive int or a pair"):
        check_size_pair(size, "crop_size")
