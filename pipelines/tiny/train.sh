#!/usr/bin/env bash
# Trains every model of the `tiny` preset from scratch, in dependency order, and writes weights/tiny/.
#
#   bash pipelines/tiny/train.sh            # or: make weights
#
# Every stage resumes from its last checkpoint (runs/tiny/<stage>/), so rerunning after an interruption
# (or a session's end) continues where it stopped; a finished stage is skipped. MAX_MINUTES bounds each
# training call: a stage that hits it exits with code 75 and the script stops there, to be rerun.
# On a GPU machine the same commands run on the GPU (accelerate picks the device); set WORKERS to the
# number of CPU cores that may render world clips beside it.
set -euo pipefail
cd "$(dirname "$0")/../.."
AVGEN="${AVGEN:-.venv/bin/avgen}"
RUNS="${RUNS:-runs/tiny}"
OUT="${OUT:-weights/tiny}"
MAX_MINUTES="${MAX_MINUTES:-600}"
WORKERS="${WORKERS:-0}"
train() {  # train STAGE TASK [args...]: one resumable training run
  local stage=$1 task=$2; shift 2
  [ -d "$RUNS/$stage/final" ] && { echo "== $stage: done"; return 0; }
  echo "== $stage"
  "$AVGEN" train "$task" --run-dir "$RUNS/$stage" --max-minutes "$MAX_MINUTES" --num-workers "$WORKERS" "$@"
}
export_component() {  # export STAGE COMPONENT: half-precision weights into $OUT
  [ -f "$OUT/$2/config.json" ] || "$AVGEN" export "$RUNS/$1" "$2" "$OUT/$2"
}

# 1. the autoencoders (16-frame crops / 1 s crops of world clips)
train vae vae --max-steps 3000 --batch-size 4 --learning-rate 5e-4
export_component vae vae
train audio-vae audio-vae --max-steps 4000 --batch-size 16 --learning-rate 5e-4
export_component audio-vae audio_vae

# 2. text to video on cached latents (4096 clips, both Movie Gen formats)
"$AVGEN" cache-latents "$OUT/vae" "$RUNS/latents" --shards 128
train t2v t2v --max-steps 20000 --batch-size 8 --option vae="$OUT/vae" --option latent_cache="$RUNS/latents"
export_component t2v transformer
export_component t2v text_encoder

# 3. video to audio, on world clips rendered on the fly
train v2a v2a --max-steps 15000 --batch-size 8 --option audio_vae="$OUT/audio_vae"
export_component v2a audio_transformer
export_component v2a video_encoder
export_component v2a audio_text_encoder

# 4. the spatial upsampler (64 -> 128 px)
train upsampler upsampler --max-steps 3000 --batch-size 8 --learning-rate 5e-4
export_component upsampler upsampler

# 5. one loadable pipeline: model_index.json, tokenizer and scheduler beside the components
"$AVGEN" assemble "$OUT"
