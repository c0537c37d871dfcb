"""Hostile and clumsy input, one test per case, named by the command it hits (issue 13).

Each case must end in correct behaviour or one `error: ...` line and a non-zero
exit, never a traceback, a hang or a changed file it should not touch. The
concurrent-flash case is slow (20 rounds) and marked ``slow``; the default run
includes it.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from flash_support import CLI, device, leftovers, model_bytes, run_flash, sha256_of, write_model

from audiomnist_edge.artifact import parse_artifact
from audiomnist_edge.model import DEFAULT_MODEL, Model
from audiomnist_edge.targets import ACTIVE, PREVIOUS, TEMP_PREFIX, parse_target, TargetError


def run(*args: str | Path, timeout: float = 60, **options) -> subprocess.CompletedProcess:
    """``audiomnist-edge ARGS`` with stdin closed; text output captured."""
    options.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          **options)


def assert_one_line_error(done: subprocess.CompletedProcess, *words: str) -> str:
    """Non-zero exit, no traceback, and a last stderr line that is an error naming ``words``."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode != 0, (done.stdout, done.stderr)
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(("error: ", "Error: ")), done.stderr
    assert all(word in last for word in words), last
    return last


def exec_start(unit: str) -> list[str]:
    """The ExecStart words of a unit as systemd splits them."""
    [line] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(line.removeprefix("ExecStart="))]


# ---- service --------------------------------------------------------------------------------

def test_service_user_with_a_newline_is_refused():
    done = run("service", "--model-dir", "/x", "--user", "pi\nExecStartPre=+/bin/touch /tmp/pwned")
    assert_one_line_error(done, "--user")
    assert "ExecStartPre" not in done.stdout


def test_service_empty_user_is_refused():
    assert_one_line_error(run("service", "--model-dir", "/x", "--user", ""), "--user is empty")


@pytest.mark.parametrize("user", ["-pi", "pi user", "pi%n", "root\t", "1pi"])
def test_service_invalid_user_names_are_refused(user):
    assert_one_line_error(run("service", "--model-dir", "/x", "--user", user), "--user")


def test_service_exec_cannot_inject_a_section():
    done = run("service", "--model-dir", "/x", "--user", "pi",
               "--exec", "/bin/true\n[Install]\nWantedBy=evil.target")
    assert_one_line_error(done, "--exec", "control character")


def test_service_exec_must_be_absolute():
    # a leading '-', '+', '@' or '!' would be an ExecStart prefix to systemd
    assert_one_line_error(run("service", "--model-dir", "/x", "--user", "pi", "--exec", "+/bin/sh"),
                          "absolute path")


def test_service_listen_argument_with_a_newline_is_refused():
    done = run("service", "--model-dir", "/x", "--user", "pi", "--", "--device", "USB\nUser=root")
    assert_one_line_error(done, "control character")


def test_service_model_dir_with_a_newline_is_refused():
    assert_one_line_error(run("service", "--model-dir", "/x\nUser=root", "--user", "pi"), "--model-dir")


def test_service_arguments_survive_systemd_quoting():
    device_name = 'my "USB" $HOME %h \\ ; mic'
    done = run("service", "--model-dir", "/opt/a b", "--user", "pi", "--exec", "/opt/ae/bin/audiomnist-edge",
               "--", "--device", device_name)
    assert done.returncode == 0, done.stderr
    assert exec_start(done.stdout) == ["/opt/ae/bin/audiomnist-edge", "listen", "--device", device_name,
                                       "--model", "/opt/a b/model.tflite"]
    assert [line.split("=")[0] for line in done.stdout.splitlines() if line.startswith("[")] == \
        ["[Unit]", "[Service]", "[Install]"]


def test_service_refuses_listen_model_option():
    assert_one_line_error(run("service", "--user", "pi", "--", "--model", "x.tflite"), "--model-dir")


def test_service_out_in_a_missing_folder_is_one_line(tmp_path):
    done = run("service", "--user", "pi", "--model-dir", tmp_path / "m", "--out", tmp_path / "no" / "x.service")
    assert_one_line_error(done, "cannot write")


# ---- flash: security ------------------------------------------------------------------------

@pytest.fixture
def model_a(tmp_path) -> tuple[Path, str]:
    path = tmp_path / "A.tflite"
    return path, write_model(path, seed=0)


