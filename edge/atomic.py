"""Write a file or a folder so it appears whole or not at all, never replacing one unasked."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import EdgeError


def refuse_existing(path: Path, force: bool) -> None:
    """EdgeError if ``path`` exists (a dangling link counts) and ``force`` is not set."""
    if (path.exists() or path.is_symlink()) and not force:
        raise EdgeError(f"{path} exists; add --force to replace it")


def write_file(
    path: str | Path, data: bytes | Callable[[BinaryIO], None], force: bool = False, mode: int = 0o644
) -> None:
    """Write ``data`` (bytes, or a function writing to a binary file object) to ``path``.

    The content goes to a unique temporary file beside ``path`` (created
    exclusively), is flushed to disk and renamed over ``path``; on any failure
    the temporary file is removed and ``path`` is untouched. EdgeError when
    ``path`` exists and ``force`` is not set, or when writing fails.
    """
    path = Path(path)
    refuse_existing(path, force)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    except OSError as exc:
        raise EdgeError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, bytes):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except OSError as exc:
        raise EdgeError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def refuse_foreign_folder(path: Path, marker: str) -> None:
    """EdgeError unless ``path`` is absent, an empty folder or a folder holding ``marker``."""
    if path.is_symlink() or path.exists() and not path.is_dir():
        raise EdgeError(f"{path} is not a folder; refusing to replace it")
    if path.is_dir() and any(path.iterdir()) and not (path / marker).is_file():
        raise EdgeError(f"{path} has no {marker}; refusing to replace a folder this command did not write")


@contextlib.contextmanager
def new_folder(path: str | Path, force: bool = False, marker: str = "run.json") -> Iterator[Path]:
    """A temporary folder beside ``path`` to fill; renamed to ``path`` when the block succeeds.

    With ``force`` an existing ``path`` is replaced (after the new folder is
    complete), but only an empty folder or one holding ``marker``; without
    ``force``, EdgeError. On failure the temporary folder is removed and
    ``path`` is untouched.
    """
    path = Path(path)
    refuse_existing(path, force)
    refuse_foreign_folder(path, marker)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise EdgeError(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        yield temp
        old = None
        if path.exists() or path.is_symlink():
            old = path.with_name(f"{temp.name}.old")
            os.rename(path, old)
        try:
            os.rename(temp, path)
        except OSError:
            if old is not None:
                os.rename(old, path)
            raise
        if old is not None and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        elif old is not None:
            old.unlink()
    except OSError as exc:
        raise EdgeError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
