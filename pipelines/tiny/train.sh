#!/usr/bin/env bash
# Trains every model of the `tiny` preset from scratch, in dependency order, and writes weights/tiny/.
#
#   bash pipelines/tiny/train.sh            # or: make weights
#
# Every stage resumes from its last checkpoint (runs/tiny/<stage>/), so rerunning after an interruption
# continues where it stopped; a finished stage is skipped. MAX_MINUTES bounds each
# training call: a stage that hits it exits with code 75 and the script stops there, to be rerun.
# On a GPU machine the same commands run on the GPU (accelerate picks the device); set WORKERS to the
# number of CPU cores that may render world clips beside it.
#
# The CPU defaults below are the recipe of the shipped weights/tiny (each component's MODEL_CARD.md has the
# exact command it ran): short, because they were trained on two CPU cores in pieces of under 3 hours. To go on
# training the shipped models instead of starting again, start every stage from them into new folders:
#   INIT_FROM=weights/tiny RUNS=runs/tiny-2 OUT=weights/tiny-2 bash pipelines/tiny/train.sh
# Stages keep their numbers (docs/experiments.md and the model cards cite them); number 8 belonged to a stage
# that was not shipped and is gone.
set -euo pipefail
cd "$(dirname "$0")/../.."
AVGEN="${AVGEN:-.venv/bin/avgen}"  # a command, split on spaces: e.g. AVGEN="python3 -m avgen.cli" where no venv
RUNS="${RUNS:-runs/tiny}"
OUT="${OUT:-weights/tiny}"
MAX_MINUTES="${MAX_MINUTES:-600}"
# PROFILE=gpu: larger batches and more steps for one GPU with ~16 CPU cores rendering (pipelines/tiny/gpu.env);
# the default is the CPU recipe. A finished stage keeps its weights whatever the profile says later.
[ "${PROFILE:-cpu}" = gpu ] && source "$(dirname "$0")/gpu.env"
WORKERS="${WORKERS:-0}"
INIT_FROM="${INIT_FROM:-}"  # a pipeline folder (e.g. weights/tiny): every stage starts from its components' weights
VAE_STEPS="${VAE_STEPS:-600}" VAE_BATCH="${VAE_BATCH:-8}"
AUDIO_VAE_STEPS="${AUDIO_VAE_STEPS:-1500}" AUDIO_VAE_BATCH="${AUDIO_VAE_BATCH:-4}"
T2V_STEPS="${T2V_STEPS:-3200}" T2V_BATCH="${T2V_BATCH:-4}" T2V_LR="${T2V_LR:-6e-4}" LATENT_SHARDS="${LATENT_SHARDS:-12}"
T2V_FULL_CLIPS_FROM="${T2V_FULL_CLIPS_FROM:-$T2V_STEPS}"  # curriculum: 16-latent-frame windows (~2.7 s) before this step
V2A_STEPS="${V2A_STEPS:-2200}" V2A_BATCH="${V2A_BATCH:-4}" V2A_LR="${V2A_LR:-6e-4}"
UPSAMPLER_STEPS="${UPSAMPLER_STEPS:-280}" UPSAMPLER_BATCH="${UPSAMPLER_BATCH:-4}"
EDIT_STEPS="${EDIT_STEPS:-5000}" EDIT_SHARDS="${EDIT_SHARDS:-16}" EDIT_LR="${EDIT_LR:-3e-4}"
train() {  # train STAGE TASK [args...]: one resumable training run
  local stage=$1 task=$2; shift 2
  [ -d "$RUNS/$stage/final" ] && { echo "== $stage: done"; return 0; }
  echo "== $stage"
  $AVGEN train "$task" --run-dir "$RUNS/$stage" --max-minutes "$MAX_MINUTES" --num-workers "$WORKERS" \
    ${INIT_FROM:+--init-from "$INIT_FROM"} "$@"
}
export_component() {  # export STAGE COMPONENT: half-precision weights into $OUT
  [ -f "$OUT/$2/config.json" ] || $AVGEN export "$RUNS/$1" "$2" "$OUT/$2"
}

# 0. the tokenizer: byte-level BPE of the world's training captions (deterministic; committed in the preset)
[ -f pipelines/tiny/tokenizer/tokenizer.json ] || $AVGEN train-tokenizer pipelines/tiny/tokenizer
mkdir -p "$OUT" && { [ -d "$OUT/tokenizer" ] || cp -r pipelines/tiny/tokenizer "$OUT/tokenizer"; }

