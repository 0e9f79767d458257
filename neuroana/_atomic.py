"""The one atomic-write primitive: write to a temporary name beside the target, then rename.

A bottom-level module (no neuroana imports) so that ``backend`` and ``io`` can both use it; the public
face is :mod:`neuroana.io.atomic`.

An interrupted write leaves the previous file (or none), never half a file. The temporary lives in
the target's folder (same file system, so ``os.replace`` is atomic) and is removed on failure. The
new file gets the permissions an ordinary new file would get (``0o666`` less the umask), not the
``0o600`` of :func:`tempfile.mkstemp`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_dir", "atomic_path"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary file path beside ``path``; rename it onto ``path`` when the block succeeds.

    Parameters
    ----------
    path : str or os.PathLike
        The target file. Its folder must exist.
    suffix : str
        Ending of the temporary name (some writers choose their format by it, e.g. ``".nc"``).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from neuroana._atomic import atomic_path
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('done', ['out.txt'])
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{suffix}")
    try:
        yield tmp
        if tmp.is_file():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder path beside ``path``; swap it in for ``path`` when the block succeeds.

    For folder-shaped outputs (Zarr stores): the block creates the folder (as ``to_zarr`` does). An existing ``path`` is renamed aside, the new folder
    renamed into place, then the old one deleted; a failure removes the temporary folder and puts a
    moved-aside store back. A crash between the two renames leaves the old store beside ``path``
    under a ``.<name>.*.old`` name.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from neuroana._atomic import atomic_dir
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "store"
    >>> with atomic_dir(target) as tmp:
    ...     tmp.mkdir()
    ...     _ = (tmp / "a").write_text("1")
    >>> sorted(p.name for p in target.iterdir()), sorted(p.name for p in target.parent.iterdir())
    (['a'], ['store'])
    """
    import shutil

    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist")
    tag = uuid.uuid4().hex[:8]
    tmp = path.with_name(f".{path.name}.{tag}.tmp")
    old = None
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.{tag}.old")
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old, path)
            old = None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
