"""Reading inputs and writing outputs safely (docs/security.md).

Every path may come from a stranger's pull request, so:

* an input is read only if it is a regular file (after following
  symlinks), and never more than ``limit + 1`` bytes of it: a FIFO, a
  device such as ``/dev/zero``, a directory or a symlink loop is refused
  with :class:`UnsafePath`, and a huge (or sparse) file costs at most the
  limit;
* an output is written all or nothing: a regular file (new or existing) is
  replaced by an atomic rename of a temporary file beside it, keeping the
  existing file's mode (or ``0666 & ~umask`` for a new one, as ``open``
  would); a symlink is followed and its target replaced; a character
  device or a FIFO (``/dev/null``, ``/dev/stdout``) is written through;
  anything else (a directory, a block device, a socket) is refused, and so
  is an output that is one of the inputs (:func:`check_output`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path


class UnsafePath(OSError):
    """A path that cannot be read or written as asked: a usage error
    (exit 2) on the command line, a diagnostic for an import."""


def _describe(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def resolved(path: str | Path) -> Path:
    """``path`` with every symlink followed; :class:`UnsafePath` for a
    symlink loop or a path with a NUL byte, which ``Path.resolve`` raises
    as RuntimeError / ValueError."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError) as error:  # a symlink loop (RuntimeError up to 3.12, OSError after)
        raise UnsafePath(f"{path}: cannot resolve the path: {_reason(error)}") from None
    except ValueError:
        raise UnsafePath("the path contains a NUL byte") from None


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower() if error.errno != errno.ELOOP else "a symlink loop"
    return "a symlink loop" if isinstance(error, RuntimeError) else str(error)


def read_capped(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit + 1`` of
    them (so a caller can tell "over the limit" without reading it all).

    Raises :class:`UnsafePath` if the path is not a regular file (checked
    on the open descriptor, so a FIFO never blocks and a file swapped after
    a check is still caught) and ``FileNotFoundError`` / ``OSError`` if it
    cannot be opened."""
    target = resolved(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags)
    except IsADirectoryError:
        raise UnsafePath(f"{path} is a directory, not a file") from None
    with os.fdopen(fd, "rb", buffering=0) as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafePath(f"{path} is {_describe(mode)}, not a regular file")
        chunks = []
        remaining = limit + 1
        while remaining > 0:
            chunk = handle.read(min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


def check_output(path: str | Path, inputs: Iterable[str | Path] = ()) -> None:
    """Raises :class:`UnsafePath` unless ``path`` can be written by
    :func:`write_atomic`: its folder exists, it is not a directory, block
    device or socket, and it is none of ``inputs`` (the files read, so that
    ``render m.cnn -o m.cnn`` cannot replace its own source), compared
    after following symlinks and by inode (hard links)."""
    target = resolved(path)
    if not target.parent.is_dir():
        raise UnsafePath(f"no such directory: {Path(path).parent}")
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        raise UnsafePath(f"cannot write {path}: it is {_describe(mode)}")
    if mode is not None and not stat.S_ISREG(mode):
        return  # /dev/null and friends are never an input
    identity = _identity(target)
    for source in inputs:
        try:
            same = resolved(source) == target
        except UnsafePath:  # an input that cannot be resolved cannot be the output either
            same = False
        if same or (identity is not None and _identity(Path(source)) == identity):
            raise UnsafePath(f"the output {path} is an input ({source}); write to another file")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _chunks(data: bytes | str | Sequence[bytes]) -> Sequence[bytes]:
    if isinstance(data, str):
        return [data.encode("utf-8")]
    if isinstance(data, bytes | bytearray | memoryview):
        return [bytes(data)]
    return data


def _write_through(path: Path, chunks: Sequence[bytes]) -> None:
    """Writes to a character device or FIFO that exists (no rename: the
    device stays). A FIFO without a reader is refused, not waited on."""
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        if error.errno == errno.ENXIO:
            raise UnsafePath(f"cannot write {path}: nothing reads from it") from None
        raise
    os.set_blocking(fd, True)
    with os.fdopen(fd, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)


def write_atomic(path: str | Path, data: bytes | str | Sequence[bytes]) -> None:
    """Writes ``data`` (text as UTF-8, bytes, or a sequence of byte chunks)
    to ``path`` as the module docstring says: a temporary file beside the
    target renamed into place, so a failure never leaves a partial file or
    clobbers a good one."""
    target = resolved(path)
    chunks = _chunks(data)
    try:
        existing = os.stat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        if stat.S_ISCHR(existing.st_mode) or stat.S_ISFIFO(existing.st_mode):
            _write_through(target, chunks)
            return
        raise UnsafePath(f"cannot write {path}: it is {_describe(existing.st_mode)}")
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if existing is not None:
                with contextlib.suppress(OSError):  # only root may give a file away; others keep their own
                    os.fchown(fd, existing.st_uid, existing.st_gid)
                os.fchmod(fd, stat.S_IMODE(existing.st_mode))
            else:
                os.fchmod(fd, 0o666 & ~_umask())
            for chunk in chunks:
                handle.write(chunk)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
