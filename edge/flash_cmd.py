"""``audiomnist-edge flash``: ship a model to devices, atomically and verifiably."""

from __future__ import annotations

import sys
import threading

import click

from .errors import EdgeError
from .jsonsafe import dumps
from .options import finite
from .flash import Report, Restart, check_model, flash_target, rollback_target, run_all
from .targets import parse_target, read_target_list


def _read_targets_file(handle) -> list[str]:
    """Target strings from an opened -f file; EdgeError if it is not text."""
    try:
        return read_target_list(handle.read())
    except UnicodeDecodeError:
        raise EdgeError(f"{handle.name}: not a text file of targets") from None


def _status_printer() -> Report:
    """A thread-safe reporter printing one ``[target] status`` line to stderr per change."""
    lock = threading.Lock()

    def report(target: str, status: str) -> None:
        with lock:
            click.echo(f"[{target}] {status}", err=True)
            sys.stderr.flush()

    return report


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("args", nargs=-1, metavar="MODEL TARGET...")
@click.option(
    "-f",
    "--targets-file",
    type=click.File("r"),
    multiple=True,
    help="Read more targets from FILE, one per line (# comments allowed; - for stdin).",
)
@click.option("--rollback", is_flag=True, help="Make each TARGET's previous model active again (no MODEL argument).")
@click.option(
    "--check",
    "check_only",
    is_flag=True,
    help="Only check that MODEL loads and passes its metadata checks; send nothing.",
)
@click.option(
    "--restart", is_flag=True, help="Restart the service after the swap and confirm it is running; roll back if not."
)
@click.option(
    "--restart-command",
    default=Restart.command,
    show_default=True,
    help="Shell command that restarts the service (run on the target, in its model folder).",
)
@click.option(
    "--check-command",
    default=Restart.check,
    show_default=True,
    help="Shell command that exits 0 when the service is running again.",
)
@click.option(
    "--settle",
    type=click.FloatRange(0, 3600),
    default=Restart.settle_s,
    show_default=True,
    callback=finite,
    help="Seconds to wait between the restart and the check.",
)
@click.option(
    "--restart-timeout",
    type=click.FloatRange(1, 3600),
    default=Restart.timeout_s,
    show_default=True,
    callback=finite,
    help="Seconds the restart or check command may take before it is killed (a failure).",
)
@click.option(
    "-j",
    "--parallel",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="How many targets to work on at once.",
)
@click.option(
    "-F",
    "--ssh-config",
    type=click.Path(exists=True, dir_okay=False),
    help="ssh config file to use instead of ~/.ssh/config (ssh -F).",
)
@click.option(
    "--connect-timeout",
    type=click.IntRange(1),
    default=10,
    show_default=True,
    help="Seconds before an unreachable SSH host is given up.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def flash(
    args: tuple[str, ...],
    targets_file: tuple,
    rollback: bool,
    check_only: bool,
    restart: bool,
    restart_command: str,
    check_command: str,
    settle: float,
    restart_timeout: float,
    parallel: int,
    ssh_config: str | None,
    connect_timeout: int,
    as_json: bool,
) -> None:
    """Install MODEL on each TARGET so no device is ever left without a working model.

    A TARGET is a local directory (a mounted SD card, or the device's own model
    folder when run on the device) or ssh://[user@]host[:port]/path, reached
    with your ssh keys, ~/.ssh/config and known_hosts (never prompts; a
    changed host key is refused). The model is checked before anything is
    sent; on each target it is uploaded to a temporary file, its SHA-256 is
    verified there, the active PATH/model.tflite is kept as
    model.tflite.previous and the new file is renamed over it. A target that
    already has the model is left alone. Targets run in parallel; each one's
    outcome is listed at the end and the exit status is 1 if any failed.

    \b
    Examples:
      audiomnist-edge flash model.tflite /media/$USER/rootfs/opt/audiomnist-edge
      audiomnist-edge flash model.tflite ssh://pi@kitchen.local/opt/audiomnist-edge --restart
      audiomnist-edge flash model.tflite -f shelf.txt --parallel 8 --restart --json
      audiomnist-edge flash --rollback ssh://pi@kitchen.local/opt/audiomnist-edge --restart
      audiomnist-edge flash --check model.tflite
    The service then loads PATH/model.tflite (listen --model PATH/model.tflite).
    """
    rest = list(args)
    model = None if rollback else (rest.pop(0) if rest else None)
    if not rollback and model is None:
        raise click.UsageError("missing MODEL (or use --rollback TARGET...)")
    artifact = check_model(model) if model else None
    if check_only:
        if rollback or rest or targets_file or artifact is None:
            raise click.UsageError("--check takes only a MODEL (no targets, no --rollback)")
        click.echo(f"{model}: ok, sha256 {artifact.sha256}, labels {','.join(artifact.labels)}")
        return
    specs = rest + [spec for handle in targets_file for spec in _read_targets_file(handle)]
    if not specs:
        raise click.UsageError("no TARGET given (as arguments or with --targets-file)")
    targets = [parse_target(spec, ssh_config, connect_timeout) for spec in specs]
    seen: dict[str, str] = {}
    for target in targets:
        if target.key in seen:
            raise EdgeError(f"{seen[target.key]} and {target.name} are the same target; list it once")
        seen[target.key] = target.name
    plan = Restart(restart_command, check_command, settle, restart_timeout) if restart else None
    report = _status_printer()
    if artifact is None:
        outcomes = run_all(targets, lambda t: rollback_target(t, plan, report), parallel)
    else:
        shipped = artifact
        outcomes = run_all(targets, lambda t: flash_target(t, shipped, plan, report), parallel)
    if as_json:
        click.echo(
            dumps(
                {
                    "model": model,
                    "sha256": artifact.sha256 if artifact else None,
                    "targets": [o.to_dict() for o in outcomes],
                },
                indent=2,
            )
        )
    else:
        for outcome in outcomes:
            click.echo(f"{outcome.status:>11}  {outcome.target}: {outcome.message}")
        failed = sum(not o.ok for o in outcomes)
        click.echo(f"{len(outcomes) - failed} of {len(outcomes)} targets ok" + (f", {failed} failed" if failed else ""))
    if not all(o.ok for o in outcomes):
        raise SystemExit(1)