@pytest.fixture
def model_b(tmp_path) -> tuple[Path, str]:
    path = tmp_path / "B.tflite"
    return path, write_model(path, seed=1)


def test_flash_does_not_follow_a_planted_temp_link(tmp_path, model_a, model_b):
    (a, sha_a), (b, sha_b) = model_a, model_b
    target = device(tmp_path, "pi", active=a)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (target / ".model.tflite.previous.tmp").symlink_to(victim)
    (target / (TEMP_PREFIX + "0000")).symlink_to(victim)
    done = run_flash(b, target)
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "precious"
    assert not (target / PREVIOUS).is_symlink() and sha256_of(target / PREVIOUS) == sha_a
    assert sha256_of(target / ACTIVE) == sha_b and leftovers(target) == []


def test_flash_refuses_an_active_model_that_is_a_link(tmp_path, model_a, model_b):
    victim = tmp_path / "victim"
    victim.write_bytes(model_a[0].read_bytes())
    target = device(tmp_path, "pi")
    (target / ACTIVE).symlink_to(victim)
    done = run_flash(model_b[0], target)
    assert done.returncode == 1 and "symbolic link" in done.stdout
    assert (target / ACTIVE).is_symlink() and victim.read_bytes() == model_a[0].read_bytes()


@pytest.mark.parametrize("spec", ["ssh://-V/opt/x", "ssh://-oProxyCommand=touch%20x/opt/x",
                                  "ssh://-l@host/opt/x"])
def test_flash_ssh_host_or_user_starting_with_dash_is_refused(spec, model_a):
    assert_one_line_error(run_flash(model_a[0], spec), "cannot start with '-'")


def test_flash_ssh_host_goes_after_double_dash():
    target = parse_target("ssh://pi@kitchen/opt/x")
    command = target._command("true")
    assert command[command.index("--") + 1] == "kitchen"


# ---- flash: integrity -----------------------------------------------------------------------

@pytest.mark.parametrize("spellings", [("{t}", "{t}/"), ("{t}", "{t}/."), ("{t}", "{link}")])
def test_flash_same_target_spelled_twice_is_refused(tmp_path, model_a, spellings):
    target = device(tmp_path, "pi")
    (tmp_path / "link").symlink_to(target)
    specs = [s.format(t=target, link=tmp_path / "link") for s in spellings]
    assert_one_line_error(run_flash(model_a[0], *specs), "same target")
    assert not (target / ACTIVE).exists()


@pytest.mark.slow
def test_flash_concurrent_flashes_keep_the_rollback_model_20_of_20(tmp_path, model_a, model_b):
    c = tmp_path / "C.tflite"
    sha_c = write_model(c, seed=2)
    (a, sha_a), (b, sha_b) = model_a, model_b
    for round_ in range(20):
        target = device(tmp_path, f"pi{round_}", active=a)
        results: list[subprocess.CompletedProcess] = []
        threads = [threading.Thread(target=lambda m=m: results.append(run_flash(m, target))) for m in (b, c)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(r.returncode == 0 for r in results), [r.stdout + r.stderr for r in results]
        # one flash after the other: the second keeps the first's model as its previous
        assert {sha256_of(target / ACTIVE), sha256_of(target / PREVIOUS)} == {sha_b, sha_c}
        assert leftovers(target) == []


def test_flash_removes_stale_temporary_files(tmp_path, model_a):
    target = device(tmp_path, "pi")
    for name in (TEMP_PREFIX + "1234abcd", TEMP_PREFIX + "ffffffffffffffff", ".model.tflite.previous.tmp"):
        (target / name).write_bytes(b"x" * 1000)
    done = run_flash(model_a[0], target)
    assert done.returncode == 0, done.stderr
    assert leftovers(target) == [] and sha256_of(target / ACTIVE) == model_a[1]


def test_flash_waits_for_the_target_lock(tmp_path, model_a):
    target = device(tmp_path, "pi")
    from audiomnist_edge.targets import LocalTarget

    with LocalTarget(target).locked():
        with pytest.raises(TargetError, match="locked by another flash"):
            with LocalTarget(str(target) + "/.").locked(timeout=0.2):
                pass
    with LocalTarget(target).locked(timeout=0.2):  # released
        pass


def test_flash_refuses_a_model_that_cannot_decide(tmp_path, model_a):
    bad = tmp_path / "nan.tflite"
    bad.write_bytes(model_bytes(seed=5, nan=True))
    target = device(tmp_path, "pi", active=model_a[0])
    assert_one_line_error(run_flash(bad, target), "probe signal")
    assert sha256_of(target / ACTIVE) == model_a[1] and leftovers(target) == []


def test_flash_rollback_refuses_a_previous_that_cannot_decide(tmp_path, model_a):
    target = device(tmp_path, "pi", active=model_a[0])
    (target / PREVIOUS).write_bytes(model_bytes(seed=5, nan=True))
    done = run_flash("--rollback", target)
    assert done.returncode == 1 and "unusable model" in done.stdout and "probe signal" in done.stdout
    assert sha256_of(target / ACTIVE) == model_a[1]


# ---- flash: hangs and nonsense --------------------------------------------------------------

def test_flash_restart_command_times_out(tmp_path, model_a, model_b):
    target = device(tmp_path, "pi", active=model_a[0])
    done = run_flash(model_b[0], target, "--restart", "--settle", "0", "--restart-timeout", "1",
                     "--restart-command", "sleep 300", timeout=60)
    assert done.returncode == 1 and "timed out after 1 s" in done.stdout and "rolled back" in done.stdout
    assert sha256_of(target / ACTIVE) == model_a[1]


def test_flash_settle_nan_is_refused(tmp_path, model_a):
    assert_one_line_error(run_flash(model_a[0], tmp_path, "--restart", "--settle", "nan"), "--settle")


def test_flash_binary_targets_file_is_one_line(tmp_path, model_a):
    done = subprocess.run([CLI, "flash", str(model_a[0]), "-f", "-"], input=os.urandom(4096) + b"\xff\xfe",
                          capture_output=True, timeout=60)
    assert_one_line_error(subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(),
                                                      done.stderr.decode()), "not a text file")