# 1. the autoencoders (16-frame crops / 1 s crops of world clips)
train vae vae --max-steps "$VAE_STEPS" --batch-size "$VAE_BATCH" --learning-rate 1e-3 --warmup-steps 50 --eval-every 200
export_component vae vae
train audio-vae audio-vae --max-steps "$AUDIO_VAE_STEPS" --batch-size "$AUDIO_VAE_BATCH" --learning-rate 1e-3 --warmup-steps 100 --eval-every 500
export_component audio-vae audio_vae

# 2. text to video on cached latents (4096 clips, both Movie Gen formats)
$AVGEN cache-latents "$OUT/vae" "$RUNS/latents" --shards "$LATENT_SHARDS" --workers "$WORKERS"
train t2v t2v --max-steps "$T2V_STEPS" --batch-size "$T2V_BATCH" --learning-rate "$T2V_LR" --warmup-steps 100 --eval-every 500 --option vae="$OUT/vae" \
  --option latent_cache="$RUNS/latents" --option crop_latent_frames=16 --option full_clips_from="$T2V_FULL_CLIPS_FROM"
export_component t2v transformer
export_component t2v text_encoder

# 3. video to audio, on 5 s world clips (one window of the audio model) rendered on the fly
train v2a v2a --max-steps "$V2A_STEPS" --batch-size "$V2A_BATCH" --learning-rate "$V2A_LR" --warmup-steps 100 --eval-every 500 --option audio_vae="$OUT/audio_vae"
export_component v2a audio_transformer
export_component v2a video_encoder
export_component v2a audio_text_encoder

# 4. the spatial upsampler (64 -> 128 px)
train upsampler upsampler --max-steps "$UPSAMPLER_STEPS" --batch-size "$UPSAMPLER_BATCH" --learning-rate 5e-4 --warmup-steps 30
export_component upsampler upsampler

# 5. refinements: runs continued from the components exported above (--init-from "$OUT"), each replacing them in
#    $OUT when it finishes: v2a-2 and upsampler-2, -3 and -4.
swap_in() {  # swap_in STAGE "COMPONENTS": the stage's components replace $OUT's, once
  local stage=$1 components=$2
  [ -f "$RUNS/$stage/exported" ] && return 0
  for component in $components; do  # all exported beside first, then swapped in: never a half-written component
    rm -rf "$OUT/$component.new"
    $AVGEN export "$RUNS/$stage" "$component" "$OUT/$component.new"
  done
  for component in $components; do rm -rf "$OUT/$component"; mv "$OUT/$component.new" "$OUT/$component"; done
  touch "$RUNS/$stage/exported"
}
refine() {  # refine STAGE TASK "COMPONENTS" [train args...]
  local stage=$1 task=$2 components=$3; shift 3
  [ -f "$RUNS/$stage/exported" ] && { echo "== $stage: done"; return 0; }
  echo "== $stage"
  $AVGEN train "$task" --run-dir "$RUNS/$stage" --max-minutes "$MAX_MINUTES" --num-workers "$WORKERS" --init-from "$OUT" "$@"
  swap_in "$stage" "$components"
}  # called only as a plain command or in an if body: inside && or ||, bash would ignore set -e in it
REFINE_V2A_STEPS="${REFINE_V2A_STEPS:-3000}" REFINE_UPSAMPLER_STEPS="${REFINE_UPSAMPLER_STEPS:-450}"
REFINE2_UPSAMPLER_STEPS="${REFINE2_UPSAMPLER_STEPS:-550}" REFINE3_UPSAMPLER_STEPS="${REFINE3_UPSAMPLER_STEPS:-150}"
if [ "$REFINE_V2A_STEPS" -gt 0 ]; then
  refine v2a-2 v2a "audio_transformer video_encoder audio_text_encoder" --max-steps "$REFINE_V2A_STEPS" \
    --batch-size "$V2A_BATCH" --learning-rate 4e-4 --warmup-steps 50 --eval-every 500 --option audio_vae="$OUT/audio_vae"
fi
if [ "$REFINE_UPSAMPLER_STEPS" -gt 0 ]; then  # the shipped run stopped at step 383 of 450 (its time limit)
  refine upsampler-2 upsampler upsampler --max-steps "$REFINE_UPSAMPLER_STEPS" --batch-size "$UPSAMPLER_BATCH" \
    --learning-rate 5e-4 --warmup-steps 20 --eval-every 75
