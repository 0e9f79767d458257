"""Exceptions raised for bad input to the adaptation models."""


class AdaptationInputError(ValueError):
    """Bad user input: the message names the value and what was expected."""


class UnstableNetworkError(AdaptationInputError):
    """Recurrent weights whose spectral radius is >= 1 (the steady state may not exist or attract)."""
