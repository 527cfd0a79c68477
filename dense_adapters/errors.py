"""The toolkit's one error model: exceptions a user can act on, printed by the tools as one ``error:`` line.

Library code raises these (never prints); ``dense_adapters.cli`` turns any :class:`DenseAdaptersError` into a single
line on stderr and exit code 2. Anything else is a bug and keeps its traceback. The classes also derive from the
built-in exception a caller would expect (``ValueError``, ``RuntimeError``), so ``except ValueError`` keeps working.

Plain Python: importable from the framework-free core (``dense_adapters.nn``) and from the mm layer alike.
"""
from __future__ import annotations


class DenseAdaptersError(Exception):
    """Base class: the message says what was wrong and what to do, on one line."""


class UserError(DenseAdaptersError, ValueError):
    """A wrong option, argument or config value (typo, out of range, conflicting settings)."""


class DataError(DenseAdaptersError, ValueError):
    """A dataset or input file that is missing, empty, corrupt or of the wrong kind (mode, size, label range)."""


class CheckpointError(DenseAdaptersError, ValueError):
    """A checkpoint that cannot be read: missing, truncated, damaged, of an unknown format or unreachable."""


class CheckpointMismatch(CheckpointError):
    """A readable checkpoint that does not fit the model: wrong format, shapes, register count, or a partial load
    (missing or unconsumed tensors) that was not asked for."""


class UntrustedCheckpoint(CheckpointError):
    """A checkpoint that needs arbitrary code to unpickle, refused unless the user trusts its source."""


class StorageError(DenseAdaptersError, OSError):
    """A file or folder that cannot be written: full disk, read-only or missing folder, a file where a folder should
    be, or a work dir another run holds."""


class CompiledOpUnavailable(DenseAdaptersError, RuntimeError):
    """An op that needs compiled mmcv was called under mmcv-lite."""


def one_line(e: BaseException) -> str:
    """The message of ``e`` folded onto one line (whitespace runs and newlines become single spaces)."""
    return " ".join(str(e).split())


__all__ = ["DenseAdaptersError", "UserError", "DataError", "CheckpointError", "CheckpointMismatch",
           "UntrustedCheckpoint", "StorageError", "CompiledOpUnavailable", "one_line"]
