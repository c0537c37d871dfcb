"""Where models are flashed to: a local directory or a directory over SSH.

Both kinds hold the same layout in their directory::

    model.tflite                      the active model (what `listen` and the service load)
    model.tflite.previous             the one it replaced, for `flash --rollback`
    .model.tflite.tmp-XXXXXXXXXXXXXXXX  an upload or a copy in progress (removed on failure,
                                      and by the next flash if one was killed)

and offer the same few steps, each of which leaves a complete ``model.tflite``
in place whatever happens: ``locked`` holds the target's lock (a ``flock`` on
the directory itself, so two flashes never interleave) and removes stale
temporary files; ``upload`` writes a new temporary file (created exclusively,
never through a link); ``install`` verifies its SHA-256 on the target, copies
the active model to ``.previous`` (through another temporary file and a
rename) and renames the temporary file over ``model.tflite``. SSH targets use
the system ``ssh`` binary, so keys, ``~/.ssh/config`` and ``known_hosts``
behave as OpenSSH users expect.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import secrets
import shlex
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import EdgeError

ACTIVE = "model.tflite"
PREVIOUS = ACTIVE + ".previous"
TEMP_PREFIX = "." + ACTIVE + ".tmp-"
_OLD_PREVIOUS_TEMP = "." + PREVIOUS + ".tmp"  # the fixed name older versions used
LOCK_TIMEOUT_S = 120
_SSH_URL = re.compile(r"^ssh://(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+)(?::(?P<port>\d+))?(?P<path>/.*)$")


class TargetError(EdgeError):
    """A target could not be reached, read or written; the message says which and why."""


@dataclass(frozen=True)
class State:
    """SHA-256 hex digests of the active and previous models (None when absent)."""

    active: str | None
    previous: str | None


def new_temp_name() -> str:
    """A fresh, unguessable temporary file name for an upload or a copy."""
    return TEMP_PREFIX + secrets.token_hex(8)


class LocalTarget:
    """A directory on this machine, e.g. a mounted SD card or the device's own model folder."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        self.name = str(directory)

    @property
    def key(self) -> str:
        """What identifies the target whatever its spelling (``T``, ``T/``, ``T/.``, a link to T)."""
        return os.path.realpath(self.directory)

    def _path(self, name: str) -> Path:
        return self.directory / name

    def _fail(self, what: str, exc: OSError) -> TargetError:
        if exc.errno == errno.ELOOP:
            return TargetError(f"{what}: it is a symbolic link; refused")
        return TargetError(f"{what}: {exc.strerror or exc}")

    def _read(self, name: str) -> bytes:
        """The bytes of a regular file in the directory, never through a symbolic link."""
        fd = os.open(self._path(name), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            return handle.read()

    def _sha256(self, name: str) -> str | None:
        try:
            return hashlib.sha256(self._read(name)).hexdigest()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail(f"cannot read {self._path(name)}", exc) from None

    @contextlib.contextmanager
    def locked(self, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the target's lock (waiting up to ``timeout`` s), then remove stale temporary files."""
        try:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            if not self.directory.is_dir():
                raise TargetError(f"{self.directory} is not a directory (is the card mounted?)") from None
            raise self._fail(f"cannot open {self.directory}", exc) from None
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TargetError(
                            f"{self.directory} is locked by another flash (waited {timeout:.0f} s)"
                        ) from None
                    time.sleep(0.05)
            self.remove_stale()
            yield
        finally:
            os.close(fd)  # releases the lock

    def remove_stale(self) -> None:
        """Remove temporary files a killed flash left behind (call with the lock held)."""
        for entry in os.scandir(self.directory):
            if entry.name.startswith(TEMP_PREFIX) or entry.name == _OLD_PREVIOUS_TEMP:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    def state(self) -> State:
        if not self.directory.is_dir():
            raise TargetError(f"{self.directory} is not a directory (is the card mounted?)")
        return State(self._sha256(ACTIVE), self._sha256(PREVIOUS))

    def fetch(self, name: str) -> bytes:
        try:
            return self._read(name)
        except OSError as exc:
            raise self._fail(f"cannot read {self._path(name)}", exc) from None

    def _write_new(self, name: str, data: bytes) -> None:
        """Create ``name`` (it must not exist, links included), write and fsync ``data``."""
        fd = os.open(self._path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    def upload(self, data: bytes, temp: str) -> None:
        try:
            self._write_new(temp, data)
        except OSError as exc:
            raise self._fail(f"upload to {self._path(temp)} failed", exc) from None

    def stage_previous(self, temp: str) -> None:
        self.upload(self.fetch(PREVIOUS), temp)

    def install(self, temp: str, sha256: str) -> None:
        got = self._sha256(temp)
        if got != sha256:
            self.discard(temp)
            raise TargetError(
                f"checksum mismatch on target: expected {sha256[:12]}, got "
                f"{(got or 'nothing')[:12]}; upload discarded, model unchanged"
            )
        keep = new_temp_name()
        try:
            try:
                active = self._read(ACTIVE)
            except FileNotFoundError:
                active = None
            if active is not None:
                self._write_new(keep, active)
                os.replace(self._path(keep), self._path(PREVIOUS))
            os.replace(self._path(temp), self._path(ACTIVE))
            _fsync_directory(self.directory)
        except OSError as exc:
            raise self._fail("swap failed, model unchanged", exc) from None
        finally:
            with contextlib.suppress(OSError):
                self._path(keep).unlink()

    def discard(self, temp: str) -> None:
        with contextlib.suppress(OSError):
            self._path(temp).unlink()

    def run(self, command: str, timeout: float | None = None) -> tuple[int, str]:
        code, out, err = run_bounded(command, timeout, shell=True, cwd=self.directory)
        return code, _last_line(err or out)


def run_bounded(argv: str | list[str], timeout: float | None, **options) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a command with stdin closed; after ``timeout`` seconds
    its whole process group is killed and the status is 124 with stderr saying so."""
    process = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **options,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return 124, "", f"timed out after {timeout:g} s"
    return process.returncode, out, err


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

    def __init__(
        self,
        user: str | None,
        host: str,
        port: int | None,
        directory: str,
        ssh_config: str | None = None,
        connect_timeout: int = 10,
    ) -> None:
        self.user, self.host, self.port, self.directory = user, host, port, directory
        self.ssh_config, self.connect_timeout = ssh_config, connect_timeout
        self.name = f"ssh://{user + '@' if user else ''}{host}{':' + str(port) if port else ''}{directory}"

    @property
    def key(self) -> str:
        """What identifies the target whatever its spelling (``/opt/x``, ``/opt/x/``, ``/opt/./x``)."""
        return (
            f"ssh://{self.user or ''}@{self.host.strip('[]').lower()}:{self.port or 22}"
            f"{os.path.normpath(self.directory)}"
        )

    def _command(self, script: str) -> list[str]:
        command = [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={self.connect_timeout}",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
        ]
        if self.ssh_config:
            command += ["-F", self.ssh_config]
        if self.port:
            command += ["-p", str(self.port)]
        if self.user:
            command += ["-l", self.user]
        return command + ["--", self.host.strip("[]"), script]

    def _ssh(self, script: str, what: str, data: bytes | None = None) -> bytes:
        """Run a POSIX sh script in the target directory; its stdout, or TargetError."""
        script = f"cd {shlex.quote(self.directory)} || exit 97\n{script}"
        try:
            done = subprocess.run(self._command(script), input=data if data is not None else b"", capture_output=True)
        except FileNotFoundError:
            raise TargetError("the OpenSSH client (ssh) is not installed") from None
        if done.returncode == 0:
            return done.stdout
        raise TargetError(f"{what}: {_explain(done.returncode, done.stderr.decode('utf-8', 'replace'))}")

    @contextlib.contextmanager
    def locked(self, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
        """Hold the target's lock for the block: ``flock`` on the device's directory, held by one
        ssh session whose end (including this process being killed) releases it; stale
        temporary files are removed once it is held."""
        script = (
            f"cd {shlex.quote(self.directory)} || exit 97\n"
            "command -v flock >/dev/null || { echo 'flock is not installed on the device "
            "(util-linux)' >&2; exit 96; }\n"
            f"exec flock -w {int(timeout)} -E 95 . sh -c 'echo locked; exec cat >/dev/null'"
        )
        try:
            holder = subprocess.Popen(
                self._command(script), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except FileNotFoundError:
            raise TargetError("the OpenSSH client (ssh) is not installed") from None
        assert holder.stdin and holder.stdout and holder.stderr  # all three are pipes
        try:
            if holder.stdout.readline().strip() != b"locked":
                holder.stdin.close()
                code, err = holder.wait(), holder.stderr.read().decode("utf-8", "replace")
                if code == 95:
                    raise TargetError(f"{self.directory} is locked by another flash (waited {timeout:.0f} s)")
                raise TargetError(f"cannot lock the model folder: {_explain(code, err)}")
            self._ssh(f"rm -f {TEMP_PREFIX}* {_OLD_PREVIOUS_TEMP}", "cannot remove stale temporary files")
            yield
        finally:
            if not holder.stdin.closed:
                holder.stdin.close()
            try:
                holder.wait(timeout=30)
            except subprocess.TimeoutExpired:
                holder.kill()
                holder.wait()

    def state(self) -> State:
        out = self._ssh(
            f'for f in {ACTIVE} {PREVIOUS}; do if [ -h "$f" ]; then '
            'echo "$f is a symbolic link; refused" >&2; exit 98; '
            'elif [ -f "$f" ]; then sha256sum "$f" '
            '|| exit 1; else echo - "$f"; fi; done',
            "cannot read the model folder",
        )
        digests = [line.split()[0] for line in out.decode().splitlines() if line.strip()]
        if len(digests) != 2 or not all(d == "-" or re.fullmatch(r"[0-9a-f]{64}", d) for d in digests):
            raise TargetError(f"unexpected answer from sha256sum on {self.host}: {out[:80]!r}")
        active, previous = (None if d == "-" else d for d in digests)
        return State(active, previous)

    def fetch(self, name: str) -> bytes:
        return self._ssh(f"cat {shlex.quote(name)}", f"cannot read {name}")

    def upload(self, data: bytes, temp: str) -> None:
        # set -C: the redirection creates the file and fails if anything (a link too) is there.
        self._ssh(f"set -C; cat > {shlex.quote(temp)}", "upload failed", data)

    def stage_previous(self, temp: str) -> None:
        self._ssh(f"set -C; cat {PREVIOUS} > {shlex.quote(temp)}", "cannot stage the previous model")

    def install(self, temp: str, sha256: str) -> None:
        temp, keep = shlex.quote(temp), shlex.quote(new_temp_name())
        self._ssh(
            f"got=$(sha256sum {temp} | cut -c1-64)\n"
            f'if [ "$got" != {sha256} ]; then rm -f {temp}; '
            f'echo "checksum mismatch on target: expected {sha256[:12]}, got $(echo "${{got:-nothing}}" '
            '| cut -c1-12); upload discarded, model unchanged" >&2; exit 98; fi\n'
            f"if [ -f {ACTIVE} ]; then (set -C; cat {ACTIVE} > {keep}) && sync && "
            f"mv -f {keep} {PREVIOUS} || {{ rm -f {keep}; exit 1; }}; fi\n"
            f"sync && mv -f {temp} {ACTIVE} && sync",
            "verify and swap failed",
        )

    def discard(self, temp: str) -> None:
        try:
            self._ssh(f"rm -f {shlex.quote(temp)}", "cleanup failed")
        except TargetError:
            pass

    def run(self, command: str, timeout: float | None = None) -> tuple[int, str]:
        code, out, err = run_bounded(self._command(f"cd {shlex.quote(self.directory)} && {command}"), timeout)
        message = _explain(code, err) if code == 255 else _last_line(err or out)
        return code, message


def _explain(returncode: int, stderr: str) -> str:
    """One line saying why an ssh command failed, from its exit status and stderr."""
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or "Host key verification failed" in stderr:
        return (
            "host key verification failed: the device's SSH host key does not match known_hosts "
            "(a different or reinstalled device, or an impostor); check it, then "
            "`ssh-keygen -R HOST` and connect once by hand"
        )
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


def parse_target(spec: str, ssh_config: str | None = None, connect_timeout: int = 10) -> LocalTarget | SshTarget:
    """The target a string names: ``ssh://[user@]host[:port]/path`` or a local directory."""
    spec = spec.strip()
    if spec.startswith("ssh://"):
        match = _SSH_URL.match(spec)
        if match is None:
            raise TargetError(f"bad ssh target {spec!r}: expected ssh://[user@]host[:port]/absolute/path")
        port = int(match["port"]) if match["port"] else None
        if match["host"].startswith("-") or (match["user"] or "").startswith("-"):
            raise TargetError(f"bad ssh target {spec!r}: a host or user name cannot start with '-'")
        if not spec.isprintable():
            raise TargetError(f"bad ssh target {spec!r}: control characters are not allowed")
        return SshTarget(match["user"], match["host"], port, match["path"], ssh_config, connect_timeout)
    if "://" in spec:
        raise TargetError(f"unsupported target {spec!r}: use a directory or ssh://[user@]host[:port]/path")
    return LocalTarget(spec)


def read_target_list(text: str) -> list[str]:
    """Target strings from a fleet file: one per line; blank lines and ``#`` comments ignored."""
    return [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]
