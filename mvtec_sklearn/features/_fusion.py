"""Rewriting a network for inference: the same features with fewer passes over memory.

- **Batch norms folded into convolutions.** In eval mode a ``BatchNorm2d`` is a
  fixed affine map per channel, so a convolution followed by it is one
  convolution with rescaled weights and a bias
  (:func:`torch.nn.utils.fusion.fuse_conv_bn_weights`). On EfficientNet-Lite0 up
  to ``_blocks.10`` at 224 px, a batch of 8 images takes 0.075 s instead of
  0.117 s on a 2-core CPU.
- **"SAME" zero padding folded into the convolution.** Convolutions that pad
  their input with a ``static_padding`` ``ZeroPad2d`` before calling
  ``conv2d`` (TensorFlow's "SAME" mode in the EfficientNet ports) copy every
  input once more; the convolution's own ``padding`` does the same without
  the copy (see :func:`_fold_static_padding` for the asymmetric case).
- **Activations in place.** ``ReLU`` and ``ReLU6``/``Hardtanh`` overwrite their
  input instead of allocating a new tensor.

The last two take a batch of 32 images at 224 px through Lite0 (batch norms
folded) to ``_blocks.10`` in 0.082 s instead of 0.111 s on the same CPU.

Which batch norms can be folded is observed, not assumed from module names:
during one probe forward, a ``BatchNorm2d`` whose input is the very tensor
the previous ``Conv2d`` call returned is paired with that convolution.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ._backbones import probe_outputs

__all__ = ["fuse_for_inference"]

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


def _fold_batch_norms(model, pairs, undo):
    """Fold each observed ``(conv, bn)`` pair; the count. ``undo`` gets the reverse steps."""
    parents = {id(child): (parent, name) for parent in model.modules()
               for name, child in parent.named_children()}
    for conv, bn in pairs:
        weight, bias = conv.weight, conv.bias
        conv.weight, conv.bias = fuse_conv_bn_weights(weight, bias, bn.running_mean,
                                                      bn.running_var, bn.eps, bn.weight, bn.bias)
        parent, name = parents[id(bn)]
        setattr(parent, name, nn.Identity())
        undo.append(lambda c=conv, w=weight, b=bias, p=parent, n=name, m=bn: (
            setattr(c, "weight", w), setattr(c, "bias", b), setattr(p, n, m)))
    return len(pairs)


def _fold_static_padding(model, pairs, undo):
    """Move ``static_padding`` into the convolutions' own padding; the count.

    Symmetric padding becomes the convolution's ``padding``. Padding one
    larger at the end than at the start (``l``, ``l + 1``: "SAME" with an
    even input and stride 2) becomes ``padding=l + 1`` with a kernel one
    larger, its first row or column zero: output ``j`` reads the same inputs
    with the same weights, and the zero tap meets the extra padding.
    """
    count = 0
    for module in model.modules():
        pad = getattr(module, "static_padding", None)
        if not (isinstance(module, nn.Conv2d) and isinstance(pad, nn.ZeroPad2d)
                and module.padding_mode == "zeros" and tuple(module.padding) == (0, 0)
                and tuple(module.dilation) == (1, 1)):
            continue
        left, right, top, bottom = pad.padding
        grow_h, grow_w = bottom - top, right - left
        if grow_h not in (0, 1) or grow_w not in (0, 1):
            continue
        weight, kernel_size = module.weight, module.kernel_size
        if grow_h or grow_w:
            grown = weight.new_zeros(*weight.shape[:2], weight.shape[2] + grow_h,
                                     weight.shape[3] + grow_w)
            grown[:, :, grow_h:, grow_w:] = weight
            module.weight = nn.Parameter(grown, requires_grad=weight.requires_grad)
            module.kernel_size = tuple(grown.shape[2:])
        module.padding = (top + grow_h, left + grow_w)
        module.static_padding = nn.Identity()
        undo.append(lambda m=module, z=pad, w=weight, k=kernel_size: (
            setattr(m, "padding", (0, 0)), setattr(m, "static_padding", z),
            setattr(m, "weight", w), setattr(m, "kernel_size", k)))
        count += 1
    return count


def _activations_in_place(model, pairs, undo):
    """Let every ``ReLU`` and ``Hardtanh`` (``ReLU6``) overwrite its input; the count."""
    count = 0
    for module in model.modules():
        if isinstance(module, (nn.ReLU, nn.Hardtanh)) and not module.inplace:
            module.inplace = True
            undo.append(lambda m=module: setattr(m, "inplace", False))
            count += 1
    return count


#: The rewrites tried, most first; the first whose outputs agree is kept.
_REWRITES = ((_fold_batch_norms, _fold_static_padding, _activations_in_place),
             (_fold_batch_norms, _fold_static_padding))


def _agrees(model, layers, probe, reference):
    """Whether ``model`` gives the ``reference`` outputs of ``layers`` on ``probe``."""
    try:
        again = probe_outputs(model, layers, probe.clone())  # in-place ops keep the probe
    except Exception:  # a module reached outside its own forward (e.g. shared weights)
        return False
    return all(
        again[name].shape == reference[name].shape
        and torch.allclose(again[name], reference[name], rtol=0.0,
                           atol=_RTOL * float(reference[name].abs().max()))
        for name in layers
    )


def fuse_for_inference(model, layers, probe):
    """Fold batch norms and "SAME" padding into convolutions; activations in place.

    Parameters
    ----------
    model : nn.Module
        The network in eval mode, with its weights loaded. It is changed in
        place.
    layers : sequence of str
        The layers whose outputs must not change.
    probe : tensor of shape (1, 3, H, W)
        Input of the probe forwards; random values, so that every weight and
        statistic shows in the outputs.

    Returns
    -------
    nn.Module
        ``model``, rewritten (each folded ``BatchNorm2d`` and
        ``static_padding`` replaced by ``nn.Identity``) when that reproduces
        the outputs of ``layers`` on ``probe`` within a relative ``1e-4``:
        with every rewrite, else without the in-place activations, else
        none.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from mvtec_sklearn.features._fusion import fuse_for_inference
    >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> fused = fuse_for_inference(net, ["2"], torch.rand(1, 3, 8, 8))
    >>> type(fused[1]).__name__, fused[2].inplace
    ('Identity', True)
    """
    if model.training:
        raise ValueError("Batch norms can only be folded in eval mode.")
    pairs, reference = _conv_bn_pairs(model, layers, probe)
    for rewrites in _REWRITES:
        undo: list = []
        if sum(rewrite(model, pairs, undo) for rewrite in rewrites) == 0:
            continue
        if _agrees(model, layers, probe, reference):
            return model
        for step in reversed(undo):
            step()
    return model
