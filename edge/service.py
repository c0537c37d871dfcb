"""``audiomnist-edge service``: a systemd unit that runs ``listen`` at boot on the flashed model.

Every value that goes into the unit is checked against systemd's rules first:
the account name must be a valid user name, no value may hold a newline or
other control character, the executable must be an absolute path, and each
ExecStart argument is quoted (``"``, ``\\``, ``%`` and ``$`` escaped), so nothing
a caller passes can add a directive or a section.
"""

from __future__ import annotations

import getpass
import os
import pwd
import re
import shutil
import sys
import tempfile
from pathlib import Path

import click

from .errors import EdgeError
from .targets import ACTIVE

MODEL_DIR = "/opt/audiomnist-edge"

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

# systemd's strict user-name rule (valid_user_group_name without relaxed mode), or a numeric UID.
_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,30}|[0-9]{1,10}")


class ServiceError(EdgeError):
    """A unit that cannot be written as asked."""


def check_printable(what: str, value: str) -> str:
    """``value`` unchanged; ServiceError if it holds a newline or another control character."""
    if not value.isprintable():
        raise ServiceError(f"{what} {value!r} holds a control character; refused")
    return value


def check_user(user: str) -> str:
    """A user name systemd accepts in ``User=``; ServiceError otherwise (empty means root: refused)."""
    if not user:
        raise ServiceError("--user is empty (the service would run as root); name an account")
    if not _USER_NAME.fullmatch(user) or user.isdigit() and int(user) > 0xFFFFFFFE:
        raise ServiceError(
            f"--user {user!r} is not a valid user name (letters, digits, '_' and '-', not starting with a digit or '-')"
        )
    return user


def systemd_quote(argument: str) -> str:
    """One ExecStart argument, quoted for systemd (and % / $ escaped); control characters refused."""
    check_printable("argument", argument)
    escaped = argument.replace("%", "%%").replace("$", "$$")
    if escaped and not re.search(r"[\s\"'\\;]", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_text(executable: str, user: str, listen_args: list[str]) -> str:
    """The unit file: runs ``executable listen ARGS`` as ``user`` (in the audio group).

    Raises ServiceError for an invalid user, a relative executable or any control character.
    """
    check_printable("--exec", executable)
    if not executable.startswith("/"):
        raise ServiceError(f"--exec {executable!r} must be an absolute path")
    command = " ".join(systemd_quote(a) for a in [executable, "listen", *listen_args])
    return UNIT.format(user=check_user(user), command=command)


def default_user() -> str:
    """The account that ran the command: SUDO_USER under sudo, else the current user."""
    sudo_user = os.environ.get("SUDO_USER", "")
    if os.geteuid() == 0 and sudo_user and sudo_user != "root":
        return sudo_user
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        raise ServiceError("cannot tell who you are; pass --user NAME") from None


def default_executable() -> str:
    """Absolute path of the audiomnist-edge script of this installation."""
    beside = Path(sys.executable).with_name("audiomnist-edge")
    found = str(beside) if beside.exists() else shutil.which("audiomnist-edge")
    if not found:
        raise ServiceError("cannot find the audiomnist-edge script; pass --exec PATH")
    return os.path.abspath(found)


def write_atomically(path: Path, text: str, force: bool) -> None:
    """Write text to path via a unique temporary file and rename; refuse to replace unless force."""
    if (path.exists() or path.is_symlink()) and not force:
        raise ServiceError(f"{path} exists; add --force to replace it")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ServiceError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ServiceError(f"cannot write {path}: {exc.strerror or exc}") from None


def prepare_model_dir(directory: Path, user: str) -> list[str]:
    """Create ``directory`` if missing (owned by ``user`` when run as root) and, if it holds
    no model yet, install the packaged default model there; what was done, one line each."""
    from .flash import check_model
    from .model import DEFAULT_MODEL
    from .targets import LocalTarget, new_temp_name

    done = []
    try:
        if not directory.is_dir():
            directory.mkdir(mode=0o755, parents=True)
            done.append(f"created {directory}")
            if os.geteuid() == 0:
                try:
                    account = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
                    os.chown(directory, account.pw_uid, account.pw_gid)
                except KeyError:
                    done.append(f"no account {user!r} here: {directory} stays owned by root")
    except OSError as exc:
        raise ServiceError(
            f"cannot create {directory}: {exc.strerror or exc} (run with sudo, or choose --model-dir)"
        ) from None
    if not (directory / ACTIVE).exists():
        artifact = check_model(DEFAULT_MODEL)
        target, temp = LocalTarget(directory), new_temp_name()
        with target.locked():
            try:
                target.upload(artifact.content, temp)
                target.install(temp, artifact.sha256)
            finally:
                target.discard(temp)
        done.append(f"installed the packaged default model as {directory / ACTIVE} (flash replaces it)")
    return done


@click.command(context_settings={"ignore_unknown_options": True})
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the unit here and prepare --model-dir [default: print the unit on stdout].",
)
@click.option(
    "--user",
    default=default_user,
    show_default="you (SUDO_USER under sudo)",
    help="Account the service runs as; it is added to the audio group by the unit.",
)
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=MODEL_DIR,
    show_default=True,
    help="Folder the service loads model.tflite from: the TARGET you `flash`.",
)
@click.option("--exec", "executable", help="Path of audiomnist-edge [default: this installation's].")
@click.option("--force", is_flag=True, help="Replace an existing file at --out.")
@click.argument("listen_args", nargs=-1, type=click.UNPROCESSED)
def service(
    out: Path | None, user: str, model_dir: Path, executable: str | None, force: bool, listen_args: tuple[str, ...]
) -> None:
    """Write (or print) a systemd unit that runs `listen` at boot on the flashed model.

    The unit runs `listen --model MODEL_DIR/model.tflite`, the file `flash`
    installs, so `flash MODEL MODEL_DIR --restart` changes what the service
    recognises with. It restarts listen whenever it stops (Restart=always),
    runs it as USER with the audio group, and sends its output (one line per
    digit) to the journal. With --out, MODEL_DIR is created if missing (owned
    by USER when run as root) and, if it holds no model yet, the packaged
    default model is installed there. Options after `--` are passed to listen
    and checked now.

    \b
    Examples:
      audiomnist-edge service                                   # print the unit
      audiomnist-edge service -- --device USB --sequence --json
      sudo audiomnist-edge service --out /etc/systemd/system/audiomnist-edge.service
      sudo systemctl daemon-reload && sudo systemctl enable --now audiomnist-edge
      audiomnist-edge flash model.tflite ssh://pi@kitchen.local/opt/audiomnist-edge --restart
      journalctl -u audiomnist-edge -f                          # watch the digits
    """
    from .listen import listen

    args = list(listen_args)
    for option in ("--input", "--model"):
        if option in args or any(a.startswith(option + "=") for a in args):
            raise ServiceError(
                "the service listens to a microphone; --input makes no sense here"
                if option == "--input"
                else "the service runs MODEL_DIR/model.tflite (what flash installs); use --model-dir instead of --model"
            )
    model_dir = Path(os.path.abspath(check_printable("--model-dir", str(model_dir))))
    args += ["--model", str(model_dir / ACTIVE)]
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
    if (out.exists() or out.is_symlink()) and not force:
        raise ServiceError(f"{out} exists; add --force to replace it")
    for line in prepare_model_dir(model_dir, user):
        click.echo(line, err=True)
    write_atomically(out, text, force)
    click.echo(
        f"wrote {out}; enable it with: sudo systemctl daemon-reload && sudo systemctl enable --now {out.stem}", err=True
    )
