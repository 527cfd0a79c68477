"""What every tool shares: :func:`run_cli` (the one place errors become an ``error:`` line), the one override
syntax (``--cfg-options KEY=VALUE ...``) and where a checkout's folders are."""
from __future__ import annotations

import argparse
import os
import os.path as osp
import re
import sys
from typing import Any, Callable, Optional, Sequence

from ..errors import DenseAdaptersError, one_line


def user_message(e: BaseException) -> Optional[str]:
    """The one-line message for an error the user can act on, or None for a bug (which keeps its traceback).

    User errors are :class:`~dense_adapters.errors.DenseAdaptersError` (what library code raises) and a missing
    file (``FileNotFoundError``: the path is in the message). DataLoader workers re-raise errors with the worker's
    traceback in the text: the last line holds the message.
    """
    if not isinstance(e, (DenseAdaptersError, FileNotFoundError)):
        return None
    text = str(e)
    if "Original Traceback" in text:
        last = [line for line in text.splitlines() if line.strip()][-1]
        head, _, rest = last.partition(": ")
        text = rest if rest and re.fullmatch(r"[\w.]+", head) else last
    return one_line(text)


def run_cli(fn: Callable[[], Any]) -> int:
    """Run a tool's body; return its exit code (0, or an ``int`` it returns).

    User errors (see :func:`user_message`) end in one ``error: ...`` line on stderr and exit code 2; Ctrl-C in
    130; anything else is a bug and propagates with its traceback. ``SystemExit`` (argparse) passes through.
    """
    try:
        out = fn()
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        msg = user_message(e)
        if msg is None:
            raise
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return out if isinstance(out, int) and not isinstance(out, bool) else 0


# ---- the one override syntax ---------------------------------------------------------------------------------------

def add_cfg_options(parser: argparse.ArgumentParser, help: Optional[str] = None,
                    deprecated: Sequence[str] = ()) -> None:
    """``--cfg-options KEY=VALUE ...`` (mmengine's value syntax: ints, floats, bools, None, lists, tuples), into
    ``args.cfg_options`` (a dict, empty by default); ``deprecated`` names old spellings accepted with a note.
    Keys are checked against the config when it is loaded (:mod:`dense_adapters.cli.cfg_options`)."""
    from .cfg_options import CfgOptionsAction

    parser.add_argument("--cfg-options", nargs="+", action=CfgOptionsAction, default={}, metavar="KEY=VALUE",
                        help=help or "override config entries, e.g. train_cfg.max_iters=100 "
                                     "model.backbone.init_cfg=None (unknown keys are refused: a leading + adds a "
                                     "new entry on purpose)")
    for name in deprecated:
        parser.add_argument(name, nargs="+", action=CfgOptionsAction, deprecated="--cfg-options", dest="cfg_options",
                            metavar="KEY=VALUE", help="deprecated spelling of --cfg-options")


# ---- where things are ----------------------------------------------------------------------------------------------

def cache_dir() -> str:
    """Where an installed package keeps what it makes (the demo's sample): ``$DENSE_ADAPTERS_CACHE``, else
    ``$XDG_CACHE_HOME/dense_adapters``, else ``~/.cache/dense_adapters``."""
    if os.environ.get("DENSE_ADAPTERS_CACHE"):
        return osp.abspath(osp.expanduser(os.environ["DENSE_ADAPTERS_CACHE"]))
    base = os.environ.get("XDG_CACHE_HOME") or osp.join(osp.expanduser("~"), ".cache")
    return osp.join(base, "dense_adapters")


def repo_root() -> str:
    """The checkout the tools run in: the current folder if it holds ``configs/``, else the folder above the
    package (an editable install), else the current folder."""
    if osp.isdir("configs"):
        return os.getcwd()
    up = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    return up if osp.isdir(osp.join(up, "configs")) else os.getcwd()
