"""Training: from a corpus folder to a run folder a reader (and ``convert``) can use.

A run folder holds:

* ``model.keras``   the trained model, saved without optimiser state;
* ``features.json`` the FeatureParams (``FeatureParams.to_json()``);
* ``normalisation.json`` the global per-coefficient mean/variance (also inside
  the model, as its first layer);
* ``run.json``      data path, layout, split, fold, seed, recipe, labels, counts;
* ``metrics.json``  split, accuracy (fraction), per-class P/R/F1, macro, confusion;
* ``confusion.png``, ``curves.png``, ``report.md``.

``load_run_data(run_dir)`` rebuilds the exact clean train and test arrays.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from ..atomic import new_folder, refuse_existing, refuse_foreign_folder
from ..config import FeatureParams
from ..model import decision_indices
from .augment import AugmentParams
from .cache import extract
from .datasets import (LABELS, Dataset, DatasetError, Split, labels_for, load_many, make_split, problem_summary,
                       stratified_random)

# The seed project's features: whole clip, no trimming, no per-clip normalisation.
SEED_FEATURES = dict(trim_db=None, cmvn=False)

BABBLE_SOURCES = ("synthetic", "training", "both")


@dataclasses.dataclass
class Recipe:
    """Everything that decides a trained model besides the data and the split."""

    arch: str = "cnn"
    epochs: int = 40
    batch_size: int = 128
    learning_rate: float = 2e-3
    seed: int = 0
    split_seed: int | None = None
    """Seed of the split (speaker groups, the random split) when it differs from ``seed`` (weights,
    shuffling, augmentation): a variation with another ``seed`` keeps the same folds; None: ``seed``."""
    val_fraction: float = 0.1
    patience: int = 0
    """Early stopping on validation loss after this many epochs without gain; 0 = off."""
    label_smoothing: float = 0.0
    spec_masks: int = 0
    """SpecAugment-style masks per training example and epoch (``masking.py``): this many spans of
    up to 10 frames and as many of up to 3 coefficients set to 0; 0 = off."""
    mixup: float = 0.0
    """Mixup's Beta parameter (``masking.mix_pairs``): every training digit blended with another digit
    of its batch, labels alike (the unknown class is left unmixed); 0 = off."""
    augment: AugmentParams = dataclasses.field(default_factory=AugmentParams)
    synth: str | list[str] | None = None
    """Folder(s) of synthetic clips (FSDD layout) added to every training set."""
    synth_copies: int = 1
    """Augmented copies per synthetic clip (besides the clean one)."""
    backwards_unknown: float = 0.0
    """Share of the real training clips also trained, played backwards and augmented once, as
    ``unknown``: speech-like sounds of real voices that are no digit."""
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    teachers: list[str] | None = None
    """Run folders whose models, trained on the same split, soften the training targets
    (``distill.py``): fold K's model for speaker fold K, the run's int8 model otherwise."""
    teacher_weight: float = 0.5
    """Share of the teachers' mean probabilities in each training target."""
    babble: str = "synthetic"
    """Where the capture chain's babble voices come from: "synthetic" (the synthetic speakers, the
    same bank for every fold), "training" (the split's real training clips) or "both"."""

    def __post_init__(self):
        if self.babble not in BABBLE_SOURCES:
            raise ValueError(f"babble must be one of {', '.join(BABBLE_SOURCES)}, not {self.babble!r}")
        if self.arch == "ensemble":
            members = self.model_kwargs.get("members")
            if set(self.model_kwargs) != {"members"} or not isinstance(members, list) or len(members) < 2 \
                    or not all(isinstance(m, dict) for m in members):
                raise ValueError('an ensemble needs model_kwargs {"members": [{...}, {...}]}: at least two '
                                 'members, each a dict of its arch (default cnn) and model_kwargs')

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def splitting_seed(self) -> int:
        """The seed the split is drawn with."""
        return self.seed if self.split_seed is None else self.split_seed

    @classmethod
    def from_dict(cls, data: dict) -> "Recipe":
        data = dict(data)
        aug = data.pop("augment", {}) or {}
        aug = {k: tuple(v) if isinstance(v, list) else v for k, v in aug.items()}
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(augment=AugmentParams(**aug), **{k: v for k, v in data.items() if k in known})


