"""Exceptions raised by :mod:`neuroana.hmmglm` (defined in :mod:`neuroana.errors`)."""

from neuroana.errors import HMMGLMInputError

__all__ = ["HMMGLMInputError"]
