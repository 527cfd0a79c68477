"""Plain-Python file writing shared by every layer: :func:`atomic_write` (the old file or the whole new one), the
clean-up of temporary files a killed write left, and :func:`lock_work_dir` (one run per work dir).

Files are created with ``os.open(..., 0o666)``, so they get the permissions the user's umask gives (as ``open``
does), not ``mkstemp``'s 0600: teammates can read and resume a run's checkpoints. Write failures (a full disk, a
read-only folder, a file where a folder should be) raise :class:`~dense_adapters.errors.StorageError` with one line.
"""
from __future__ import annotations

import errno
import json
import os
import os.path as osp
import re
import secrets
import socket
import time
from contextlib import contextmanager
from typing import Iterator, Optional, Union

from .errors import StorageError

# ".<target name>.<pid>.<8 hex>.tmp" (and mkstemp's ".<target name>.<8 chars>.tmp" of earlier versions)
_TMP_RE = re.compile(r"^\.(?P<name>.+?)\.(?:(?P<pid>\d+)\.)?[A-Za-z0-9_]{8}\.tmp$")
LOCK_NAME = ".dense_adapters.lock"


def storage_error(path: str, e: OSError, what: str = "write") -> StorageError:
    """One line for an OSError while writing ``path``: what happened and what to do."""
    reason = e.strerror or str(e)
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "free space (or raise the quota / file-size limit) or write elsewhere"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "make the folder writable or choose another one"
    elif e.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        hint = "a file stands where a folder is needed (or the reverse): remove it or choose another path"
    else:
        hint = "check the path and the file system"
    return StorageError(f"cannot {what} {path}: {reason}: {hint}")


def _temp_path(path: str) -> str:
    folder, name = osp.split(osp.abspath(path))
    return osp.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def atomic_write(path: str, data: Union[bytes, str], encoding: str = "utf-8") -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the complete new one, never partial.

    The data goes to a temporary file in the same folder (same file system), is fsync'ed, then ``os.replace``d
    over ``path``; the folder is fsync'ed so that the rename survives a power loss. The new file gets the umask's
    permissions. Raises :class:`StorageError` (one line) when the folder cannot be written.
    """
    with atomic_open(path) as f:
        f.write(data.encode(encoding) if isinstance(data, str) else data)


@contextmanager
def atomic_open(path: str) -> Iterator:
    """A binary file to write ``path`` through, as :func:`atomic_write` does (e.g. ``torch.save(obj, f)``): the
    target appears, complete, when the block ends without an error."""
    folder = osp.dirname(osp.abspath(path))
    tmp = _temp_path(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as e:
        raise storage_error(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if osp.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise storage_error(path, e) from None
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # some file systems refuse fsync on folders
        pass


def stale_temporaries(folder: str) -> list[str]:
    """Temporary files of :func:`atomic_write` in ``folder`` (what a write killed midway leaves)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return sorted(osp.join(folder, n) for n in names if _TMP_RE.match(n) and osp.isfile(osp.join(folder, n)))


def remove_stale_temporaries(folder: str) -> tuple[int, int]:
    """Delete the temporary files a killed :func:`atomic_write` left in ``folder``; returns (files, bytes).

    Only safe while no other process writes there: :func:`lock_work_dir` calls it once it holds the lock.
    """
    n = size = 0
    for path in stale_temporaries(folder):
        try:
            s = os.path.getsize(path)
            os.remove(path)
        except OSError:
            continue
        n, size = n + 1, size + s
    return n, size


def _is_main_rank() -> bool:
    for var in ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK"):
        if os.environ.get(var, "").strip():
            return os.environ[var].strip() == "0"
    return True


def ensure_writable_dir(path: str, what: str = "work dir") -> None:
    """Create ``path`` if needed; raise :class:`StorageError` (one line) if it is a file or cannot be written."""
    if osp.exists(path) and not osp.isdir(path):
        raise StorageError(f"the {what} {path} is a file, not a folder: remove it or choose another one")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise storage_error(path, e, f"create the {what}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise StorageError(f"cannot write the {what} {path}: permission denied: make it writable or choose another "
                           "one")


@contextmanager
def lock_work_dir(path: str, log=None) -> Iterator[Optional[str]]:
    """Hold an exclusive lock on the work dir ``path`` for the block (the main process of a run only).

    A second run on the same folder raises :class:`~dense_adapters.errors.StorageError` naming the run that holds
    it; the lock goes away with its process (also on SIGKILL), so a killed run never blocks its ``--resume``.
    Once held, the temporary files a killed checkpoint write left there are removed (``log`` says so).
    Yields the lock file's path (None on ranks other than 0, which do not lock).
    """
    import fcntl

    ensure_writable_dir(path)
    if not _is_main_rank():
        yield None
        return
    lock = osp.join(path, LOCK_NAME)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise storage_error(lock, e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise storage_error(lock, e, "lock") from None
            with open(lock) as f:
                text = f.read().strip()
            try:
                who = json.loads(text)
                holder = f"pid {who['pid']} on {who['host']}, since {who['started']}"
            except (ValueError, KeyError, TypeError):
                holder = "another process"
            raise StorageError(f"the work dir {path} is in use by another run ({holder}): wait for it to end, or "
                               "pass another --work-dir") from None
        info = dict(pid=os.getpid(), host=socket.gethostname(), started=time.strftime("%Y-%m-%d %H:%M:%S"))
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        n, size = remove_stale_temporaries(path)
        if n and log is not None:
            log(f"removed {n} temporary file(s) ({size / 1e6:.1f} MB) that a killed checkpoint write left in {path}")
        yield lock
    finally:
        os.close(fd)  # releases the lock
