#!/usr/bin/env bash
# Wheels that the GPU machines lack for pipelines/tiny/gpu_video.sh, into .whl/ (git-ignored; the device tool
# carries it): diffusers at the version pyproject.toml allows, and importlib-metadata, which it requires. The GPU
# image has torch, accelerate, transformers, safetensors, huggingface-hub, numpy and scipy (Python 3.12).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
  "diffusers==$(.venv/bin/python -c "import diffusers; print(diffusers.__version__)" 2>/dev/null || echo 0.42.1)" importlib-metadata
ls .whl
