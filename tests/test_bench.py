"""`audiomnist-edge bench` and benchmarks/: smoke runs with tiny repeat counts.

Nothing here asserts a speed: the tests check that the commands run and that
their output is well formed and self-consistent.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from audiomnist_edge.bench import (NO_REFERENCE, STAGES, compare_with_reference, describe_ratio,
                                   percentiles_ms, synthetic_utterance)
from audiomnist_edge.memory import peak_rss_bytes

REPO = Path(__file__).resolve().parents[1]
REFERENCE = {"mfcc_ms": 0.5, "invoke_ms": 0.25, "end_to_end_ms": 1.0, "cpu": "Test CPU",
             "backend": "ai-edge-litert"}

# A tiny Keras model, its int8 and float32 TFLite files (with metadata) and a run folder.
BUILD = textwrap.dedent("""
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    import numpy as np, tensorflow as tf, keras
    from pathlib import Path
    from audiomnist_edge.config import FeatureParams
    from audiomnist_edge.convert.metadata import embed_metadata
    out, reference = Path(sys.argv[1]), json.loads(sys.argv[2])
    params = FeatureParams()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(params.input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    x = np.random.default_rng(0).standard_normal((16, *params.input_shape)).astype("float32")
    def convert(int8):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if int8:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([x[i:i + 1]] for i in range(16))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = converter.inference_output_type = tf.int8
        return converter.convert()
    meta = {"labels": [str(i) for i in range(10)], "features": params.to_dict(),
            "features_hash": params.stable_hash()}
    int8 = convert(True)
    (out / "int8.tflite").write_bytes(embed_metadata(int8, meta))
    (out / "int8_reference.tflite").write_bytes(embed_metadata(int8, {**meta, "reference_bench": reference}))
    (out / "float32.tflite").write_bytes(embed_metadata(convert(False), meta))
    run = out / "run"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "features.json").write_text(params.to_json())
