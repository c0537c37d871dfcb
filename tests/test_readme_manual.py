"""The README stays the manual: every command has an example there, and its Python API example runs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from audiomnist_edge.cli import cli
from audiomnist_edge.wav import read_wav, write_wav

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
EXAMPLES = REPO / "examples" / "digits"


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks of one language, in order."""
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def test_every_command_has_an_example_in_the_readme() -> None:
    shell = "\n".join(blocks("bash"))
    missing = [name for name in cli.list_commands(None) if not re.search(rf"audiomnist-edge {name}\b", shell)]
    assert not missing, f"no `audiomnist-edge COMMAND` example in the README for {missing}"


def test_python_api_example_runs(tmp_path, monkeypatch, capsys) -> None:
    """The example reads talk.wav (a 2 and a 7, 0.4 s apart) and clip.wav (a 5) from the current folder."""
    two, rate = read_wav(EXAMPLES / "2.wav")
    seven, _ = read_wav(EXAMPLES / "7.wav")
    pause = np.zeros(int(0.4 * rate), np.float32)
    write_wav(tmp_path / "talk.wav", np.concatenate([pause, two, pause, seven, pause]), rate)
    write_wav(tmp_path / "clip.wav", read_wav(EXAMPLES / "5.wav")[0], rate)
    [code] = blocks("python")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    printed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [fields[2] for fields in printed] == ["2", "7"]
    assert [d.digit for d in scope["detections"]] == ["5"]
