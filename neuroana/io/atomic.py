"""Atomic writes: write to a temporary name beside the target, then rename.

The primitive lives in the bottom-level :mod:`neuroana._atomic` (so :mod:`neuroana.backend` can use it
without importing ``io``); this module is its public face.

Examples
--------
>>> import tempfile, pathlib
>>> from neuroana.io.atomic import atomic_path
>>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
>>> with atomic_path(target) as tmp:
...     _ = tmp.write_text("done")
>>> target.read_text()
'done'
"""

from neuroana._atomic import atomic_dir, atomic_path

__all__ = ["atomic_dir", "atomic_path"]
