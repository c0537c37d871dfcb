"""``stream_bench --folds`` and ``rejection_gate --folds`` on a tiny fold run.

The run is ``evaluate --folds --only 0,2`` of a one-epoch dense net on 160 clips
(4 FSDD + 4 HD-EN speakers x 10 digits x takes 0-1: 4 speaker groups of one
speaker per corpus), so these tests check which speakers each fold model hears
and the bookkeeping of the JSON, not accuracy.
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
from conftest import REPO, require

pytest.importorskip("tensorflow")

from benchmarks.rejection_gate import UNSEEN_WORDS_SET as UNSEEN  # noqa: E402

EXE = Path(sys.executable).parent / "audiomnist-edge"
SPEAKERS = {"fsdd": ("george", "jackson", "lucas", "nicolas"), "hd-en": ("hd00", "hd01", "hd02", "hd03")}
TAKES = 2
FOLDS = (0, 2)
SHARES = ("found", "substitutions", "deletions", "insertions", "unknown", "sequence_score")


def run(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``args`` run from the repository with the venv's Python and quiet TensorFlow."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def fold_run(fsdd, hd_en, tmp_path_factory) -> Path:
    """A run with folds.json and folds/fold-0.tflite, fold-2.tflite over a tiny FSDD + HD-EN corpus."""
    base = tmp_path_factory.mktemp("foldrun")
    corpora = []
    for name, source in (("fsdd", fsdd), ("hd-en", hd_en)):
        (base / name / "recordings").mkdir(parents=True)
        for speaker in SPEAKERS[name]:
            for digit in range(10):
                for take in range(TAKES):
                    clip = f"{digit}_{speaker}_{take}.wav"
                    shutil.copy(source / "recordings" / clip, base / name / "recordings" / clip)
        corpora += ["--data", base / name]
    out, cache = base / "run", base / "cache"
    trained = run(EXE, "train", *corpora, "--arch", "ann", "--split", "speaker", "--fold", "0", "--epochs", "1",
                  "--batch-size", "32", "--augment", "0", "--cache-dir", cache, "--out", out)
    assert trained.returncode == 0, trained.stderr
    folds = run(EXE, "evaluate", out, "--folds", "--only", ",".join(map(str, FOLDS)), "--cache-dir", cache)
    assert folds.returncode == 0, folds.stderr
    return out


def fold_speakers(fold_run: Path) -> tuple[dict[int, set[str]], set[str]]:
    """Each fold's test speakers from folds.json, and every speaker of the run."""
    info = json.loads((fold_run / "folds.json").read_text())
    every = {name.split("_")[1] for corpus in info["data"] for name in os.listdir(Path(corpus) / "recordings")}
    return {row["fold"]: set(row["test_speakers"]) for row in info["folds"]}, every


