import torch

from avgen import precision


def test_bf16_is_used_on_a_cpu_only_where_it_measures_faster(monkeypatch):
    monkeypatch.setattr(precision, "_cpu_bf16_speedup", lambda: 0.03)  # emulated bf16 (AVX2-only CPU)
    assert not precision.bf16_is_fast("cpu")
    monkeypatch.setattr(precision, "_cpu_bf16_speedup", lambda: 2.5)  # AMX / AVX-512 BF16
    assert precision.bf16_is_fast(torch.device("cpu"))
    assert not precision.bf16_is_fast("meta")


def test_the_cpu_measurement_is_a_positive_ratio():
    assert precision._cpu_bf16_speedup(size=64, repeats=2) > 0


def test_device_name_says_the_cpu_model_and_its_core_count(monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    name = precision.device_name("cpu")
    assert name.endswith(", 2 CPUs") and len(name) > len(", 2 CPUs")
