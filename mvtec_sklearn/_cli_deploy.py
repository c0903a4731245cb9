"""The ``fit``, ``predict`` and ``export`` sub-commands of ``mvtec-sklearn``.

``fit`` trains a registry model or a factory's estimator on good images,
calibrates its thresholds on held-out good images and saves it with
:func:`mvtec_sklearn.deploy.save_model`; ``predict`` scores files or folders
with a saved or exported model; ``export`` writes TorchScript or ONNX.
Heavy packages (torch, matplotlib) are imported only when a command runs.
"""

from __future__ import annotations

import ast
import importlib
import os
from typing import Any

__all__ = ["add_deploy_parsers"]


def add_deploy_parsers(sub: Any) -> None:
    """Register the ``fit``, ``predict`` and ``export`` sub-parsers on ``sub``."""
    fit = sub.add_parser(
        "fit", help="train a model on good images, calibrate its thresholds and save it",
        description="Train a registry model (see `mvtec-sklearn models`) or the estimator "
        "returned by an importable factory ('package.module:function') on good images, hold out "
        "some of them to calibrate the image threshold (and the pixel threshold of map models) "
        "and save everything to one joblib file.")
    fit.set_defaults(handler=_fit)
    fit.add_argument("model", help="registry name or 'package.module:factory'")
    source = fit.add_mutually_exclusive_group(required=True)
    source.add_argument("--root", help="MVTec-format dataset folder (with --category)")
    source.add_argument("--train", help="folder of good training images (searched recursively)")
    fit.add_argument("--category", help="category under --root; its train/good images are used")
    fit.add_argument("--save", required=True, help="model file to write, e.g. model.joblib")
    fit.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="set an estimator parameter (repeatable); VALUE is a Python literal "
                     "or a string; pipeline steps accept 'step__key' or an unambiguous 'key'")
    fit.add_argument("--image-size", type=int, default=None,
                     help="side length images are resized to (registry models)")
    fit.add_argument("--random-state", type=int, default=0, metavar="SEED",
                     help="seed of the model and of the calibration split (default: %(default)s)")
    fit.add_argument("--target-fpr", type=float, default=0.05,
                     help="share of held-out good images flagged (default: %(default)s)")
    fit.add_argument("--pixel-calibration", choices=["synthetic", "fpr"], default="synthetic",
                     help="mask threshold of map models: best F1 on pseudo-defects pasted into "
                     "held-out good images, or a false-positive rate on their pixels "
                     "(default: %(default)s)")
    fit.add_argument("--pixel-target-fpr", type=float, default=0.01,
                     help="share of held-out good pixels flagged, with --pixel-calibration fpr "
                     "(default: %(default)s)")
    fit.add_argument("--calibration-fraction", type=float, default=0.2,
                     help="share of good images held out to calibrate on (default: %(default)s)")
    fit.add_argument("--no-calibration", action="store_true",
                     help="keep the detector's own threshold (offset_); no masks")
    fit.add_argument("--quiet", action="store_true", help="no progress bars")

    pred = sub.add_parser(
        "predict", help="score image files or folders with a saved or exported model",
        description="Write OUT/scores.csv (path, anomaly_score, decision, threshold) and, for "
        "models with anomaly maps, OUT/overlays/*.png (heatmap over the image) and "
        "OUT/masks/*.png (white = anomalous).")
    pred.set_defaults(handler=_predict)
    pred.add_argument("model", help="file written by `fit` or `export` (.joblib, .pt, .onnx)")
    pred.add_argument("inputs", nargs="+", help="image files and folders")
    pred.add_argument("--out", default="predictions", help="output folder (default: %(default)s)")
    pred.add_argument("--threshold", type=float, default=None,
                      help="image threshold on the anomaly score (default: the model's)")
    pred.add_argument("--pixel-threshold", type=float, default=None,
                      help="map threshold of the masks (default: the model's)")
    pred.add_argument("--batch-size", type=int, default=16,
                      help="images scored at a time (default: %(default)s)")
    pred.add_argument("--quiet", action="store_true", help="no progress bar")

    exp = sub.add_parser("export", help="export a saved model to TorchScript or ONNX",
                         description="Export a model saved by `fit` (PatchCore, PaDiM, or a deep "
                         "featurizer pipeline ending in kNN, one-class SVM, LOF, isolation "
                         "forest or a feature autoencoder/VAE) with its preprocessing and "
                         "thresholds.")
    exp.set_defaults(handler=_export)
    exp.add_argument("model", help="file written by `fit`")
    exp.add_argument("--out", required=True, help="output file")
    exp.add_argument("--format", choices=["torchscript", "onnx"], default=None,
                     help="default: from the --out suffix (.onnx -> onnx, else torchscript)")


