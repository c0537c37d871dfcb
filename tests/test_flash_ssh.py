"""`audiomnist-edge flash` over SSH against a real OpenSSH server on 127.0.0.1.

The server, its host key, the client key, known_hosts and the client's ssh
config are all made in a temporary folder; flash reaches them through
``--ssh-config`` exactly as it would a device through ``~/.ssh/config``.
Faults are real too: a closed port, a known_hosts entry with another key, a
link cut mid-transfer (a ProxyCommand that drops the connection), a target
whose bytes land corrupted (a ``cat`` on the server that flips bytes), and
full or read-only filesystems.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import require

from flash_support import assert_intact, device, mounted, run_flash, sha256_of, write_model

from audiomnist_edge.targets import ACTIVE, PREVIOUS

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module", autouse=True)
def openssh() -> None:
    require(Path(SSHD).exists() and shutil.which("ssh") and shutil.which("ssh-keygen"),
            "needs OpenSSH (apt-get install openssh-server openssh-client)")


@dataclass
class Server:
    """A running test sshd and the client config that reaches it."""

    root: Path
    port: int
    config: Path

    def url(self, alias: str, directory: Path) -> str:
        return f"ssh://{alias}{directory}"

    def flash(self, *args: str | Path) -> subprocess.CompletedProcess:
        return run_flash("--ssh-config", self.config, "--connect-timeout", "5", *args)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _keygen(path: Path) -> list[str]:
    """Make an ed25519 key pair at ``path``; the public key's [type, base64]."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text().split()[:2]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    root = tmp_path_factory.mktemp("sshd")
    port = _free_port()
    host_key = " ".join(_keygen(root / "host_key"))
    other_key = " ".join(_keygen(root / "other_host_key"))
    _keygen(root / "client_key")
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key}\n")
    (root / "wrong_known_hosts").write_text(f"[127.0.0.1]:{port} {other_key}\n")
    # A `cat` that flips bytes, used instead of the real one while the flag file exists.
    (root / "bin").mkdir()
    (root / "bin" / "cat").write_text("#!/bin/sh\nexec /bin/cat \"$@\" | tr '\\000' '\\377'\n")
    (root / "session").write_text(f"#!/bin/sh\n[ -e {root}/corrupt ] && PATH={root}/bin:$PATH\n"
                                  "exec /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n")
    for script in (root / "bin" / "cat", root / "session"):
        script.chmod(0o755)
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root}/host_key\n"
        f"AuthorizedKeysFile {root}/authorized_keys\nPidFile {root}/sshd.pid\n"
        "UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"PermitRootLogin prohibit-password\nAllowUsers {getpass.getuser()}\n"
        f"ForceCommand {root}/session\n")
    common = (f"  HostName 127.0.0.1\n  Port {port}\n  User {getpass.getuser()}\n"
              f"  IdentityFile {root}/client_key\n  IdentitiesOnly yes\n  StrictHostKeyChecking yes\n"
              "  GlobalKnownHostsFile /dev/null\n")
    (root / "ssh_config").write_text(
        f"Host device\n{common}  UserKnownHostsFile {root}/known_hosts\n"
        f"Host impostor\n{common}  UserKnownHostsFile {root}/wrong_known_hosts\n"
        f"Host flaky\n{common}  UserKnownHostsFile {root}/known_hosts\n"
        f"  ProxyCommand {sys.executable} {HERE / 'cutting_proxy.py'} %h %p 3000000\n"
        f"Host closed\n{common.replace(str(port), str(_free_port()))}  UserKnownHostsFile {root}/known_hosts\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")],
                               stderr=open(root / "sshd.log", "wb"))
    server = Server(root, port, root / "ssh_config")
    deadline = time.monotonic() + 20
    while True:
        probe = subprocess.run(["ssh", "-F", str(server.config), "-o", "BatchMode=yes", "device", "true"],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if probe.returncode == 0:
            break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"test sshd did not come up: {probe.stderr.strip()} / "
                        f"{(root / 'sshd.log').read_text()[-500:]}")
        time.sleep(0.2)
    yield server
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def models(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Models A and B (small) and BIG (4 MB): name -> (path, sha256)."""
    specs = {"A": (0, 0), "B": (1, 0), "BIG": (2, 4_000_000)}
    return {name: (tmp_path / f"{name}.tflite", write_model(tmp_path / f"{name}.tflite", seed, pad))
            for name, (seed, pad) in specs.items()}


def test_fleet_with_unreachable_and_impostor(server, tmp_path, models):
    """Good devices are flashed; a closed port and a changed host key fail alone, clearly."""
    (a, sha_a), (b, sha_b) = models["A"], models["B"]
    good = [device(tmp_path, f"pi{i}", active=a) for i in range(2)]
    unreachable, impostor = device(tmp_path, "down", active=a), device(tmp_path, "fake", active=a)
    done = server.flash(b, *(server.url("device", d) for d in good), server.url("closed", unreachable),
                        server.url("impostor", impostor), "--parallel", "3", "--json")
    assert done.returncode == 1, done.stderr
    outcomes = json.loads(done.stdout)["targets"]
    assert [o["status"] for o in outcomes] == ["installed", "installed", "failed", "failed"]
    assert "Connection refused" in outcomes[2]["message"]
    assert "host key verification failed" in outcomes[3]["message"]
    for directory in good:
        assert_intact(directory, sha_b)
        assert sha256_of(directory / PREVIOUS) == sha_a
    for directory in (unreachable, impostor):
        assert_intact(directory, sha_a)


def test_same_model_noop_then_rollback_with_restart(server, tmp_path, models):
    (a, sha_a), (b, sha_b) = models["A"], models["B"]
    directory = device(tmp_path, "pi", active=a)
    url = server.url("device", directory)
    restart = ("--restart", "--settle", "0", "--restart-command", "touch restarted",
               "--check-command", "test -f restarted")
    first = server.flash(b, url, *restart, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["targets"][0]["restarted"] is True
    (directory / "restarted").unlink()
    again = server.flash(b, url, "--json")
    assert json.loads(again.stdout)["targets"][0]["status"] == "unchanged"
    back = server.flash("--rollback", url, *restart)
    assert back.returncode == 0, back.stdout + back.stderr
    assert (directory / "restarted").exists()
    (directory / "restarted").unlink()
    assert_intact(directory, sha_a)
    assert sha256_of(directory / PREVIOUS) == sha_b


def test_restart_failure_rolls_back_over_ssh(server, tmp_path, models):
    (a, sha_a), (b, _) = models["A"], models["B"]
    directory = device(tmp_path, "pi", active=a)
    done = server.flash(b, server.url("device", directory), "--restart", "--settle", "0",
                        "--restart-command", "true", "--check-command", "echo unit failed >&2; exit 3")
    assert done.returncode == 1
    assert "service did not come back (unit failed)" in done.stdout and "rolled back" in done.stdout
    assert_intact(directory, sha_a)


def test_transfer_cut_midway(server, tmp_path, models):
    (a, sha_a), (big, _) = models["A"], models["BIG"]
    directory = device(tmp_path, "pi", active=a)
    done = server.flash(big, server.url("flaky", directory))
    assert done.returncode == 1
    assert "upload failed" in done.stdout
    assert_intact(directory, sha_a)


def test_corrupted_upload(server, tmp_path, models):
    (a, sha_a), (b, _) = models["A"], models["B"]
    directory = device(tmp_path, "pi", active=a)
    (server.root / "corrupt").touch()
    try:
        done = server.flash(b, server.url("device", directory))
    finally:
        (server.root / "corrupt").unlink()
    assert done.returncode == 1
    assert "checksum mismatch on target" in done.stdout and "model unchanged" in done.stdout
    assert_intact(directory, sha_a)


def test_missing_directory(server, tmp_path, models):
    done = server.flash(models["A"][0], server.url("device", tmp_path / "nowhere"))
    assert done.returncode == 1
    assert "no such directory on the device" in done.stdout


def test_read_only_target(server, tmp_path, models):
    (a, sha_a), (b, _) = models["A"], models["B"]
    directory = device(tmp_path, "pi", active=a)
    with mounted(directory, "--bind", "-o", "ro", str(directory)):
        done = server.flash(b, server.url("device", directory))
        assert done.returncode == 1
        assert "upload failed" in done.stdout and "Read-only file system" in done.stdout
        assert_intact(directory, sha_a)


def test_full_target(server, tmp_path, models):
    (a, sha_a), (big, _) = models["A"], models["BIG"]
    directory = tmp_path / "card"
    directory.mkdir()
    with mounted(directory, "-t", "tmpfs", "-o", "size=1m", "tmpfs"):
        (directory / ACTIVE).write_bytes(a.read_bytes())
        done = server.flash(big, server.url("device", directory))
        assert done.returncode == 1
        assert "No space left on device" in done.stdout
        assert_intact(directory, sha_a)


def test_stale_temps_removed_and_planted_links_not_followed(server, tmp_path, models):
    (a, sha_a), (b, sha_b) = models["A"], models["B"]
    directory = device(tmp_path, "pi", active=a)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (directory / ".model.tflite.previous.tmp").symlink_to(victim)
    (directory / ".model.tflite.tmp-0123abcd").write_bytes(b"x" * 5000)  # a killed flash's upload
    done = server.flash(b, server.url("device", directory))
    assert done.returncode == 0, done.stdout + done.stderr
    assert victim.read_text() == "precious"
    assert_intact(directory, sha_b)
    assert not (directory / PREVIOUS).is_symlink() and sha256_of(directory / PREVIOUS) == sha_a


@pytest.mark.slow
def test_concurrent_flashes_over_ssh_keep_the_rollback_model(server, tmp_path, models):
    (a, _), (b, sha_b) = models["A"], models["B"]
    c = tmp_path / "C.tflite"
    sha_c = write_model(c, seed=3)
    for round_ in range(3):  # each round is ~10 ssh sessions; the local test does 20 rounds
        directory = device(tmp_path, f"pi{round_}", active=a)
        url = server.url("device", directory)
        results: list[subprocess.CompletedProcess] = []
        threads = [threading.Thread(target=lambda m=m: results.append(server.flash(m, url))) for m in (b, c)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(r.returncode == 0 for r in results), [r.stdout + r.stderr for r in results]
        assert {sha256_of(directory / ACTIVE), sha256_of(directory / PREVIOUS)} == {sha_b, sha_c}
        assert_intact(directory, sha256_of(directory / ACTIVE))