@dataclasses.dataclass
class Arrays:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    summary: dict
    problems: list
    test: np.ndarray
    """Indices of the test clips (the rows of x_test) in the dataset's clip list."""
    y_soft: np.ndarray | None = None
    """Training targets softened by teachers, shape (n_train, n_labels); None: one-hot y_train."""

    @property
    def labels(self) -> list[str]:
        """The model's output labels: the digits, plus ``unknown`` when non-digit clips are in training."""
        return labels_for(self.y_train)


def _quiet_tf():
    """TensorFlow, imported without its start-up log lines unless logging is at DEBUG (--debug).

    TensorFlow 2.21 writes absl/oneDNN lines to file descriptor 2 while it is
    imported, whatever TF_CPP_MIN_LOG_LEVEL says; they are discarded for the
    import only, so later warnings and errors still reach the terminal.
    """
    import logging
    import sys

    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    if not debug:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" not in sys.modules and not debug:
        sys.stderr.flush()
        saved = os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
    import tensorflow as tf

    tf.get_logger().setLevel(logging.DEBUG if debug else logging.ERROR)
    return tf


def split_indices(ds: Dataset, split: Split, ok: np.ndarray, recipe: Recipe):
    """(train, val, test) clip indices: unreadable clips removed, validation carved if needed."""
    train = split.train[ok[split.train]]
    test = split.test[ok[split.test]]
    val = split.val[ok[split.val]] if len(split.val) else None
    if val is None:
        if recipe.val_fraction > 0:
            keep, held = stratified_random(ds.digits[train], recipe.val_fraction, recipe.seed + 1)
            val, train = train[held], train[keep]
        else:
            val = np.zeros(0, dtype=np.int64)
    return train, val, test


def babble_clip_paths(ds: Dataset, train: np.ndarray, synth: Dataset | None, source: str) -> list:
    """The clips babble is mixed from (``Recipe.babble``): the synthetic clips, the real training
    clips (indices ``train`` of ``ds``), or both; the training clips when there is no synthetic
    set. Never a test speaker's clip."""
    synthetic = [c.path for c in synth.clips] if synth is not None else []
    real = [ds.clips[i].path for i in train]
    if source == "synthetic" and synthetic:
        return synthetic
    return real + synthetic if source == "both" else real


def with_capture_sources(aug: AugmentParams, babble_paths: list, rate: int,
                         cache_dir=None) -> AugmentParams:
    """``aug`` with its babble bank built from ``babble_paths`` and the room bank ready.

    ``babble_clip_paths`` chooses them: by default the synthetic speakers, the
    same for every fold, so augmented features are cached once.
    """
    from .augment import prepare_capture
    from .capture import build_babble_bank

    aug = prepare_capture(aug, rate, cache_dir)
    bank = build_babble_bank(babble_paths, rate, cache_dir=cache_dir)
    return dataclasses.replace(aug, babble_bank=str(bank))


