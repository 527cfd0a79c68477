"""Plain-Python file writing shared by every layer: :func:`atomic_write` (the old file or the whole new one)."""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from typing import Union


def atomic_write(path: str, data: Union[bytes, str], encoding: str = "utf-8") -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the complete new one, never partial.

    The data goes to a temporary file in the same folder (same file system), is fsync'ed, then ``os.replace``d
    over ``path``; the folder is fsync'ed so that the rename survives a power loss.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{osp.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode(encoding) if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:  # some file systems refuse fsync on folders
        pass
