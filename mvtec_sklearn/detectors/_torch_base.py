"""The one torch training base shared by every deep detector.

:class:`BaseTorchDetector` owns everything that is not specific to a model:
parameter validation, the split of the normal training data into a training
and a validation part, the epoch loop with Adam, early stopping with restore
of the best weights, local seeding, progress bars, ``history_``, inference in
eval mode under :func:`torch.inference_mode`, and pickling that loads on a
CPU-only machine. A model only defines its module, its loss and its score.

The input mixins of :mod:`._torch_inputs` add the input side (images, CNN
feature maps or 2-D feature vectors); :class:`AnomalyMapMixin` adds anomaly maps.
"""

from __future__ import annotations

import copy
import inspect
import math
from contextlib import contextmanager
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from sklearn.base import _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..datasets import check_image_input, read_image_size
from ..utils import progress, resolve_device, seed_from_random_state
from ._base import BaseDetector
from ._maps import LocalizationMixin
from ._nn._functional import resize_maps, smooth_maps

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from numpy.typing import ArrayLike, NDArray

__all__ = ["AnomalyMapMixin", "BaseTorchDetector"]

_POSITIVE_INT = [Interval(Integral, 1, None, closed="left")]
#: Constraints of the detectors that make anomaly maps (:class:`AnomalyMapMixin`).
_MAP_PARAMS = {
    "score_mode": [StrOptions({"mean", "max", "quantile"})],
    "quantile": [Interval(Real, 0, 1, closed="both")],
    "smoothing_sigma": [Interval(Real, 0, None, closed="left")],
}
#: Constraints of the detectors on pixels (:class:`ImageInputMixin`).
_IMAGE_PARAMS = {
    "image_size": [Interval(Integral, 1, None, closed="left"), None],
    "augment": [None, StrOptions({"flip", "default"}), callable],
}

#: Parameters of every torch-backed detector, documented once here; a subclass's
#: docstring says ``{training}`` where they go, filled in with its own defaults.
TRAINING_PARAMS_DOC = """contamination : "auto" or float in (0, 0.5], default="auto"
        Fraction of the training samples flagged as anomalous by ``predict``.
    max_epochs : int, default={max_epochs}
        Maximum number of passes over the training data.
    batch_size : int, default={batch_size}
        Mini-batch size for training and inference.
    learning_rate : float, default={learning_rate}
        Adam step size.
    weight_decay : float, default={weight_decay}
        Adam L2 penalty.
    validation_fraction : float in [0, 1) or None, default={validation_fraction}
        Fraction of the (normal) training samples held out to monitor the
        loss for early stopping; the weights of the epoch with the lowest
        validation loss are restored at the end. ``None`` or ``0`` trains
        for ``max_epochs`` epochs without a validation set.
    patience : int, default={patience}
        Stop after this many epochs without a lower validation loss. An
        epoch of a few dozen images is only a few optimizer steps: there,
        use a smaller ``batch_size`` and a larger ``patience`` (the benchmark
        registry trains its pixel models with ``batch_size=4``,
        ``max_epochs=60``, ``patience=20``), or training can stop before the
        network has learned more than the mean image.
    device : str or torch.device, default="auto"
        ``"auto"`` uses CUDA when available, else the CPU. The fitted model
        pickles on the CPU and runs on whatever ``device`` says at inference.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, the validation split, shuffling,
        dropout, sampling and augmentation (locally: the global torch
        generator is restored afterwards). The same seed gives the same
        scores on the CPU.
    verbose : bool, default=False
        Show a progress bar over epochs with the losses."""

#: Fitted attributes of every torch-backed detector, documented once here; a
#: subclass's docstring says ``{fitted}`` where they go, after ``module_`` and
#: ``history_``. ``{input}`` is the ``_input_attrs_doc`` of its input mixin.
FITTED_ATTRS_DOC = """n_epochs_, best_epoch_ : int
        Epochs run and the epoch whose weights were kept.
    {input}offset_ : float
        Threshold on ``score_samples`` (see ``contamination``)."""


