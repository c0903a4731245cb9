"""The image readers' errors and argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mvtec_sklearn.datasets import load_images, load_mvtec, read_image, read_image_size, read_mask


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((6, 4), np.uint8)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    truncated = tmp_path / "truncated.png"
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    Image.fromarray(noise).save(truncated)  # incompressible: cutting it loses pixel data
    truncated.write_bytes(truncated.read_bytes()[:2000])
    return good, bad, truncated, tmp_path / "missing.png"


@pytest.mark.parametrize("reader", [read_image, read_image_size, read_mask])
def test_readers_name_the_file_they_cannot_read(files, reader):
    good, bad, truncated, missing = files
    assert reader(good) is not None
    for broken in (bad, truncated) if reader is not read_image_size else (bad,):
        with pytest.raises(ValueError, match=rf"^Cannot decode (image|mask) file .*{broken.name}"):
            reader(broken)
    with pytest.raises(FileNotFoundError, match=r"^Image file not found: .*missing\.png"):
        reader(missing)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda good: read_image(good, mode="CMYK"), "mode"),
        (lambda good: read_image(good, resample="lanczos"), "resample"),
        (lambda good: load_images([good], channels=2), "channels"),
        (lambda good: load_mvtec(good.parent, "x", split="val"), "split"),
    ],
)
def test_bad_arguments_are_named(files, call, name):
    with pytest.raises(ValueError, match=rf"The '{name}' parameter of \w+ must be"):
        call(files[0])


@pytest.mark.parametrize("order", ["gray_first", "colour_first"])
def test_load_images_of_mixed_grayscale_and_colour_files_is_rgb_in_file_order(tmp_path, order):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    colour = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    Image.fromarray(colour).save(tmp_path / "c.png")
    names = ["g", "c", "g"] if order == "gray_first" else ["c", "g", "g"]
    expected = {"g": np.repeat(gray[..., None], 3, axis=-1), "c": colour}
    out = load_images([tmp_path / f"{n}.png" for n in names])
    assert out.shape == (3, 5, 7, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out * 255, np.stack([expected[n] for n in names]), atol=1e-3)
    resized = load_images([tmp_path / f"{n}.png" for n in names], size=(4, 6))
    np.testing.assert_allclose(resized, load_images(np.stack([expected[n] for n in names]),
                                                    size=(4, 6)), atol=1e-6)
