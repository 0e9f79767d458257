"""Exceptions raised by :mod:`neuroana.pretrain` (defined in :mod:`neuroana.errors`)."""

from neuroana.errors import PretrainInputError, TokenizeError, UnknownUnitError

__all__ = ["PretrainInputError", "TokenizeError", "UnknownUnitError"]
