"""Where models are flashed to: a local directory or a directory over SSH.

Both kinds hold the same layout in their directory::

    model.tflite             the active model (what `listen` and the service load)
    model.tflite.previous    the one it replaced, for `flash --rollback`
    .model.tflite.tmp-XXXX   an upload in progress (removed on failure)

and offer the same few steps, each of which leaves a complete ``model.tflite``
in place whatever happens: ``upload`` writes a temporary file; ``install``
verifies its SHA-256 on the target, copies the active model to ``.previous``
(through a temporary name and a rename) and renames the temporary file over
``model.tflite``. SSH targets use the system ``ssh`` binary, so keys,
``~/.ssh/config`` and ``known_hosts`` behave as OpenSSH users expect.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import EdgeError

ACTIVE = "model.tflite"
PREVIOUS = ACTIVE + ".previous"
TEMP_PREFIX = "." + ACTIVE + ".tmp-"
_PREVIOUS_TEMP = "." + PREVIOUS + ".tmp"
_SSH_URL = re.compile(r"^ssh://(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+)(?::(?P<port>\d+))?(?P<path>/.*)$")


class TargetError(EdgeError):
    """A target could not be reached, read or written; the message says which and why."""


@dataclass(frozen=True)
class State:
    """SHA-256 hex digests of the active and previous models (None when absent)."""

    active: str | None
    previous: str | None


def new_temp_name() -> str:
    """A fresh temporary file name for an upload."""
    return TEMP_PREFIX + secrets.token_hex(4)


class LocalTarget:
    """A directory on this machine, e.g. a mounted SD card or the device's own model folder."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        self.name = str(directory)

    def _path(self, name: str) -> Path:
        return self.directory / name

    def _fail(self, what: str, exc: OSError) -> TargetError:
        return TargetError(f"{what}: {exc.strerror or exc}")

    def _sha256(self, name: str) -> str | None:
        try:
            return hashlib.sha256(self._path(name).read_bytes()).hexdigest()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail(f"cannot read {self._path(name)}", exc) from None

    def state(self) -> State:
        if not self.directory.is_dir():
            raise TargetError(f"{self.directory} is not a directory (is the card mounted?)")
        return State(self._sha256(ACTIVE), self._sha256(PREVIOUS))

    def fetch(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except OSError as exc:
            raise self._fail(f"cannot read {self._path(name)}", exc) from None

    def _write_synced(self, name: str, data: bytes) -> None:
        with open(self._path(name), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def upload(self, data: bytes, temp: str) -> None:
        try:
            self._write_synced(temp, data)
        except OSError as exc:
            raise self._fail(f"upload to {self._path(temp)} failed", exc) from None

    def stage_previous(self, temp: str) -> None:
        self.upload(self.fetch(PREVIOUS), temp)

    def install(self, temp: str, sha256: str) -> None:
        got = self._sha256(temp)
        if got != sha256:
            self.discard(temp)
            raise TargetError(f"checksum mismatch on target: expected {sha256[:12]}, got "
                              f"{(got or 'nothing')[:12]}; upload discarded, model unchanged")
        try:
            if self._path(ACTIVE).is_file():
                self._write_synced(_PREVIOUS_TEMP, self._path(ACTIVE).read_bytes())
                os.replace(self._path(_PREVIOUS_TEMP), self._path(PREVIOUS))
            os.replace(self._path(temp), self._path(ACTIVE))
            _fsync_directory(self.directory)
        except OSError as exc:
            raise self._fail("swap failed, model unchanged", exc) from None

    def discard(self, temp: str) -> None:
        for name in (temp, _PREVIOUS_TEMP):
            try:
                self._path(name).unlink()
            except OSError:
                pass

    def run(self, command: str) -> tuple[int, str]:
        done = subprocess.run(command, shell=True, cwd=self.directory, capture_output=True, text=True)
        return done.returncode, _last_line(done.stderr or done.stdout)


def _fsync_directory(directory: Path) -> None:
    """Persist renames in ``directory`` (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


class SshTarget:
    """A directory on a device reached with the system ``ssh`` (BatchMode: never prompts).

    Args:
        user, host, port, directory: parts of ``ssh://[user@]host[:port]/path``.
        ssh_config: an ssh config file passed as ``-F`` (None: ``~/.ssh/config``).
        connect_timeout: seconds before an unreachable host is given up.
    """

    def __init__(self, user: str | None, host: str, port: int | None, directory: str,
                 ssh_config: str | None = None, connect_timeout: int = 10) -> None:
        self.user, self.host, self.port, self.directory = user, host, port, directory
        self.ssh_config, self.connect_timeout = ssh_config, connect_timeout
        self.name = (f"ssh://{user + '@' if user else ''}{host}"
                     f"{':' + str(port) if port else ''}{directory}")

    def _command(self, script: str) -> list[str]:
        command = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                   "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
        if self.ssh_config:
            command += ["-F", self.ssh_config]
        if self.port:
            command += ["-p", str(self.port)]
        if self.user:
            command += ["-l", self.user]
        return command + [self.host.strip("[]"), "--", script]

    def _ssh(self, script: str, what: str, data: bytes | None = None) -> bytes:
        """Run a POSIX sh script in the target directory; its stdout, or TargetError."""
        script = f"cd {shlex.quote(self.directory)} || exit 97\n{script}"
        try:
            done = subprocess.run(self._command(script), input=data if data is not None else b"",
                                  capture_output=True)
        except FileNotFoundError:
            raise TargetError("the OpenSSH client (ssh) is not installed") from None
        if done.returncode == 0:
            return done.stdout
        raise TargetError(f"{what}: {_explain(done.returncode, done.stderr.decode('utf-8', 'replace'))}")

    def state(self) -> State:
        out = self._ssh(f"for f in {ACTIVE} {PREVIOUS}; do if [ -f \"$f\" ]; then sha256sum \"$f\" "
                        "|| exit 1; else echo - \"$f\"; fi; done", "cannot read the model folder")
        digests = [line.split()[0] for line in out.decode().splitlines() if line.strip()]
        if len(digests) != 2 or not all(d == "-" or re.fullmatch(r"[0-9a-f]{64}", d) for d in digests):
            raise TargetError(f"unexpected answer from sha256sum on {self.host}: {out[:80]!r}")
        active, previous = (None if d == "-" else d for d in digests)
        return State(active, previous)

    def fetch(self, name: str) -> bytes:
        return self._ssh(f"cat {shlex.quote(name)}", f"cannot read {name}")

    def upload(self, data: bytes, temp: str) -> None:
        self._ssh(f"cat > {shlex.quote(temp)}", "upload failed", data)

    def stage_previous(self, temp: str) -> None:
        self._ssh(f"cp {PREVIOUS} {shlex.quote(temp)}", "cannot stage the previous model")

    def install(self, temp: str, sha256: str) -> None:
        temp = shlex.quote(temp)
        self._ssh(
            f"got=$(sha256sum {temp} | cut -c1-64)\n"
            f"if [ \"$got\" != {sha256} ]; then rm -f {temp}; "
            f"echo \"checksum mismatch on target: expected {sha256[:12]}, got $(echo \"${{got:-nothing}}\" "
            "| cut -c1-12); upload discarded, model unchanged\" >&2; exit 98; fi\n"
            f"if [ -f {ACTIVE} ]; then cp {ACTIVE} {_PREVIOUS_TEMP} && sync && "
            f"mv -f {_PREVIOUS_TEMP} {PREVIOUS} || exit 1; fi\n"
            f"sync && mv -f {temp} {ACTIVE} && sync",
            "verify and swap failed")

    def discard(self, temp: str) -> None:
        try:
            self._ssh(f"rm -f {shlex.quote(temp)} {_PREVIOUS_TEMP}", "cleanup failed")
        except TargetError:
            pass

    def run(self, command: str) -> tuple[int, str]:
        done = subprocess.run(self._command(f"cd {shlex.quote(self.directory)} && {command}"),
                              capture_output=True, stdin=subprocess.DEVNULL, text=True)
        message = _explain(done.returncode, done.stderr) if done.returncode == 255 else \
            _last_line(done.stderr or done.stdout)
        return done.returncode, message


def _explain(returncode: int, stderr: str) -> str:
    """One line saying why an ssh command failed, from its exit status and stderr."""
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or "Host key verification failed" in stderr:
        return ("host key verification failed: the device's SSH host key does not match known_hosts "
                "(a different or reinstalled device, or an impostor); check it, then "
                "`ssh-keygen -R HOST` and connect once by hand")
    if returncode == 97:
        return "no such directory on the device"
    if returncode == 98:
        return _last_line(stderr)
    if returncode == 255:
        line = _last_line(stderr)
        if "Permission denied" in line:
            return f"ssh authentication failed ({line}); is your key in the device's authorized_keys?"
        return f"ssh connection failed: {line or 'no reason given'}"
    if returncode < 0:
        return f"ssh was killed by signal {-returncode}"
    return _last_line(stderr) or f"remote command exited with status {returncode}"


def parse_target(spec: str, ssh_config: str | None = None, connect_timeout: int = 10
                 ) -> LocalTarget | SshTarget:
    """The target a string names: ``ssh://[user@]host[:port]/path`` or a local directory."""
    spec = spec.strip()
    if spec.startswith("ssh://"):
        match = _SSH_URL.match(spec)
        if match is None:
            raise TargetError(f"bad ssh target {spec!r}: expected ssh://[user@]host[:port]/absolute/path")
        port = int(match["port"]) if match["port"] else None
        return SshTarget(match["user"], match["host"], port, match["path"], ssh_config, connect_timeout)
    if "://" in spec:
        raise TargetError(f"unsupported target {spec!r}: use a directory or ssh://[user@]host[:port]/path")
    return LocalTarget(spec)


def read_target_list(text: str) -> list[str]:
    """Target strings from a fleet file: one per line; blank lines and ``#`` comments ignored."""
    return [line.split("#", 1)[0].strip() for line in text.splitlines()
            if line.split("#", 1)[0].strip()]