def prepare(ds: Dataset, split: Split, params: FeatureParams, recipe: Recipe,
            synth: Dataset | None = None, cache_dir=None, progress: bool = True,
            augment: bool = True) -> Arrays:
    """Feature arrays for one split: train (clean + augmented copies + synthetic), val, test clean."""
    x, ok, problems = extract(ds.clips, params, cache_dir=cache_dir, progress=progress,
                              label=f"{ds.layout} features")
    y = ds.digits
    train, val, test = split_indices(ds, split, ok, recipe)
    parts_x, parts_y = [x[train]], [y[train]]
    aug = recipe.augment
    if augment and aug.capture > 0 and (aug.copies > 0 or synth is not None):
        aug = with_capture_sources(aug, babble_clip_paths(ds, train, synth, recipe.babble),
                                   params.sample_rate, cache_dir)
    if augment and aug.copies > 0:
        xa, _, _ = extract(ds.clips, params, aug, seed=recipe.seed, cache_dir=cache_dir,
                           progress=progress, label=f"{ds.layout} augmented x{aug.copies}")
        parts_x.append(xa[train].reshape(-1, *params.input_shape))
        parts_y.append(np.repeat(y[train], aug.copies))
    n_synth = 0
    if synth is not None:
        xs, oks, sp = extract(synth.clips, params, cache_dir=cache_dir, progress=progress,
                              label="synthetic features")
        problems = problems + sp
        ys = synth.digits[oks]
        parts_x.append(xs[oks])
        parts_y.append(ys)
        n_synth = int(oks.sum())
        if augment and recipe.synth_copies > 0:
            xsa, _, _ = extract(synth.clips, params, aug, copies=recipe.synth_copies,
                                seed=recipe.seed, cache_dir=cache_dir, progress=progress,
                                label=f"synthetic augmented x{recipe.synth_copies}")
            parts_x.append(xsa[oks].reshape(-1, *params.input_shape))
            parts_y.append(np.repeat(ys, recipe.synth_copies))
    n_backwards = 0
    if recipe.backwards_unknown > 0:
        pick = train[np.random.default_rng([recipe.seed, 2]).random(len(train)) < recipe.backwards_unknown]
        xb, okb, _ = extract([ds.clips[i] for i in pick], params, aug if augment else None, copies=1,
                             seed=recipe.seed, cache_dir=cache_dir, progress=progress,
                             label="backwards clips", backwards=True)
        xb = xb[okb].reshape(-1, *params.input_shape)
        parts_x.append(xb)
        parts_y.append(np.full(len(xb), len(LABELS), dtype=y.dtype))
        n_backwards = len(xb)
    x_train, y_train = np.concatenate(parts_x), np.concatenate(parts_y)
    speakers = np.array([c.speaker for c in ds.clips])
    summary = {
        "split": split.name, "fold": split.fold, "test_speakers": list(split.test_speakers),
        "clips": {"train": int(len(train)), "val": int(len(val)), "test": int(len(test)),
                  "synthetic": n_synth, "backwards_unknown": n_backwards,
                  "training_examples": int(len(x_train))},
        "speakers": {"train": sorted(set(speakers[train])), "val": sorted(set(speakers[val])),
                     "test": sorted(set(speakers[test]))},
        "train_per_digit": np.bincount(y[train], minlength=10).tolist(),
        "training_examples_per_label": np.bincount(y_train).tolist(),
        "test_per_digit": np.bincount(y[test], minlength=10).tolist(),
        "skipped": [list(p) for p in problems],
    }
    arrays = Arrays(x_train, y_train, x[val], y[val], x[test], y[test], summary, problems, test)
    if recipe.teachers:
        arrays.y_soft = teacher_targets(arrays, split, params, recipe, progress)
    return arrays


def teacher_targets(arrays: Arrays, split: Split, params: FeatureParams, recipe: Recipe,
                    progress: bool = True) -> np.ndarray:
    """``arrays``' training targets softened by ``recipe.teachers`` (``distill.soft_targets``)."""
    import click

    from .distill import load_teacher, soft_targets

    teachers = [load_teacher(t, split, params, arrays.labels) for t in recipe.teachers or ()]
    n = len(arrays.x_train) * len(teachers)
    with click.progressbar(length=n, label=f"{len(teachers)} teachers", file=sys.stderr,
                           hidden=not progress) as bar:
        return soft_targets(arrays.x_train, arrays.y_train, teachers, recipe.teacher_weight, bar.update)


def epoch_line(epoch: int, epochs: int, logs: dict, elapsed: float) -> str:
    """One progress line: epoch k/n, loss and accuracies, time per epoch and time left."""
    per_epoch = elapsed / epoch
    parts = [f"epoch {epoch}/{epochs}", f"loss {logs.get('loss', float('nan')):.3f}",
             f"acc {logs.get('accuracy', float('nan')):.3f}"]
    if "val_accuracy" in logs:
        parts.append(f"val acc {logs['val_accuracy']:.3f}")
    left = per_epoch * (epochs - epoch)
    parts.append(f"{per_epoch:.0f} s/epoch, ~{left / 60:.1f} min left" if epoch < epochs
                 else f"{elapsed / 60:.1f} min")
    return "  ".join(parts)


def _progress_callback(epochs: int, echo):
    import keras

    class EpochProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.time()

        def on_epoch_end(self, epoch, logs=None):
            echo(epoch_line(epoch + 1, epochs, logs or {}, time.time() - self.start))

    return EpochProgress()


