"""`audiomnist-edge flash` to local directories: install, no-op, rollback, restart and faults.

Every fault test checks that the model that was active before is still there,
byte for byte, and still loads.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pytest

from flash_support import (CLI, assert_intact, device, model_bytes, mounted, run_flash, sha256_of,
                           write_model)

from audiomnist_edge.artifact import parse_artifact
from audiomnist_edge.model import DEFAULT_MODEL
from audiomnist_edge.wav import read_wav, write_wav
from audiomnist_edge.targets import ACTIVE, PREVIOUS, LocalTarget, TargetError, read_target_list

QUIET_RESTART = ("--settle", "0", "--restart-command", "true")


@pytest.fixture
def models(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Two distinct valid models A and B: name -> (path, sha256)."""
    out = {}
    for seed, name in enumerate("AB"):
        path = tmp_path / f"{name}.tflite"
        out[name] = (path, write_model(path, seed))
    return out


def test_install_then_same_model_is_a_noop(tmp_path, models):
    path, sha = models["A"]
    target = device(tmp_path, "pi")
    first = run_flash(path, target)
    assert first.returncode == 0, first.stderr
    assert_intact(target, sha)
    assert not (target / PREVIOUS).exists()
    stamp = (target / ACTIVE).stat().st_mtime_ns
    again = run_flash(path, target, "--json")
    assert again.returncode == 0, again.stderr
    [outcome] = json.loads(again.stdout)["targets"]
    assert outcome["status"] == "unchanged" and "nothing to do" in outcome["message"]
    assert (target / ACTIVE).stat().st_mtime_ns == stamp


def test_new_model_keeps_previous_and_rollback_swaps_back(tmp_path, models):
    (a, sha_a), (b, sha_b) = models["A"], models["B"]
    target = device(tmp_path, "pi", active=a)
    done = run_flash(b, target)
    assert done.returncode == 0, done.stderr
    assert_intact(target, sha_b)
    assert sha256_of(target / PREVIOUS) == sha_a
    back = run_flash("--rollback", target, "--json")
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["targets"][0]["status"] == "rolled-back"
    assert_intact(target, sha_a)
    assert sha256_of(target / PREVIOUS) == sha_b


def test_rollback_without_previous_fails_and_changes_nothing(tmp_path, models):
    a, sha_a = models["A"]
    target = device(tmp_path, "pi", active=a)
    done = run_flash("--rollback", target)
    assert done.returncode == 1
    assert "no model.tflite.previous" in done.stdout
    assert_intact(target, sha_a)