fi
if [ "$REFINE2_UPSAMPLER_STEPS" -gt 0 ]; then  # more passes over new data (seeds 1, 2), the last at a lower rate
  refine upsampler-3 upsampler upsampler --max-steps "$REFINE2_UPSAMPLER_STEPS" --batch-size "$UPSAMPLER_BATCH" \
    --learning-rate 5e-4 --warmup-steps 20 --eval-every 250 --seed 1
fi
if [ "$REFINE3_UPSAMPLER_STEPS" -gt 0 ]; then
  refine upsampler-4 upsampler upsampler --max-steps "$REFINE3_UPSAMPLER_STEPS" --batch-size "$UPSAMPLER_BATCH" \
    --learning-rate 2e-4 --warmup-steps 10 --eval-every 150 --seed 2
fi

# 6. one loadable pipeline: model_index.json, tokenizer and scheduler beside the components
[ -f "$OUT/model_index.json" ] || $AVGEN assemble "$OUT"

# 7. instruction editing (Movie Gen Edit), initialised from the text-to-video model, text-to-video mixed in
$AVGEN cache-latents "$OUT/vae" "$RUNS/edit-latents" --edits --shards "$EDIT_SHARDS" --workers "$WORKERS"
# 16-latent-frame windows of each pair (target and source alike), as in the t2v curriculum. The edit model starts
# from $OUT's text-to-video model through its option init (which doubles the input channels), never --init-from.
INIT_FROM=""
train edit edit --max-steps "$EDIT_STEPS" --batch-size "$T2V_BATCH" --learning-rate "$EDIT_LR" --warmup-steps 100 \
  --eval-every 1000 --option vae="$OUT/vae" --option init="$OUT" --option edit_cache="$RUNS/edit-latents" \
  --option latent_cache="$RUNS/latents" --option crop_latent_frames=16 --option full_clips_from="$EDIT_STEPS"
[ -f "$OUT-edit/transformer/config.json" ] || $AVGEN export "$RUNS/edit" edit_transformer "$OUT-edit/transformer"
[ -f "$OUT-edit/text_encoder/config.json" ] || $AVGEN export "$RUNS/edit" text_encoder "$OUT-edit/text_encoder"
[ -f "$OUT-edit/model_index.json" ] || $AVGEN assemble "$OUT-edit" --edit-base "$OUT"

# 9. a text encoder that is not collapsed, trained alone first (`avgen train text-encoder`: linear heads name every
#    attribute a world caption states from the masked mean of its token states, and 25 % masked tokens are predicted from the rest; text only, no rendering), then frozen under the transformer,
#    which goes on from $OUT's with the text options. 1,500 steps (22 min on one core) took the token states' energy
#    along their shared direction from 96 % to 6 %; the 12,000 transformer steps on it (56 min on two cores with bf16)
#    raised paired video adherence from 34.6 % / 26.5 % to 41.6 % / 31.2 % on 64 + 64 prompts, and 1,500 more on whole
#    clips (20 min) to 48.0 % / 32.6 % (docs/experiments.md, 2026-12-02).
REFINE_TEXT_STEPS="${REFINE_TEXT_STEPS:-1500}" REFINE_TEXT_T2V_STEPS="${REFINE_TEXT_T2V_STEPS:-12000}"
if [ "$REFINE_TEXT_STEPS" -gt 0 ]; then
  train text text-encoder --max-steps "$REFINE_TEXT_STEPS" --batch-size 64 --learning-rate 1e-3 --warmup-steps 100 --eval-every 500
  [ -f "$RUNS/text-export/text_encoder/config.json" ] || $AVGEN export "$RUNS/text" text_encoder "$RUNS/text-export/text_encoder"
  mkdir -p "$RUNS/text-init"  # the frozen encoder beside $OUT's transformer: what the stage below starts from
  ln -sfn "$(realpath "$OUT/transformer")" "$RUNS/text-init/transformer"
  ln -sfn "$(realpath "$RUNS/text-export/text_encoder")" "$RUNS/text-init/text_encoder"
  $AVGEN cache-latents "$OUT/vae" "$RUNS/latents" --shards "${REFINE_T2V_SHARDS:-32}" --workers "$WORKERS"
  T2V_TEXT_OPTIONS=(--option vae="$OUT/vae" --option latent_cache="$RUNS/latents" --option train_text_encoder=false
                    --option text_standardization=true --option pooled_text=true)
  INIT_FROM="$RUNS/text-init" train t2v-text t2v --max-steps "$REFINE_TEXT_T2V_STEPS" --batch-size "$T2V_BATCH" \
    --learning-rate 5e-4 --warmup-steps 100 --seed 2 --eval-every 3000 "${T2V_TEXT_OPTIONS[@]}" \
    --option crop_latent_frames=16 --option full_clips_from="$REFINE_TEXT_T2V_STEPS"
  swap_in t2v-text "transformer text_encoder"
  # then whole clips (60 / 64 latent frames) from it, the text encoder still frozen
  refine t2v-full t2v transformer --max-steps "${REFINE_FULL_T2V_STEPS:-1500}" --batch-size "$T2V_BATCH" --learning-rate 2e-4 \
    --warmup-steps 50 --seed 3 --eval-every 750 "${T2V_TEXT_OPTIONS[@]}" --option full_clips_from=0