@contextmanager
def _seeded(seed: int, device: torch.device):
    """Seed torch's generators for ``device`` and restore them afterwards."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.random.fork_rng(devices=[index]):
            torch.manual_seed(seed)
            yield
    else:
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)
            yield


def _reduce_maps(maps: torch.Tensor, score: str, quantile: float) -> torch.Tensor:
    """Image anomaly scores (n,) from anomaly maps (n, h, w)."""
    flat = maps.flatten(1)
    if score == "mean":
        return flat.mean(dim=1)
    if score == "max":
        return flat.amax(dim=1)
    return torch.quantile(flat, quantile, dim=1)


class BaseTorchDetector(BaseDetector):
    """Base class of the torch-backed detectors (not used directly).

    Subclasses implement:

    - ``_fit_data(X) -> Tensor`` (validates ``X``, sets input attributes,
      returns the training tensor on the CPU) and ``_predict_data(X) -> Tensor``;
    - ``_build_module() -> nn.Module`` (from parameters and fitted input
      attributes only, so that unpickling can rebuild it);
    - ``_loss(module, batch) -> (loss, {name: component})``;
    - ``_batch_scores(module, batch) -> Tensor (n,)``: anomaly scores, higher
      = more anomalous.

    Optionally ``_validation_loss``, ``_make_optimizers`` and ``_train_step``
    (several optimizers, as for a GAN) and ``_augment`` (training-time
    augmentation).

    Fitted attributes: ``module_`` (in eval mode), ``history_`` (DataFrame
    with ``epoch``, ``train_loss``, ``val_loss`` and one ``train_<name>``
    column per loss component), ``n_epochs_``, ``best_epoch_``, ``offset_``.
    """

    _parameter_constraints: dict = {
        **BaseDetector._parameter_constraints,
        "max_epochs": _POSITIVE_INT,
        "batch_size": _POSITIVE_INT,
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left"), None],
        "patience": _POSITIVE_INT,
        "device": [str, torch.device],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    #: The fitted attributes that describe the input (numpydoc entries, each
    #: line after the first indented by 4), set by the input mixins.
    _input_attrs_doc = ""

    def __init_subclass__(cls, **kwargs):
        """Fill the docstring's ``{training}`` block with the class's defaults and
        its ``{fitted}`` block with the fitted attributes of its input."""
        super().__init_subclass__(**kwargs)
        doc = cls.__dict__.get("__doc__")
        if doc and "{training}" in doc:
            defaults = {
                name: param.default
                for name, param in inspect.signature(cls.__init__).parameters.items()
            }
            doc = doc.replace("{training}", TRAINING_PARAMS_DOC.format(**defaults))
        if doc and "{fitted}" in doc:
            doc = doc.replace("{fitted}", FITTED_ATTRS_DOC.format(input=cls._input_attrs_doc))
        if doc:
            cls.__doc__ = doc

    # ------------------------------------------------------------------ hooks
    def _fit_data(self, X):
        raise NotImplementedError

    def _predict_data(self, X):
        raise NotImplementedError

    def _build_module(self):
        raise NotImplementedError

    def _loss(self, module, batch):
        raise NotImplementedError

    def _batch_scores(self, module, batch):
        raise NotImplementedError

    def _validation_loss(self, module, batch):
        """Loss on a held-out batch (module in eval mode, no gradients)."""
        return self._loss(module, batch)[0]

    def _augment(self, batch):
        """Training-time augmentation of a batch on the device (none by default)."""
        return batch

    def _make_optimizers(self, module):
        """One Adam optimizer over every parameter."""
        return {
            "model": torch.optim.Adam(
                module.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
            )
        }

    def _train_step(self, module, batch, optimizers):
        """One gradient step; returns ``{"loss": float, component: float, ...}``."""
        loss, parts = self._loss(module, batch)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), **{k: float(v) for k, v in parts.items()}}

    # --------------------------------------------------------------- training
    @_fit_context(prefer_skip_nested_validation=False)
    def fit(
        self, X: Sequence[str | os.PathLike[str]] | ArrayLike, y: object = None
    ) -> "BaseTorchDetector":
        """Fit the model on normal samples.

        Parameters
        ----------
        X : array-like
            Training samples (all normal), as accepted by :meth:`score_samples`.
        y : None
            Ignored.

        Returns
        -------
        self
        """
        data = self._fit_data(X)
        self._train(data)
        self._set_offset(-self._anomaly_scores(data))
        return self

    def _n_validation(self, n_samples: int) -> int:
        if not self.validation_fraction:
            return 0
        n_val = math.ceil(self.validation_fraction * n_samples)
        if n_samples - n_val < 1:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} holds out {n_val} of "
                f"n_samples={n_samples} samples and leaves none to train on; give more "
                "samples or set validation_fraction=None."
            )
        return n_val

    def _train(self, data: torch.Tensor) -> None:
        n_samples = data.shape[0]
        n_val = self._n_validation(n_samples)
        seed = seed_from_random_state(self.random_state)
        device = resolve_device(self.device)
        perm = np.random.RandomState(seed).permutation(n_samples)
        train = data[torch.from_numpy(np.sort(perm[n_val:]))]
        val = data[torch.from_numpy(np.sort(perm[:n_val]))]
        n_train = train.shape[0]
        bs = self.batch_size

        history = []
        best_loss, best_state, best_epoch, bad_epochs = math.inf, None, 0, 0
        with _seeded(seed, device):
            module = self._build_module().to(device)
            optimizers = self._make_optimizers(module)
            bar = progress(
                range(1, self.max_epochs + 1), verbose=self.verbose, desc=type(self).__name__,
                unit="epoch",
            )
            for epoch in bar:
                module.train()
                order = torch.randperm(n_train)
                sums: dict[str, float] = {}
                for start in range(0, n_train, bs):
                    idx = order[start : start + bs]
                    batch = self._augment(train[idx].to(device))
                    parts = self._train_step(module, batch, optimizers)
                    for key, value in parts.items():
                        sums[key] = sums.get(key, 0.0) + value * len(idx)
                row = {"epoch": epoch, "train_loss": sums.pop("loss") / n_train, "val_loss": np.nan}
                row.update({f"train_{k}": v / n_train for k, v in sums.items()})
                if not math.isfinite(row["train_loss"]):
                    raise FloatingPointError(
                        f"{type(self).__name__}: the training loss became {row['train_loss']} at "
                        f"epoch {epoch}; lower learning_rate."
                    )
                if n_val:
                    row["val_loss"] = self._evaluate(module, val, device)
                    if row["val_loss"] < best_loss:
                        best_loss, best_epoch, bad_epochs = row["val_loss"], epoch, 0
                        best_state = copy.deepcopy(module.state_dict())
                    else:
                        bad_epochs += 1
                history.append(row)
                bar.set_postfix(
                    {k: f"{v:.4g}" for k, v in row.items() if k in ("train_loss", "val_loss")}
                )
                if n_val and bad_epochs >= self.patience:
                    break
            bar.close()
        if best_state is not None:
            module.load_state_dict(best_state)
        module.eval()
        self.module_ = module
        self.history_ = pd.DataFrame(history)
        self.n_epochs_ = len(history)
        self.best_epoch_ = best_epoch if n_val else len(history)

    def _evaluate(self, module, data, device) -> float:
        module.eval()
        total = 0.0
        with torch.no_grad():
            for start in range(0, data.shape[0], self.batch_size):
                batch = data[start : start + self.batch_size].to(device)
                total += float(self._validation_loss(module, batch)) * batch.shape[0]
        return total / data.shape[0]

    # -------------------------------------------------------------- inference
    #: dtype of inference (float64 makes scores independent of batch composition).
    _inference_dtype = torch.float32

    def _inference_module(self):
        device = resolve_device(self.device)
        module = self.module_
        param = next(module.parameters())
        if param.device != device or param.dtype != self._inference_dtype:
            module.to(device=device, dtype=self._inference_dtype)
        module.eval()
        return module, device

    def _run(self, data: torch.Tensor, fn) -> torch.Tensor:
        """Apply ``fn(module, batch)`` batch-wise in eval mode under inference_mode."""
        module, device = self._inference_module()
        out = []
        with torch.inference_mode():
            for start in range(0, data.shape[0], self.batch_size):
                batch = data[start : start + self.batch_size].to(device, self._inference_dtype)
                out.append(fn(module, batch).cpu())
        return torch.cat(out)

    def _anomaly_scores(self, data) -> np.ndarray:
        return self._run(data, self._batch_scores).numpy().astype(np.float64)

    def score_samples(self, X: Sequence[str | os.PathLike[str]] | ArrayLike) -> NDArray[np.float64]:
        """Normality score of each sample: higher = more normal.

        Parameters
        ----------
        X : array-like
            Samples (see the class docstring for the accepted input).

        Returns
        -------
        ndarray of float64, shape (n_samples,)
            The opposite of the anomaly score.
        """
        check_is_fitted(self, "module_")
        return -self._anomaly_scores(self._predict_data(X))

    # ---------------------------------------------------------------- pickling
    def __getstate__(self):
        state = super().__getstate__()
        module = state.get("module_")
        if module is not None:
            state = dict(state)
            state["module_"] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        return state

    def __setstate__(self, state):
        weights = state.get("module_")
        super().__setstate__(state)
        if isinstance(weights, dict):
            with _seeded(0, torch.device("cpu")):
                module = self._build_module()
            module.load_state_dict(weights)
            self.module_ = module.eval()


class AnomalyMapMixin(LocalizationMixin):
    """``anomaly_map`` from a model's per-location error maps.

    The model defines ``_error_maps(module, batch) -> Tensor (n, h, w)`` and
    the working resolution ``_map_size()``. Error maps are upsampled
    (bilinear) to the working resolution, smoothed with a Gaussian of
    ``smoothing_sigma`` pixels there (:func:`~._nn._functional.smooth_maps`,
    on the device), and finally resized to the resolution of the input
    images (:func:`~._nn._functional.resize_maps`, on the CPU). The image
    anomaly score is, unless the model says otherwise, the reduction of the
    smoothed map that ``score_mode`` names (``_map_scores``).
    """

    if TYPE_CHECKING:  # provided by the detector, its input mixin and BaseTorchDetector
        score_mode: str
        quantile: float
        batch_size: int

        def _predict_data(self, X): ...

        def _run(self, data: torch.Tensor, fn) -> torch.Tensor: ...

        def _anomaly_scores(self, data) -> np.ndarray: ...

    def _smoothed_maps(self, module, batch):
        return smooth_maps(self._error_maps(module, batch), self._map_size(), self.smoothing_sigma)

    def _map_reduction(self) -> str | None:
        """How the image score reduces the smoothed map ("mean", "max" or
        "quantile"), or None when the score does not come from the map."""
        return self.score_mode

    def _map_scores(self, module, batch):
        maps = self._smoothed_maps(module, batch)
        return _reduce_maps(maps, self._map_reduction(), self.quantile)

    def _batch_scores(self, module, batch):
        """Image anomaly scores: the reduction of the smoothed maps (by default)."""
        return self._map_scores(module, batch)

    def _scores_and_maps(self, X, with_scores):
        """Maps at the input resolution (and scores), ``batch_size`` images at a time.

        Only the images' sizes are read up front (file headers or the array
        shape); each batch is decoded at the working size, run and turned into
        maps written into the output, so memory follows the batch, not the
        input's native resolution.
        """
        check_is_fitted(self, "module_")
        paths, array = check_image_input(X)
        source = paths if paths is not None else array
        sizes = (
            {read_image_size(p) for p in paths}
            if paths is not None
            else {tuple(int(s) for s in array.shape[1:3])}
        )
        if len(sizes) > 1:
            raise ValueError(
                f"Images have different sizes {sorted(sizes)}; anomaly maps need images of "
                "one size."
            )
        size = sizes.pop()
        maps_out = np.empty((len(source), *size), dtype=np.float32)
        scores = np.empty(len(source), dtype=np.float64)
        reduction = self._map_reduction()
        for start in range(0, len(source), self.batch_size):
            data = self._predict_data(source[start : start + self.batch_size])
            maps = self._run(data, self._smoothed_maps)
            stop = start + len(maps)
            maps_out[start:stop] = resize_maps(maps, size).numpy()
            if not with_scores:
                continue
            if reduction is None:
                scores[start:stop] = self._anomaly_scores(data)
            else:
                scores[start:stop] = _reduce_maps(maps, reduction, self.quantile).numpy()
        return scores, maps_out
