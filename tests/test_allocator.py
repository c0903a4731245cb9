"""tune_cpu_allocator: glibc takes the settings, others are left alone, bad values refused."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys

import pytest

from mvtec_sklearn.utils import tune_cpu_allocator

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")


@glibc
def test_glibc_takes_the_settings_and_children_inherit_them(monkeypatch):
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert tune_cpu_allocator(mmap_threshold=1 << 24, trim_threshold=1 << 28) is True
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.environ['MALLOC_MMAP_THRESHOLD_'], "
         "os.environ['MALLOC_TRIM_THRESHOLD_'])"],
        capture_output=True, text=True, check=True,
    )
    assert child.stdout.split() == [str(1 << 24), str(1 << 28)]


@glibc
def test_settings_already_in_the_environment_are_kept(monkeypatch):
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "12345")
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert tune_cpu_allocator()
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "12345"


def test_another_c_library_changes_nothing(monkeypatch):
    def no_mallopt(name):
        raise OSError("not glibc")

    monkeypatch.setattr(ctypes, "CDLL", no_mallopt)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert tune_cpu_allocator() is False
    assert "MALLOC_MMAP_THRESHOLD_" not in os.environ


def test_a_refused_setting_leaves_the_environment_alone(monkeypatch):
    class Libc:
        @staticmethod
        def mallopt(param, value):
            return 0

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert tune_cpu_allocator() is False
    assert "MALLOC_MMAP_THRESHOLD_" not in os.environ


@pytest.mark.parametrize("kwargs", [{"mmap_threshold": -1}, {"trim_threshold": 2**31}])
def test_values_outside_a_c_int_are_refused(kwargs):
    with pytest.raises(ValueError, match="must be in"):
        tune_cpu_allocator(**kwargs)


def test_a_threshold_above_the_manuals_limit_falls_back_to_it(monkeypatch):
    taken = []

    class Libc:
        @staticmethod
        def mallopt(param, value):
            if param == -3 and value > 32 << 20:
                return 0
            taken.append((param, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    assert tune_cpu_allocator(mmap_threshold=1 << 28, trim_threshold=1 << 29) is True
    assert taken == [(-3, 32 << 20), (-1, 1 << 29)]
    assert os.environ["MALLOC_MMAP_THRESHOLD_"] == str(32 << 20)
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == str(1 << 29)
