"""``parity.allocator``: after ``keep_freed_memory`` a freed large block is reused without the
kernel zeroing its pages again, counted as minor page faults in a fresh interpreter."""

import platform

import pytest

from .helpers import run_clean

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt"
)

# Mallocs, writes and frees 64 MiB (above glibc's 32 MiB mmap ceiling) eight times through the
# C library itself, as torch's CPU allocator does, and asserts on the minor page faults per
# cycle against the pages each cycle touches.
CYCLES = """
import ctypes
import resource

from parity import allocator

if {keep}:
    assert allocator.keep_freed_memory() is True
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 64 << 20
pages = size // resource.getpagesize()


def cycle():
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)


def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


cycle()  # the first touch is paid either way
before = faults()
for _ in range(8):
    cycle()
per_cycle = (faults() - before) / 8
{assertion}
"""


@glibc_only
def test_without_it_every_large_allocation_faults_its_pages_in_again():
    run_clean(
        CYCLES.format(keep=False, assertion="assert per_cycle > 0.9 * pages, (per_cycle, pages)")
    )


@glibc_only
def test_kept_memory_is_reused_without_page_faults():
    run_clean(
        CYCLES.format(keep=True, assertion="assert per_cycle < 0.01 * pages, (per_cycle, pages)")
    )


def test_reports_false_where_it_cannot_apply(monkeypatch):
    from parity import allocator

    monkeypatch.setattr(allocator.platform, "system", lambda: "Darwin")
    assert allocator.keep_freed_memory() is False