def test_rollback_refuses_a_corrupt_previous(tmp_path, models):
    (a, sha_a), (b, _) = models["A"], models["B"]
    target = device(tmp_path, "pi", active=a)
    corrupt = bytearray(b.read_bytes())
    corrupt[len(corrupt) // 2] ^= 0xFF
    (target / PREVIOUS).write_bytes(bytes(corrupt))
    done = run_flash("--rollback", target)
    assert done.returncode == 1
    assert "unusable model" in done.stdout and "checksum mismatch" in done.stdout
    assert_intact(target, sha_a)


def test_invalid_model_is_refused_before_anything_is_sent(tmp_path, models):
    a, sha_a = models["A"]
    target = device(tmp_path, "pi", active=a)
    bad = tmp_path / "bad.tflite"
    corrupt = bytearray(models["B"][0].read_bytes())
    corrupt[100] ^= 0xFF
    bad.write_bytes(bytes(corrupt))
    done = run_flash(bad, target)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "checksum mismatch" in done.stderr and "Traceback" not in done.stderr
    assert_intact(target, sha_a)


def test_one_bad_target_does_not_affect_the_others(tmp_path, models):
    b, sha_b = models["B"]
    good = [device(tmp_path, f"pi{i}", active=models["A"][0]) for i in range(3)]
    fleet = tmp_path / "shelf.txt"
    fleet.write_text(f"# the shelf\n{good[1]}\n\n{tmp_path / 'not-mounted'}  # card missing\n{good[2]}\n")
    done = run_flash(b, good[0], "--targets-file", fleet, "--parallel", "2", "--json")
    assert done.returncode == 1
    outcomes = {o["target"]: o for o in json.loads(done.stdout)["targets"]}
    assert [outcomes[str(d)]["status"] for d in good] == ["installed"] * 3
    assert outcomes[str(tmp_path / "not-mounted")]["status"] == "failed"
    assert "not a directory" in outcomes[str(tmp_path / "not-mounted")]["message"]
    for directory in good:
        assert_intact(directory, sha_b)
    assert f"[{good[0]}] uploading" in done.stderr  # live per-target status


def test_summary_lists_every_target(tmp_path, models):
    a, _ = models["A"]
    targets = [device(tmp_path, "pi1"), tmp_path / "missing"]
    done = run_flash(a, *targets)
    assert done.returncode == 1
    lines = done.stdout.strip().splitlines()
    assert any("installed" in line and str(targets[0]) in line for line in lines)
    assert any("failed" in line and str(targets[1]) in line for line in lines)
    assert lines[-1] == "1 of 2 targets ok, 1 failed"


def test_restart_success_and_failure_rolls_back(tmp_path, models):
    (a, sha_a), (b, sha_b) = models["A"], models["B"]
    target = device(tmp_path, "pi", active=a)
    ok = run_flash(b, target, "--restart", *QUIET_RESTART, "--check-command", "true", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["targets"][0]["restarted"] is True
    assert_intact(target, sha_b)
    target2 = device(tmp_path, "pi2", active=a)
    bad = run_flash(b, target2, "--restart", *QUIET_RESTART, "--check-command", "exit 3")
    assert bad.returncode == 1
    assert "service did not come back" in bad.stdout and "rolled back" in bad.stdout
    assert_intact(target2, sha_a)
    assert sha256_of(target2 / PREVIOUS) == sha_b


def test_corrupted_upload_is_discarded(tmp_path, models):
    """The install step verifies what landed on the target, not what was meant to be sent."""
    (a, sha_a), (b, sha_b) = models["A"], models["B"]
    directory = device(tmp_path, "pi", active=a)
    target = LocalTarget(directory)
    landed = bytearray(b.read_bytes())
    landed[-1] ^= 0x01
    target.upload(bytes(landed), ".model.tflite.tmp-test")
    with pytest.raises(TargetError, match="checksum mismatch on target"):
        target.install(".model.tflite.tmp-test", sha_b)
    assert_intact(directory, sha_a)


def test_read_only_target(tmp_path, models):
    (a, sha_a), (b, _) = models["A"], models["B"]
    target = device(tmp_path, "pi", active=a)
    with mounted(target, "--bind", "-o", "ro", str(target)):
        done = run_flash(b, target)
        assert done.returncode == 1
        assert "Read-only file system" in done.stdout
        assert_intact(target, sha_a)


# tmpfs room, from the sizes of the active model A and the upload: the upload does not fit
# beside A, or it does but the backup copy of A then does not.
ROOM = {"upload-does-not-fit": lambda a, big: a + big // 2,
        "backup-does-not-fit": lambda a, big: a + big + a // 2}


@pytest.mark.parametrize("case", sorted(ROOM))
def test_full_target(tmp_path, models, case):
    a, sha_a = models["A"]
    big = tmp_path / "big.tflite"
    write_model(big, seed=3, padding=200_000)
    size = f"{-(-ROOM[case](a.stat().st_size, big.stat().st_size) // 4096) * 4}k"
    target = tmp_path / "card"
    target.mkdir()
    with mounted(target, "-t", "tmpfs", "-o", f"size={size}", "tmpfs"):
        (target / ACTIVE).write_bytes(a.read_bytes())
        done = run_flash(big, target)
        assert done.returncode == 1
        assert "No space left on device" in done.stdout
        assert_intact(target, sha_a)


def test_check_only_and_usage_errors(tmp_path, models):
    a, sha_a = models["A"]
    check = run_flash("--check", a)
    assert check.returncode == 0 and sha_a in check.stdout
    assert run_flash(a).returncode == 2  # no target
    assert "error: " in run_flash(a, "ftp://pi/x").stderr
    help_text = run_flash("--help").stdout
    assert "Examples:" in help_text and "--rollback" in help_text and "ssh://" in help_text


def test_read_target_list_ignores_comments_and_blanks():
    assert read_target_list("# fleet\n\n/a\n ssh://pi@h/x  # kitchen\n") == ["/a", "ssh://pi@h/x"]


def test_test_models_are_valid_and_distinct():
    digests = {parse_artifact(model_bytes(seed), Path(f"{seed}.tflite")).sha256 for seed in range(2)}
    assert len(digests) == 2


def exec_start(unit: str) -> list[str]:
    """The ExecStart command line of a unit as systemd splits it (quotes, \\ escapes, %% and $$)."""
    [line] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    words = shlex.split(line.removeprefix("ExecStart="))
    return [w.replace("%%", "%").replace("$$", "$") for w in words]


def heard_digits(command: list[str], stream: Path) -> set[str]:
    """The digits ``command`` (a listen command line) reports for a WAV stream."""
    done = subprocess.run([*command, "--input", str(stream), "--json"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {str(json.loads(line)["digit"]) for line in done.stdout.splitlines()}


def test_service_runs_the_model_flash_installs(tmp_path, fsdd_test_clips):
    """service writes a unit; flash A then B to its model folder; the unit's command hears A, then B."""
    samples = np.concatenate([np.zeros(8000, np.float32), read_wav(fsdd_test_clips[0])[0],
                              np.zeros(16000, np.float32)])
    stream = tmp_path / "one-digit.wav"
    write_wav(stream, samples + np.random.default_rng(0).normal(0, 1e-3, len(samples)), 8000)
    model_dir, unit_path = tmp_path / "opt" / "audiomnist-edge", tmp_path / "audiomnist-edge.service"
    env = {**os.environ, "SUDO_USER": "nobody"}
    made = subprocess.run([CLI, "service", "--model-dir", str(model_dir), "--out", str(unit_path)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert made.returncode == 0, made.stderr
    unit = unit_path.read_text()
    command = exec_start(unit)
    assert command[1:] == ["listen", "--model", str(model_dir / ACTIVE)]
    if os.geteuid() == 0:  # under sudo the service runs as the user who called sudo
        assert "User=nobody" in unit.splitlines()
    assert sha256_of(model_dir / ACTIVE) == sha256_of(DEFAULT_MODEL)  # a model from the start
    for name, favour in (("A", 3), ("B", 7)):
        model = tmp_path / f"{name}.tflite"
        write_model(model, seed=favour, favour=favour)
        flashed = run_flash(model, model_dir, "--restart", *QUIET_RESTART, "--check-command", "true")
        assert flashed.returncode == 0, flashed.stderr
        assert heard_digits(command, stream) == {str(favour)}
    back = run_flash("--rollback", model_dir)
    assert back.returncode == 0, back.stderr
    assert heard_digits(command, stream) == {"3"}
