"""``audiomnist-edge service``: a systemd unit that runs ``listen`` at boot."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import sys
from pathlib import Path

import click

from .errors import EdgeError

UNIT = """\
[Unit]
Description=audiomnist-edge: live spoken-digit recognition
After=sound.target
Wants=sound.target

[Service]
Type=simple
User={user}
SupplementaryGroups=audio
ExecStart={command}
Restart=always
RestartSec=2
Environment=PYTHONUNBUFFERED=1
StandardOutput=journal
StandardError=journal
SyslogIdentifier=audiomnist-edge

[Install]
WantedBy=multi-user.target
"""


class ServiceError(EdgeError):
    """A unit that cannot be written as asked."""


def systemd_quote(argument: str) -> str:
    """One ExecStart argument, quoted for systemd (and % / $ escaped)."""
    escaped = argument.replace("%", "%%").replace("$", "$$")
    if escaped and not re.search(r"[\s\"'\\;]", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_text(executable: str, user: str, listen_args: list[str]) -> str:
    """The unit file: runs ``executable listen ARGS`` as ``user`` (in the audio group)."""
    command = " ".join(systemd_quote(a) for a in [executable, "listen", *listen_args])
    return UNIT.format(user=user, command=command)


def default_executable() -> str:
    """Absolute path of the audiomnist-edge script of this installation."""
    beside = Path(sys.executable).with_name("audiomnist-edge")
    found = str(beside) if beside.exists() else shutil.which("audiomnist-edge")
    if not found:
        raise ServiceError("cannot find the audiomnist-edge script; pass --exec PATH")
    return os.path.abspath(found)


def write_atomically(path: Path, text: str, force: bool) -> None:
    """Write text to path via a temporary file and rename; refuse to replace unless force."""
    if path.exists() and not force:
        raise ServiceError(f"{path} exists; add --force to replace it")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ServiceError(f"cannot write {path}: {exc.strerror or exc}") from None


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the unit here [default: print it on stdout].")
@click.option("--user", default=getpass.getuser, show_default="the current user",
              help="Account the service runs as; it is added to the audio group by the unit.")
@click.option("--exec", "executable", help="Path of audiomnist-edge [default: this installation's].")
@click.option("--force", is_flag=True, help="Replace an existing file at --out.")
@click.argument("listen_args", nargs=-1, type=click.UNPROCESSED)
def service(out: Path | None, user: str, executable: str | None, force: bool,
            listen_args: tuple[str, ...]) -> None:
    """Write (or print) a systemd unit that runs `listen` at boot.

    The unit restarts listen whenever it stops (Restart=always), runs it as
    USER with the audio group, and sends its output (one line per digit) to
    the journal. Options after `--` are passed to listen and checked now.

    \b
    Examples:
      audiomnist-edge service                                   # print the unit
      audiomnist-edge service -- --device USB --sequence --json
      sudo audiomnist-edge service --user pi --out /etc/systemd/system/audiomnist-edge.service
      sudo systemctl daemon-reload && sudo systemctl enable --now audiomnist-edge
      journalctl -u audiomnist-edge -f                          # watch the digits
    """
    from .listen import listen

    args = list(listen_args)
    if "--input" in args or any(a.startswith("--input=") for a in args):
        raise ServiceError("the service listens to a microphone; --input makes no sense here")
    try:
        listen.make_context("listen", list(args), resilient_parsing=False)
    except click.UsageError as exc:
        raise ServiceError(f"listen arguments: {exc.format_message()}") from None
    except click.exceptions.Exit:  # --help among the arguments
        raise ServiceError("listen arguments: --help is not an option for the service") from None
    text = unit_text(executable or default_executable(), user, args)
    if out is None:
        click.echo(text, nl=False)
        return
    write_atomically(out, text, force)
    click.echo(f"wrote {out}; enable it with: sudo systemctl daemon-reload && "
               f"sudo systemctl enable --now {out.stem}", err=True)
