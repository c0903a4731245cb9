"""Rewriting networks for inference: same outputs, and only where it is exact."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mvtec_sklearn.features._fusion import fuse_for_inference


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
    original = copy.deepcopy(model)
    probe = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    fused = fuse_for_inference(model, ["bn", "block"], probe)
    assert fused is model  # rewritten in place
    assert isinstance(fused.bn, nn.Identity)
    # after the pooling, the batch norm does not read a convolution's output: kept
    assert isinstance(fused.block[2], nn.BatchNorm2d)
    x = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(outputs(fused, x, ["block"])["block"],
                               outputs(original, x, ["block"])["block"], rtol=1e-5, atol=1e-5)
    # the folded conv gained the bias it did not have
    assert fused.conv.bias is not None and original.conv.bias is None


def test_a_convolution_output_read_elsewhere_is_left_as_it_is():
    model = with_statistics(nn.Sequential(Residual(), nn.ReLU()))
    probe = torch.rand(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    weight = model[0].conv.weight
    # folding would change the sum that layer "1" reads: undone
    assert fuse_for_inference(model, ["1"], probe) is model
    assert isinstance(model[0].bn, nn.BatchNorm2d) and model[0].conv.weight is weight
    assert not model[1].inplace
    # where only the batch norm's own output is read, folding it is exact
    assert isinstance(fuse_for_inference(model, ["0.bn"], probe)[0].bn, nn.Identity)


def test_a_network_with_nothing_to_rewrite_is_returned_unchanged():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Sigmoid()).eval()
    weight = model[0].weight
    assert fuse_for_inference(model, ["1"], torch.rand(1, 3, 8, 8)) is model
    assert model[0].weight is weight and model[0].padding == (0, 0)


class SamePadConv(nn.Conv2d):
    """A convolution padding its input first, as the EfficientNet ports' "SAME" mode does."""

    def __init__(self, *args, pad, **kwargs):
        super().__init__(*args, **kwargs)
        self.static_padding = nn.ZeroPad2d(pad)

    def forward(self, x):
        return nn.functional.conv2d(self.static_padding(x), self.weight, self.bias, self.stride,
                                    self.padding, self.dilation, self.groups)


@pytest.mark.parametrize("kernel,stride,pad", [(3, 1, (1, 1, 1, 1)), (3, 2, (0, 1, 0, 1)),
                                               (5, 2, (1, 2, 1, 2)), (3, 2, (1, 1, 0, 1)),
                                               (2, 1, (0, 1, 0, 1))])
def test_same_padding_moves_into_the_convolution(kernel, stride, pad):
    model = nn.Sequential(SamePadConv(3, 4, kernel, stride=stride, pad=pad)).eval()
    original = copy.deepcopy(model)
    probe = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    fused = fuse_for_inference(model, ["0"], probe)
    assert isinstance(fused[0].static_padding, nn.Identity)
    # one more at the end than at the start: a kernel one larger, its first row/column zero
    grow_h, grow_w = pad[3] - pad[2], pad[1] - pad[0]
    assert fused[0].padding == (pad[2] + grow_h, pad[0] + grow_w)
    assert fused[0].weight.shape[2:] == (kernel + grow_h, kernel + grow_w)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(outputs(fused, x, ["0"])["0"], outputs(original, x, ["0"])["0"])


def test_padding_without_a_convolution_equivalent_is_kept():
    model = nn.Sequential(SamePadConv(3, 4, 3, pad=(0, 2, 0, 2)),
                          SamePadConv(4, 4, 3, pad=(1, 1, 1, 1), dilation=2)).eval()
    fused = fuse_for_inference(model, ["1"], torch.rand(1, 3, 16, 16))
    assert isinstance(fused[0].static_padding, nn.ZeroPad2d) and fused[0].padding == (0, 0)
    assert isinstance(fused[1].static_padding, nn.ZeroPad2d)  # dilated


def test_rejected_padding_folds_are_undone():
    model = nn.Sequential(SamePadConv(3, 4, 3, stride=2, pad=(0, 1, 0, 1))).eval()
    weight = model[0].weight
    model[0].forward = lambda x: model[0].static_padding(x)  # reads the padding only
    probe = torch.rand(1, 3, 8, 8)
    fuse_for_inference(model, ["0"], probe)
    assert isinstance(model[0].static_padding, nn.ZeroPad2d)
    assert model[0].weight is weight and model[0].kernel_size == (3, 3)
    assert model[0].padding == (0, 0)


class ActivationReadTwice(nn.Module):
    """The activation's input is also the residual: in place, it would change the sum."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.act = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        y = self.bn(self.conv(x))
        return self.conv2(self.act(y)) + y


def test_activations_run_in_place_and_only_where_that_is_exact():
    model = with_statistics(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU6()))
    probe = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    before = probe.clone()
    assert fuse_for_inference(model, ["2"], probe)[2].inplace
    torch.testing.assert_close(probe, before, rtol=0, atol=0)  # the probe is not overwritten

    model = with_statistics(nn.Sequential(ActivationReadTwice()))
    original = copy.deepcopy(model)
    probe = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    fused = fuse_for_inference(model, ["0"], probe)
    # the in-place activation is undone, the batch norm is still folded
    assert not fused[0].act.inplace
    assert isinstance(fused[0].bn, nn.Identity)
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(outputs(fused, x, ["0"])["0"], outputs(original, x, ["0"])["0"])


def test_training_mode_is_refused():
    with pytest.raises(ValueError, match="eval mode"):
        fuse_for_inference(nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2)), ["1"],
                           torch.rand(1, 3, 8, 8))
