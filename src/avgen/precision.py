"""Whether bf16 autocast pays on a device: the one place that decides it (trainer, latent cache, upsampler).

CPUs differ by a factor of ~40 here. With AVX-512 BF16 or AMX (recent Intel Xeons) a bf16 matmul runs
2-5x faster than fp32; without them (e.g. AMD EPYC Zen 3, AVX2 only) PyTorch emulates bf16 and the same
matmul is ~40x slower (measured: 31 GFLOP/s fp32 vs 0.8 GFLOP/s bf16 on one such core).

The choice is a property of the machine, never a timing: it used to be a matmul timed once per process, and
under load that timing flipped, so the same command on the same machine wrote different bytes (issue 45).
Now a CPU uses bf16 iff its flags name native bf16 units (`amx_bf16`, `avx512_bf16`); CUDA iff the device
supports bf16. `torch.backends.cpu.get_cpu_capability()` cannot decide it: it says "AVX512" for AVX-512 CPUs
with and without bf16 units alike. `AVGEN_PRECISION` (auto, the default; bf16; fp32) overrides the choice,
e.g. to make two different machines write the same bytes. Pipelines record the choice as an MP4 tag.
"""

from __future__ import annotations

import functools
import os
import platform

import torch

PRECISION_ENV = "AVGEN_PRECISION"
PRECISION_CHOICES = ("auto", "bf16", "fp32")
# CPU flags (/proc/cpuinfo) of units that run bf16 natively: AMX tiles, or AVX-512 BF16 dot products
CPU_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.lru_cache(maxsize=None)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU's feature flags as Linux lists them in `cpuinfo`; empty where they cannot be read (other
    systems), so that such a CPU keeps fp32, the choice that is never ~40x slower."""
    try:
        for line in open(cpuinfo):
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def bf16_is_fast(device: torch.device | str) -> bool:
    """True where bf16 autocast should be used on `device`: as `AVGEN_PRECISION` says, else ("auto") CUDA with
    bf16 support or a CPU with bf16 units (CPU_BF16_FLAGS); never from a timing, so never from the load."""
    setting = os.environ.get(PRECISION_ENV, "auto").strip().lower() or "auto"
    if setting not in PRECISION_CHOICES:
        raise ValueError(f"{PRECISION_ENV} must be one of {PRECISION_CHOICES}; got {os.environ[PRECISION_ENV]!r}")
    if setting != "auto":
        return setting == "bf16"
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return not CPU_BF16_FLAGS.isdisjoint(cpu_flags())
    return False


def inference_precision(device: torch.device | str) -> str:
    """The precision inference runs in on `device`, as pipelines record it (the MP4's "precision" tag)."""
    return "bf16" if bf16_is_fast(device) else "fp32"


def cpu_model() -> str:
    """The CPU's model name; Linux names it in /proc/cpuinfo, platform.processor() only gives the architecture."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device | str) -> str:
    """What a benchmark ran on, in words: the GPU's name, or the CPU's model name and its core count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()}, {os.cpu_count()} CPUs"


def machine(device: torch.device | str) -> dict:
    """What a run trains on (the trainer records it): the CPU's model and core count, its native bf16 units (the
    CPU_BF16_FLAGS it has; none means bf16 is emulated) and the GPU, with the count, when `device` is one."""
    device = torch.device(device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "cpu_bf16_units": sorted(CPU_BF16_FLAGS & cpu_flags()),
            "gpu": gpu, "gpus": torch.cuda.device_count() if gpu else 0}
