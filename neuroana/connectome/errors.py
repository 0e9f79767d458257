"""The exception every connectome function raises for bad user input."""

from __future__ import annotations


class ConnectomeInputError(ValueError):
    """Bad input to a ``neuroana.connectome`` function.

    The message names the bad value and what was expected. It subclasses :class:`ValueError`, so
    ``except ValueError`` catches it too.
    """