def _literal(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parse_params(items):
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}.")
        params[key.strip()] = _literal(value.strip())
    return params


def _build_model(name, image_size, random_state):
    if ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"Cannot import the factory {name!r}: {exc}") from exc
        return factory()
    from sklearn.pipeline import make_pipeline

    from mvtec_sklearn.benchmark import MODEL_REGISTRY

    if name not in MODEL_REGISTRY:
        raise ValueError(
            f"Unknown model {name!r}; use a name from `mvtec-sklearn models` or "
            "'package.module:factory'."
        )
    featurizer, detector = MODEL_REGISTRY[name].build(image_size=image_size,
                                                       random_state=random_state)
    return detector if featurizer is None else make_pipeline(featurizer, detector)


def _set_params(model, params):
    available = model.get_params(deep=True)
    resolved = {}
    for key, value in params.items():
        if key not in available:
            matches = [k for k in available if k.endswith("__" + key)]
            if len(matches) != 1:
                raise ValueError(
                    f"Unknown parameter {key!r} for {type(model).__name__}; valid: "
                    f"{sorted(available)}."
                )
            key = matches[0]
        resolved[key] = value
    return model.set_params(**resolved)


def _show_progress(model, show=True):
    """Turn the progress bars of this package's estimators inside ``model`` on or off."""
    params = model.get_params(deep=True)
    for key in params:
        if key == "verbose" or key.endswith("__verbose"):
            owner = model if key == "verbose" else params[key.rsplit("__", 1)[0]]
            if type(owner).__module__.startswith("mvtec_sklearn"):
                model.set_params(**{key: show})


def _training_paths(args):
    if args.train is not None:
        from mvtec_sklearn.deploy._files import collect_images

        return [path for path, _ in collect_images([args.train])]
    if not args.category:
        raise ValueError("--root needs --category (a category folder under the root).")
    from mvtec_sklearn.datasets import load_mvtec

    return list(load_mvtec(args.root, args.category, split="train").paths)


def _fit(args):
    from mvtec_sklearn.deploy import save_model
    from mvtec_sklearn.model_selection import CalibratedThresholdDetector

    paths = _training_paths(args)
    params = _parse_params(args.param)
    model = _set_params(_build_model(args.model, args.image_size, args.random_state), params)
    if not args.quiet:
        _show_progress(model)
    if not args.no_calibration:
        model = CalibratedThresholdDetector(
            model, target_fpr=args.target_fpr,
            pixel_method=args.pixel_calibration if hasattr(model, "anomaly_map") else None,
            pixel_target_fpr=args.pixel_target_fpr,
            calibration_fraction=args.calibration_fraction, random_state=args.random_state)
    model.fit(paths)
    source = ({"train": os.path.abspath(args.train)} if args.train is not None else
              {"root": os.path.abspath(args.root), "category": args.category})
    meta = save_model(model, args.save, training_data=paths,
                      extra={"model": args.model, "params": {k: repr(v) for k, v in params.items()},
                             "source": source})
    pixel = meta["pixel_threshold"]
    print(f"Fitted {args.model} on {len(paths)} images; image threshold {meta['threshold']:.6g}"
          + ("" if pixel is None else f", pixel threshold {pixel:.6g}")
          + f". Saved to {os.path.abspath(args.save)}")
    return 0


def _predict(args):
    from mvtec_sklearn.deploy import load_model, predict_images

    model = load_model(args.model)
    if hasattr(model, "get_params"):
        _show_progress(model, False)  # predict has its own bar
    table = predict_images(model, args.inputs, args.out, threshold=args.threshold,
                           pixel_threshold=args.pixel_threshold, batch_size=args.batch_size,
                           verbose=not args.quiet)
    n_bad = int((table["decision"] == "anomalous").sum())
    out = os.path.abspath(args.out)
    print(f"Scored {len(table)} images: {n_bad} anomalous. Scores: {os.path.join(out, 'scores.csv')}")
    if os.path.isdir(os.path.join(out, "masks")):
        print(f"Overlays: {os.path.join(out, 'overlays')}, masks: {os.path.join(out, 'masks')}")
    return 0


def _export(args):
    from mvtec_sklearn.deploy import export_onnx, export_torchscript, load_model

    model, meta = load_model(args.model, with_metadata=True)
    fmt = args.format or ("onnx" if args.out.lower().endswith(".onnx") else "torchscript")
    export = export_onnx if fmt == "onnx" else export_torchscript
    export(model, args.out, metadata={"training": meta.get("training"),
                                      "versions": meta.get("versions")})
    print(f"Exported to {os.path.abspath(args.out)} ({fmt})")
    return 0
