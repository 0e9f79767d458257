"""Checksum-verified download of the files a data manifest lists (:mod:`neuroana.io.manifests`).

Downloads go to ``<cache>/<name>/`` where ``<cache>`` is ``dest`` if given, else the environment
variable ``NEUROANA_CACHE`` (read at call time), else ``~/.cache/neuroana``. A file is written to a
``.part`` name, resumed with an HTTP Range request where the server honours it, verified against
its size and sha256, then renamed: a bad or interrupted download never replaces a good file.
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
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from neuroana.errors import (
    ChecksumError,
    DownloadError,
    ManifestError,
    ManualDownloadError,
    UnverifiedDownloadWarning,
)
from neuroana.io.manifests import ManifestFile, load_manifest

__all__ = ["cache_dir", "fetch"]

_CHUNK = 1 << 20
_TIMEOUT_S = 60.0


def cache_dir(name: str, dest: str | os.PathLike | None = None) -> Path:
    """The folder files of manifest ``name`` are fetched into.

    ``<dest>/<name>`` if ``dest`` is given, else ``$NEUROANA_CACHE/<name>`` if that environment
    variable is set (read at call time), else ``~/.cache/neuroana/<name>``.

    Examples
    --------
    >>> from neuroana.io.download import cache_dir
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
    >>> from neuroana.io.download import fetch
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
