#!/usr/bin/env bash
# The video stack on one GPU in under 10 minutes: the video autoencoder, a latent cache of its latents, and the
# text-to-video transformer on that cache, each continued from the newest committed weights; the results are
# exported (fp16 safetensors + model cards) into $OUT, with the runs' logs.
#
#   bash pipelines/tiny/gpu_video.sh                     # on a machine with a GPU and ~16 CPU cores
#   GPU_CHECK=1 bash pipelines/tiny/gpu_video.sh         # the same commands, a few steps each, on a CPU
#
# Nothing in avgen needs a GPU: this is a shortcut for when one is at hand (an H100 trains the ~8M-parameter
# autoencoder some hundreds of times faster than two CPU cores). It needs python3 with torch, accelerate,
# transformers, safetensors, numpy and scipy; diffusers is installed from wheels in .whl/ when python3 lacks it
# (pipelines/tiny/gpu_wheels.sh downloads them; the GPU machines reach no package index).
#
# Time budget (minutes, each a hard limit through the trainer's --max-minutes; the cache and exports take ~1 more):
#   VAE_MINUTES (4) for the autoencoder, T2V_MINUTES (3) for the transformer.
# The step counts are upper bounds that set the learning-rate schedules; a run that reaches its time limit first
# still leaves a checkpoint, which is what is exported.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-gpu-out}"
RUNS="${RUNS:-/tmp/avgen-gpu-runs}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT" "$RUNS"

if ! "$PY" -c "import diffusers" 2>/dev/null; then
  [ -d .whl ] || { echo "python3 has no diffusers and there is no .whl/: run pipelines/tiny/gpu_wheels.sh first" >&2; exit 2; }
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/avgen-site .whl/*.whl
  export PYTHONPATH="/tmp/avgen-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
AVGEN=("$PY" -m avgen.cli)

CORES=$(nproc)
WORKERS="${WORKERS:-$(( CORES > 2 ? CORES - 2 : 0 ))}"  # CPU processes rendering world clips beside the GPU
# Where the stack starts: the newest committed video autoencoder (weights/next/vae, trained on past the shipped one,
# when it exists), and weights/tiny's frozen text encoder and transformer for the text-to-video model.
VAE_FROM="${VAE_FROM:-$([ -f weights/next/vae/config.json ] && echo weights/next || echo weights/tiny)}"
T2V_FROM="${T2V_FROM:-weights/tiny}"
if [ "${GPU_CHECK:-0}" = 1 ]; then  # a dry run on the CPU: every command, a few steps, small batches
  VAE_STEPS=3 VAE_BATCH=2 T2V_STEPS=3 T2V_BATCH=2 SHARDS=1 SHARD_SIZE=4 VAE_MINUTES=5 T2V_MINUTES=5 EVAL=2
fi
VAE_STEPS="${VAE_STEPS:-6000}" VAE_BATCH="${VAE_BATCH:-32}" VAE_MINUTES="${VAE_MINUTES:-4}"
T2V_STEPS="${T2V_STEPS:-8000}" T2V_BATCH="${T2V_BATCH:-32}" T2V_MINUTES="${T2V_MINUTES:-3}"
SHARDS="${SHARDS:-16}" SHARD_SIZE="${SHARD_SIZE:-32}" EVAL="${EVAL:-1000}"
echo "== gpu_video: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo 'no GPU'), $CORES cores, $WORKERS render workers"

train() {  # train RUN TASK [args...]: exit code 75 (stopped at --max-minutes, checkpoint written) is a success here
  local run=$1 task=$2; shift 2
  set +e
  "${AVGEN[@]}" train "$task" --run-dir "$RUNS/$run" --num-workers "$WORKERS" --mixed-precision auto "$@" 2>&1 | tee "$OUT/$run.log"
  local rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 0 ] || [ "$rc" = 75 ] || { echo "train $run failed ($rc)" >&2; exit "$rc"; }
}

# 1. the video autoencoder, from $VAE_FROM's
train vae vae --init-from "$VAE_FROM" --max-steps "$VAE_STEPS" --batch-size "$VAE_BATCH" \
  --learning-rate 5e-4 --warmup-steps 100 --eval-every "$EVAL" --checkpoint-every 500 --max-minutes "$VAE_MINUTES" \
  --option moving_weight=20 --option temporal_weight=0.5  # weights/next/vae's loss (docs/experiments.md, 2026-12-08)
rm -rf "$OUT/vae" && "${AVGEN[@]}" export "$RUNS/vae" vae "$OUT/vae"

# 2. its latents of world clips (both Movie Gen formats), rendered by the CPU workers
"${AVGEN[@]}" cache-latents "$OUT/vae" "$RUNS/latents" --shards "$SHARDS" --shard-size "$SHARD_SIZE" --workers "$WORKERS"

# 3. the text-to-video transformer on those latents, from $T2V_FROM (its frozen text encoder, its transformer as a start)
train t2v t2v --init-from "$T2V_FROM" --max-steps "$T2V_STEPS" --batch-size "$T2V_BATCH" --learning-rate 3e-4 \
  --warmup-steps 100 --eval-every "$EVAL" --checkpoint-every 500 --max-minutes "$T2V_MINUTES" \
  --option vae="$OUT/vae" --option latent_cache="$RUNS/latents" --option train_text_encoder=false \
  --option text_standardization=true --option pooled_text=true --option crop_latent_frames=16 \
  --option full_clips_from="$(( T2V_STEPS / 2 ))" \
  --option image_until="$(( T2V_STEPS >= 8 ? T2V_STEPS / 8 : 1 ))" --option image_frames=16 --option joint_images=true  # Movie Gen's image stage first
rm -rf "$OUT/transformer" && "${AVGEN[@]}" export "$RUNS/t2v" transformer "$OUT/transformer"
ls -l "$OUT" "$OUT"/*/
