"""Lazy package faces (PEP 562): a package lists its public names and the modules that define them.

A name is imported the first time it is used, so importing one subpackage (``neuroana.io``) does not
import the others (or torch). Used by every ``__init__.py`` of the package; imports nothing from
neuroana.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["attach"]


def attach(
    package: str, names: Mapping[str, str], submodules: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """Return ``__getattr__``, ``__dir__`` and ``__all__`` for a lazy package.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : mapping of str to str
        Public name -> the module that defines it (absolute dotted path).
    submodules : iterable of str
        Subpackages/modules reachable as attributes (``neuroana.hmmglm``) without an explicit import.

    Examples
    --------
    >>> import sys, types
    >>> from neuroana._lazy import attach
    >>> pkg = sys.modules.setdefault("lazy_demo", types.ModuleType("lazy_demo"))
    >>> pkg.__getattr__, pkg.__dir__, pkg.__all__ = attach("lazy_demo", {"sqrt": "math"})
    >>> pkg.sqrt(9.0), pkg.__all__, "sqrt" in vars(pkg)  # imported on first use, then cached
    (3.0, ['sqrt'], True)
    """
    names = dict(names)
    subs = set(submodules)

    def __getattr__(name: str) -> Any:
        if name in names:
            value = getattr(importlib.import_module(names[name]), name)
        elif name in subs:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import sys

        setattr(sys.modules[package], name, value)  # later look-ups skip __getattr__
        return value

    def __dir__() -> list[str]:
        import sys

        return sorted(set(vars(sys.modules[package])) | set(names) | subs)

    return __getattr__, __dir__, sorted(names)