def train_model(arrays: Arrays, params: FeatureParams, recipe: Recipe, verbose: int = 0,
                echo=None):
    """Fit a fresh model; returns (model without optimiser, history dict, seconds).

    ``echo``, when given, receives one progress line per epoch (unless Keras's
    own ``verbose`` output is on).
    """
    if recipe.arch == "ensemble":
        return _train_ensemble(arrays, params, recipe, verbose, echo)
    tf = _quiet_tf()
    import keras

    from .models import build

    keras.utils.set_random_seed(recipe.seed)
    n_classes = len(arrays.labels)
    model = build(recipe.arch, params.input_shape, arrays.x_train, n_classes=n_classes, **recipe.model_kwargs)
    steps = int(np.ceil(len(arrays.x_train) / recipe.batch_size)) * recipe.epochs
    schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, max(1, steps), alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.label_smoothing),
                  metrics=["accuracy"])
    # explicit, shuffled data: never Keras validation_split (it takes the tail unshuffled)
    rng = np.random.default_rng(recipe.seed)
    order = rng.permutation(len(arrays.x_train))
    callbacks = [_progress_callback(recipe.epochs, echo)] if echo and not verbose else []
    has_val = len(arrays.x_val) > 0
    if recipe.patience and has_val:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=recipe.patience, restore_best_weights=True))
    y_train = (arrays.y_soft if arrays.y_soft is not None
               else keras.utils.to_categorical(arrays.y_train, n_classes))[order]
    if recipe.spec_masks or recipe.mixup:
        from .masking import MaskParams, augmented_batches

        masks = MaskParams(time_masks=recipe.spec_masks, coef_masks=recipe.spec_masks) if recipe.spec_masks else None
        pure = (arrays.y_train[order] == arrays.labels.index("unknown")) if "unknown" in arrays.labels else None
        inputs = dict(x=augmented_batches(arrays.x_train[order], y_train, recipe.batch_size, masks, recipe.seed,
                                          recipe.mixup, pure))
    else:
        inputs = dict(x=arrays.x_train[order], y=y_train, batch_size=recipe.batch_size, shuffle=True)
    start = time.time()
    history = model.fit(
        **inputs,
        validation_data=(arrays.x_val, keras.utils.to_categorical(arrays.y_val, n_classes)) if has_val else None,
        epochs=recipe.epochs, verbose=verbose, callbacks=callbacks)
    seconds = time.time() - start
    # a fresh, never-compiled copy: model.save() would otherwise store the optimiser state
    clean = keras.Model.from_config(model.get_config())
    clean.set_weights(model.get_weights())
    del tf
    return clean, {k: [float(v) for v in vs] for k, vs in history.history.items()}, seconds


def _train_ensemble(arrays: Arrays, params: FeatureParams, recipe: Recipe, verbose: int, echo):
    """``arch="ensemble"``: train each of ``model_kwargs["members"]`` (dicts of a member's
    ``arch``, default "cnn", and its model_kwargs) alone on the same examples with seed
    ``recipe.seed + i``, then average their probabilities in one model (``models.average``).
    The first member is the model the recipe with its arch and kwargs alone would train.
    Returns (model, {"members": [history, ...]}, seconds)."""
    from .models import average

    members = recipe.model_kwargs["members"]  # checked by Recipe
    models, histories, seconds = [], [], 0.0
    for i, member in enumerate(members):
        kwargs = dict(member)
        single = dataclasses.replace(recipe, arch=kwargs.pop("arch", "cnn"), model_kwargs=kwargs, seed=recipe.seed + i)
        say = (lambda line, i=i: echo(f"member {i + 1}/{len(members)}  {line}")) if echo else None
        model, history, s = train_model(arrays, params, single, verbose, say)
        models.append(model)
        histories.append(history)
        seconds += s
    return average(models, params.input_shape), {"members": histories}, seconds


