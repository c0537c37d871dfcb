"""What the default recipe depends on, on a tiny corpus: synthetic speakers, ``train --synth``,
``evaluate --folds/--only``, every ``--arch``, ``--features seed``, and the feature cache.

Runs are one epoch on 120 FSDD clips (3 speakers x 10 digits x takes 0-3), so they test
wiring and bookkeeping, not accuracy (tests/test_train_model.py has the floors).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require

pytest.importorskip("tensorflow")

from audiomnist_edge.config import FeatureParams  # noqa: E402
from audiomnist_edge.errors import EdgeError  # noqa: E402
from audiomnist_edge.features import clip_features  # noqa: E402
from audiomnist_edge.train import cache, synth  # noqa: E402
from audiomnist_edge.train.datasets import load, load_many, make_split  # noqa: E402
from audiomnist_edge.train.fit import SEED_FEATURES, load_run_data  # noqa: E402
from audiomnist_edge.model import Model  # noqa: E402
from audiomnist_edge.train.evaluate import fold_held_out, per_speaker  # noqa: E402
from audiomnist_edge.wav import read_wav, read_wav_info  # noqa: E402

EXE = Path(sys.executable).parent / "audiomnist-edge"
SPEAKERS = ("george", "jackson", "lucas")
TAKES = 4
TINY = ("--epochs", "1", "--batch-size", "32", "--augment", "0")


def cli(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def tiny_corpus(fsdd, tmp_path_factory) -> Path:
    """120 FSDD clips in FSDD layout: 3 speakers, every digit, takes 0-3."""
    root = tmp_path_factory.mktemp("tiny") / "fsdd"
    (root / "recordings").mkdir(parents=True)
    for speaker in SPEAKERS:
        for digit in range(10):
            for take in range(TAKES):
                name = f"{digit}_{speaker}_{take}.wav"
                shutil.copy(fsdd / "recordings" / name, root / "recordings" / name)
    return root


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def synth_corpus(tmp_path_factory) -> Path:
    """Two synthetic speakers x 10 digits from espeak-ng."""
    require(shutil.which("espeak-ng"), "espeak-ng not installed (apt-get install espeak-ng)")
    return synth.generate(tmp_path_factory.mktemp("synth") / "s2", n_speakers=2, progress=False)


def test_voices_are_distinct_accent_variant_pairs() -> None:
    pairs = synth.voices(len(synth.ACCENTS) * len(synth.VARIANTS))
    assert len(pairs) == 8 * 46 == len(set(pairs))  # the README's "8 accents x 46 variants"
    assert synth.voices(16) == synth.voices(16, seed=0) != synth.voices(16, seed=1)
    assert [accent for accent, _ in synth.voices(16)] == list(synth.ACCENTS) * 2


def test_synthetic_speakers(synth_corpus, tmp_path) -> None:
    files = sorted((synth_corpus / "recordings").glob("*.wav"))
    assert [f.name for f in files] == sorted(f"{d}_syn{s:03d}_0.wav" for s in range(2) for d in range(10))
    voices = json.loads((synth_corpus / "voices.json").read_text())
    assert voices == {f"syn{s:03d}": {"voice": f"{a}+{v}"} for s, (a, v) in enumerate(synth.voices(2))}
    for f in files:
        samples, info = read_wav_info(f)
        assert info.sample_rate == 8000 and info.channels == 1
        assert 0.2 < len(samples) / 8000 < 1.5 and np.abs(samples).max() > 0.1
    # the same seed gives the same speech; a second run leaves finished clips alone
    again = synth.generate(tmp_path / "again", n_speakers=2, progress=False)
    assert all((again / "recordings" / f.name).read_bytes() == f.read_bytes() for f in files)
    before = {f.name: f.stat().st_mtime_ns for f in files}
    synth.generate(synth_corpus, n_speakers=2, progress=False)
    assert {f.name: f.stat().st_mtime_ns for f in files} == before
    ds = load(synth_corpus, synthetic=True)
    assert len(ds.clips) == 20 and all(c.synthetic for c in ds.clips)


def test_synthetic_voices_subset_keeps_the_same_speakers(tmp_path) -> None:
    """--voices kal,awb: the kal and awb speakers of the full corpus, names and clips alike, no others."""
    require(shutil.which("flite") and shutil.which("sox"), "flite or sox not installed (apt-get install flite sox)")
    everyone = synth.generate(tmp_path / "all", n_speakers=6, engine="flite", progress=False)
    subset = synth.generate(tmp_path / "some", n_speakers=6, engine="flite", voices=["kal", "awb"], progress=False)
    voices = json.loads((everyone / "voices.json").read_text())
    kept = {name: v for name, v in voices.items() if v["voice"] in ("kal", "awb")}
    assert len(kept) == 4 < len(voices) == 6  # fl000 kal, fl001 awb, then fl004 and fl005 shifted
    assert json.loads((subset / "voices.json").read_text()) == kept
    files = sorted(p.name for p in (subset / "recordings").iterdir())
    assert files == sorted(f"{d}_{name}_0.wav" for name in kept for d in range(10))
    assert all((subset / "recordings" / f).read_bytes() == (everyone / "recordings" / f).read_bytes() for f in files)
    assert synth.corpus_dir("flite", 100, 1, 8000, 0, ["kal", "awb"]).name == "flite-kalawb-v1-s100-t1-r8000-seed0"
    assert synth.corpus_dir("festival", 60, 1, 8000, 0, ["kal_diphone"]).name == "festival-kal-v1-s60-t1-r8000-seed0"
    with pytest.raises(EdgeError, match="flite has no voice bob"):
        synth.generate(tmp_path / "bad", n_speakers=2, engine="flite", voices=["bob"], progress=False)


@pytest.fixture(scope="module")
def synth_run(tiny_corpus, synth_corpus, cache_dir, tmp_path_factory) -> Path:
    """``train --synth`` on leave-george-out, the seed's dense net, one epoch."""
    out = tmp_path_factory.mktemp("runs") / "ann-synth"
    result = cli("train", "--data", tiny_corpus, "--arch", "ann", "--split", "speaker", "--fold", "0",
                 *TINY, "--synth", synth_corpus, "--synth-copies", "0", "--cache-dir", cache_dir,
                 "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_train_with_synthetic_speakers(synth_run, synth_corpus) -> None:
    info = json.loads((synth_run / "run.json").read_text())
    clips = info["data_summary"]["clips"]
    assert clips["synthetic"] == 20
    assert clips["training_examples"] == clips["train"] + 20  # the synthetic clips are in training
    assert (clips["train"] + clips["val"], clips["test"]) == (2 * 10 * TAKES, 10 * TAKES)
    assert info["data_summary"]["speakers"]["test"] == ["george"]
    assert info["recipe"]["synth"] == [str(synth_corpus.resolve())] and info["recipe"]["arch"] == "ann"


def test_per_speaker_accuracy_counts_each_speakers_clips() -> None:
    speakers = ["lucas", "george", "lucas", "george", "george"]
    assert per_speaker(speakers, np.array([1, 2, 3, 4, 5]), np.array([1, 0, 3, 4, 0])) == \
        {"george": pytest.approx(1 / 3), "lucas": 1.0}


def test_evaluate_only_some_folds(synth_run, cache_dir) -> None:
    result = cli("evaluate", synth_run, "--folds", "--only", "2,1", "--json", "--cache-dir", cache_dir)
    assert result.returncode == 0, result.stderr
    folds = json.loads(result.stdout)
    rows = folds["folds"]
    assert [(r["fold"], r["test_speakers"], r["n_test"]) for r in rows] == \
        [(2, ["lucas"], 10 * TAKES), (1, ["jackson"], 10 * TAKES)]
    assert all(r["speakers"] == {r["test_speakers"][0]: r["accuracy"]} for r in rows)  # one speaker per fold
    accuracy = [r["accuracy"] for r in rows]
    assert folds["mean"] == pytest.approx(np.mean(accuracy)) and folds["std"] == pytest.approx(np.std(accuracy))
    assert folds["worst"] == min(accuracy) and folds["worst_fold"] == rows[int(np.argmin(accuracy))]["fold"]
    assert folds["recipe"]["synth"] and folds["protocol"] == "leave-one-speaker-out"
    assert json.loads((synth_run / "folds.json").read_text()) == folds
    assert sorted(p.name for p in (synth_run / "folds").iterdir()) == ["fold-1.tflite", "fold-2.tflite"]


def test_folds_trained_in_two_sittings_add_up_in_folds_json(synth_run, cache_dir, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(synth_run, run, ignore=shutil.ignore_patterns("folds*"))
    for only in ("2", "0,1"):
        assert cli("evaluate", run, "--folds", "--only", only, "--cache-dir", cache_dir).returncode == 0
    folds = json.loads((run / "folds.json").read_text())
    assert [r["fold"] for r in folds["folds"]] == [2, 0, 1]
    assert folds["mean"] == pytest.approx(np.mean([r["accuracy"] for r in folds["folds"]]))
    # another recipe starts afresh: its folds are not averaged with the earlier recipe's
    info = json.loads((run / "run.json").read_text())
    info["recipe"]["epochs"] += 1
    (run / "run.json").write_text(json.dumps(info))
    assert cli("evaluate", run, "--folds", "--only", "1", "--cache-dir", cache_dir).returncode == 0
    assert [r["fold"] for r in json.loads((run / "folds.json").read_text())["folds"]] == [1]


def test_folds_trained_side_by_side_all_end_up_in_folds_json(synth_run, cache_dir, tmp_path) -> None:
    """Two sittings on one run folder at once: each reads folds.json again, under a lock, before it writes."""
    run = tmp_path / "run"
    shutil.copytree(synth_run, run, ignore=shutil.ignore_patterns("folds*"))
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    sittings = [subprocess.Popen([str(EXE), "evaluate", str(run), "--folds", "--only", only, "--cache-dir",
                                  str(cache_dir)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL, text=True) for only in ("0", "2,1")]
    for sitting in sittings:
        assert sitting.wait(timeout=300) == 0, sitting.stderr.read()
    folds = json.loads((run / "folds.json").read_text())
    assert sorted(r["fold"] for r in folds["folds"]) == [0, 1, 2]
    assert sorted(p.name for p in (run / "folds").glob("*.tflite")) == [f"fold-{k}.tflite" for k in range(3)]


def test_folds_with_conditions_score_each_fold_model(synth_run, cache_dir, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(synth_run, run)
    result = cli("evaluate", run, "--folds", "--only", "0", "--conditions", "--cache-dir", cache_dir)
    assert result.returncode == 0, result.stderr
    assert "capture conditions on each fold's held-out speakers" in result.stdout
    folds = json.loads((run / "folds.json").read_text())
    assert set(folds["folds"][0]["conditions"]) == {"predict", "clip"}
    for decision, table in folds["folds"][0]["conditions"].items():
        assert table["n"] == folds["folds"][0]["n_test"] and table["decision"] == decision
        assert set(table["accuracy"]) >= {"clean", "padded", "babble-5dB", "reverb-0.6s", "telephone"}
        summary = folds["conditions"][decision]
        assert summary["mean"] == table["accuracy"] == summary["worst"]
    [(speaker, accuracy)] = folds["folds"][0]["speakers"].items()
    assert f"    {speaker} {accuracy:.3f}\n" in result.stdout
    clip, predict = (folds["conditions"][d]["mean"] for d in ("clip", "predict"))
    for name in clip:
        assert f"{name:<12} {clip[name]:7.2%} ({clip[name]:6.2%})  {predict[name]:7.2%}" in result.stdout
    # the saved fold model scored again without training: the same figures (same decision rule)
    again = cli("evaluate", run, "--folds", "--rescore", "--json", "--cache-dir", cache_dir)
    assert again.returncode == 0, again.stderr
    rescored = json.loads(again.stdout)
    assert rescored["rescored"] and rescored == json.loads((run / "folds.json").read_text())
    for before, after in zip(folds["folds"], rescored["folds"]):
        assert (after["accuracy"], after["n_test"]) == (before["accuracy"], before["n_test"])
        assert {d: t["accuracy"] for d, t in after["conditions"].items()} == \
            {d: t["accuracy"] for d, t in before["conditions"].items()}
    assert (rescored["mean"], rescored["conditions"]) == (folds["mean"], folds["conditions"])
    assert rescored["warps"] == folds["warps"] == [1.0]  # --augment 0: no warped copies, one view
    # condition tables added to a folds.json that had none, from the saved fold model, without training
    stripped = {**{k: v for k, v in folds.items() if k != "conditions"},
                "folds": [{k: v for k, v in r.items() if k != "conditions"} for r in folds["folds"]]}
    (run / "folds.json").write_text(json.dumps(stripped))
    added = cli("evaluate", run, "--folds", "--rescore", "--conditions", "--json", "--cache-dir", cache_dir)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["conditions"] == folds["conditions"]
    # over two mel warps: the fold file names them, and its figures are what Model.classify decides
    warped = cli("evaluate", run, "--folds", "--rescore", "--warps", "0.9,1", "--json", "--cache-dir", cache_dir)
    assert warped.returncode == 0, warped.stderr
    assert json.loads(warped.stdout)["warps"] == [0.9, 1.0]
    model = Model.load(run / "folds" / "fold-0.tflite")
    assert model.warps == (0.9, 1.0)
    (_, _, clips), = fold_held_out(run)
    decided = [model.classify(*read_wav(path)).label == str(digit) for path, digit in clips]
    [row] = json.loads(warped.stdout)["folds"]
    assert row["accuracy"] == pytest.approx(np.mean(decided), abs=1e-9)
    assert row["speakers"] == {row["test_speakers"][0]: pytest.approx(np.mean(decided), abs=1e-9)}
    # PocketSphinx beside each fold's own model, on that fold's held-out speakers, same audio
    pytest.importorskip("pocketsphinx")
    bench = subprocess.run([sys.executable, "-m", "benchmarks.pocketsphinx_compare", "--folds", str(run),
                            "--conditions", "clean,padded", "--max-clips", "4", "--out", str(tmp_path / "ps")],
                           capture_output=True, text=True, timeout=300, cwd=Path(__file__).parents[1])
    assert bench.returncode == 0, bench.stderr
    report = json.loads((tmp_path / "ps" / "conditions.json").read_text())
    (only,) = report["sets"]
    assert only["label"] == "fold 0 (george)" and only["result"]["n"] == 4
    assert report["model"] == "each fold's own int8 model"


def test_folds_of_a_variation_train_its_recipe_and_leave_the_run_alone(synth_run, cache_dir, tmp_path) -> None:
    before = {p.name: p.read_bytes() for p in synth_run.rglob("*") if p.is_file()}
    out = tmp_path / "variation"
    args = ("evaluate", synth_run, "--folds", "--only", "1", "--set", "label_smoothing=0.1",
            "--set", "augment.edge_cut=0.05", "--set", "seed=1", "--set", "split_seed=0", "--out", out,
            "--cache-dir", cache_dir)
    assert cli(*args).returncode == 0
    folds = json.loads((out / "folds.json").read_text())
    assert folds["recipe"]["label_smoothing"] == 0.1 and folds["recipe"]["augment"]["edge_cut"] == 0.05
    # another training seed, the run's folds: the same speaker is held out
    held_out = make_split(load_many(json.loads((synth_run / "run.json").read_text())["data"]), "speaker", 1, 0)
    assert folds["folds"][0]["test_speakers"] == list(held_out.test_speakers)
    assert [r["fold"] for r in folds["folds"]] == [1] and (out / "folds" / "fold-1.tflite").is_file()
    training = Model.load(out / "folds" / "fold-1.tflite").metadata["training"]
    assert training["run"] == "variation" and training["recipe"]["label_smoothing"] == 0.1
    info = json.loads((out / "run.json").read_text())
    assert info["variant_of"] == str(synth_run)
    assert info["settings"] == ["label_smoothing=0.1", "augment.edge_cut=0.05", "seed=1", "split_seed=0"]
    assert {p.name: p.read_bytes() for p in synth_run.rglob("*") if p.is_file()} == before
    # another variation into the same folder is refused in one line, nothing trained
    result = cli("evaluate", synth_run, "--folds", "--only", "0", "--set", "label_smoothing=0.2", "--out", out,
                 "--cache-dir", cache_dir)
    assert result.returncode != 0 and "holds another run" in result.stderr.strip().splitlines()[-1]
    assert [r["fold"] for r in json.loads((out / "folds.json").read_text())["folds"]] == [1]


@pytest.mark.parametrize("args, message", [
    (("--folds", "--set", "label_smoothing=0.1"), "--set needs --out"),
    (("--folds", "--rescore", "--out", "x"), "--set and --out go with --folds"),
    (("--set", "seed=1", "--out", "x"), "--set and --out go with --folds"),
    (("--folds", "--set", "label_smothing=0.1", "--out", "x"), "--set label_smothing: no such setting"),
    (("--folds", "--set", "epochs=0.5", "--out", "x"), "--set epochs=0.5: expected a value like"),
    (("--folds", "--set", "babble=real", "--out", "x"), "babble must be one of synthetic, training, both"),
])
def test_variation_settings_refused_in_one_line(synth_run, tmp_path, args, message) -> None:
    result = cli("evaluate", synth_run, *[tmp_path / a if a == "x" else a for a in args])
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "x").exists()


def test_rescore_without_folds_is_one_line(synth_run, tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(synth_run, run)
    (run / "folds.json").unlink(missing_ok=True)
    result = cli("evaluate", run, "--folds", "--rescore")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "no folds.json to rescore" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("only, message", [("7", "fold 7 out of range: this corpus has 3 speaker folds"),
                                           ("one", "--only")])
def test_evaluate_bad_fold_is_one_line(synth_run, cache_dir, only, message) -> None:
    result = cli("evaluate", synth_run, "--folds", "--only", only, "--cache-dir", cache_dir)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert message in result.stderr.strip().splitlines()[-1]


def test_seed_features_and_dscnn(tiny_corpus, cache_dir, tmp_path) -> None:
    out = tmp_path / "dscnn-seed"
    result = cli("train", "--data", tiny_corpus, "--arch", "dscnn", "--split", "speaker", "--fold", "0",
                 "--features", "seed", *TINY, "--cache-dir", cache_dir, "--out", out)
    assert result.returncode == 0, result.stderr
    seed = FeatureParams(**SEED_FEATURES)
    assert seed.trim_db is None and seed.cmvn is False
    assert FeatureParams.from_json((out / "features.json").read_text()) == seed
    info = json.loads((out / "run.json").read_text())
    assert info["features_hash"] == seed.stable_hash() != FeatureParams().stable_hash()
    assert info["recipe"]["arch"] == "dscnn"
    # the run's test arrays are the seed features of george's clips: whole clip, no per-clip CMVN
    _, _, x_test, _ = load_run_data(out, cache_dir=cache_dir)
    george = [c.path for c in load(tiny_corpus).clips if c.speaker == "george"]
    assert len(x_test) == len(george) == 10 * TAKES
    for x, path in zip(x_test, george):
        np.testing.assert_array_equal(x, clip_features(read_wav(path)[0], seed))
    assert np.abs(x_test.mean(axis=1)).max() > 1  # CMVN would make every coefficient's mean ~0

    import keras
    layers = {type(layer).__name__ for layer in keras.models.load_model(out / "model.keras").layers}
    assert "DepthwiseConv2D" in layers


@pytest.mark.parametrize("params, columns, described", [
    (FeatureParams(raw_mean=(-230.0,) + (0.0,) * 19, raw_std=(60.0,) + (8.0,) * 19), 40,
     "20 MFCC (+ as many raw) x 101 frames"),
    (FeatureParams(pcen_seconds=0.4), 20, "20 MFCC of PCEN mels (0.4 s) x 101 frames"),
], ids=["raw-columns", "pcen"])
def test_optional_features_train_convert_and_run_on_the_device_path(tiny_corpus, cache_dir, tmp_path, params,
                                                                    columns, described) -> None:
    """A features.json with an optional field set (raw columns, PCEN): a model of that input,
    converted to int8, that the runtime loads (its features hash matches) and uses on a file;
    info names the option."""
    features = tmp_path / "features.json"
    features.write_text(params.to_json())
    out = tmp_path / "dual"
    result = cli("train", "--data", tiny_corpus, "--split", "speaker", "--fold", "0", "--features", features,
                 *TINY, "--cache-dir", cache_dir, "--out", out)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["input_shape"] == [101, columns]
    model = tmp_path / "dual.tflite"
    result = cli("convert", out, "--out", model)
    assert result.returncode == 0, result.stderr
    clip = sorted((tiny_corpus / "recordings").glob("3_*.wav"))[0]
    result = cli("predict", "--model", model, "--json", clip)
    assert result.returncode == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["file"] == str(clip) and "digit" in decision
    result = cli("info", "--model", model)
    assert result.returncode == 0 and described in result.stdout


@pytest.mark.parametrize("arch, kwargs, must_have, must_not", [
    ("ann", {}, {"Dense"}, {"Conv2D", "DepthwiseConv2D"}),
    ("cnn", {}, {"Conv2D", "AveragePooling2D"}, {"DepthwiseConv2D", "Softmax", "Permute"}),
    ("cnn", {"pooling": "attention"}, {"Conv2D", "Softmax", "Dot", "GlobalMaxPooling1D"}, {"DepthwiseConv2D"}),
    ("cnn", {"channels": 2}, {"Conv2D", "Permute"}, {"DepthwiseConv2D", "Softmax"}),
    ("dscnn", {}, {"Conv2D", "DepthwiseConv2D"}, set()),
    ("tcresnet", {}, {"Conv2D", "Add"}, {"DepthwiseConv2D", "Softmax"}),
])
def test_every_arch_builds_and_converts_to_full_integer(fsdd, arch, kwargs, must_have, must_not) -> None:
    import tiny_models
    from audiomnist_edge.convert.quantize import convert_keras, representative_set
    from audiomnist_edge.interpreter import create_interpreter
    from audiomnist_edge.train.models import build

    x_train = tiny_models.fsdd_arrays(str(fsdd))[0]
    model = build(arch, FeatureParams().input_shape, x_train, **kwargs)
    layers = {type(layer).__name__ for layer in model.layers}
    assert must_have <= layers and not must_not & layers
    assert model.output_shape == (None, 10) and model.get_layer("standardise")
    interpreter, _ = create_interpreter(convert_keras(model, representative_set(x_train, 50), "int8"))
    tensors = interpreter.get_tensor_details()
    assert {np.dtype(t["dtype"]).name for t in tensors} <= {"int8", "int32", "int64"}
    assert all(len(t["shape"]) <= 1 for t in tensors if np.dtype(t["dtype"]) == np.int64)  # axes, not data


def test_unknown_arch_is_refused() -> None:
    from audiomnist_edge.train.models import build

    with pytest.raises(ValueError, match="unknown architecture 'rnn'"):
        build("rnn", (101, 20), np.zeros((2, 101, 20), np.float32))
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        build("cnn", (101, 20), np.zeros((2, 101, 20), np.float32), pooling="max")
    with pytest.raises(ValueError, match="40 input columns do not split into 3 channels"):
        build("cnn", (101, 40), np.zeros((2, 101, 40), np.float32), channels=3)


def test_cnn_channels_stack_the_column_blocks_per_coefficient() -> None:
    """channels=2 on (101, 40): the first convolution sees column k and column 20 + k at one place."""
    import keras
    from audiomnist_edge.train.models import build

    x = np.random.default_rng(0).normal(size=(4, 101, 40)).astype(np.float32)
    model = build("cnn", (101, 40), x, channels=2)
    permute = next(layer for layer in model.layers if isinstance(layer, keras.layers.Permute))
    probe = keras.Model(model.input, [model.get_layer("standardise").output, permute.output])
    standardised, stacked = (np.asarray(a) for a in probe(x))
    assert stacked.shape == (4, 101, 20, 2)
    np.testing.assert_array_equal(stacked[..., 0], standardised[..., :20])
    np.testing.assert_array_equal(stacked[..., 1], standardised[..., 20:])


def test_feature_cache_is_reused_and_invalidated(tiny_corpus, tmp_path, monkeypatch) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus / "recordings", corpus / "recordings",
                    ignore=lambda d, names: [n for n in names if not n.endswith("_george_0.wav")])
    clips = load(corpus).clips
    params, where = FeatureParams(), tmp_path / "cache"
    calls = []
    real_run = cache._run
    monkeypatch.setattr(cache, "_run", lambda jobs, *a: calls.append(len(jobs)) or real_run(jobs, *a))

    x, ok, _ = cache.extract(clips, params, cache_dir=where, progress=False)
    assert calls == [10] and ok.all()
    again, _, _ = cache.extract(clips, params, cache_dir=where, progress=False)
    assert calls == [10] and np.array_equal(again, x)  # served from the cache

    changed = clips[3].path  # new content (and size) in one file
    samples, rate = read_wav(changed)
    from audiomnist_edge.wav import write_wav
    write_wav(changed, samples[: len(samples) // 2], rate)
    fresh, _, _ = cache.extract(clips, params, cache_dir=where, progress=False)
    assert calls == [10, 10]
    assert np.array_equal(fresh[3], clip_features(samples[: len(samples) // 2], params))
    assert not np.array_equal(fresh[3], x[3]) and np.array_equal(np.delete(fresh, 3, 0), np.delete(x, 3, 0))

    os.utime(changed, ns=(1, 1))  # same bytes, another modification time
    cache.extract(clips, params, cache_dir=where, progress=False)
    assert calls == [10, 10, 10]

    other = FeatureParams(n_mfcc=13)
    x13, _, _ = cache.extract(clips, other, cache_dir=where, progress=False)
    assert calls == [10, 10, 10, 10] and x13.shape == (10, *other.input_shape)
    cmvn_off = FeatureParams(cmvn=False)  # same shape, other values
    x_off, _, _ = cache.extract(clips, cmvn_off, cache_dir=where, progress=False)
    assert calls[-1] == 10 and len(calls) == 5
    assert np.array_equal(x_off[0], clip_features(read_wav(clips[0].path)[0], cmvn_off))


def test_cnn_columns_reads_only_its_part_of_the_input() -> None:
    """columns=(0, 20) on (101, 40): the raw columns 20-39 do not reach the output; a bad range is refused."""
    from audiomnist_edge.train.models import build

    x = np.random.default_rng(0).normal(size=(4, 101, 40)).astype(np.float32)
    model = build("cnn", (101, 40), x, columns=(0, 20))
    changed = x.copy()
    changed[..., 20:] += 5.0
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(model(changed)))
    changed[..., :20] += 5.0
    assert not np.allclose(np.asarray(model(x)), np.asarray(model(changed)))
    np.testing.assert_allclose(np.asarray(model.get_layer("standardise").mean).ravel(), x[..., :20].mean(axis=(0, 1)),
                               rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="not a range"):
        build("cnn", (101, 40), x, columns=(10, 50))


def test_train_set_makes_an_ensemble_that_converts_and_predicts(tiny_corpus, cache_dir, tmp_path) -> None:
    """`train --set arch=ensemble --set model_kwargs=...`: one run folder, one model file of both
    members, which `predict` runs; a bad setting is one line and exit 1 before any training. (A model
    trained on 70 clips is too unsure for convert's int8 agreement floor; test_train_model converts an
    ensemble to int8.)"""
    out = tmp_path / "pair"
    members = '{"members": [{"width": 16}, {"width": 24}]}'
    result = cli("train", "--data", tiny_corpus, "--split", "speaker", "--fold", "0", *TINY, "--cache-dir",
                 cache_dir, "--set", "arch=ensemble", "--set", f"model_kwargs={members}", "--set", "epochs=4",
                 "--out", out)
    assert result.returncode == 0, result.stderr
    assert "member 2/2  epoch 4/4" in result.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["recipe"]["arch"] == "ensemble" and len(info["history"]["members"]) == 2
    assert len(json.loads((out / "normalisation.json").read_text())["members"]) == 2
    converted = cli("convert", out, "--quant", "float32")
    assert converted.returncode == 0, converted.stderr
    said = cli("predict", tiny_corpus / "recordings" / "3_george_0.wav", "--model", out / "model-float32.tflite",
               "--json")
    assert said.returncode == 0 and json.loads(said.stdout)
    for setting, problem in (("arch=ensemble", "at least two"), ("widht=3", "no such setting")):
        bad = cli("train", "--data", tiny_corpus, *TINY, "--set", setting, "--out", tmp_path / "bad")
        assert bad.returncode != 0 and problem in bad.stderr and "Traceback" not in bad.stderr
        assert not (tmp_path / "bad").exists()
