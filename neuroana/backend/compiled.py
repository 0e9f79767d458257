"""The one way the package compiles a kernel: numba's ``njit`` with the GIL released, cached on disk.

The cache is the package's ``__pycache__``, ``NUMBA_CACHE_DIR`` or the user's cache directory;
where numba finds none writable (it raises RuntimeError for ``cache=True`` then), the kernel is
compiled once per process instead. Importing this module imports numba (not torch).
"""

from __future__ import annotations

from numba import njit

__all__ = ["compiled"]


def compiled(fn):
    """Decorator: ``fn`` compiled by numba (nopython, GIL released, cached where possible)."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError:
        return njit(nogil=True)(fn)