# ---- info / predict: model files ------------------------------------------------------------

def test_info_model_dev_zero_is_refused():
    assert_one_line_error(run("info", "--model", "/dev/zero", timeout=30), "not a regular file")


def test_info_model_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "fifo.tflite"
    os.mkfifo(fifo)
    assert_one_line_error(run("info", "--model", fifo, timeout=30), "not a regular file")


def test_info_sparse_4gb_model_is_refused_before_reading(tmp_path):
    huge = tmp_path / "huge.tflite"
    with open(huge, "wb") as handle:
        handle.truncate(4 * 1024 ** 3)
    assert_one_line_error(run("info", "--model", huge, timeout=30), "too large")


@pytest.mark.parametrize("field, value, words", [
    ("labels", list(range(10)), ["labels"]),
    ("labels", ["0"] * 10, ["labels"]),
    ("features", 5, ["features"]),
    ("features", {**json.loads('{"win_length": 200.5}')}, ["win_length"]),
    ("features", {"trim_db": math.nan}, ["trim_db"]),
    ("features", {"n_fft": 2 ** 28, "win_length": 200}, ["n_fft"]),
    ("quantization", {"input": {"dtype": "int8", "scale": 0.1, "zero_point": 0}}, ["shape"]),
])
def test_predict_model_with_lying_metadata_is_one_error(tmp_path, fsdd_test_clips, field, value, words):
    from audiomnist_edge.config import FeatureParams

    if field == "features" and isinstance(value, dict):
        value = {**FeatureParams().to_dict(), **value}
    path = tmp_path / "liar.tflite"
    path.write_bytes(model_bytes(seed=7, metadata=json.dumps({field: value})))
    for command in (["info", "--model", path], ["predict", "--model", path, fsdd_test_clips[0]]):
        assert_one_line_error(run(*command), str(path), *words)


def test_predict_tie_goes_to_the_lowest_digit():
    model = Model.load(DEFAULT_MODEL)
    for tied in ([1, 2], [3, 9], [0, 4, 5], [2, 3, 6, 8]):
        probabilities = np.full(10, 0.01, np.float32)
        probabilities[tied] = 0.4
        prediction = model.decide(probabilities, top_k=len(tied))
        assert prediction.label == str(tied[0])
        assert [label for label, _ in prediction.top] == [str(d) for d in tied]


def test_info_runs_the_probe_check(tmp_path):
    path = tmp_path / "nan.tflite"
    path.write_bytes(model_bytes(seed=5, nan=True))
    parse_artifact(path.read_bytes(), path)  # the file itself is well formed
    assert_one_line_error(run("info", "--model", path), "probe signal")
