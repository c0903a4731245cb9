"""Folding batch norms into convolutions: same outputs, and only where it is exact."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mvtec_sklearn.features._fusion import fuse_batch_norms


def with_statistics(module, seed=0):
    """``module`` in eval mode with random batch-norm statistics and affine parameters."""
    gen = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(torch.randn(c, generator=gen))
            m.running_var.copy_(torch.rand(c, generator=gen) + 0.1)
            m.weight.data.copy_(torch.randn(c, generator=gen))
            m.bias.data.copy_(torch.randn(c, generator=gen))
    return module.eval().requires_grad_(False)


class Residual(nn.Module):
    """The convolution's output is read twice: by the batch norm and by the sum."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y


class Stem(nn.Module):
    """conv -> bn -> relu, then a block whose batch norm reads a pooled tensor."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.block = nn.Sequential(nn.Conv2d(4, 4, 1), nn.MaxPool2d(2), nn.BatchNorm2d(4))

    def forward(self, x):
        return self.block(torch.relu(self.bn(self.conv(x))))


def outputs(model, x, names):
    modules = dict(model.named_modules())
    got = {}
    handles = [modules[n].register_forward_hook(
        lambda m, a, out, n=n: got.__setitem__(n, out)) for n in names]
    with torch.inference_mode():
        model(x)
    for handle in handles:
        handle.remove()
    return got


def test_folds_a_batch_norm_that_follows_a_convolution_and_keeps_the_outputs():
    model = with_statistics(Stem())
    probe = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    fused = fuse_batch_norms(model, ["bn", "block"], probe)
    assert fused is not model
    assert isinstance(fused.bn, nn.Identity)
    # after the pooling, the batch norm does not read a convolution's output: kept
    assert isinstance(fused.block[2], nn.BatchNorm2d)
    assert isinstance(model.bn, nn.BatchNorm2d)  # the original is untouched
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(outputs(fused, x, ["block"])["block"],
                               outputs(model, x, ["block"])["block"], rtol=1e-5, atol=1e-5)
    # the folded conv gained the bias it did not have
    assert fused.conv.bias is not None and model.conv.bias is None


def test_a_convolution_output_read_elsewhere_is_left_as_it_is():
    model = with_statistics(nn.Sequential(Residual(), nn.ReLU()))
    probe = torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    # folding would change the sum that layer "1" reads
    assert fuse_batch_norms(model, ["1"], probe) is model
    # where only the batch norm's own output is read, folding it is exact
    assert isinstance(fuse_batch_norms(model, ["0.bn"], probe)[0].bn, nn.Identity)


def test_a_network_without_batch_norms_is_returned_unchanged():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU()).eval()
    assert fuse_batch_norms(model, ["1"], torch.rand(1, 3, 8, 8)) is model


def test_training_mode_is_refused():
    with pytest.raises(ValueError, match="eval mode"):
        fuse_batch_norms(nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2)), ["1"],
                         torch.rand(1, 3, 8, 8))
