"""The example Ansible playbook (deploy/ansible/flash.yml) run with ansible-core on local targets.

Two "devices" are folders on this machine (ansible_connection=local), so the
playbook's checks, canary batches, atomic swap, restart and rollback run for
real and the example cannot rot.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require

from flash_support import CLI, leftovers, sha256_of, write_model

from audiomnist_edge.model import Model
from audiomnist_edge.targets import ACTIVE, PREVIOUS

PLAYBOOK = Path(__file__).resolve().parents[1] / "deploy" / "ansible" / "flash.yml"
ANSIBLE_PLAYBOOK = Path(sys.executable).with_name("ansible-playbook")


@pytest.fixture
def fleet(tmp_path: Path):
    """An inventory of two local devices; returns a runner ``(model, **extra_vars) -> result``."""
    require(ANSIBLE_PLAYBOOK.exists(), f"ansible-core not installed beside {sys.executable} (pip install ansible-core)")
    devices = {name: tmp_path / name for name in ("pi1", "pi2")}
    for directory in devices.values():
        directory.mkdir()
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "[audiomnist_devices]\n"
        + "".join(f"{name} model_dir={directory}\n" for name, directory in devices.items())
        + f"[audiomnist_devices:vars]\nansible_connection=local\nansible_python_interpreter={sys.executable}\n"
        f"controller_cli={CLI}\ndevice_cli={CLI}\n")
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
           "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_RETRY_FILES_ENABLED": "0", "LC_ALL": "C.UTF-8"}

    def run(model: Path, **extra: str) -> subprocess.CompletedProcess:
        variables = {"model": str(model), "restart_command": "true", "check_command": "true",
                     "check_retries": "1", "check_delay": "0", **extra}
        command = [str(ANSIBLE_PLAYBOOK), "-i", str(inventory), str(PLAYBOOK), "-e", json.dumps(variables)]
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300,
                              stdin=subprocess.DEVNULL)

    run.devices = devices
    return run


def recap(output: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counts per host, e.g. {"pi1": {"ok": 9, "changed": 3, "failed": 0, ...}}."""
    section = output.split("PLAY RECAP", 1)[1]
    return {host: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
            for host, fields in re.findall(r"^(\S+)\s*:\s*(ok=.*)$", section, re.MULTILINE)}


def assert_active(directory: Path, sha256: str) -> None:
    assert sha256_of(directory / ACTIVE) == sha256
    Model.load(directory / ACTIVE)
    assert leftovers(directory) == []


def test_playbook_installs_noops_and_rolls_back_the_canary(fleet, tmp_path):
    a, b, c = (tmp_path / f"{n}.tflite" for n in "ABC")
    sha_a, sha_b, _ = (write_model(path, seed) for seed, path in enumerate((a, b, c)))
    pi1, pi2 = fleet.devices["pi1"], fleet.devices["pi2"]
    (pi1 / ACTIVE).write_bytes(a.read_bytes())

    first = fleet(b)
    assert first.returncode == 0, first.stdout[-3000:]
    assert_active(pi1, sha_b)
    assert_active(pi2, sha_b)
    assert sha256_of(pi1 / PREVIOUS) == sha_a
    assert all(counts["changed"] > 0 for counts in recap(first.stdout).values())

    again = fleet(b)
    assert again.returncode == 0, again.stdout[-3000:]
    assert all(counts["changed"] == 0 for counts in recap(again.stdout).values())

    broken = fleet(c, check_command="echo not running >&2; exit 3")
    assert broken.returncode != 0
    assert "rolled back to the previous model" in broken.stdout
    assert_active(pi1, sha_b)  # the canary was rolled back
    assert_active(pi2, sha_b)  # and the rollout stopped before the next batch
    assert "pi2" not in recap(broken.stdout) or recap(broken.stdout)["pi2"]["changed"] == 0


def test_playbook_refuses_an_invalid_model(fleet, tmp_path):
    a = tmp_path / "A.tflite"
    sha_a = write_model(a)
    for directory in fleet.devices.values():
        (directory / ACTIVE).write_bytes(a.read_bytes())
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(a.read_bytes()[:-1] + b"\x00")
    done = fleet(bad)
    assert done.returncode != 0
    assert "checksum mismatch" in done.stdout
    for directory in fleet.devices.values():
        assert_active(directory, sha_a)
