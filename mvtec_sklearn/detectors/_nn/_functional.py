"""Pure torch functions shared by the deep detectors: blur, anomaly maps, SSIM, augmentation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "anomaly_maps",
    "augment_images",
    "gaussian_blur",
    "patchify",
    "resize_maps",
    "smooth_maps",
    "ssim_map",
    "unpatchify",
]


def _gaussian_kernel1d(sigma: float, radius: int, dtype, device) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(maps: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a batch of maps (n, H, W) or (n, C, H, W).

    The kernel is truncated at 4 sigma (and at the map size); borders are
    reflected. ``sigma <= 0`` returns the input unchanged.
    """
    if sigma <= 0:
        return maps
    squeeze = maps.ndim == 3
    x = maps.unsqueeze(1) if squeeze else maps
    n, c, h, w = x.shape
    radius = int(min(math.ceil(4.0 * sigma), h - 1, w - 1))
    if radius < 1:
        return maps
    k = _gaussian_kernel1d(float(sigma), radius, x.dtype, x.device)
    x = x.reshape(n * c, 1, h, w)
    x = F.pad(x, (radius, radius, 0, 0), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    x = x.reshape(n, c, h, w)
    return x.squeeze(1) if squeeze else x


def smooth_maps(maps: torch.Tensor, size, sigma: float) -> torch.Tensor:
    """First step of every anomaly map: upsample to the working size, then blur.

    Parameters
    ----------
    maps : Tensor of shape (n, h, w)
        Patch or error maps.
    size : (int, int)
        The working resolution (the network input); maps already of that
        size are not resampled.
    sigma : float
        Standard deviation, in pixels at ``size``, of the Gaussian blur
        (:func:`gaussian_blur`); 0 disables it.

    Returns
    -------
    Tensor of shape (n, *size)
        Bilinear upsampling (``align_corners=False``), then the blur.
    """
    if tuple(maps.shape[-2:]) != tuple(size):
        maps = F.interpolate(maps[:, None], size=tuple(size), mode="bilinear",
                             align_corners=False)[:, 0]
    return gaussian_blur(maps, sigma)


def resize_maps(maps: torch.Tensor, size) -> torch.Tensor:
    """Last step of every anomaly map: float32, resized bilinearly to ``size``.

    Parameters
    ----------
    maps : Tensor of shape (n, h, w)
        Smoothed maps (:func:`smooth_maps`).
    size : (int, int)
        The output resolution (the input images'); maps already of that size
        are returned as they are.

    Returns
    -------
    Tensor of float32, shape (n, *size)
    """
    maps = maps.float()
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=tuple(size), mode="bilinear",
                         align_corners=False)[:, 0]


def anomaly_maps(maps: torch.Tensor, working_size, output_size, sigma: float):
    """Patch or error maps -> smoothed maps at the working size and at the output size.

    The one map generator of the package: :func:`smooth_maps` (upsampling to
    ``working_size`` and Gaussian blur), then :func:`resize_maps` (to
    ``output_size``).

    Parameters
    ----------
    maps : Tensor of shape (n, h, w)
        Patch or error maps.
    working_size : (int, int)
        The network's input size; ``sigma`` is in its pixels.
    output_size : (int, int)
        The size of the input images.
    sigma : float
        Standard deviation of the Gaussian blur; 0 disables it.

    Returns
    -------
    smooth : Tensor of shape (n, *working_size)
        Where image scores are read from.
    resized : Tensor of float32, shape (n, *output_size)
        ``smooth`` at the input images' resolution.

    Examples
    --------
    >>> import torch
    >>> from mvtec_sklearn.detectors._nn._functional import anomaly_maps
    >>> smooth, resized = anomaly_maps(torch.rand(2, 7, 7), (28, 28), (50, 40), 4.0)
    >>> tuple(smooth.shape), tuple(resized.shape)
    ((2, 28, 28), (2, 50, 40))
    """
    smooth = smooth_maps(maps, working_size, sigma)
    return smooth, resize_maps(smooth, output_size)


def ssim_map(x: torch.Tensor, y: torch.Tensor, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel structural similarity of two image batches in [0, 1].

    Parameters
    ----------
    x, y : Tensor of shape (n, C, H, W)
    sigma : float
        Width of the Gaussian window (truncated at 3 sigma and the image size).

    Returns
    -------
    Tensor of shape (n, C, H, W)
        SSIM per pixel and channel (1 = identical).
    """
    c1, c2 = 0.01**2, 0.03**2
    n, c, h, w = x.shape
    radius = int(min(math.ceil(3.0 * sigma), h - 1, w - 1))
    k = _gaussian_kernel1d(sigma, radius, x.dtype, x.device)

    def blur(t):
        t = t.reshape(n * c, 1, h, w)
        t = F.conv2d(F.pad(t, (radius, radius, 0, 0), mode="reflect"), k.view(1, 1, 1, -1))
        t = F.conv2d(F.pad(t, (0, 0, radius, radius), mode="reflect"), k.view(1, 1, -1, 1))
        return t.reshape(n, c, h, w)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return num / den


def augment_images(batch: torch.Tensor, kind: str) -> torch.Tensor:
    """Random training augmentation of an image batch (n, C, H, W) in [0, 1].

    Uses torch's global random generator (the training loop seeds it locally).

    Parameters
    ----------
    batch : Tensor of shape (n, C, H, W)
    kind : {"flip", "default"}
        ``"flip"``: random horizontal and vertical flips (each with
        probability 0.5, per image). ``"default"``: flips, a rotation by up to
        +-10 degrees (reflected borders), and brightness and contrast jitter
        of up to +-10 %.

    Returns
    -------
    Tensor of the same shape, values in [0, 1].
    """
    if kind not in ("flip", "default"):
        raise ValueError(f"Unknown augmentation {kind!r}; expected 'flip' or 'default'.")
    n = batch.shape[0]
    dev = batch.device
    hflip = torch.rand(n, device=dev) < 0.5
    vflip = torch.rand(n, device=dev) < 0.5
    out = torch.where(hflip.view(-1, 1, 1, 1), batch.flip(-1), batch)
    out = torch.where(vflip.view(-1, 1, 1, 1), out.flip(-2), out)
    if kind == "default":
        angle = (torch.rand(n, device=dev) * 2 - 1) * math.radians(10.0)
        cos, sin = torch.cos(angle), torch.sin(angle)
        zeros = torch.zeros_like(cos)
        theta = torch.stack(
            [torch.stack([cos, -sin, zeros], 1), torch.stack([sin, cos, zeros], 1)], 1
        ).to(out.dtype)
        grid = F.affine_grid(theta, list(out.shape), align_corners=False)
        out = F.grid_sample(out, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        brightness = 1 + (torch.rand(n, 1, 1, 1, device=dev) * 2 - 1) * 0.1
        contrast = 1 + (torch.rand(n, 1, 1, 1, device=dev) * 2 - 1) * 0.1
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        out = ((out - mean) * contrast + mean) * brightness
    return out.clamp(0.0, 1.0)


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(n, C, H, W) -> (n, H/p * W/p, C*p*p) tokens in row-major patch order."""
    n, c, h, w = images.shape
    p = patch_size
    t = images.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return t.reshape(n, (h // p) * (w // p), c * p * p)


def unpatchify(tokens: torch.Tensor, patch_size: int, channels: int, height: int, width: int):
    """Inverse of :func:`patchify`."""
    n = tokens.shape[0]
    p = patch_size
    t = tokens.reshape(n, height // p, width // p, channels, p, p).permute(0, 3, 1, 4, 2, 5)
    return t.reshape(n, channels, height, width)
