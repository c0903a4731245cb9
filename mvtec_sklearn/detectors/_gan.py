"""GANomaly detector: adversarially trained encoder-decoder-encoder."""

from __future__ import annotations

from numbers import Real
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions

from ._autoencoder import _IMAGE_PARAMS, _MAP_PARAMS, _POSITIVE_INT
from ._nn import GANomaly
from ._torch_base import TRAINING_PARAMS_DOC, AnomalyMapMixin, BaseTorchDetector, ImageInputMixin

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np

__all__ = ["GANDetector"]


class GANDetector(ImageInputMixin, AnomalyMapMixin, BaseTorchDetector):
    """GANomaly (Akcay et al., 2018) scored by its reconstruction error or latent difference.

    The generator encodes an image to ``z``, decodes it to ``x_hat`` and
    re-encodes that to ``z_hat``; a discriminator is trained against it. The
    generator loss is ``adversarial_weight`` × feature matching in the
    discriminator + ``contextual_weight`` × L1(x, x_hat) +
    ``encoder_weight`` × L2(z, z_hat). The validation loss (for early
    stopping) is the non-adversarial part of the generator loss.

    The default anomaly score (``score_mode="quantile"``) is a high quantile
    of the smoothed per-pixel reconstruction error ``|x - x_hat|`` (the
    ``anomaly_map``), as for the autoencoders. The paper's score, the mean
    of ``(z - z_hat)²`` (``score_mode="latent"``), summarises the whole image
    in ``latent_dim`` numbers in which a small defect weighs little, and it
    needs many training steps to become informative: trained on a few dozen
    images it ranked anomalies below normals on 4 of 6 synthetic categories
    (mean image AUROC 0.49), where the reconstruction quantile reached 0.56
    with 4 of 6 above chance (``benchmarks/bench_deep_detectors.py``). It is
    kept for large training sets and for comparison with the paper.

    Parameters
    ----------
    image_size : int or None, default=64
        Side of the square working resolution: a power of two >= 16.
        ``None`` keeps the training images' size (which must qualify).
    base_channels : int, default=32
        Width of the first convolution of the encoders and the discriminator.
    latent_dim : int, default=100
        Dimension of ``z``.
    adversarial_weight, contextual_weight, encoder_weight : float, default=1, 50, 1
        Weights of the generator's loss terms (the paper's).
    score_mode : {"quantile", "max", "latent"}, default="quantile"
        Anomaly score: the ``quantile`` or the maximum of the smoothed
        per-pixel reconstruction error map, or the paper's latent difference
        ``mean((z - z_hat)²)``.
    quantile : float, default=0.99
        Quantile used with ``score_mode="quantile"``.
    smoothing_sigma : float, default=4.0
        Gaussian smoothing of ``anomaly_map`` (mean absolute difference
        between the image and ``x_hat``), in working pixels.
    augment : None, "flip", "default" or callable, default=None
        Training-time augmentation.
    contamination : "auto" or float in (0, 0.5], default="auto"
        Fraction of training images flagged as anomalous by ``predict``.
    {training}

    Attributes
    ----------
    module_ : GANomaly
        Generator and discriminator (eval mode).
    history_ : pandas.DataFrame
        Losses per epoch: ``train_loss`` (generator), ``train_adversarial``,
        ``train_contextual``, ``train_encoder``, ``train_discriminator``,
        ``val_loss``.
    n_epochs_, best_epoch_ : int
        Epochs run and the epoch whose weights were kept.
    n_channels_ : int
        1 or 3.
    image_shape_ : tuple of int
        Working ``(H, W)``.
    offset_ : float
        Threshold on ``score_samples``.

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
        **_IMAGE_PARAMS,
        "base_channels": _POSITIVE_INT,
        "latent_dim": _POSITIVE_INT,
        "adversarial_weight": [Interval(Real, 0, None, closed="left")],
        "contextual_weight": [Interval(Real, 0, None, closed="left")],
        "encoder_weight": [Interval(Real, 0, None, closed="left")],
        **_MAP_PARAMS,
        "score_mode": [StrOptions({"latent", "quantile", "max"})],
    }

    def __init__(
        self,
        *,
        image_size: int | None = 64,
        base_channels: int = 32,
        latent_dim: int = 100,
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
        self.image_size = image_size
        self.base_channels = base_channels
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
        data = super()._fit_data(X)
        h, w = self.image_shape_
        if h != w or h < 16 or h & (h - 1):
            raise ValueError(
                f"GANDetector needs square images whose side is a power of two >= 16; the "
                f"working size is {h}x{w}. Set image_size (e.g. 64)."
            )
        return data

    def _build_module(self):
        return GANomaly(self.n_channels_, self.image_shape_[0], self.base_channels, self.latent_dim)

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
        _, _, contextual, encoder = self._generator_terms(module, batch)
        return self.contextual_weight * contextual + self.encoder_weight * encoder

    def _batch_scores(self, module, batch):
        if self.score_mode != "latent":
            return self._map_scores(module, batch)
        _, z, z_hat = module.generator(batch * 2.0 - 1.0)
        return (z - z_hat).pow(2).mean(dim=1)

    def _error_maps(self, module, batch):
        x_hat, _, _ = module.generator(batch * 2.0 - 1.0)
        return ((x_hat + 1.0) / 2.0 - batch).abs().mean(dim=1)


GANDetector.__doc__ = GANDetector.__doc__.replace(
    "{training}", TRAINING_PARAMS_DOC.format(max_epochs=50, batch_size=16, learning_rate=2e-4, patience=10)
)
