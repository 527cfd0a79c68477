#!/usr/bin/env bash
# Training on a Slurm cluster, one task per GPU: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [NTASKS] [args]
#   GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS="--time=2-00:00:00" bash tools/slurm_train.sh gpu reg4 \
#       configs/ade20k_regvit_upernet.py 16 --work-dir work_dirs/reg4
# mmengine's slurm launcher reads SLURM_PROCID/NTASKS/NODELIST; nccl on GPUs, gloo on CPU-only nodes.
# Resume after a preemption or crash by running the same command with --resume (latest complete checkpoint).
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: bash tools/slurm_train.sh PARTITION JOB_NAME CONFIG [NTASKS] [train.py args...]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
NTASKS=${4:-8}
if [ $# -ge 4 ]; then shift 4; else shift 3; fi
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-}
PYTHON=${PYTHON:-python}
DIR=$(cd "$(dirname "$0")" && pwd)
GRES=""
if [ "$GPUS_PER_NODE" -gt 0 ]; then GRES="--gres=gpu:${GPUS_PER_NODE}"; fi
PYTHONPATH="$DIR/..:${PYTHONPATH:-}" srun -p "$PARTITION" --job-name="$JOB_NAME" $GRES \
  --ntasks="$NTASKS" --ntasks-per-node="$(( GPUS_PER_NODE > 0 ? GPUS_PER_NODE : NTASKS ))" \
  --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1 $SRUN_ARGS \
  "$PYTHON" -u "$DIR/train.py" "$CONFIG" --launcher slurm "$@"
