"""Exceptions raised by :mod:`neuroana.connectome` (defined in :mod:`neuroana.errors`)."""

from neuroana.errors import ConnectomeInputError

__all__ = ["ConnectomeInputError"]