def predict(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def resolve_params(features: str | None) -> FeatureParams:
    """'default' (None), 'seed' (the seed project's features) or a features.json path."""
    if features in (None, "", "default"):
        return FeatureParams()
    if features == "seed":
        return FeatureParams(**SEED_FEATURES)
    return FeatureParams.from_json(Path(features).read_text())


def default_run_dir(arch: str, split: Split) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fold = f"-fold{split.fold}" if split.fold is not None else ""
    return Path("runs") / f"{arch}-{split.name}{fold}-{stamp}"


def data_paths(data) -> str | list[str]:
    """Absolute corpus path(s) as stored in run.json: one string, or a list for several."""
    paths = [data] if isinstance(data, (str, Path)) else list(data)
    resolved = [str(Path(p).resolve()) for p in paths]
    return resolved[0] if len(resolved) == 1 else resolved


def run(data, out: str | Path | None = None, split_name: str = "official",
        fold: int | None = None, recipe: Recipe | None = None,
        params: FeatureParams | None = None, cache_dir=None, progress: bool = True,
        verbose: int = 0, echo=print, force: bool = False) -> Path:
    """Train one model and write its run folder; returns the folder.

    The folder is filled under a temporary name and renamed at the end; an
    existing ``out`` is refused (before training) unless ``force``.
    """
    from .evaluate import metrics, write_report

    recipe = recipe or Recipe()
    params = params or FeatureParams()
    if out is not None:
        refuse_existing(Path(out), force)
        refuse_foreign_folder(Path(out), "run.json")
    t0 = time.time()
    ds = load_many(data)
    if ds.problems:
        echo(problem_summary(ds.problems))
    split = make_split(ds, split_name, fold, recipe.splitting_seed)
    synth = load_many(recipe.synth, synthetic=True) if recipe.synth else None
    arrays = prepare(ds, split, params, recipe, synth, cache_dir, progress)
    if arrays.problems and arrays.problems != ds.problems:
        echo(problem_summary([p for p in arrays.problems if p not in ds.problems]))
    if not len(arrays.x_train) or not len(arrays.x_test):
        raise DatasetError(f"no usable {'training' if not len(arrays.x_train) else 'test'} clips "
                           f"({split.describe()}); nothing to train on")
    t_features = time.time() - t0
    echo(f"training {recipe.arch} on {len(arrays.x_train)} examples "
         f"({split.describe()}, {recipe.epochs} epochs)")
    model, history, t_train = train_model(arrays, params, recipe, verbose,
                                          echo if progress else None)
    probs = predict(model, arrays.x_test)
    result = metrics(arrays.y_test, decision_indices(probs, arrays.labels), arrays.labels)
    result.update({"split": split.name, "fold": split.fold,
                   "test_speakers": list(split.test_speakers), "n_test": int(len(arrays.y_test))})
    out = Path(out) if out else default_run_dir(recipe.arch, split)
    info = {
        "data": data_paths(data), "layout": ds.layout, "split": split.name,
        "fold": split.fold, "seed": recipe.seed, "recipe": recipe.to_dict(),
        "labels": arrays.labels, "input_shape": list(params.input_shape),
        "features_hash": params.stable_hash(), "parameters": int(model.count_params()),
        "data_summary": arrays.summary,
        "timing_seconds": {"features": round(t_features, 1), "training": round(t_train, 1),
                           "total": round(time.time() - t0, 1)},
        "history": history,
    }
    with new_folder(out, force) as folder:  # the run appears whole, or not at all
        model.save(folder / "model.keras")
        (folder / "features.json").write_text(params.to_json() + "\n")
        (folder / "normalisation.json").write_text(json.dumps(normalisation(model), indent=1) + "\n")
        (folder / "run.json").write_text(json.dumps(info, indent=1) + "\n")
        (folder / "metrics.json").write_text(json.dumps(result, indent=1) + "\n")
        write_report(folder, info, result, history)
    echo(f"{split.describe()}: accuracy {result['accuracy']:.4f} on {len(arrays.y_test)} clips "
         f"-> {out} ({time.time() - t0:.0f} s)")
    return out


def normalisation(model) -> dict:
    """The global per-coefficient statistics inside a model (its ``standardise`` layer), for
    normalisation.json; an ensemble's as {"members": [...]}, one per member."""
    if model.name == "ensemble":
        return {"members": [normalisation(layer) for layer in model.layers if hasattr(layer, "get_layer")]}
    norm = model.get_layer("standardise")
    return {"axis": -1, "mean": np.asarray(norm.mean).ravel().tolist(),
            "variance": np.asarray(norm.variance).ravel().tolist(),
            "note": "global per-coefficient statistics of the training split; applied inside the model"}


def read_run(run_dir: str | Path) -> tuple[dict, FeatureParams, Recipe]:
    run_dir = Path(run_dir)
    info = json.loads((run_dir / "run.json").read_text())
    params = FeatureParams.from_json((run_dir / "features.json").read_text())
    return info, params, Recipe.from_dict(info["recipe"])


def load_run_data(run_dir: str | Path, data: str | Path | None = None, cache_dir=None,
                  progress: bool = False, warp: float = 1.0
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test) of a run, clean (no augmentation, no synthetic).

    x_* are float32 ``clip_features`` matrices at mel warp ``warp``, shape (n,
    *params.input_shape), y_* int64 digits. Train is the run's training clips
    (without its validation part), test its held-out split. ``data`` overrides
    the corpus path in run.json.
    """
    info, params, recipe = read_run(run_dir)
    ds = load_many(data or info["data"])
    split = make_split(ds, info["split"], info.get("fold"), recipe.splitting_seed)
    x, ok, _ = extract(ds.clips, params, cache_dir=cache_dir, progress=progress,
                       label=f"{ds.layout} features", warp=warp)
    train, _, test = split_indices(ds, split, ok, recipe)
    y = ds.digits
    return x[train], y[train], x[test], y[test]