def test_stream_bench_folds(fold_run, tmp_path) -> None:
    result = run(sys.executable, "-m", "benchmarks.stream_bench", "--folds", fold_run, "--digits", "6",
                 "--noise-minutes", "0.05", "--min-confidence", "0", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads((tmp_path / "stream-folds.json").read_text())
    assert f"--folds {fold_run}" in (tmp_path / "stream-folds.md").read_text()
    assert not (tmp_path / "stream.json").exists()
    tests, every = fold_speakers(fold_run)
    assert set(tests) == set(FOLDS) and len(every) == 8
    assert [row["fold"] for row in out["folds"]] == list(FOLDS)
    corpora = set(out["streams"])
    assert len(corpora) == 2 and all(any(key.startswith(c) for key in corpora) for c in SPEAKERS)
    for row in out["folds"]:
        held_out = tests[row["fold"]]
        assert set(row["test_speakers"]) == held_out and row["model"].endswith(f"fold-{row['fold']}.tflite")
        assert set(row["streams"]) == set(row["stream_speakers"]) == corpora
        heard = set().union(*row["stream_speakers"].values())
        assert heard == held_out  # every held-out speaker of the fold, in some stream ...
        assert not heard & (every - held_out)  # ... and no speaker its model was trained on
        for key, speakers in row["stream_speakers"].items():
            assert set(speakers) <= set(SPEAKERS[key.split(" ")[0]])  # each stream holds its corpus's speakers
        for scores in row["streams"].values():
            assert set(scores) == set(out["conditions"])
            for s in scores.values():
                assert s["digits"] == 6
                assert s["found"] + s["substitutions"] + s["deletions"] == pytest.approx(1, abs=1e-3)
    for key, scores in out["streams"].items():
        for name, pooled in scores.items():
            assert pooled["digits"] == 6 * len(FOLDS)
            assert all(0 <= pooled[share] <= 1 for share in SHARES), (key, name, pooled)
            per_fold = [row["streams"][key][name]["found"] for row in out["folds"]]
            assert pooled["found"] == pytest.approx(sum(per_fold) / len(per_fold), abs=1e-3)
    for kind in ("noise", "hum"):
        alarms = out["false_alarms"][kind]
        assert alarms["minutes"] == pytest.approx(0.05 * len(FOLDS)) and alarms["false_alarms_per_hour"] >= 0
        assert alarms["digits"] == sum(row["false_alarms"][kind]["digits"] for row in out["folds"])


def test_stream_bench_with_the_background_gate_writes_its_own_results(fold_run, tmp_path) -> None:
    result = run(sys.executable, "-m", "benchmarks.stream_bench", "--folds", fold_run, "--digits", "6",
                 "--noise-minutes", "0.05", "--background-db", "12", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "stream-folds.json").exists()
    out = json.loads((tmp_path / "stream-folds-background.json").read_text())
    assert out["background_db"] == 12
    assert "--background-db 12`" in (tmp_path / "stream-folds-background.md").read_text()


def test_rejection_gate_folds(fold_run, tmp_path) -> None:
    require(shutil.which("espeak-ng"), "espeak-ng not installed (apt-get install espeak-ng)")
    result = run(sys.executable, "-m", "benchmarks.rejection_gate", "--folds", fold_run, "--per-set", "12",
                 "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads((tmp_path / "rejection-folds.json").read_text())
    tests, every = fold_speakers(fold_run)
    assert [row["fold"] for row in out["folds"]] == list(FOLDS)
    for row in out["folds"]:
        held_out = tests[row["fold"]]
        assert set(row["held_out_speakers"]) <= held_out and len(row["held_out_speakers"]) > 1
        assert set(row["calibration_speakers"]) <= every - held_out and row["calibration_speakers"]
    digit_sets = [name for name in out["clips"] if name.startswith("digits")]
    assert len(digit_sets) == 2 and all(out["clips"][name] == 12 * len(FOLDS) for name in digit_sets)
    # the held-out digits again, played backwards: found as utterances, though not all of them
    assert 0 < out["clips"]["the held-out speakers' digits played backwards"] <= 12 * len(FOLDS)
    assert [row["keep_training_digits"] for row in out["rows"]] == [0.99, 0.95, 0.90, 0.85, None, None, None]
    assert [row["min_confidence"] for row in out["rows"][-3:]] == [0.3, 0.4, 0.5]
    for row in out["rows"]:
        assert len(row["min_confidence_per_fold"]) == len(FOLDS)
        assert all(0 <= row[name] <= 1 for name in out["clips"])
    thresholds = [row["min_confidence"] for row in out["rows"][:-3]]
    assert thresholds == sorted(thresholds)  # keeping fewer calibration digits takes a higher threshold
    # the unseen words per voice and per word are the same decisions as the pooled set's, counted apart
    default = next(row for row in out["rows"] if row["keep_training_digits"] is None and row["min_confidence"] == 0.3)
    for groups in (out["unseen_words_by_voice"].values(), out["unseen_words_by_word"].values()):
        assert sum(v["clips"] for v in groups) == out["clips"][UNSEEN]
        assert sum(v["share"] * v["clips"] for v in groups) / out["clips"][UNSEEN] == pytest.approx(default[UNSEEN],
                                                                                                    abs=1e-3)
    by_word = out["unseen_words_by_word"]
    assert len(by_word) > 3 and not set(by_word) & {str(d) for d in range(10)}
    shares = [v["share"] for v in by_word.values()]
    assert shares == sorted(shares, reverse=True)  # the words most often reported as digits first
    # these tiny models have no unknown label, so --unknown-at has nothing to sweep
    assert out["unknown_rows"] == [] and "--unknown-at moves" not in (tmp_path / "rejection-folds.md").read_text()


def test_rejection_gate_sweeps_unknown_at_down_to_stricter_gates() -> None:
    from benchmarks.rejection_gate import gate_rows

    rng = np.random.default_rng(0)
    # (best digit's probability, unknown's probability) of calibration words, calibration digits, other digits
    words, digits, held = (np.column_stack([rng.uniform(0, 1 - u, len(u)), u])
                           for u in (rng.uniform(0.2, 1, 400), rng.uniform(0, 0.5, 400), rng.uniform(0, 0.6, 400)))
    per_model = [{"words": words, "digits": digits, "held": held}]
    rows, unknown_rows = gate_rows(per_model), gate_rows(per_model, "unknown_at")
    assert [row["keep_training_digits"] for row in unknown_rows] == [0.99, 0.95, 0.90, 0.85, None, None, None, None]
    assert [row["unknown_at"] for row in unknown_rows[-4:]] == [0.8, 0.5, 0.3, 0.2]
    thresholds = [row["unknown_at"] for row in unknown_rows[:4]]
    assert thresholds == sorted(thresholds, reverse=True)  # keeping fewer digits takes a lower threshold
    for row, keep in zip(unknown_rows[:4], [0.99, 0.95, 0.90, 0.85]):
        assert row["digits"] <= keep + 0.01  # kept digits also need --min-confidence 0.3
    assert {k: unknown_rows[4][k] for k in per_model[0]} == {k: rows[4][k] for k in per_model[0]}  # both defaults
    for stricter, looser in zip(unknown_rows[5:], unknown_rows[4:]):
        assert all(stricter[k] <= looser[k] for k in per_model[0])
    assert unknown_rows[-1]["words"] < unknown_rows[4]["words"]


def test_background_gate_scores_both_ways_on_each_folds_own_held_out_clips(fold_run, tmp_path) -> None:
    from audiomnist_edge.train.conditions import CONDITIONS

    result = run(sys.executable, "-m", "benchmarks.background_gate", "--folds", fold_run, "--every", "5",
                 "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads((tmp_path / "background.json").read_text())
    held_out = 2 * 10 * TAKES  # one speaker per corpus in each fold
    assert out["folds"] == list(FOLDS) and out["clips"] == len(FOLDS) * held_out // 5
    assert list(out["accuracy"]) == ["off", "--background-db 12"]
    for gate, accuracy in out["accuracy"].items():
        assert list(accuracy) == list(CONDITIONS) and all(0 <= a <= 1 for a in accuracy.values())
        assert out["mean"][gate] == pytest.approx(np.mean(list(accuracy.values())))
    table = (tmp_path / "background.md").read_text()
    assert all(f"| {name} |" in table for name in [*CONDITIONS, "mean"])


def test_speaker_snr_levels_and_accuracy_per_held_out_speaker(fold_run, tmp_path) -> None:
    from audiomnist_edge.train.capture import db, speech_power
    from audiomnist_edge.wav import read_wav

    result = run(sys.executable, "-m", "benchmarks.speaker_snr", "--folds", fold_run, "--snr", "20,-20",
                 "--every", "2", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    out = json.loads((tmp_path / "speaker-snr.json").read_text())
    tests, _ = fold_speakers(fold_run)
    rows = {row["speaker"]: row for row in out["speakers"]}
    assert set(rows) == set().union(*tests.values())  # every held-out speaker, once
    info = json.loads((fold_run / "folds.json").read_text())
    for speaker, row in rows.items():
        assert tests[row["fold"]] >= {speaker} and row["clips"] == 10 * TAKES // 2
        [corpus] = [Path(c) for c in info["data"] if (Path(c) / "recordings" / f"0_{speaker}_0.wav").exists()]
        levels = [db(speech_power(*read_wav(p))) for p in sorted((corpus / "recordings").glob(f"*_{speaker}_*.wav"))]
        assert min(levels) <= row["level_dbfs"] <= max(levels)
        assert row["quiet_snr_db"] == pytest.approx(row["level_dbfs"] - 20 + 50, abs=0.02)
        assert 0 <= row["quiet_below_0db"] <= 1 and 0 <= row["quiet"] <= 1
        assert set(row["white"]) == {"20", "-20"} and all(0 <= a <= 1 for a in row["white"].values())
    assert [row["level_dbfs"] for row in out["speakers"]] == sorted(row["level_dbfs"] for row in out["speakers"])
    assert (tmp_path / "speaker-snr.png").stat().st_size > 0
    assert f"--folds {fold_run}`" in (tmp_path / "speaker-snr.md").read_text()
    bad = run(sys.executable, "-m", "benchmarks.speaker_snr", "--folds", fold_run, "--snr", "5,loud")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --snr") and bad.stderr.count("\n") == 1


@pytest.mark.parametrize("bench", ["stream_bench", "rejection_gate", "background_gate", "speaker_snr"])
def test_folds_of_a_folder_that_is_no_fold_run(bench, tmp_path) -> None:
    result = run(sys.executable, "-m", f"benchmarks.{bench}", "--folds", tmp_path, "--out", tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "not a fold run" in result.stderr


@pytest.mark.parametrize("bench", ["stream_bench", "rejection_gate", "speaker_snr"])
def test_folds_of_a_fold_run_without_its_features(bench, fold_run, tmp_path) -> None:
    """A copy of a fold run that kept folds.json and a fold model but lost features.json: one line, no traceback."""
    (tmp_path / "folds").mkdir()
    for name in ("run.json", "folds.json", "folds/fold-0.tflite"):
        (tmp_path / name).write_bytes((fold_run / name).read_bytes())
    result = run(sys.executable, "-m", f"benchmarks.{bench}", "--folds", tmp_path, "--out", tmp_path)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "not a fold run" in result.stderr and "features.json" in result.stderr


def test_fold_models_are_self_describing(fold_run) -> None:
    """A fold's int8 model carries its held-out speakers and runs under predict --model."""
    tests, _ = fold_speakers(fold_run)
    for fold in FOLDS:
        model = fold_run / "folds" / f"fold-{fold}.tflite"
        described = run(EXE, "info", "--model", model, "--json")
        assert described.returncode == 0, described.stderr
        training = json.loads(described.stdout)["metadata"]["training"]
        assert training["fold"] == fold and set(training["test_speakers"]) == tests[fold]
        shown = run(EXE, "info", "--model", model)
        assert f"held out   fold {fold}: {', '.join(sorted(tests[fold]))}" in shown.stdout
        speaker = sorted(tests[fold])[0]
        corpus = next(Path(c) for c in json.loads((fold_run / "folds.json").read_text())["data"]
                      if any(name.split("_")[1] == speaker for name in os.listdir(Path(c) / "recordings")))
        clip = next(p for p in sorted((corpus / "recordings").iterdir()) if p.name.split("_")[1] == speaker)
        predicted = run(EXE, "predict", clip, "--model", model, "--json", "--min-confidence", "0")
        assert predicted.returncode == 0, predicted.stderr
        answer = json.loads(predicted.stdout)
        assert answer["file"] == str(clip) and len(answer["utterances"]) == 1


def test_pulse_stream_plays_a_fold_model_its_held_out_speakers_only(fold_run) -> None:
    from audiomnist_edge.model import Model

    from benchmarks.pulse_stream import held_out_speakers, stream_corpora

    tests, every = fold_speakers(fold_run)
    data = {Path(c).name: Path(c) for c in json.loads((fold_run / "folds.json").read_text())["data"]}
    assert held_out_speakers(Model.load()) is None  # the packaged model: HD-EN and FSDD's test takes
    for fold in FOLDS:
        model = Model.load(fold_run / "folds" / f"fold-{fold}.tflite")
        assert held_out_speakers(model) == tests[fold]
        corpora = stream_corpora(data["fsdd"], data["hd-en"], model)
        assert len(corpora) == 2 and all(f"fold-{fold} never heard" in name for name in corpora)
        streamed = [path for clips, _ in corpora.values() for _, path in clips]
        speakers = {path.stem.split("_")[1] for path in streamed}
        assert speakers == tests[fold] and not speakers & (every - tests[fold])
        assert len(streamed) == len(tests[fold]) * 10 * TAKES  # every take of every held-out speaker


def test_pocketsphinx_compare_on_one_corpus_of_the_folds(fold_run, tmp_path) -> None:
    """--corpus keeps each fold's held-out clips of that corpus only, scored by that fold's model."""
    pytest.importorskip("pocketsphinx")
    tests, _ = fold_speakers(fold_run)
    hd_en = next(c for c in json.loads((fold_run / "folds.json").read_text())["data"] if Path(c).name == "hd-en")
    result = run(sys.executable, "-m", "benchmarks.pocketsphinx_compare", "--folds", fold_run, "--corpus", hd_en,
                 "--conditions", "clean", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conditions-hd-en.json", "conditions-hd-en.md"]
    sets = json.loads((tmp_path / "conditions-hd-en.json").read_text())["sets"]
    assert len(sets) == len(FOLDS)
    for fold, row in zip(FOLDS, sets):
        (held_out,) = tests[fold] & set(SPEAKERS["hd-en"])
        assert row["label"] == f"fold {fold} ({held_out})"
        assert row["result"]["n"] == 10 * TAKES
    alone = run(sys.executable, "-m", "benchmarks.pocketsphinx_compare", "--corpus", hd_en, "--out", tmp_path)
    assert alone.returncode != 0 and alone.stderr.strip() == "error: --corpus needs --folds"
    named = run(sys.executable, "-m", "benchmarks.pocketsphinx_compare", "--folds", fold_run, "--corpus", hd_en,
                "--conditions", "clean", "--out", tmp_path / "named", "--name", "conditions-heard")
    assert named.returncode == 0, named.stderr
    assert sorted(p.name for p in (tmp_path / "named").iterdir()) == ["conditions-heard.json", "conditions-heard.md"]
    again = json.loads((tmp_path / "named" / "conditions-heard.json").read_text())["sets"]
    assert [row["result"]["accuracy"] for row in again] == [row["result"]["accuracy"] for row in sets]
    outside = run(sys.executable, "-m", "benchmarks.pocketsphinx_compare", "--folds", fold_run, "--name", "../x",
                  "--out", tmp_path)
    assert outside.returncode != 0 and "give a file name without a folder" in outside.stderr


def test_a_student_distils_from_the_fold_models_that_never_heard_its_test_speakers(fold_run, tmp_path) -> None:
    info = json.loads((fold_run / "folds.json").read_text())
    corpora = [arg for corpus in info["data"] for arg in ("--data", corpus)]
    common = [*corpora, "--arch", "ann", "--split", "speaker", "--epochs", "1", "--batch-size", "32",
              "--augment", "0", "--cache-dir", fold_run.parent / "cache", "--teacher", fold_run]
    student = run(EXE, "train", *common, "--fold", "2", "--teacher-weight", "0.7", "--out", tmp_path / "student")
    assert student.returncode == 0, student.stderr
    recipe = json.loads((tmp_path / "student" / "run.json").read_text())["recipe"]
    assert recipe["teachers"] == [str(fold_run.resolve())] and recipe["teacher_weight"] == 0.7
    missing = run(EXE, "train", *common, "--fold", "1", "--out", tmp_path / "other")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "no fold-1.tflite (made by `evaluate RUN --folds`)" in missing.stderr
    assert not (tmp_path / "other").exists()


def test_a_teacher_that_heard_a_test_speaker_is_refused(fold_run) -> None:
    from audiomnist_edge.config import FeatureParams
    from audiomnist_edge.train.datasets import Split
    from audiomnist_edge.train.distill import TeacherError, load_teacher

    tests, _ = fold_speakers(fold_run)
    labels = [str(d) for d in range(10)]
    none = np.zeros(0, dtype=np.int64)
    own = Split("speaker", 0, none, none, test_speakers=tuple(sorted(tests[0])))
    assert load_teacher(fold_run, own, FeatureParams(), labels).labels == labels
    other = Split("speaker", 0, none, none, test_speakers=tuple(sorted(tests[2])))
    with pytest.raises(TeacherError, match="not this split's"):
        load_teacher(fold_run, other, FeatureParams(), labels)
    with pytest.raises(TeacherError, match="not this split's"):
        load_teacher(fold_run, Split("speaker", 2, none, none, test_speakers=own.test_speakers),
                     FeatureParams(), labels)
    with pytest.raises(TeacherError, match="features differ"):
        load_teacher(fold_run, own, FeatureParams(n_mfcc=13), labels)
    with pytest.raises(TeacherError, match="labels"):
        load_teacher(fold_run, own, FeatureParams(), [*labels, "unknown"])
