"""Whether bf16 autocast pays on a device: the one place that decides it (trainer, latent cache, upsampler).

CPUs differ by a factor of ~40 here. With AVX-512 BF16 or AMX (recent Intel Xeons) a bf16 matmul runs
2-3x faster than fp32; without them (e.g. AMD EPYC Zen 3, AVX2 only) PyTorch emulates bf16 and the same
matmul is ~40x slower (measured: 31 GFLOP/s fp32 vs 0.8 GFLOP/s bf16 on one such core). So on the CPU it is
measured, once per process, rather than assumed; CUDA devices that support bf16 always use it.
"""

from __future__ import annotations

import functools
import os
import platform
import time

import torch


@functools.lru_cache(maxsize=None)
def _cpu_bf16_speedup(size: int = 256, repeats: int = 8) -> float:
    """fp32 time / bf16 time of a (size x size) @ (size x size) matmul on this CPU (> 1: bf16 is faster)."""
    timings = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
        a @ b  # warm-up: one-time kernel selection
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        timings[dtype] = time.perf_counter() - started
    return timings[torch.float32] / timings[torch.bfloat16]


def bf16_is_fast(device: torch.device | str) -> bool:
    """True where bf16 autocast should be used on `device`: CUDA with bf16 support, or a CPU whose bf16
    matmul measures at least 1.2x faster than its fp32 one."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return _cpu_bf16_speedup() >= 1.2
    return False


def device_name(device: torch.device | str) -> str:
    """What a benchmark ran on, in words: the GPU's name, or the CPU's model name and its core count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:  # Linux names the CPU model here; platform.processor() only gives the architecture
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs"
