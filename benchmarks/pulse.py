"""A private PulseAudio server for benchmarks that go through a real audio stack.

The server is an ordinary per-user daemon in a temporary folder, with one null
sink at ``rate`` whose monitor is the default source: what ``paplay`` plays
into it, ``listen --device pulse`` (PortAudio's ALSA ``pulse`` device, from
libasound2-plugins) captures. Needs pulseaudio and pulseaudio-utils.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TOOLS = ("pulseaudio", "pactl", "paplay")


@contextlib.contextmanager
def private_server(rate: int = 16000, timeout: float = 15.0) -> Iterator[dict[str, str]]:
    """Run a private PulseAudio daemon; yields the environment its clients need.

    Raises RuntimeError when a tool is missing or the daemon does not start.
    """
    with private_daemon(rate, timeout) as (env, _):
        yield env


@contextlib.contextmanager
def private_daemon(rate: int = 16000, timeout: float = 15.0
                   ) -> Iterator[tuple[dict[str, str], subprocess.Popen]]:
    """``private_server``, also yielding the daemon process (to stop it mid-stream)."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"missing {', '.join(missing)} (apt-get install pulseaudio pulseaudio-utils)")
    home = Path(tempfile.mkdtemp(prefix="pa-"))  # short: the socket path must fit 108 bytes
    runtime = home / "run"
    runtime.mkdir(mode=0o700)
    (home / "default.pa").write_text(
        "load-module module-native-protocol-unix\n"
        f"load-module module-null-sink sink_name=digits rate={rate} channels=1\n"
        "set-default-sink digits\nset-default-source digits.monitor\n")
    env = {**os.environ, "HOME": str(home), "XDG_RUNTIME_DIR": str(runtime),
           "PULSE_SERVER": f"unix:{runtime}/pulse/native"}
    daemon = subprocess.Popen(
        ["pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "--system=false", "-n",
         "-F", str(home / "default.pa"), "--log-target=stderr"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode != 0:
            if daemon.poll() is not None or time.monotonic() > deadline:
                daemon.kill()
                raise RuntimeError("PulseAudio did not start: "
                                   + daemon.stderr.read().decode().strip()[-300:])
            time.sleep(0.1)
        yield env, daemon
    finally:
        stop(daemon)
        shutil.rmtree(home, ignore_errors=True)


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """End a server process: SIGTERM, then SIGKILL if it is still running after ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
