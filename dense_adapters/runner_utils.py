"""Deprecated: the tools' shared code moved to :mod:`dense_adapters.cli.runner` (config loading, safety nets,
runner builder) and :mod:`dense_adapters.cli.core` (``run_cli``). These names stay importable from here so that
code written against the old module keeps working; new code imports the new modules."""
import sys
from typing import Callable

from .cli.core import run_cli as _run_cli
from .cli.core import user_message  # noqa: F401
from .cli.runner import (add_reliability, add_runner_args, adjust_for_device, build_runner, check_data,  # noqa: F401
                         default_work_dir, enable_amp, find_resume_checkpoint, is_complete_checkpoint, load_config,
                         set_data_root)
from .datasets.checks import dataset_cfgs  # noqa: F401
from .errors import DenseAdaptersError, UserError  # noqa: F401
from .utils import replace_syncbn  # noqa: F401


def run_cli(main: Callable[[], None]) -> None:
    """The old form: run ``main()`` and exit (2 after one ``error:`` line for a user error). New code returns
    ``dense_adapters.cli.core.run_cli(fn)`` from its ``main(argv=None)`` instead."""
    code = _run_cli(main)
    if code:
        sys.exit(code)
