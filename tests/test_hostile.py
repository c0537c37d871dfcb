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
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from flash_support import CLI, device, leftovers, model_bytes, run_flash, sha256_of, write_model

from audiomnist_edge.artifact import parse_artifact
from audiomnist_edge.model import DEFAULT_MODEL, Model
from audiomnist_edge.targets import ACTIVE, PREVIOUS, TEMP_PREFIX, LocalTarget, TargetError, parse_target


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


def test_service_arguments_survive_systemd_quoting(tmp_path):
    device_name = 'my "USB" $HOME %h \\ ; mic'
    done = run("service", "--model-dir", "/opt/a b", "--user", "pi", "--exec", CLI,
               "--", "--device", device_name)
    assert done.returncode == 0, done.stderr
    assert exec_start(done.stdout) == [CLI, "listen", "--device", device_name,
                                       "--model", "/opt/a b/model.tflite"]
    assert [line.split("=")[0] for line in done.stdout.splitlines() if line.startswith("[")] == \
        ["[Unit]", "[Service]", "[Install]"]
    if shutil.which("systemd-analyze"):  # systemd itself loads it without complaint
        unit = tmp_path / "quoted.service"
        unit.write_text(done.stdout)
        verify = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        assert verify.returncode == 0 and unit.name not in verify.stdout + verify.stderr, verify.stderr


def test_service_refuses_listen_model_option():
    assert_one_line_error(run("service", "--user", "pi", "--", "--model", "x.tflite"), "--model-dir")


def test_service_out_in_a_missing_folder_is_one_line(tmp_path):
    done = run("service", "--user", "pi", "--model-dir", tmp_path / "m", "--out", tmp_path / "no" / "x.service")
    assert_one_line_error(done, "cannot write")


def test_service_keeps_a_model_already_in_the_model_dir(tmp_path, model_a):
    model_dir = tmp_path / "models"
    model_dir.mkdir()
    (model_dir / ACTIVE).write_bytes(model_a[0].read_bytes())
    done = run("service", "--user", "pi", "--model-dir", model_dir, "--out", tmp_path / "x.service")
    assert done.returncode == 0, done.stderr
    assert sha256_of(model_dir / ACTIVE) == model_a[1] and "installed" not in done.stderr


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
    (a, _), (b, sha_b) = model_a, model_b
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
        probabilities = np.full(len(model.labels), 0.01, np.float32)
        probabilities[tied] = 0.4
        prediction = model.decide(probabilities, top_k=len(tied))
        assert prediction.label == str(tied[0])
        assert [label for label, _ in prediction.top] == [str(d) for d in tied]


def test_info_runs_the_probe_check(tmp_path):
    path = tmp_path / "nan.tflite"
    path.write_bytes(model_bytes(seed=5, nan=True))
    parse_artifact(path.read_bytes(), path)  # the file itself is well formed
    assert_one_line_error(run("info", "--model", path), "probe signal")


# ---- info / bench / features: output ----------------------------------------------------------

def test_info_json_never_holds_nan(tmp_path):
    path = tmp_path / "nan-meta.tflite"
    path.write_bytes(model_bytes(seed=8, metadata=json.dumps({"verification_note": math.nan,
                                                              "extra": [math.inf, 1.5]})))
    done = run("info", "--model", path, "--json")
    assert done.returncode == 0, done.stderr
    assert "NaN" not in done.stdout and "Infinity" not in done.stdout
    metadata = json.loads(done.stdout)["metadata"]
    assert metadata["verification_note"] is None and metadata["extra"] == [None, 1.5]


def test_bench_input_fifo_is_read_once(tmp_path, fsdd_test_clips):
    fifo = tmp_path / "clip.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_bytes(fsdd_test_clips[0].read_bytes()))
    writer.start()
    done = run("bench", "--input", fifo, "--repeat", "2", "--warmup", "0", "--cold", "1", "--json",
               timeout=120)
    writer.join(timeout=5)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["clip"]["source"] == str(fifo)


def test_features_save_into_a_missing_folder_is_one_line(fsdd_test_clips):
    assert_one_line_error(run("features", "--save", "/nonexistent-dir/x.npy", fsdd_test_clips[0]),
                          "cannot write /nonexistent-dir/x.npy")


def test_features_save_refuses_to_overwrite_without_force(tmp_path, fsdd_test_clips):
    out = tmp_path / "x.npy"
    out.write_bytes(b"keep me")
    assert_one_line_error(run("features", "--save", out, fsdd_test_clips[0]), "--force")
    assert out.read_bytes() == b"keep me"
    done = run("features", "--save", out, "--force", fsdd_test_clips[0])
    assert done.returncode == 0, done.stderr
    assert np.load(out).shape == (101, 20) and [p.name for p in tmp_path.iterdir()] == ["x.npy"]


# ---- convert / train / evaluate / eda ---------------------------------------------------------

def fake_run(folder: Path, run_json: str = "{}") -> Path:
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"not really")
    (folder / "features.json").write_text("{}")
    (folder / "run.json").write_text(run_json)
    return folder


def test_convert_run_json_that_is_a_list_is_one_line(tmp_path):
    assert_one_line_error(run("convert", fake_run(tmp_path / "run", "[]")), "run.json: not a JSON object")


def test_convert_refuses_an_existing_out_without_force(tmp_path):
    out = tmp_path / "model.tflite"
    out.write_bytes(b"keep me")
    assert_one_line_error(run("convert", fake_run(tmp_path / "run"), "--out", out), "--force")
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("option, value", [("--epochs", "-1"), ("--epochs", "0"), ("--batch-size", "0"),
                                           ("--augment", "-2"), ("--lr", "nan"), ("--fold", "-1")])
