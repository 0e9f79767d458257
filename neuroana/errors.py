"""Every exception and warning class neuroana raises, in one bottom-level module.

This module imports nothing from neuroana (and nothing heavy), so any layer can raise these errors
without importing another layer. The subpackages re-export the classes that belong to them (for
example ``neuroana.io.NWBError`` is ``neuroana.errors.NWBError``), so both spellings work.

Every bad-input error subclasses :class:`ValueError`, so ``except ValueError`` catches them all.
A method of an estimator called before ``fit`` raises scikit-learn's
:class:`sklearn.exceptions.NotFittedError` (re-exported here lazily, since importing scikit-learn
takes seconds).

Examples
--------
>>> from neuroana.errors import NWBError
>>> issubclass(NWBError, ValueError)
True
>>> from neuroana.errors import NotFittedError
>>> NotFittedError.__module__
'sklearn.exceptions'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # a lazy re-export (see __getattr__ below)
    from sklearn.exceptions import NotFittedError

__all__ = [
    "AdaptationInputError",
    "BenucciFormatError",
    "ChecksumError",
    "ConnectomeInputError",
    "DownloadError",
    "EmptyGroundTruthError",
    "FisbeInputError",
    "HMMGLMInputError",
    "ManifestError",
    "ManualDownloadError",
    "MissingDependencyError",
    "NWBError",
    "NWBWarning",
    "NotFittedError",
    "PretrainInputError",
    "StreamingUnavailableError",
    "TokenizeError",
    "UnstableNetworkError",
    "UnknownUnitError",
    "UnverifiedDownloadWarning",
]


# --- io: NWB files -------------------------------------------------------------------------------
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


class MissingDependencyError(ImportError):
    """An optional package needed by this function is not installed."""


# --- io: other formats and downloads --------------------------------------------------------------
class BenucciFormatError(ValueError):
    """The file is missing or does not hold the expected ``resps`` layout."""


class ManifestError(ValueError):
    """A manifest is unknown, or its YAML is malformed (the message names the file and field)."""


class DownloadError(ValueError):
    """A transfer failed or was interrupted; a partial ``.part`` file may be kept for resuming."""


class ChecksumError(DownloadError):
    """A downloaded or existing file does not have the size or sha256 the manifest records."""


class ManualDownloadError(DownloadError):
    """A file that neuroana cannot download (account, contact, manual) is not in place yet."""


class UnverifiedDownloadWarning(UserWarning):
    """A file was accepted without a checksum because the manifest records none."""


# --- segmentation (FISBe) -------------------------------------------------------------------------
class FisbeInputError(ValueError):
    """A label array or file cannot be evaluated: wrong dtype, shape, sign or layout.

    The message names the bad value and what was expected.
    """


class EmptyGroundTruthError(FisbeInputError):
    """The ground truth holds no instance (the official code raises ZeroDivisionError here)."""


# --- connectome -----------------------------------------------------------------------------------
class ConnectomeInputError(ValueError):
    """Bad input to a ``neuroana.connectome`` function.

    The message names the bad value and what was expected.
    """


# --- hmmglm -------------------------------------------------------------------------------------
class HMMGLMInputError(ValueError):
    """Spike counts that the HMM-GLM cannot use (wrong values, shapes or lengths)."""


# --- adaptation ---------------------------------------------------------------------------------
class AdaptationInputError(ValueError):
    """Bad user input: the message names the value and what was expected."""


class UnstableNetworkError(AdaptationInputError):
    """Recurrent weights whose spectral radius is >= 1 (the steady state may not exist or attract)."""


# --- pretrain -----------------------------------------------------------------------------------
class PretrainInputError(ValueError):
    """Spikes, behaviour or options that a ``neuroana.pretrain`` model cannot use (NaN or infinite
    times, no spikes, an interval too short for the chunks, units that differ from the fitted ones).

    The message names the bad value and what was expected.
    """


class TokenizeError(PretrainInputError):
    """Bad input to the tokenizer: empty data, windows longer than the data, overflow, NaN."""


class UnknownUnitError(KeyError, PretrainInputError):
    """A unit that is not in the model's vocabulary (at inference, or without ``grow=True``)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


def __getattr__(name: str):
    if name == "NotFittedError":
        from sklearn.exceptions import NotFittedError

        return NotFittedError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
