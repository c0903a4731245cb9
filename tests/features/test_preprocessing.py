"""Tests of ImageLoader and GrayscaleReducer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.pipeline import make_pipeline

from mvtec_sklearn.datasets import load_images, read_image
from mvtec_sklearn.features import GrayscaleReducer, ImageLoader
from tests.conformance import check_image_estimator


@pytest.fixture(scope="module")
def arrays(image_paths):
    return np.stack([read_image(p) for p in image_paths])


def test_image_loader_shapes_and_names(image_paths, arrays):
    loader = ImageLoader(image_size=8).fit(image_paths)
    out = loader.transform(image_paths)
    assert out.shape == (8, 8 * 8 * 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, load_images(arrays, size=8).reshape(8, -1))
    names = loader.get_feature_names_out()
    assert len(names) == loader.n_features_out_
    assert names[0] == "pixel_0_0_0" and names[4] == "pixel_0_1_1"
    images = ImageLoader(image_size=(6, 10), flatten=False).fit(arrays).transform(arrays)
    np.testing.assert_array_equal(images, load_images(arrays, size=(6, 10)))


def test_image_loader_channels(arrays):
    gray = ImageLoader(image_size=None, channels=1).fit(arrays)
    assert gray.image_shape_ == (32, 32, 1)
    np.testing.assert_allclose(
        gray.transform(arrays).reshape(8, 32, 32),
        (arrays.astype(np.float32) / 255) @ np.float32([0.299, 0.587, 0.114]), rtol=1e-5,
    )
    keep_gray = ImageLoader(image_size=16).fit(arrays[..., 0])
    assert keep_gray.image_shape_ == (16, 16, 1)
    # a colour image given to a loader fitted on gray images still yields the fitted width
    assert keep_gray.transform(arrays).shape == (8, 256)
    rgb_loader = ImageLoader(image_size=16, channels=3).fit(arrays[..., 0])
    assert rgb_loader.transform(arrays[..., 0]).shape == (8, 768)
    with pytest.raises(ValueError, match="channels"):
        ImageLoader(channels=2).fit(arrays)


def test_image_loader_pca_pipeline_and_pandas(arrays):
    pipe = make_pipeline(ImageLoader(image_size=8), PCA(n_components=3)).fit(arrays)
    assert pipe.transform(arrays).shape == (8, 3)
    frame = ImageLoader(image_size=4).set_output(transform="pandas").fit(arrays).transform(arrays)
    assert isinstance(frame, pd.DataFrame) and frame.shape == (8, 48)


def test_grayscale_reducer_auto(arrays):
    gray_rgb = np.repeat(arrays[..., :1], 3, axis=-1)
    reducer = GrayscaleReducer().fit(gray_rgb)
    assert reducer.reduce_ and reducer.channel_difference_ == 0
    np.testing.assert_allclose(reducer.transform(gray_rgb)[..., 0], arrays[..., 0] / 255, rtol=1e-5)
    colour = GrayscaleReducer().fit(arrays)
    assert not colour.reduce_ and colour.channel_difference_ > 0.5
    assert colour.transform(arrays).shape == (8, 32, 32, 3)
    # small differences (e.g. JPEG noise) are within tol
    noisy = gray_rgb.copy()
    noisy[..., 2] = np.clip(noisy[..., 2].astype(int) + 1, 0, 255)
    assert GrayscaleReducer(tol=2 / 255).fit(noisy).reduce_
    assert not GrayscaleReducer(tol=0.5 / 255).fit(noisy).reduce_


def test_grayscale_reducer_modes(arrays):
    assert GrayscaleReducer(mode="always").fit(arrays).transform(arrays).shape == (8, 32, 32, 1)
    never = GrayscaleReducer(mode="never").fit(arrays[..., 0])
    assert never.transform(arrays[..., 0]).shape == (8, 32, 32, 3)
    flat = GrayscaleReducer(mode="always", flatten=True).fit(arrays)
    assert flat.transform(arrays).shape == (8, 1024) and len(flat.get_feature_names_out()) == 1024
    with pytest.raises(ValueError, match="resize"):
        flat.transform(arrays[:, :16, :16])


def test_loader_reducer_pca_pipeline(image_paths):
    pipe = make_pipeline(
        ImageLoader(image_size=16, flatten=False), GrayscaleReducer(mode="always", flatten=True),
        PCA(n_components=2),
    )
    assert pipe.fit_transform(image_paths).shape == (8, 2)


@pytest.mark.parametrize("estimator", [ImageLoader(image_size=16), GrayscaleReducer()],
                         ids=["ImageLoader", "GrayscaleReducer"])
def test_conformance(image_paths, estimator):
    check_image_estimator(estimator, image_paths)
