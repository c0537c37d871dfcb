"""Scoring: metrics, plots, the run report, re-scoring a model and speaker folds."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: sittings side by side are not guarded
    fcntl = None  # type: ignore[assignment]

import numpy as np

from ..model import decision_indices
from .datasets import LABELS, load_many, make_split, n_speaker_folds


def metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str] = LABELS) -> dict:
    """Accuracy (fraction), per-class precision/recall/F1/support, macro averages, confusion.

    ``y_pred`` are decided label indices (``model.decision_indices``) into
    ``labels``; with an ``unknown`` label, a digit decided as unknown counts as
    an error, and the macro averages cover the digits only.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n_classes = len(labels)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(cm.sum(0) > 0, tp / cm.sum(0), 0.0)
        recall = np.where(cm.sum(1) > 0, tp / cm.sum(1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    per_class = {labels[k]: {"precision": float(precision[k]), "recall": float(recall[k]),
                             "f1": float(f1[k]), "support": int(cm[k].sum())}
                 for k in range(n_classes)}
    return {
        "accuracy": float(tp.sum() / max(1, len(y_true))),
        "per_class": per_class,
        "macro": {"precision": float(precision[:len(LABELS)].mean()),
                  "recall": float(recall[:len(LABELS)].mean()), "f1": float(f1[:len(LABELS)].mean())},
        "confusion_matrix": cm.tolist(),
        "labels": list(labels),
    }


def per_speaker(speakers: list[str], y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy (fraction) of each speaker's clips, speakers in name order; ``speakers[i]`` says
    clip i's speaker, ``y_true`` and ``y_pred`` are label indices."""
    right = np.asarray(y_true) == np.asarray(y_pred)
    names = np.asarray(speakers)
    return {name: float(right[names == name].mean()) for name in sorted(set(speakers))}


def plot_confusion(cm, path: Path, title: str, labels: list[str] = LABELS) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=90 if len(labels) > len(LABELS) else 0)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true digit")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_curves(history: dict, path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    members = history.get("members", [history])  # an ensemble: one set of curves per member
    for ax, key in zip(axes, ("loss", "accuracy")):
        for k, member in enumerate(members):
            for prefix, style in (("", "-"), ("val_", "--")):
                if prefix + key in member:
                    values = member[prefix + key]
                    name = ("validation " if prefix else "training ") + key
                    ax.plot(range(1, len(values) + 1), values, style, color=f"C{k}",
                            label=f"member {k + 1}, {name}" if len(members) > 1 else name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def split_title(result: dict) -> str:
    text = f"split: {result['split']}"
    if result.get("fold") is not None:
        text += f" fold {result['fold']}"
    if result.get("test_speakers"):
        text += f" (test speakers {', '.join(result['test_speakers'])})"
    return text


def write_report(out: Path, info: dict, result: dict, history: dict) -> None:
    """confusion.png, curves.png and report.md in a run folder."""
    title = f"{info['recipe']['arch']} - {split_title(result)}"
    plot_confusion(result["confusion_matrix"], out / "confusion.png",
                   f"{title}\naccuracy {result['accuracy']:.3f}", result.get("labels", LABELS))
    plot_curves(history, out / "curves.png", title)
    s = info["data_summary"]
    rows = "\n".join(f"| {k} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {v['support']} |"
                     for k, v in result["per_class"].items())
    r = info["recipe"]
    text = f"""# Training run: {r['arch']}, {split_title(result)}

**Accuracy {result['accuracy']:.2%}** on {result['n_test']} held-out clips
({split_title(result)}); macro F1 {result['macro']['f1']:.3f}.

- Data: `{info['data']}` ({info['layout']}); train {s['clips']['train']} clips
  ({len(s['speakers']['train'])} speakers), validation {s['clips']['val']}, test {s['clips']['test']}
  ({len(s['speakers']['test'])} speakers), synthetic {s['clips']['synthetic']};
  {s['clips']['training_examples']} training examples with augmentation; skipped files: {len(s['skipped'])}.
- Model: `{r['arch']}`, {info['parameters']} parameters, input {tuple(info['input_shape'])},
  {r['epochs']} epochs, batch {r['batch_size']}, Adam lr {r['learning_rate']} (cosine), seed {r['seed']}.
- Augmentation: {r['augment']['copies']} copies per clip (speed {r['augment']['speed']}, gain {r['augment']['gain_db']} dB,
  shift +-{r['augment']['shift_seconds']} s, noise {r['augment']['snr_db']} dB SNR, mel warp {1 - r['augment']['warp']:g}-{1 + r['augment'].get('warp_up', 0.0):g}).
- Features: [features.json](features.json) (hash `{info['features_hash']}`); normalisation:
  [normalisation.json](normalisation.json); metrics: [metrics.json](metrics.json); run: [run.json](run.json).
- Time: features {info['timing_seconds']['features']} s, training {info['timing_seconds']['training']} s.

![confusion matrix](confusion.png)

![training curves](curves.png)

| digit | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}
| macro | {result['macro']['precision']:.3f} | {result['macro']['recall']:.3f} | {result['macro']['f1']:.3f} | |
"""
    (out / "report.md").write_text(text)


def evaluate(run_or_model: str | Path, data: str | Path | None, split_name: str | None = None,
             fold: int | None = None, cache_dir=None, progress: bool = True) -> dict:
    """Re-score a run's model (or a .keras file) on a split of a corpus."""
    import keras

    from ..config import FeatureParams
    from .cache import extract
    from .fit import Recipe, _quiet_tf, data_paths, predict, read_run

    _quiet_tf()
    path = Path(run_or_model)
    run_dir = path if path.is_dir() else path.parent
    model_path = path / "model.keras" if path.is_dir() else path
    info, recipe = {}, Recipe()
    if (run_dir / "run.json").is_file():
        info, params, recipe = read_run(run_dir)
    elif (run_dir / "features.json").is_file():
        params = FeatureParams.from_json((run_dir / "features.json").read_text())
    else:
        params = FeatureParams()
    data = data or info.get("data")
    if data is None:
        from ..errors import EdgeError
        raise EdgeError("no --data given and no run.json naming the corpus")
    split_name = split_name or info.get("split", "official")
    if fold is None and split_name == info.get("split"):
        fold = info.get("fold")
    ds = load_many(data)
    split = make_split(ds, split_name, fold, recipe.splitting_seed)
    x, ok, problems = extract(ds.clips, params, cache_dir=cache_dir, progress=progress,
                              label=f"{ds.layout} features")
    test = split.test[ok[split.test]]
    model = keras.models.load_model(model_path, compile=False)
    probs = predict(model, x[test])
    labels = info.get("labels") or LABELS + ["unknown"] * (probs.shape[1] - len(LABELS))
    result = metrics(ds.digits[test], decision_indices(probs, labels), labels)
    result.update({"split": split.name, "fold": split.fold, "test_speakers": list(split.test_speakers),
                   "n_test": int(len(test)), "model": str(model_path), "data": data_paths(data),
                   "skipped": [list(p) for p in ds.problems + problems]})
    if info and split_name == info.get("split") and fold == info.get("fold"):
        result["note"] = "the split the model was trained for"
    return result


def int8_model(model, x_train: np.ndarray, params, labels: list[str] = LABELS, calibration: int = 500,
               warps=(1.0,)):
    """(edge Model deciding over mel ``warps``, TFLite bytes) of a Keras model, full-int8,
    calibrated on training matrices."""
    from ..convert.quantize import convert_keras, representative_set, runtime_model

    content = convert_keras(model, representative_set(x_train, calibration), "int8")
    return runtime_model(content, params, labels, warps=warps), content


def held_out_probabilities(model, ds, test: np.ndarray, x_test: np.ndarray, cache_dir=None,
                           progress: bool = False) -> np.ndarray:
    """Probabilities of the clips ``ds.clips[test]`` as ``model.classify`` decides them, shape
    (n, n_labels) (``quantize.device_probabilities``): ``x_test`` holds their features at warp 1,
    other warps' features come from the feature cache."""
    from ..convert.quantize import device_probabilities
    from .cache import extract

    return device_probabilities(model, lambda w: x_test if w == 1.0 else extract(
        ds.clips, model.params, cache_dir=cache_dir, progress=progress, label=f"{ds.layout} features, warp {w:g}",
        warp=w)[0][test])


def fold_model(run_dir: str | Path, fold: int):
    """The edge Model of fold ``fold`` of ``evaluate RUN --folds`` (``RUN/folds/fold-K.tflite``), deciding
    over the mel warps folds.json names (1 alone if none)."""
    from ..config import FeatureParams
    from ..convert.quantize import runtime_model
    from ..errors import EdgeError

    run_dir = Path(run_dir)
    path = run_dir / "folds" / f"fold-{fold}.tflite"
    if not path.is_file():
        raise EdgeError(f"{path}: no fold model; run `audiomnist-edge evaluate {run_dir} --folds` first")
    try:
        params = FeatureParams.from_json((run_dir / "features.json").read_text())
        result = json.loads((run_dir / "folds.json").read_text())
    except (OSError, ValueError) as exc:
        raise EdgeError(f"{run_dir}: not a fold run of audiomnist-edge evaluate --folds ({exc})") from None
    return runtime_model(path.read_bytes(), params, result.get("labels", LABELS), warps=result.get("warps") or (1.0,))


def fold_held_out(run_dir: str | Path) -> list[tuple[int, list[str], list[tuple[Path, int]]]]:
    """(fold, test speakers, held-out (path, digit) clips) of every fold in ``RUN/folds.json``."""
    from .fit import Recipe

    run_dir = Path(run_dir)
    result = json.loads((run_dir / "folds.json").read_text())
    ds = load_many(result["data"])
    seed = Recipe.from_dict(result["recipe"]).splitting_seed
    out = []
    for row in result["folds"]:
        split = make_split(ds, "speaker", row["fold"], seed)
        out.append((row["fold"], list(split.test_speakers),
                    [(ds.clips[i].path, ds.clips[i].digit) for i in split.test]))
    return out


def fold_summary(rows: list[dict], key: str) -> dict:
    """Mean, standard deviation and worst fold of ``key`` over fold rows."""
    acc = np.array([r[key] for r in rows])
    return {"mean": float(acc.mean()), "std": float(acc.std()), "worst": float(acc.min()),
            "worst_fold": int(rows[int(acc.argmin())]["fold"])}


@contextlib.contextmanager
def _folds_lock(target: Path | None):
    """Hold an exclusive lock on ``target/.folds.lock`` (POSIX; nothing to hold without a target)."""
    if target is None or fcntl is None:
        yield
        return
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".folds.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _earlier_folds(target: Path | None, recipe, params, data, conditions: bool,
                   keep_out: list[int]) -> tuple[list[dict], list[int]]:
    """The rows of ``target/folds.json`` that ``--only`` leaves alone, and the folds left out of it.

    Kept: folds not in ``keep_out``, trained by the same recipe on the same features and data,
    so folds trained in several sittings add up to one folds.json. Left out (their numbers):
    such folds whose condition tables do not match ``conditions`` (one table needs every fold).
    """
    from .fit import Recipe, data_paths

    path = target / "folds.json" if target is not None else None
    if path is None or not path.is_file():
        return [], []
    try:
        earlier = json.loads(path.read_text())
        # a recipe written before a field was added reads as that field's default
        earlier["recipe"] = json.loads(json.dumps(Recipe.from_dict(earlier["recipe"]).to_dict()))
    except (ValueError, KeyError, TypeError):
        return [], []
    now = json.loads(json.dumps({"recipe": recipe.to_dict(), "features": params.to_dict(),
                                 "data": data_paths(data)}))
    if any(earlier.get(key) != value for key, value in now.items()):
        return [], []
    others = [r for r in earlier.get("folds", []) if r["fold"] not in keep_out]
    return ([r for r in others if ("conditions" in r) == conditions],
            [r["fold"] for r in others if ("conditions" in r) != conditions])


def folds(run_dir: str | Path | None, data, recipe=None, params=None,
          only: list[int] | None = None, cache_dir=None, progress: bool = True,
          echo=print, out: str | Path | None = None, conditions: bool = False) -> dict:
    """Train and score every speaker-independent fold with a run's recipe.

    Each fold's model is scored as Keras float32 and as the full-int8 TFLite
    model through the device runtime (the headline figures are int8); its
    int8 file is kept as ``OUT/folds/fold-K.tflite``, with metadata naming its
    held-out speakers, so ``predict --model`` and ``listen --model`` take it.
    With ``conditions``, the int8 model is also scored on the fold's held-out
    clips under every capture condition (``train.conditions``), both as one
    decision on the whole clip and as what ``predict`` reports. ``folds.json``
    is rewritten after every fold, so a stopped run keeps the folds it finished.

    Returns {"split": "speaker", "folds": [...], "mean", "std", "worst", ...}; each fold row
    holds its int8 accuracy per held-out speaker ("speakers").
    """
    from ..atomic import write_file
    from ..convert.metadata import describe_model, embed_metadata, folder_names
    from .fit import _quiet_tf, data_paths, predict, prepare, read_run, train_model

    if run_dir is not None:
        _, params, recipe = read_run(run_dir)
    ds = load_many(data)
    synth = load_many(recipe.synth, synthetic=True) if recipe.synth else None
    n = n_speaker_folds(ds, recipe.splitting_seed)
    protocol = ("leave-one-speaker-out" if n == len(ds.speakers)
                else f"{n} speaker groups" + (" (train/val/test 3/1/1 groups)" if n == 5 else ""))
    target = Path(out) if out else (Path(run_dir) if run_dir else None)
    ks = list(only if only is not None else range(n))
    warps = recipe.augment.test_warps()
    mine: list[dict] = []
    result: dict = {}
    for k in ks:
        t0 = time.time()
        split = make_split(ds, "speaker", k, recipe.splitting_seed)
        arrays = prepare(ds, split, params, recipe, synth, cache_dir, progress)
        model, _, _ = train_model(arrays, params, recipe, echo=echo if progress else None)
        labels = arrays.labels
        keras_m = metrics(arrays.y_test, decision_indices(predict(model, arrays.x_test), labels), labels)
        int8, content = int8_model(model, arrays.x_train, params, labels, warps=warps)
        probabilities = held_out_probabilities(int8, ds, arrays.test, arrays.x_test, cache_dir, progress)
        decided = decision_indices(probabilities, labels)
        m = metrics(arrays.y_test, decided, labels)
        row = {"fold": k, "test_speakers": list(split.test_speakers),
               "accuracy": m["accuracy"], "macro_f1": m["macro"]["f1"],
               "keras_accuracy": keras_m["accuracy"], "n_test": int(len(arrays.y_test)),
               "speakers": per_speaker([ds.clips[i].speaker for i in arrays.test], arrays.y_test, decided)}
        if conditions:
            from .conditions import DECISIONS, condition_table

            test = [(ds.clips[i].path, ds.clips[i].digit) for i in split.test]
            row["conditions"] = {d: condition_table(int8, test, seed=recipe.splitting_seed, progress=progress,
                                                    decision=d) for d in DECISIONS}
        row["seconds"] = round(time.time() - t0, 1)
        mine.append(row)
        echo(f"fold {k} ({', '.join(split.test_speakers)}): int8 accuracy {m['accuracy']:.4f}, "
             f"keras {keras_m['accuracy']:.4f} ({row['seconds']:.0f} s)")
        _quiet_tf().keras.backend.clear_session()
        if target is not None:
            (target / "folds").mkdir(parents=True, exist_ok=True)
            # self-describing, held-out speakers included, so predict and listen take it
            training = {"run": target.name, "layout": ds.layout, "split": "speaker", "fold": k,
                        "test_speakers": list(split.test_speakers), "n_train": int(len(arrays.x_train)),
                        "int8_test_accuracy": m["accuracy"],
                        "recipe": {**recipe.to_dict(), "synth": folder_names(recipe.synth) if recipe.synth else None}}
            metadata = {**describe_model(f"{target.name}-fold-{k}", labels, params, int8, "int8"),
                        "warps": list(warps), "training": training}
            write_file(target / "folds" / f"fold-{k}.tflite", embed_metadata(content, metadata), force=True)
        with _folds_lock(target):
            # folds.json read again under a lock at every fold: sittings run side by side
            # (--only 0,1 and --only 2,3 on one run folder) all end up in it
            earlier, left_out = (_earlier_folds(target, recipe, params, data, conditions, keep_out=ks)
                                 if only is not None else ([], []))
            rows = earlier + mine
            if left_out:
                theirs, this = ("without", "with") if conditions else ("with", "without")
                echo(f"folds.json: fold {', '.join(map(str, left_out))} left out: scored {theirs} condition tables, "
                     f"this sitting {this}; give every sitting of a run the same --conditions")
            result = {"split": "speaker", "protocol": protocol, "model": "int8 TFLite, device runtime",
                      "folds": rows, "accuracy": None, **fold_summary(rows, "accuracy"),
                      "keras": fold_summary(rows, "keras_accuracy"),
                      "recipe": recipe.to_dict(), "features": params.to_dict(), "data": data_paths(data),
                      "labels": arrays.labels, "warps": list(warps)}
            result["accuracy"] = result["mean"]
            if conditions:
                from .conditions import fold_conditions

                result["conditions"] = {d: fold_conditions(rows, d) for d in rows[0]["conditions"]}
            if target is not None:
                write_file(target / "folds.json", (json.dumps(result, indent=1) + "\n").encode(), force=True)
    return result


def rescore_folds(run_dir: str | Path, cache_dir=None, progress: bool = True, warps=None,
                  conditions: bool = False) -> dict:
    """Score the saved int8 fold models of ``evaluate RUN --folds`` again, without training.

    For a change in how decisions are made (``model.decision_indices``, the
    recognizer's gate, the mel ``warps``; default: the recipe's
    ``AugmentParams.test_warps``): each ``RUN/folds/fold-K.tflite`` on its fold's
    held-out clips, clean and, where ``folds.json`` has them or ``conditions`` asks
    for them, under every capture condition on both decision paths. The Keras
    figures from training are kept as they were. ``folds.json`` is rewritten,
    marked ``"rescored"``, and each fold file's metadata names the warps.
    """
    from ..artifact import read_artifact
    from ..atomic import write_file
    from ..config import FeatureParams
    from ..convert.metadata import embed_metadata
    from ..convert.quantize import runtime_model
    from .cache import extract
    from .conditions import DECISIONS, condition_table, fold_conditions
    from .fit import Recipe

    run_dir = Path(run_dir)
    result = json.loads((run_dir / "folds.json").read_text())
    labels = result.get("labels", LABELS)
    params = FeatureParams.from_dict(result["features"])
    warps = [float(w) for w in warps] if warps else list(Recipe.from_dict(result["recipe"]).augment.test_warps())
    ds = load_many(result["data"])
    x, ok, _ = extract(ds.clips, params, cache_dir=cache_dir, progress=progress, label=f"{ds.layout} features")
    seed = Recipe.from_dict(result["recipe"]).splitting_seed
    for row in result["folds"]:
        split = make_split(ds, "speaker", row["fold"], seed)
        test = split.test[ok[split.test]]
        path = run_dir / "folds" / f"fold-{row['fold']}.tflite"
        artifact = read_artifact(path)
        if list(artifact.warps) != warps:
            write_file(path, embed_metadata(artifact.content, {**artifact.metadata, "warps": warps}), force=True)
        model = runtime_model(path.read_bytes(), params, labels, warps=warps)
        probabilities = held_out_probabilities(model, ds, test, x[test], cache_dir, progress)
        decided = decision_indices(probabilities, labels)
        m = metrics(ds.digits[test], decided, labels)
        row.update(accuracy=m["accuracy"], macro_f1=m["macro"]["f1"], n_test=int(len(test)),
                   speakers=per_speaker([ds.clips[i].speaker for i in test], ds.digits[test], decided))
        if conditions or "conditions" in row:
            clips = [(ds.clips[i].path, ds.clips[i].digit) for i in split.test]
            row["conditions"] = {d: condition_table(model, clips, seed=seed, progress=progress, decision=d)
                                 for d in DECISIONS}
    result["warps"] = warps
    result.update(fold_summary(result["folds"], "accuracy"))
    result["accuracy"] = result["mean"]
    if "conditions" in result["folds"][0]:
        result["conditions"] = {d: fold_conditions(result["folds"], d) for d in DECISIONS}
    result["rescored"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    write_file(run_dir / "folds.json", (json.dumps(result, indent=1) + "\n").encode(), force=True)
    return result