""")


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    """A folder with int8.tflite, int8_reference.tflite, float32.tflite and run/."""
    out = tmp_path_factory.mktemp("bench-models")
    done = subprocess.run([sys.executable, "-c", BUILD, str(out), json.dumps(REFERENCE)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def edge(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audiomnist_edge", *args],
                          capture_output=True, text=True, timeout=timeout)


def bench_json(*args: str) -> dict:
    done = edge("bench", "--repeat", "3", "--warmup", "1", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_bench_json_is_one_well_formed_object(models: Path) -> None:
    result = bench_json("--model", str(models / "int8.tflite"), "--cold", "1")
    for stage in STAGES:
        figures = result[stage]
        assert 0 < figures["p50"] <= figures["p95"] <= figures["p99"]
    assert result["resample"]["to_hz"] == 8000 and result["resample"]["from_hz"] != 8000
    assert result["clip"] == {"source": "synthetic utterance", "sample_rate": 8000, "seconds": 1.0}
    assert result["model"]["size_bytes"] == (models / "int8.tflite").stat().st_size
    assert result["backend"]["name"] and result["cpu"]
    assert len(result["cold_start"]["runs"]) == 1 and result["cold_start"]["p50"] > 0
    assert result["cold_start"]["label"] in [str(i) for i in range(10)]
    assert result["peak_rss_mb"]["cold_process"] > 0 and result["peak_rss_mb"]["bench_process"] > 0
    assert result["reference"] is None and result["reference_note"] == NO_REFERENCE


def test_bench_compares_with_the_reference_in_the_model(models: Path) -> None:
    result = bench_json("--model", str(models / "int8_reference.tflite"), "--cold", "0")
    assert result["cold_start"] is None
    ratios = result["reference"]["ratios"]
    assert set(ratios) == {"mfcc", "invoke", "end_to_end"}
    for stage, ratio in ratios.items():
        assert ratio == pytest.approx(result[stage]["p50"] / REFERENCE[f"{stage}_ms"], abs=0.01)
    assert result["reference"]["cpu"] == "Test CPU"


def test_bench_leaves_out_end_to_end_when_the_clip_is_resampled(models: Path) -> None:
    result = bench_json("--model", str(models / "int8_reference.tflite"), "--cold", "0",
                        "--rate", "16000")
    assert result["clip"]["sample_rate"] == 16000
    assert result["resample"]["from_hz"] == 16000
    assert set(result["reference"]["ratios"]) == {"mfcc", "invoke"}


def test_bench_report_for_people(models: Path) -> None:
    done = edge("bench", "--model", str(models / "int8.tflite"), "--repeat", "2", "--cold", "1")
    assert done.returncode == 0, done.stderr
    for word in (*STAGES, "cold start", "peak RSS", NO_REFERENCE):
        assert word in done.stdout


def test_bench_runs_without_tensorflow_or_librosa(models: Path) -> None:
    code = textwrap.dedent(f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "librosa", "keras", "scipy"):
                    raise ImportError(name + " is blocked")
        sys.meta_path.insert(0, Block())
        from audiomnist_edge.cli import main
        sys.argv = ["audiomnist-edge", "bench", "--model", {str(models / "int8.tflite")!r},
                    "--backend", "ai-edge-litert", "--repeat", "2", "--cold", "0", "--json"]
        main()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["backend"]["name"] == "ai-edge-litert"


@pytest.mark.parametrize("args, message", [
    (["--input", __file__], "not a RIFF/WAVE file"),
    (["--input", "/nonexistent/clip.wav"], "No such file"),
    (["--model", "/nonexistent/model.tflite"], "No such file"),
])
def test_bench_bad_input_is_one_error_line(models: Path, args: list[str], message: str) -> None:
    full = ["--model", str(models / "int8.tflite"), *args] if "--model" not in args else args
    done = edge("bench", "--repeat", "1", "--cold", "0", *full)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last and "Traceback" not in done.stderr


def test_compare_with_reference_handles_missing_and_partial_figures() -> None:
    stages = {s: {"p50": 2.0} for s in STAGES}
    assert compare_with_reference(stages, None) is None
    assert compare_with_reference(stages, {"cpu": "x"}) is None
    partial = compare_with_reference(stages, {"mfcc_ms": 4.0, "invoke_ms": "fast", "end_to_end_ms": 0})
    assert partial["ratios"] == {"mfcc": 0.5} and partial["cpu"] == "unknown"


def test_helpers_are_consistent() -> None:
    assert describe_ratio(2.0) == "2.0x slower" and describe_ratio(0.5) == "2.0x faster"
    assert describe_ratio(1.0) == "about the same"
    figures = percentiles_ms(np.linspace(0.001, 0.002, 101))
    assert figures["p50"] == pytest.approx(1.5) and figures["p50"] <= figures["p95"] <= figures["p99"]
    clip = synthetic_utterance(16000, 0.5)
    assert clip.dtype == np.float32 and clip.shape == (8000,) and 0.1 < np.abs(clip).max() <= 1
    assert peak_rss_bytes() > 1_000_000


def test_benchmarks_smoke_run(models: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--model", str(models / "int8.tflite"),
         "--run", str(models / "run"), "--float32", str(models / "float32.tflite"),
         "--out", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "bench.json").read_text())
    assert set(results["mfcc"]["speedup"]) == {"librosa", "librosa_y", "python_speech_features"}
    assert set(results["model"]["speedup"]) == {"float32_tflite", "keras_call", "keras_predict"}
    assert set(results["process"]["cold_start_ratio"]) == {"tensorflow_lite", "tensorflow_keras"}
    assert [row["seconds"] for row in results["scaling"]["by_length"]] == [0.5, 1]
    assert [row["batch"] for row in results["batch"]["by_batch"]] == [1, 4]
    for ratio in results["mfcc"]["speedup"].values():
        assert 0 < ratio["p25"] <= ratio["median"] <= ratio["p75"]
    table = (tmp_path / "bench.md").read_text()
    assert "| comparison | ours | theirs | ratio | target | met |" in table
    assert table.count("MFCC, 1 s clip") == 3
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".bench*"))  # no temporary files left behind
    context = results["context"]  # paths relative to the repository, never the machine's
    absolute = re.compile(r"(?:^|[\s(`'\"])/[A-Za-z]")
    assert not absolute.search(table) and not absolute.search(context["clips"])
    assert not Path(context["model"]).is_absolute() and not Path(context["run"]).is_absolute()
    assert (REPO / context["model"]).resolve() == (models / "int8.tflite").resolve()
    assert (REPO / context["run"]).resolve() == (models / "run").resolve()


def test_benchmarks_say_how_to_make_the_run(models: Path, tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--model", str(models / "int8.tflite"),
                           "--run", str(tmp_path / "runs" / "default"), "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert "not a training run" in last and "audiomnist-edge train" in last and "--out runs/default" in last
