"""The input-tag mixin of the image estimators."""

from __future__ import annotations

from sklearn.base import BaseEstimator, TransformerMixin

from mvtec_sklearn.utils import ImageEstimatorMixin


class _Images(ImageEstimatorMixin, TransformerMixin, BaseEstimator):
    pass


class _Tabular(TransformerMixin, BaseEstimator):
    pass


def test_image_estimator_mixin_turns_off_two_d_input_only():
    tags, plain = _Images().__sklearn_tags__(), _Tabular().__sklearn_tags__()
    assert plain.input_tags.two_d_array is True
    assert tags.input_tags.two_d_array is False
    # everything else is the other bases' tags
    assert tags.transformer_tags == plain.transformer_tags
    assert tags.input_tags.three_d_array == plain.input_tags.three_d_array
