"""Multi-process training with torchrun, one process per GPU (gloo on machines without CUDA).

    dense-adapters-dist-train CONFIG NPROC [train args...]
    NNODES=2 NODE_RANK=0|1 MASTER_ADDR=host0 PORT=29500 dense-adapters-dist-train CONFIG 8

The same as ``bash tools/dist_train.sh`` (same environment variables), for an installed package: it runs
``python -m torch.distributed.run ... -m dense_adapters.cli.train CONFIG --launcher pytorch [args]``. The batch size
in the config is per process: the global batch is NPROC * NNODES * batch_size.
"""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Optional, Sequence

USAGE = "usage: dense-adapters-dist-train CONFIG NPROC [train args...]"


def torchrun_command(config: str, nproc: str, train_args: Sequence[str], env: Optional[dict] = None) -> list[str]:
    """The torchrun command line, with NNODES, NODE_RANK, MASTER_ADDR and PORT from ``env`` (default: os.environ)."""
    env = os.environ if env is None else env
    return [sys.executable, "-m", "torch.distributed.run", f"--nnodes={env.get('NNODES', '1')}",
            f"--node_rank={env.get('NODE_RANK', '0')}", f"--master_addr={env.get('MASTER_ADDR', '127.0.0.1')}",
            f"--nproc_per_node={nproc}", f"--master_port={env.get('PORT', '29500')}",
            "-m", "dense_adapters.cli.train", config, "--launcher", "pytorch", *train_args]


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(f"{USAGE}\n\n{__doc__}")
        return 0
    if len(argv) < 2:
        print(USAGE, file=sys.stderr)
        return 2
    return subprocess.call(torchrun_command(argv[0], argv[1], argv[2:]))


if __name__ == "__main__":
    sys.exit(main())
