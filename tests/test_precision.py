"""avgen.precision decides from the machine's flags or AVGEN_PRECISION, never from a timing; every test here
stands in the CPU flags it asserts on, so none depends on the CPU that runs it."""

import os

import pytest
import torch

from avgen import precision

AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})  # e.g. Sapphire Rapids
AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})  # e.g. Cooper Lake, Zen 4
AVX2 = frozenset({"avx2", "fma"})  # e.g. EPYC Zen 3: bf16 emulated, ~40x slower
AVX512 = frozenset({"avx2", "avx512f"})  # AVX-512 without bf16 units (torch says "AVX512" here too)
read_cpu_flags = precision.cpu_flags.__wrapped__  # uncached: reads /proc/cpuinfo at each call


@pytest.fixture
def cpu(monkeypatch):
    """Set the CPU's flags: cpu(AMX). AVGEN_PRECISION is unset unless a test sets it."""
    monkeypatch.delenv(precision.PRECISION_ENV, raising=False)
    return lambda flags: monkeypatch.setattr(precision, "cpu_flags", lambda: flags)


@pytest.mark.parametrize("flags, expected", [(AMX, "bf16"), (AVX512_BF16, "bf16"), (AVX2, "fp32"), (AVX512, "fp32"), (frozenset(), "fp32")])
def test_a_cpu_uses_bf16_only_with_bf16_units(cpu, flags, expected):
    cpu(flags)
    assert precision.inference_precision("cpu") == precision.inference_precision(torch.device("cpu")) == expected
    assert precision.bf16_is_fast("cpu") is (expected == "bf16")
    assert not precision.bf16_is_fast("meta")


@pytest.mark.parametrize("setting, expected", [("bf16", "bf16"), ("fp32", "fp32"), ("FP32", "fp32"), ("auto", "bf16"), ("", "bf16")])
def test_the_environment_overrides_the_flags(cpu, monkeypatch, setting, expected):
    cpu(AMX)
    monkeypatch.setenv(precision.PRECISION_ENV, setting)
    assert precision.inference_precision("cpu") == expected
    cpu(AVX2)
    assert precision.inference_precision("cpu") == ("fp32" if setting.lower() in ("auto", "") else expected)


def test_a_bad_setting_is_refused_by_name(cpu, monkeypatch):
    monkeypatch.setenv(precision.PRECISION_ENV, "fp16")
    with pytest.raises(ValueError, match=r"AVGEN_PRECISION must be one of \('auto', 'bf16', 'fp32'\); got 'fp16'"):
        precision.bf16_is_fast("cpu")


def test_the_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\n")
    assert precision.cpu_flags(str(cpuinfo)) == {"fpu", "avx2", "amx_bf16"}
    # no flags to read (not Linux): fp32, never the ~40x slow case
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()


def decisions(cpu) -> dict:
    """The CPU decision for an AMX and an AVX2-only CPU, and for this machine's own flags, read afresh."""
    found = {}
    for name, flags in (("amx", AMX), ("avx2", AVX2)):
        cpu(flags)
        found[name] = precision.inference_precision("cpu")
    cpu(read_cpu_flags())
    found["this machine"] = precision.inference_precision("cpu")
    return found


def test_a_busy_cpu_does_not_change_the_decision(cpu, busy_cpu):
    # the old decision timed a matmul, and load flipped it (issue 45)
    idle = decisions(cpu)
    with busy_cpu():
        busy = decisions(cpu)
    assert busy == idle and (idle["amx"], idle["avx2"]) == ("bf16", "fp32")


def test_device_name_says_the_cpu_model_and_its_core_count(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    name = precision.device_name("cpu")
    assert name.endswith(", 2 CPUs") and len(name) > len(", 2 CPUs")
