"""Flash a model to many targets at once without ever leaving one without a working model.

Per target, with the target's lock held: read its state, skip if the model is
already active, upload to a temporary name, verify the SHA-256 on the target,
swap atomically (keeping the replaced model as ``model.tflite.previous``), and
optionally restart the service, rolling back if it does not come back. A model
is sent or restored only after it has loaded and decided on a probe signal. Targets run in a bounded thread
pool; a failure is recorded in that target's Outcome and never touches the others.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from .artifact import Artifact, ModelError, parse_artifact, read_artifact
from .targets import PREVIOUS, LocalTarget, SshTarget, TargetError, new_temp_name

Target = LocalTarget | SshTarget
Report = Callable[[str, str], None]  # (target name, status line)


@dataclass(frozen=True)
class Restart:
    """How to restart the service on a target and confirm it came back.

    Attributes:
        command: shell command run in the target directory to restart the service.
        check: shell command that exits 0 when the service is running.
        settle_s: seconds to wait between restarting and checking.
        timeout_s: seconds either command may take before it is killed and counted as failed.
    """

    command: str = "systemctl restart audiomnist-edge.service"
    check: str = "systemctl is-active --quiet audiomnist-edge.service"
    settle_s: float = 2.0
    timeout_s: float = 60.0


@dataclass
class Outcome:
    """What happened on one target.

    ``status`` is one of: installed, unchanged, rolled-back, failed.
    """

    target: str
    status: str
    message: str
    sha256: str | None = None
    previous: str | None = None
    restarted: bool = False

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict:
        return asdict(self)


def check_model(path: str | Path, load: bool = True) -> Artifact:
    """The checked artifact at ``path``; ModelError if it fails its checks or cannot decide.

    Args:
        path: the .tflite file to send.
        load: also load it and decide on a probe signal (what ``info`` does), so a model
            that cannot run is never sent.
    """
    artifact = read_artifact(path)
    if load:
        check_runs(artifact)
    return artifact


def check_runs(artifact: Artifact) -> None:
    """ModelError unless the artifact loads in the runtime and decides on a probe signal."""
    from .model import Model

    Model(artifact).self_check()


def _short(sha256: str | None) -> str:
    return sha256[:12] if sha256 else "none"


def _restart(target: Target, restart: Restart) -> str | None:
    """Restart the service; None when it is confirmed running, else why not."""
    code, message = target.run(restart.command, restart.timeout_s)
    if code != 0:
        return f"restart command failed ({message or f'status {code}'})"
    time.sleep(restart.settle_s)
    code, message = target.run(restart.check, restart.timeout_s)
    return None if code == 0 else f"service did not come back ({message or f'status {code}'})"


def _swap_in(target: Target, sha256: str, upload: Callable[[str], None], report: Report) -> None:
    """Upload (via ``upload(temp_name)``), verify and swap; the temp file never outlives a failure."""
    temp = new_temp_name()
    try:
        upload(temp)
        report(target.name, "verifying checksum and swapping")
        target.install(temp, sha256)
    except BaseException:
        target.discard(temp)
        raise


def _roll_back(target: Target, report: Report) -> tuple[str, str | None]:
    """Make the previous model active again; (new active sha, now-previous sha)."""
    state = target.state()
    if state.previous is None:
        raise TargetError(f"no {PREVIOUS} to roll back to")
    report(target.name, "checking the previous model")
    content = target.fetch(PREVIOUS)
    if hashlib.sha256(content).hexdigest() != state.previous:
        raise TargetError(f"{PREVIOUS} changed while reading it; nothing done")
    try:
        check_runs(parse_artifact(content, Path(PREVIOUS)))
    except ModelError as exc:
        raise TargetError(f"refusing to roll back to an unusable model: {exc}") from None
    report(target.name, "swapping back")
    _swap_in(target, state.previous, target.stage_previous, report)
    return state.previous, state.active


def flash_target(target: Target, artifact: Artifact, restart: Restart | None, report: Report) -> Outcome:
    """Install ``artifact`` on one target; never raises, the Outcome says what happened."""
    sha256 = artifact.sha256
    try:
        report(target.name, "connecting")
        with target.locked():
            return _flash_locked(target, artifact, restart, report)
    except TargetError as exc:
        return Outcome(target.name, "failed", str(exc), sha256)
    except Exception as exc:  # one target's surprise must not stop the others
        return Outcome(target.name, "failed", f"unexpected {type(exc).__name__}: {exc}", sha256)


def _flash_locked(target: Target, artifact: Artifact, restart: Restart | None, report: Report) -> Outcome:
    """flash_target's work, with the target's lock held."""
    sha256 = artifact.sha256
    state = target.state()
    if state.active == sha256:
        return Outcome(
            target.name, "unchanged", f"model {_short(sha256)} already active; nothing to do", sha256, state.previous
        )
    report(target.name, f"uploading {len(artifact.content)} bytes")
    _swap_in(target, sha256, lambda temp: target.upload(artifact.content, temp), report)
    kept = f"previous {_short(state.active)} kept for rollback" if state.active else "first model"
    outcome = Outcome(target.name, "installed", f"installed {_short(sha256)} ({kept})", sha256, state.active)
    if restart is not None:
        _restart_or_roll_back(target, restart, outcome, report)
    return outcome


def _restart_or_roll_back(target: Target, restart: Restart, outcome: Outcome, report: Report) -> None:
    """Restart after a swap; if the service does not come back, reinstate the previous model."""
    report(target.name, "restarting the service")
    problem = _restart(target, restart)
    if problem is None:
        outcome.restarted = True
        outcome.message += "; service restarted"
        return
    outcome.status = "failed"
    if outcome.previous is None:
        outcome.message = f"{problem}; no previous model to roll back to"
        return
    report(target.name, f"{problem}; rolling back")
    _roll_back(target, report)
    again = _restart(target, restart)
    outcome.message = f"{problem}; rolled back to {_short(outcome.previous)}" + (
        "" if again is None else f", but the service still fails: {again}"
    )
    outcome.sha256, outcome.previous = outcome.previous, outcome.sha256


def rollback_target(target: Target, restart: Restart | None, report: Report) -> Outcome:
    """Make ``model.tflite.previous`` active again (the replaced model becomes the previous)."""
    try:
        report(target.name, "connecting")
        with target.locked():
            active, previous = _roll_back(target, report)
            outcome = Outcome(
                target.name,
                "rolled-back",
                f"rolled back to {_short(active)} ({_short(previous)} kept as previous)",
                active,
                previous,
            )
            if restart is not None:
                report(target.name, "restarting the service")
                problem = _restart(target, restart)
                if problem is not None:
                    outcome.status, outcome.message = "failed", f"rolled back, but {problem}"
                outcome.restarted = problem is None
            return outcome
    except TargetError as exc:
        return Outcome(target.name, "failed", str(exc))
    except Exception as exc:  # one target's surprise must not stop the others
        return Outcome(target.name, "failed", f"unexpected {type(exc).__name__}: {exc}")


def run_all(targets: Sequence[Target], job: Callable[[Target], Outcome], parallel: int) -> list[Outcome]:
    """Run ``job`` on every target with at most ``parallel`` at once; outcomes in target order."""
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(targets)))) as pool:
        return list(pool.map(job, targets))
