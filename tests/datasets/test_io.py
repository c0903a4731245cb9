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
