"""The base of the image transformers and the batch helpers."""

from __future__ import annotations

from numbers import Integral

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import Interval, InvalidParameterError

from mvtec_sklearn.features._input import ImageTransformer, image_slice, image_source, n_images


class _Sizes(ImageTransformer):
    """``k`` zero features per image; remembers what ``fit`` was handed."""

    _parameter_constraints: dict = {"k": [Interval(Integral, 1, None, closed="left")]}

    def __init__(self, k=1):
        self.k = k

    def _fit(self, paths, array):
        self.seen_ = (paths, None if array is None else array.shape)

    def _feature_names(self):
        return [f"f{i}" for i in range(self.k)]

    def _transform(self, paths, array):
        self.handed_ = (paths, None if array is None else array.shape)
        return np.zeros((n_images(paths, array), self.k))


def test_fit_validates_params_and_input_then_hands_over_paths_or_array(tmp_path):
    images = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    est = _Sizes(k=2)
    assert est.fit(images) is est
    assert est.seen_ == (None, (2, 4, 4, 3))
    paths = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    for path in paths:
        open(path, "wb").close()
    assert _Sizes().fit(paths).seen_ == (paths, None)
    with pytest.raises(FileNotFoundError):
        _Sizes().fit([str(tmp_path / "missing.png")])
    with pytest.raises(InvalidParameterError, match="'k' parameter"):
        _Sizes(k=0).fit(images)
    with pytest.raises(ValueError):
        _Sizes().fit(np.zeros((2, 3)))


def test_transform_checks_fitted_then_hands_over_the_validated_input(tmp_path):
    images = np.zeros((3, 4, 4, 3), dtype=np.uint8)
    est = _Sizes(k=2)
    with pytest.raises(NotFittedError):
        est.transform(images)
    assert est.fit(images).transform(images).shape == (3, 2)
    assert est.handed_ == (None, (3, 4, 4, 3))
    path = tmp_path / "a.png"
    path.touch()
    est.transform([path])
    assert est.handed_ == ([str(path)], None)
    with pytest.raises(FileNotFoundError):
        est.transform([str(tmp_path / "missing.png")])
    with pytest.raises(ValueError):
        est.transform(np.zeros((2, 3)))
    frame = est.set_output(transform="pandas").transform(images)
    assert frame.columns.tolist() == ["f0", "f1"]


def test_feature_names_are_an_object_array_after_fit():
    est = _Sizes(k=3)
    with pytest.raises(Exception, match="not fitted"):
        est.get_feature_names_out()
    names = est.fit(np.zeros((1, 4, 4, 3))).get_feature_names_out()
    assert names.dtype == object and names.tolist() == ["f0", "f1", "f2"]
    assert est.__sklearn_tags__().input_tags.two_d_array is False


def test_batch_helpers_on_paths_and_arrays():
    array = np.arange(5)[:, None, None] * np.ones((5, 2, 2))
    assert n_images(None, array) == 5 and n_images(["a", "b"], None) == 2
    assert image_slice(None, array, 1, 3).shape == (2, 2, 2)
    assert image_slice(["a", "b", "c"], None, 1, 3) == ["b", "c"]
    assert image_source(None, array) is array and image_source(["a"], None) == ["a"]