fi

# 10. the audio autoencoder went on with a heavier tonal-peak loss (its round trip dropped the music: 0 of 24 world
#     music clips kept) in three runs, A, B and D, and after each the sound models went on from the previous ones on
#     its latents. After D the round trip keeps music in 8 of 24 clips and footsteps in 87 %, and the sound models raised
#     Foley events within a frame from 37.1 % / 27.8 % to 47.7 % / 47.2 % on 64 + 64 world renders (docs/experiments.md,
#     2026-12-03).
sound_models_on_new_latents() {  # STAGE SEED EVAL_EVERY [STEPS [train args...]]: STEPS (2,000) of the sound models on $OUT/audio_vae's latents
  local stage=$1 seed=$2 eval_every=$3 steps=${4:-2000}; shift $(( $# < 4 ? $# : 4 ))
  refine "$stage" v2a "audio_transformer video_encoder audio_text_encoder" --max-steps "$steps" --batch-size 4 --learning-rate 3e-4 \
    --warmup-steps 50 --seed "$seed" --mixed-precision auto --eval-every "$eval_every" --option audio_vae="$OUT/audio_vae" "$@"
}
REFINE_AUDIO="${REFINE_AUDIO:-1}"  # 0 skips the stage
if [ "$REFINE_AUDIO" -gt 0 ]; then
  refine audio-vae-a audio-vae audio_vae --max-steps 1400 --batch-size 4 --learning-rate 5e-4 --warmup-steps 50 --seed 1 \
    --mixed-precision no --eval-every 700 --option tonal_weight=3.0
  sound_models_on_new_latents v2a-a 4 1000
  refine audio-vae-b audio-vae audio_vae --max-steps 3000 --batch-size 4 --learning-rate 3e-4 --warmup-steps 50 --seed 2 \
    --mixed-precision no --eval-every 1500 --option tonal_weight=6.0
  sound_models_on_new_latents v2a-b 5 1000
  refine audio-vae-d audio-vae audio_vae --max-steps 2500 --batch-size 4 --learning-rate 3e-4 --warmup-steps 50 --seed 6 \
    --mixed-precision no --eval-every 2500 --option tonal_weight=6.0
  sound_models_on_new_latents v2a-d 7 250
fi

# 11. the edit pipeline regenerates sound with $OUT's final sound stage: stage 7 assembled $OUT-edit before stage 10
#     retrained it, so assemble again (idempotent; the shared components must be byte-identical to $OUT's, which
#     tests/test_shipped_weights.py checks)
reassemble_edit() {  # $OUT-edit, if stage 7 made it, takes $OUT's current sound stage
  if [ -f "$OUT-edit/model_index.json" ]; then $AVGEN assemble "$OUT-edit" --edit-base "$OUT"; fi
}
reassemble_edit

# 12. 1,000 steps more of the sound models with the flow loss weighed 5x on the latent steps at each ball contact,
#     footstep and lightning flash (onset_weight=4). A linear probe finds 98 / 91 / 100 % of those events within a
#     frame in the frozen video features (benchmarks/bench_video_feature_probe.py), so the timing is there and the
#     audio model was not sounding it. Foley events within a frame 47.7 -> 53.0 % / 47.2 -> 51.6 % on 64 + 64 world
#     renders, paired; but a control with onset_weight=0 did as well (54.3 / 50.1 %, both plans), so the gain is the
#     1,000 more steps, not the weighting (docs/experiments.md, 2026-12-04).
REFINE_ONSET_V2A_STEPS="${REFINE_ONSET_V2A_STEPS:-1000}"
if [ "$REFINE_ONSET_V2A_STEPS" -gt 0 ]; then
  sound_models_on_new_latents v2a-e 8 500 "$REFINE_ONSET_V2A_STEPS" --option onset_weight=4.0
  reassemble_edit
fi

# 13. 1,800 steps more of the sound models with the plain flow loss (onset_weight 0: stage 12's control without the
#     weighting did as well), seed 10, two threads. Eval flow loss 0.246 -> 0.219 with the video, onsets 0.506 ->
#     0.464 (docs/experiments.md, 2026-12-05).
REFINE_MORE_V2A_STEPS="${REFINE_MORE_V2A_STEPS:-1800}"
if [ "$REFINE_MORE_V2A_STEPS" -gt 0 ]; then
  sound_models_on_new_latents v2a-g 10 900 "$REFINE_MORE_V2A_STEPS"
  reassemble_edit
fi

# 14. 2,100 steps more of the sound models (plain flow loss, seed 11), from stage 13's. Eval flow loss 0.219 ->
#     0.209 with the video, onsets 0.464 -> 0.443 (docs/experiments.md, 2026-12-05).
REFINE_MORE2_V2A_STEPS="${REFINE_MORE2_V2A_STEPS:-2100}"
if [ "$REFINE_MORE2_V2A_STEPS" -gt 0 ]; then
  sound_models_on_new_latents v2a-h 11 1050 "$REFINE_MORE2_V2A_STEPS"
  reassemble_edit
fi

# 15. the next video autoencoder (weights/next/vae; issue 44): the preset's shape (linear patch decoder) trained from
#     scratch for much longer, bf16 on CPUs with bf16 units, on 16-frame windows rendered alone. No pipeline uses it
#     yet: the text-to-video and edit models must first be retrained on its latents. Moving pixels weigh 5x in the
#     loss up to NEXT_VAE_BRANCH, then 20x (a branch of the run from that checkpoint, the same schedule: subjects and
#     ball contacts gained); from NEXT_VAE_TEMPORAL on, a loss on frame-to-frame change weighted 0.5 (slow camera
#     moves; docs/experiments.md, 2026-12-08). The run goes on over several sittings; NEXT_VAE_STOP is where the
#     committed weights stopped, and rerunning with a larger NEXT_VAE_STOP resumes it. An upsampling decoder
#     (3x3 convs + pixel shuffle at every scale) lost to this one at equal compute (docs/experiments.md, 2026-12-07).
NEXT_VAE_STEPS="${NEXT_VAE_STEPS:-16000}" NEXT_VAE_BRANCH="${NEXT_VAE_BRANCH:-7000}" NEXT_VAE_TEMPORAL="${NEXT_VAE_TEMPORAL:-12000}"
NEXT_VAE_STOP="${NEXT_VAE_STOP:-13250}"
NEXT="${NEXT:-weights/next}"
if [ "$NEXT_VAE_STEPS" -gt 0 ]; then
  next_vae=(vae --max-steps "$NEXT_VAE_STEPS" --batch-size 8 --learning-rate 8e-4 --warmup-steps 200 --eval-every 500
            --checkpoint-every 250 --mixed-precision auto --seed 0)
  train vae-next "${next_vae[@]}" --stop-at-step "$NEXT_VAE_BRANCH"
  INIT_FROM="" train vae-next-mw20 "${next_vae[@]}" --stop-at-step "$NEXT_VAE_TEMPORAL" --option moving_weight=20 \
    --branch-from "$RUNS/vae-next/checkpoints/step-$(printf %06d "$NEXT_VAE_BRANCH")"
  INIT_FROM="" train vae-next-td "${next_vae[@]}" --stop-at-step "$NEXT_VAE_STOP" --option moving_weight=20 \
    --option temporal_weight=0.5 --branch-from "$RUNS/vae-next-mw20/checkpoints/step-$(printf %06d "$NEXT_VAE_TEMPORAL")"
  [ -f "$NEXT/vae/config.json" ] || $AVGEN export "$RUNS/vae-next-td" vae "$NEXT/vae"
fi
