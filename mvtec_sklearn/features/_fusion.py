"""Rewriting a network for inference: the same features with fewer passes over memory.

- **Batch norms folded into convolutions.** In eval mode a ``BatchNorm2d`` is a
  fixed affine map per channel, so a convolution followed by it is one
  convolution with rescaled weights and a bias
  (:func:`torch.nn.utils.fusion.fuse_conv_bn_eval`). On EfficientNet-Lite0 up
  to ``_blocks.10`` at 224 px, a batch of 8 images takes 0.075 s instead of
  0.117 s on a 2-core CPU.
- **"SAME" zero padding folded into the convolution.** Convolutions that pad
  their input with a ``static_padding`` ``ZeroPad2d`` before calling
  ``conv2d`` (TensorFlow's "SAME" mode in the EfficientNet ports) copy every
  input once more; where the padding is symmetric, the convolution's own
  ``padding`` does the same without the copy.
- **Activations in place.** ``ReLU`` and ``ReLU6``/``Hardtanh`` overwrite their
  input instead of allocating a new tensor.

The last two take a batch of 32 images at 224 px through Lite0 (batch norms
folded) to ``_blocks.10`` in 0.088 s instead of 0.109 s on the same CPU.

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


def _fold_batch_norms(pairs, twin, parents):
    """Fold each observed ``(conv, bn)`` pair of the original into its copy; the count."""
    for conv, bn in pairs:
        conv_copy, bn_copy = twin[id(conv)], twin[id(bn)]
        folded = fuse_conv_bn_eval(conv_copy, bn_copy)
        conv_copy.weight, conv_copy.bias = folded.weight, folded.bias
        parent, name = parents[id(bn_copy)]
        setattr(parent, name, nn.Identity())
    return len(pairs)


def _fold_static_padding(pairs, twin, parents):
    """Move symmetric ``static_padding`` into the convolutions' own padding; the count."""
    count = 0
    for module in twin.values():
        pad = getattr(module, "static_padding", None)
        if not (isinstance(module, nn.Conv2d) and isinstance(pad, nn.ZeroPad2d)
                and module.padding_mode == "zeros" and tuple(module.padding) == (0, 0)):
            continue
        left, right, top, bottom = pad.padding
        if left == right and top == bottom:
            module.padding = (top, left)
            module.static_padding = nn.Identity()
            count += 1
    return count


def _activations_in_place(pairs, twin, parents):
    """Let every ``ReLU`` and ``Hardtanh`` (``ReLU6``) overwrite its input; the count."""
    count = 0
    for module in twin.values():
        if isinstance(module, (nn.ReLU, nn.Hardtanh)) and not module.inplace:
            module.inplace = True
            count += 1
    return count


#: The rewrites tried, most first; the first whose outputs agree is kept.
_REWRITES = ((_fold_batch_norms, _fold_static_padding, _activations_in_place),
             (_fold_batch_norms, _fold_static_padding))


def _rewritten(model, rewrites, pairs):
    """A rewritten deep copy of ``model``, or None where no rewrite applies."""
    copied = copy.deepcopy(model)
    twin = dict(zip(map(id, model.modules()), copied.modules()))
    parents = {id(child): (parent, name) for parent in copied.modules()
               for name, child in parent.named_children()}
    if sum(rewrite(pairs, twin, parents) for rewrite in rewrites) == 0:
        return None
    return copied.requires_grad_(False)


def _agrees(model, layers, probe, reference):
    """Whether ``model`` gives the ``reference`` outputs of ``layers`` on ``probe``."""
    try:
        again = probe_outputs(model, layers, probe.clone())  # in-place ops keep the probe
    except Exception:  # a module reached outside its own forward (e.g. shared weights)
        return False
    return all(
        torch.allclose(again[name], reference[name], rtol=0.0,
                       atol=_RTOL * float(reference[name].abs().max()))
        for name in layers
    )


def fuse_for_inference(model, layers, probe):
    """Fold batch norms and "SAME" padding into convolutions; activations in place.

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
        A rewritten copy (each folded ``BatchNorm2d`` and ``static_padding``
        replaced by ``nn.Identity``) when one reproduces the outputs of
        ``layers`` on ``probe`` within a relative ``1e-4``: with every rewrite,
        else without the in-place activations. Otherwise, or when nothing can
        be rewritten, ``model`` itself.

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
        rewritten = _rewritten(model, rewrites, pairs)
        if rewritten is None:
            continue
        if _agrees(rewritten, layers, probe, reference):
            return rewritten
    return model
