"""Exceptions and warnings raised by :mod:`neuroana.io`."""

from __future__ import annotations

__all__ = ["NWBError", "NWBWarning", "StreamingUnavailableError"]


class NWBError(ValueError):
    """An NWB file could not be read as asked.

    The message names the file and the problem: a missing file, a file that is not HDF5 or not
    NWB, a truncated file, a requested object that does not exist (with what does exist), or
    content that breaks the NWB rules in a way the reader cannot repair (NaN spike times, a mask
    whose frame shape is not stored, ...).
    """


class NWBWarning(UserWarning):
    """Content was repaired while reading (for example unsorted spike times were sorted)."""


class StreamingUnavailableError(ImportError):
    """A remote path (``http(s)://``, ``s3://``) was given but no streaming package is installed."""
