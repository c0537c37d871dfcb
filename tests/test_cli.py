"""The command group end to end, in a subprocess as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from audiomnist_edge import __version__
from audiomnist_edge.config import FeatureParams


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "audiomnist_edge", *args],
                          capture_output=True, text=True, timeout=120)


def test_version_and_help() -> None:
    assert run("--version").stdout.strip().endswith(__version__)
    help_text = run("--help").stdout
    assert "features" in help_text and "--debug" in help_text


def test_the_help_teaches_commands_and_options_that_exist() -> None:
    """Every example in the top-level --help names a command, and options that command has."""
    import click
    from audiomnist_edge.cli import cli

    examples = [line.split("#")[0].split()[1:] for line in run("--help").stdout.splitlines()
                if line.strip().startswith("audiomnist-edge ")]
    assert {"predict", "listen", "train", "convert", "flash"} <= {words[0] for words in examples}
    for command, *words in examples:
        known = {name for param in cli.get_command(click.Context(cli), command).params for name in param.opts}
        assert {w for w in words if w.startswith("--")} <= known, command


def test_features_json(fsdd_test_clips) -> None:
    result = run("features", "--json", str(fsdd_test_clips[3]))
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["shape"] == list(FeatureParams().input_shape) and len(record["matrix"]) == 101


def test_bad_file_is_one_line_error_and_others_still_run(tmp_path, fsdd_test_clips) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    result = run("features", str(bad), str(fsdd_test_clips[0]))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: {bad}: no fmt chunk"]
    assert "MFCC {}x{}".format(*FeatureParams().input_shape) in result.stdout
    assert "Traceback" not in result.stderr


def test_debug_logs_to_stderr(fsdd_test_clips) -> None:
    result = run("--debug", "features", str(fsdd_test_clips[0]))
    assert result.returncode == 0
    assert f"{fsdd_test_clips[0]}: " in result.stderr and "samples at 8000 Hz" in result.stderr
    assert "samples at" not in run("features", str(fsdd_test_clips[0])).stderr


def test_ctrl_c_while_the_command_loads_exits_130_without_a_traceback(monkeypatch, capsys):
    import importlib.abc

    from audiomnist_edge.__main__ import run

    class Interrupted(importlib.abc.MetaPathFinder):
        """Ctrl-C arriving while the command line module is being imported."""

        def find_spec(self, name, path, target=None):
            if name == "audiomnist_edge.cli":
                raise KeyboardInterrupt
            return None

    monkeypatch.delitem(sys.modules, "audiomnist_edge.cli", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Interrupted(), *sys.meta_path])
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"
