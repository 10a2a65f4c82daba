"""Device values: parsing, the canonical text, cache flush sizes, NVML numbering."""

from __future__ import annotations

import pytest

from bench.core import device as devmod
from bench.core.device import Device, flush_bytes, is_gpu, nvml_index


@pytest.mark.parametrize(("text", "kind", "index", "spec"), [
    ("cpu", "cpu", 0, "cpu"), (" CPU ", "cpu", 0, "cpu"), ("cuda", "cuda", 0, "cuda:0"),
    ("cuda:3", "cuda", 3, "cuda:3"), ("CUDA:12", "cuda", 12, "cuda:12"),
])
def test_parse_gives_kind_index_and_the_canonical_text(text, kind, index, spec):
    d = Device.parse(text)
    assert (d.kind, d.index, d.spec, str(d)) == (kind, index, spec, spec)
    assert d.is_gpu == (kind == "cuda")


@pytest.mark.parametrize("text", ["tpu", "cuda:", "cuda:x", "cuda:-1", "cpu:1", "gpu", "", "cuda:12345"])
def test_parse_refuses_anything_else(text):
    with pytest.raises(ValueError, match="cpu, cuda or cuda:N"):
        Device.parse(text)


def test_a_device_checks_its_own_fields():
    with pytest.raises(ValueError):
        Device("tpu")
    with pytest.raises(ValueError):
        Device("cpu", 1)
    assert Device("cuda", 1).named("NVIDIA H200") == Device("cuda", 1, "NVIDIA H200")


def test_is_gpu_on_stored_texts():
    assert is_gpu("cuda:0") and not is_gpu("cpu") and not is_gpu("<script>")


def test_flush_sizes_exceed_the_caches(monkeypatch):
    assert flush_bytes(Device("cuda")) == 256 * 2**20
    monkeypatch.setattr(devmod, "_largest_cpu_cache", lambda: 96 * 2**20)
    assert flush_bytes(Device("cpu")) == 192 * 2**20
    monkeypatch.setattr(devmod, "_largest_cpu_cache", lambda: 2**20)
    assert flush_bytes(Device("cpu")) == 32 * 2**20  # never below the floor


def test_largest_cpu_cache_reads_the_sizes_sysfs_lists(tmp_path):
    # Linux lists each cache's size as "48K", "1280K", "54M"; a size it cannot read is skipped.
    for i, size in enumerate(["48K", "1280K", "54M", "garbage", ""]):
        (tmp_path / f"index{i}").mkdir()
        (tmp_path / f"index{i}" / "size").write_text(size + "\n")
    assert devmod._largest_cpu_cache(tmp_path) == 54 * 2**20
    # A container without /sys lists nothing: 0, and flush_bytes' floor applies.
    assert devmod._largest_cpu_cache(tmp_path / "missing") == 0


@pytest.mark.parametrize(("visible", "index", "expected"), [
    (None, 1, 1), ("2,3", 0, 2), ("2,3", 1, 3), ("GPU-8f3a,GPU-1b2c", 1, 1), ("4", 3, 3),
])
def test_nvml_index_follows_cuda_visible_devices(monkeypatch, visible, index, expected):
    if visible is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert nvml_index(Device("cuda", index)) == expected
