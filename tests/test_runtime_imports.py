"""The device runtime works with TensorFlow and librosa made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from audiomnist_edge.config import FeatureParams

BLOCKER = textwrap.dedent("""
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tensorflow", "librosa", "keras", "scipy"):
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
""")


def run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120)


def test_blocker_really_blocks() -> None:
    result = run_blocked("import librosa")
    assert result.returncode != 0 and "blocked in this test" in result.stderr


def test_runtime_modules_import_and_compute_without_heavy_libraries(fsdd_test_clips) -> None:
    result = run_blocked(f"""
        import sys
        from audiomnist_edge import cli, config, features, model, resample, wav, artifact, interpreter
        samples, rate = wav.read_wav({str(fsdd_test_clips[0])!r})
        x = features.clip_features(resample.resample(samples, rate, 8000), config.FeatureParams())
        assert x.shape == config.FeatureParams().input_shape
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'librosa', 'keras'))
        print('heavy:', heavy)
    """)
    assert result.returncode == 0, result.stderr
    assert "heavy: []" in result.stdout


def test_runtime_resamples_without_soxr(fsdd_test_clips) -> None:
    """Where soxr has no wheels (32-bit ARM) the NumPy engine serves, same output length."""
    result = run_blocked(f"""
        import sys
        sys.modules['soxr'] = None
        from audiomnist_edge import resample, wav
        samples, rate = wav.read_wav({str(fsdd_test_clips[0])!r})
        stream = resample.Resampler(rate, 48000)
        y = resample.resample(samples, rate, 48000)
        print(stream.engine, len(y) == -(-len(samples) * 48000 // rate))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["numpy", "True"]


def test_cli_features_runs_without_heavy_libraries(fsdd_test_clips) -> None:
    result = run_blocked(f"""
        import sys
        from audiomnist_edge.cli import main
        sys.argv = ['audiomnist-edge', 'features', {str(fsdd_test_clips[0])!r}]
        main()
    """)
    assert result.returncode == 0, result.stderr
    assert "MFCC {}x{}".format(*FeatureParams().input_shape) in result.stdout