def test_train_nonsense_options_are_refused(tmp_path, option, value):
    done = run("train", "--data", tmp_path, option, value, "--out", tmp_path / "run")
    assert_one_line_error(done, option)
    assert not (tmp_path / "run").exists()


def test_train_missing_features_file_is_one_line(tmp_path):
    assert_one_line_error(run("train", "--data", tmp_path, "--features", tmp_path / "nope.json"), "--features")


def test_train_refuses_an_existing_run_without_force(tmp_path, fsdd):
    existing = fake_run(tmp_path / "run")
    assert_one_line_error(run("train", "--data", fsdd, "--out", existing, timeout=120), "--force")
    assert (existing / "model.keras").read_bytes() == b"not really"


def test_train_force_never_replaces_a_folder_it_did_not_write(tmp_path, fsdd):
    (tmp_path / "notes.txt").write_text("mine")
    done = run("train", "--data", fsdd, "--out", tmp_path, "--force", timeout=120)
    assert_one_line_error(done, "no run.json")
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_train_with_no_usable_clips_is_one_line(tmp_path):
    corpus = tmp_path / "corpus" / "recordings"
    corpus.mkdir(parents=True)
    (corpus / "0_a_0.wav").write_bytes(b"RIFF")
    assert_one_line_error(run("train", "--data", corpus.parent, "--out", tmp_path / "run", timeout=300),
                          "no usable")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("run_json", ["[]", "{", '{"recipe": 5}'])
def test_evaluate_corrupt_run_folder_is_one_line(tmp_path, run_json):
    assert_one_line_error(run("evaluate", fake_run(tmp_path / "run", run_json)), "run.json")


def test_evaluate_folder_without_a_model_is_one_line(tmp_path):
    assert_one_line_error(run("evaluate", tmp_path), "no model.keras")


def test_eda_out_that_cannot_be_created_is_one_line(tmp_path, fsdd):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(run("eda", "--data", fsdd, "--out", blocker / "eda"), "cannot create")


# ---- library pieces the commands rely on ------------------------------------------------------

def test_train_run_folder_appears_whole_or_not_at_all(tmp_path):
    from audiomnist_edge.atomic import new_folder
    from audiomnist_edge.errors import EdgeError

    out = tmp_path / "run"
    with pytest.raises(EdgeError, match="cannot write .*No space left"):
        with new_folder(out) as folder:
            (folder / "model.keras").write_text("half")
            raise OSError(28, "No space left on device")
    assert list(tmp_path.iterdir()) == []
    with new_folder(out) as folder:
        (folder / "run.json").write_text("{}")
    with new_folder(out, force=True) as folder:
        (folder / "run.json").write_text('{"second": 1}')
    assert [p.name for p in tmp_path.iterdir()] == ["run"] and "second" in (out / "run.json").read_text()


@pytest.mark.parametrize("variable, value", [("HOME", ""), ("AUDIOMNIST_EDGE_CACHE", ""), ("HOME", "relative")])
def test_train_cache_never_lands_in_the_root_or_current_folder(monkeypatch, variable, value):
    from audiomnist_edge.train.cache import cache_root

    monkeypatch.delenv("AUDIOMNIST_EDGE_CACHE", raising=False)
    monkeypatch.setenv(variable, value)
    root = cache_root()
    assert root.is_absolute() and root.name == "audiomnist-edge" and root.parent != Path("/.cache")


def test_train_cache_dir_that_is_a_file_warns_and_goes_on(tmp_path, fsdd_test_clips, capsys):
    from audiomnist_edge.config import FeatureParams
    from audiomnist_edge.train.cache import extract
    from audiomnist_edge.train.datasets import Clip

    blocker = tmp_path / "file"
    blocker.write_text("")
    clips = [Clip(path=p, digit=int(p.name[0]), speaker=p.name.split("_")[1], take=0)
             for p in fsdd_test_clips[:2]]
    x, ok, _ = extract(clips, FeatureParams(), cache_dir=blocker, progress=False)
    assert ok.all() and x.shape == (2, *FeatureParams().input_shape)
    assert "feature cache not written" in capsys.readouterr().err


def test_train_corrupt_cache_file_is_a_miss(tmp_path, fsdd_test_clips):
    from audiomnist_edge.config import FeatureParams
    from audiomnist_edge.train.cache import extract
    from audiomnist_edge.train.datasets import Clip

    clips = [Clip(path=p, digit=int(p.name[0]), speaker=p.name.split("_")[1], take=0)
             for p in fsdd_test_clips[:4]]
    first, ok, _ = extract(clips, FeatureParams(), cache_dir=tmp_path, progress=False)
    [cached] = (tmp_path / "features").glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:100])  # a killed write, a full disk
    again, ok_again, _ = extract(clips, FeatureParams(), cache_dir=tmp_path, progress=False)
    assert np.array_equal(first, again) and ok_again.all()
    assert np.load(cached)["x"].shape == first.shape  # rewritten whole


def test_info_tolerates_odd_informational_metadata(tmp_path):
    path = tmp_path / "odd.tflite"
    path.write_bytes(model_bytes(seed=9, metadata=json.dumps({
        "verification": {"keras_accuracy": "high"}, "reference_bench": {"cpu": 3}, "training": [1, 2]})))
    done = run("info", "--model", path)
    assert done.returncode == 0, done.stderr
    assert "sha256" in done.stdout and "verified" not in done.stdout and "reference " not in done.stdout
