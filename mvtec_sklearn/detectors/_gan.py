"""GANomaly and Skip-GANomaly detectors: adversarially trained reconstructions."""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions

from ._nn import GANomaly, SkipGANomaly
from ._torch_base import (
    _IMAGE_PARAMS,
    _MAP_PARAMS,
    _POSITIVE_INT,
    AnomalyMapMixin,
    BaseTorchDetector,
)
from ._torch_inputs import ImageInputMixin

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

__all__ = ["GANDetector"]


class GANDetector(ImageInputMixin, AnomalyMapMixin, BaseTorchDetector):
    """GANomaly (Akcay et al., 2018) or Skip-GANomaly (Akcay et al., 2019).

    With ``architecture="ganomaly"`` the generator encodes an image to
    ``z``, decodes it to ``x_hat`` and re-encodes that to ``z_hat``; a
    discriminator is trained against it. The generator loss is
    ``adversarial_weight`` × feature matching in the discriminator +
    ``contextual_weight`` × L1(x, x_hat) + ``encoder_weight`` × L2(z, z_hat).
    The validation loss (for early stopping) is the non-adversarial part of
    the generator loss. ``z`` is a ``latent_dim`` vector as in the paper
    (``bottleneck="vector"``) or, with ``bottleneck="spatial"``, a map of
    ``latent_dim`` channels at 1/8 of the working size, so that each latent
    position codes one region of the image.

    With ``architecture="skip"`` the generator is a U-Net: a DCGAN encoder
    down to a ``latent_dim`` bottleneck and a mirrored decoder that receives
    each encoder level's output through a skip connection. Its loss is
    ``adversarial_weight`` × the non-saturating GAN loss (the discriminator
    must call ``x_hat`` real) + ``contextual_weight`` × L1(x, x_hat) +
    ``encoder_weight`` × L2 between the discriminator's last feature maps
    of ``x`` and ``x_hat`` (the paper's latent loss). Its validation loss is
    the contextual term alone, since the latent term is measured by the
    discriminator, which keeps training.

    The default anomaly score (``score_mode="quantile"``) is a high quantile
    of the smoothed per-pixel reconstruction error ``|x - x_hat|`` (the
    ``anomaly_map``), as for the autoencoders. The paper's score is the
    latent difference (``score_mode="latent"``). With a vector ``z`` it is
    the mean of ``(z - z_hat)²``: the whole image in ``latent_dim`` numbers,
    in which a small defect weighs little. With ``bottleneck="spatial"`` it
    is a map, ``(z - z_hat)²`` averaged over channels per latent position:
    the ``anomaly_map`` is then that map (upsampled and smoothed) and the
    score its ``quantile``.

    Measured with ``benchmarks/bench_deep_detectors.py`` (synthetic data, 15
    categories; 40 training images, 20 good and 40 defective test images
    each; 64 px, ``base_channels=16``, default ``max_epochs=50``), mean image
    AUROC and categories above 0.5: reconstruction quantile 0.632 (13/15),
    vector latent 0.548 (10/15), spatial latent 0.594 (11/15); Skip-GANomaly
    0.584 (13/15) with the reconstruction quantile and 0.604 (14/15) with its
    latent score. The convolutional autoencoder reached 0.727 (15/15) in the
    same run: on a few dozen training images the adversarial term does not
    buy accuracy.

    Parameters
    ----------
    architecture : {"ganomaly", "skip"}, default="ganomaly"
        Generator: GANomaly's encoder-decoder-encoder or Skip-GANomaly's
        U-Net.
    image_size : int or None, default=64
        Side of the square working resolution: a power of two >= 16.
        ``None`` keeps the training images' size (which must qualify).
    base_channels : int, default=32
        Width of the first convolution of the encoders and the discriminator.
    bottleneck : {"vector", "spatial"}, default="vector"
        Shape of GANomaly's ``z``: a vector (the paper) or a map at 1/8 of
        the working size. Only for ``architecture="ganomaly"``.
    latent_dim : int or None, default=None
        Dimension of ``z`` (channels of the map for ``"spatial"``; the
        U-Net's bottleneck for ``"skip"``). None: 100, or 16 for a spatial
        bottleneck.
    adversarial_weight, contextual_weight, encoder_weight : float, default=1, 50, 1
        Weights of the generator's loss terms (GANomaly's; Skip-GANomaly
        uses 1, 40, 1). For ``"skip"``, ``encoder_weight`` weighs the
        discriminator-feature (latent) loss.
    score_mode : {"quantile", "max", "latent"}, default="quantile"
        Anomaly score: the ``quantile`` or the maximum of the smoothed
        per-pixel reconstruction error map, or the paper's latent difference
        ``mean((z - z_hat)²)`` (for ``"skip"``: the mean squared difference
        of the discriminator's feature maps of ``x`` and ``x_hat``; for a
        spatial bottleneck: the ``quantile`` of the latent difference map).
    quantile : float, default=0.99
        Quantile used with ``score_mode="quantile"`` (and the latent map).
    smoothing_sigma : float, default=4.0
        Gaussian smoothing of ``anomaly_map`` (mean absolute difference
        between the image and ``x_hat``, or the latent difference map), in
        working pixels.
    augment : None, "flip", "default" or callable, default=None
        Training-time augmentation.
    {training}

    Attributes
    ----------
    module_ : GANomaly or SkipGANomaly
        Generator and discriminator (eval mode).
    history_ : pandas.DataFrame
        Losses per epoch: ``train_loss`` (generator), ``train_adversarial``,
        ``train_contextual``, ``train_encoder`` (the latent loss for
        ``"skip"``), ``train_discriminator``, ``val_loss``.
    {fitted}

    Examples
    --------
    >>> import numpy as np
    >>> from mvtec_sklearn.detectors import GANDetector
    >>> X = np.random.default_rng(0).uniform(size=(8, 32, 32, 3))
    >>> det = GANDetector(image_size=32, base_channels=4, latent_dim=8, max_epochs=2,
    ...                   random_state=0).fit(X)
    >>> det.score_samples(X).shape, det.anomaly_map(X).shape
    ((8,), (8, 32, 32))
    """

    _parameter_constraints: dict = {
        **BaseTorchDetector._parameter_constraints,
        "architecture": [StrOptions({"ganomaly", "skip"})],
        **_IMAGE_PARAMS,
        "base_channels": _POSITIVE_INT,
        "bottleneck": [StrOptions({"vector", "spatial"})],
        "latent_dim": [None, *_POSITIVE_INT],
        "adversarial_weight": [Interval(Real, 0, None, closed="left")],
        "contextual_weight": [Interval(Real, 0, None, closed="left")],
        "encoder_weight": [Interval(Real, 0, None, closed="left")],
        **_MAP_PARAMS,
        "score_mode": [StrOptions({"latent", "quantile", "max"})],
    }

    def __init__(
        self,
        *,
        architecture: Literal["ganomaly", "skip"] = "ganomaly",
        image_size: int | None = 64,
        base_channels: int = 32,
        bottleneck: Literal["vector", "spatial"] = "vector",
        latent_dim: int | None = None,
        adversarial_weight: float = 1.0,
        contextual_weight: float = 50.0,
        encoder_weight: float = 1.0,
        score_mode: Literal["quantile", "max", "latent"] = "quantile",
        quantile: float = 0.99,
        smoothing_sigma: float = 4.0,
        augment: Literal["flip", "default"] | Callable[[torch.Tensor], torch.Tensor] | None = None,
        contamination: float | Literal["auto"] = "auto",
        max_epochs: int = 50,
        batch_size: int = 16,
        learning_rate: float = 2e-4,
        weight_decay: float = 0.0,
        validation_fraction: float | None = 0.1,
        patience: int = 10,
        device: str | torch.device = "auto",
        random_state: int | np.random.RandomState | None = None,
        verbose: bool = False,
    ) -> None:
        self.architecture = architecture
        self.image_size = image_size
        self.base_channels = base_channels
        self.bottleneck = bottleneck
        self.latent_dim = latent_dim
        self.adversarial_weight = adversarial_weight
        self.contextual_weight = contextual_weight
        self.encoder_weight = encoder_weight
        self.score_mode = score_mode
        self.quantile = quantile
        self.smoothing_sigma = smoothing_sigma
        self.augment = augment
        self.contamination = contamination
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    def _fit_data(self, X):
        if self.architecture == "skip" and self.bottleneck == "spatial":
            raise ValueError(
                "bottleneck='spatial' is an option of architecture='ganomaly'; Skip-GANomaly's "
                "U-Net has its own bottleneck."
            )
        data = super()._fit_data(X)
        h, w = self.image_shape_
        if h != w or h < 16 or h & (h - 1):
            raise ValueError(
                f"GANDetector needs square images whose side is a power of two >= 16; the "
                f"working size is {h}x{w}. Set image_size (e.g. 64)."
            )
        return data

    @property
    def _spatial(self):
        return self.architecture == "ganomaly" and self.bottleneck == "spatial"

    def _build_module(self):
        latent_dim = self.latent_dim or (16 if self._spatial else 100)
        args = (self.n_channels_, self.image_shape_[0], self.base_channels, latent_dim)
        if self.architecture == "skip":
            return SkipGANomaly(*args)
        return GANomaly(*args, spatial=self._spatial)

    def _make_optimizers(self, module):
        def adam(params):
            return torch.optim.Adam(
                params, lr=self.learning_rate, betas=(0.5, 0.999), weight_decay=self.weight_decay
            )

        return {
            "generator": adam(module.generator.parameters()),
            "discriminator": adam(module.discriminator.parameters()),
        }

    def _generator_terms(self, module, batch):
        x = batch * 2.0 - 1.0
        x_hat, z, z_hat = module.generator(x)
        contextual = (x - x_hat).abs().mean()
        encoder = (z - z_hat).pow(2).mean()
        return x, x_hat, contextual, encoder

    def _generator_loss(self, module, batch):
        if self.architecture == "skip":
            x = batch * 2.0 - 1.0
            x_hat = module.generator(x)
            contextual = (x - x_hat).abs().mean()
            _, feat_real = module.discriminator(x)
            logit_fake, feat_fake = module.discriminator(x_hat)
            adversarial = F.binary_cross_entropy_with_logits(
                logit_fake, torch.ones_like(logit_fake)
            )
            encoder = (feat_real.detach() - feat_fake).pow(2).mean()
        else:
            x, x_hat, contextual, encoder = self._generator_terms(module, batch)
            _, feat_real = module.discriminator(x)
            _, feat_fake = module.discriminator(x_hat)
            adversarial = (feat_real.detach() - feat_fake).pow(2).mean()
        loss = (
            self.adversarial_weight * adversarial
            + self.contextual_weight * contextual
            + self.encoder_weight * encoder
        )
        parts = {"adversarial": adversarial, "contextual": contextual, "encoder": encoder}
        return loss, {k: v.detach() for k, v in parts.items()}, x, x_hat

    def _train_step(self, module, batch, optimizers):
        opt_g, opt_d = optimizers["generator"], optimizers["discriminator"]
        loss_g, parts, x, x_hat = self._generator_loss(module, batch)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()

        logit_real, _ = module.discriminator(x)
        logit_fake, _ = module.discriminator(x_hat.detach())
        loss_d = F.binary_cross_entropy_with_logits(
            logit_real, torch.ones_like(logit_real)
        ) + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        return {
            "loss": loss_g.item(),
            **{k: float(v) for k, v in parts.items()},
            "discriminator": loss_d.item(),
        }

    def _validation_loss(self, module, batch):
        if self.architecture == "skip":
            # L1 on the [-1, 1] scale, as in training.
            error = (self._reconstruct(module, batch) - batch).abs().mean()
            return self.contextual_weight * 2.0 * error
        _, _, contextual, encoder = self._generator_terms(module, batch)
        return self.contextual_weight * contextual + self.encoder_weight * encoder

    def _reconstruct(self, module, batch):
        """``x_hat`` in [0, 1] for ``batch`` in [0, 1]."""
        out = module.generator(batch * 2.0 - 1.0)
        x_hat = out if self.architecture == "skip" else out[0]
        return (x_hat + 1.0) / 2.0

    def _map_reduction(self):
        if self.score_mode != "latent":
            return self.score_mode
        # A spatial latent difference is a map, reduced by its quantile.
        return "quantile" if self._spatial else None

    def _batch_scores(self, module, batch):
        if self._map_reduction() is not None:
            return self._map_scores(module, batch)
        x = batch * 2.0 - 1.0
        if self.architecture == "skip":
            _, feat_real = module.discriminator(x)
            _, feat_fake = module.discriminator(module.generator(x))
            return (feat_real - feat_fake).pow(2).flatten(1).mean(dim=1)
        _, z, z_hat = module.generator(x)
        return (z - z_hat).pow(2).mean(dim=1)

    def _error_maps(self, module, batch):
        if self._spatial and self.score_mode == "latent":
            # (z - z_hat)² per latent position: a map at 1/8 of the working size.
            _, z, z_hat = module.generator(batch * 2.0 - 1.0)
            return (z - z_hat).pow(2).mean(dim=1)
        return (self._reconstruct(module, batch) - batch).abs().mean(dim=1)
