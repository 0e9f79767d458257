"""Exceptions and warnings raised by :mod:`neuroana.io` (defined in :mod:`neuroana.errors`)."""

from neuroana.errors import NWBError, NWBWarning, StreamingUnavailableError

__all__ = ["NWBError", "NWBWarning", "StreamingUnavailableError"]
