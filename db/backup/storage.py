"""Where backups live: the local backup root or an allowed fsspec URL, with path checks."""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import fsspec

from db.backup.manifest import ManifestError

MANIFEST = "manifest.json"


class PathNotAllowed(ValueError):
    """A backup path outside the backup root and the configured remotes."""


#: Longest backup path or URL accepted (PATH_MAX is 4096; a backup path is much shorter).
MAX_PATH = 1024


class BackupDirectoryExists(PathNotAllowed):
    """A new backup's directory already exists: a backup is never written into another's."""


def _is_url(value: str) -> bool:
    return "://" in value


def _check_text(value: str) -> None:
    """Refuse what no backup path holds: NUL and control characters, over-long paths,
    fsspec protocol chaining (`a::b`), '..' segments."""
    if len(value) > MAX_PATH:
        raise PathNotAllowed(f"a backup path is at most {MAX_PATH} characters")
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise PathNotAllowed("a backup path must not contain NUL or control characters")
    if "::" in value:
        raise PathNotAllowed(f"protocol chaining ('::') is not allowed in a backup path: "
                             f"{value[:200]!r}")
    parts = value.replace("\\", "/").split("/")
    if any(p == ".." for p in parts):
        raise PathNotAllowed(f"'..' is not allowed in a backup path: {value[:200]!r}")


def _inside_remote(url: str, remotes: list[str]) -> bool:
    norm = url.rstrip("/")
    for remote in remotes:
        base = remote.rstrip("/")
        if "::" in base:
            continue
        if norm == base or norm.startswith(base + "/"):
            return True
    return False


def resolve_location(value: str | None, root: Path, remotes: list[str]) -> str:
    """The backup directory (or URL) `value` names, refused if outside root and remotes.

    The one parser of backup locations: a local path (relative ones are taken under `root`;
    symlinks are resolved before the check), `file://` + a local path, or a URL under one of
    the configured remotes. Anything else (another scheme, `::` chaining, NUL, control
    characters, '..', an over-long path) is PathNotAllowed.
    """
    if not value:
        return str(root.resolve())
    if not isinstance(value, str):
        raise PathNotAllowed("a backup path is text")
    _check_text(value)
    if _is_url(value):
        if value.startswith("file://"):
            value = value[len("file://"):]
            if _is_url(value):
                raise PathNotAllowed(f"{value[:200]!r} is not a local path")
        elif _inside_remote(value, remotes):
            return value.rstrip("/")
        else:
            raise PathNotAllowed(f"{value[:200]!r} is not under a configured backup remote")
    root = root.resolve()
    path = Path(value).expanduser()
    try:
        resolved = (path if path.is_absolute() else root / path).resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise PathNotAllowed(f"{value[:200]!r} is not a usable path: {exc}") from None
    if resolved != root and not resolved.is_relative_to(root):
        raise PathNotAllowed(f"{value[:200]!r} is outside the backup root")
    return str(resolved)


def resolve_backup_path(value: str, root: Path, remotes: list[str]) -> str:
    """A backup directory from a user's filePath (the directory or its manifest.json)."""
    resolved = resolve_location(value, root, remotes)
    if resolved.rstrip("/").endswith("/" + MANIFEST):
        resolved = resolved.rstrip("/")[: -len(MANIFEST) - 1]
    return resolved


def check_allowed(value: str) -> str:
    """`value` resolved against the configured backup root and remotes (a path read back
    from a manifest or a record is checked like one a user gave)."""
    from innsync.settings import get_settings

    settings = get_settings()
    return resolve_location(value, settings.resolved_backup_root, settings.backup_remotes)


def check_entry_name(name: object) -> str:
    """A manifest's per-file entry must be a plain file name inside its backup directory."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 255
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "::" in name
        or name.startswith(".")
        or any(ord(c) < 32 for c in name)
    ):
        raise ManifestError(
            f"manifest file entry {str(name)[:100]!r} is not a plain file name inside the "
            "backup directory")
    return name


@dataclass
class Store:
    """One backup directory on a filesystem (local or fsspec)."""

    fs: Any
    path: str
    url: str

    @classmethod
    def open(cls, url: str, storage_options: dict[str, Any] | None = None) -> Store:
        """The store for a backup directory URL or local path (never a protocol chain: a
        local path is opened as one, whatever characters it holds)."""
        if "::" in url or "\x00" in url:
            raise PathNotAllowed(f"{url[:200]!r} is not a backup location")
        if url.startswith("file://"):
            url = url[len("file://"):]
        if not _is_url(url):
            fs = fsspec.filesystem("file")
            return cls(fs, url.rstrip("/") or "/", url.rstrip("/") or "/")
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        return cls(fs, path.rstrip("/"), url.rstrip("/"))

    @property
    def local(self) -> bool:
        """True for the local filesystem (atomic renames and fsync available)."""
        return "file" in _protocols(self.fs)

    def join(self, name: str) -> str:
        """The full path of a file in this directory (a plain name, never a path)."""
        check_entry_name(name.removeprefix(".").removesuffix(".partial") if name.startswith(".")
                         else name)
        return posixpath.join(self.path, name) if not self.local else os.path.join(self.path, name)

    def makedirs(self) -> None:
        """Create the directory (no-op on object stores); owner-only on a local disk."""
        if self.local:
            make_private_dirs(self.path)
        else:
            self.fs.makedirs(self.path, exist_ok=True)

    def create_fresh(self) -> None:
        """Create this backup's own directory: BackupDirectoryExists if anything is there
        already (a backup never reuses or overwrites another's directory)."""
        if self.local:
            make_private_dirs(os.path.dirname(self.path))
            try:
                os.mkdir(self.path, 0o700)
            except FileExistsError:
                raise BackupDirectoryExists(
                    f"{self.path} already exists: a backup is written to a new directory"
                ) from None
            os.chmod(self.path, 0o700)
            return
        if self.fs.exists(self.path) and self.fs.ls(self.path):
            raise BackupDirectoryExists(
                f"{self.url} already exists: a backup is written to a new directory")
        self.fs.makedirs(self.path, exist_ok=True)

    @contextmanager
    def open_write(self, name: str) -> Iterator[BinaryIO]:
        """Write `name` atomically: a temp name, fsync, rename only once complete."""
        final = self.join(name)
        if not self.local:
            # Object stores publish an object only when its upload completes.
            with self.fs.open(final, "wb") as fh:
                yield fh
            return
        tmp = self.join(f".{name}.partial")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            dir_fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def open_read(self, name: str) -> BinaryIO:
        """A binary reader for `name`."""
        fh: BinaryIO = self.fs.open(self.join(name), "rb")
        return fh

    def exists(self, name: str) -> bool:
        """True if `name` exists in this directory."""
        return bool(self.fs.exists(self.join(name)))

    def read_bytes(self, name: str) -> bytes:
        """The whole content of a small file."""
        with self.open_read(name) as fh:
            return fh.read()

    def sha256(self, name: str) -> tuple[str, int]:
        """(SHA-256 hex, size) of a file, streamed."""
        digest, size = hashlib.sha256(), 0
        with self.open_read(name) as fh:
            while chunk := fh.read(8 << 20):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def remove(self) -> None:
        """Delete the whole backup directory (missing is fine)."""
        if self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)


def make_private_dirs(path: str | os.PathLike[str]) -> None:
    """mkdir -p with owner-only (0700) modes on the directories it creates."""
    p = Path(path)
    missing = []
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)


def _protocols(fs: Any) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


class HashingWriter:
    """A write-only file object that hashes and counts bytes passing to `out`."""

    def __init__(self, out: Any) -> None:
        self._out, self._digest, self.size = out, hashlib.sha256(), 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Write, hash and count."""
        self._digest.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)

    def tell(self) -> int:
        """Bytes written so far."""
        return self.size

    def flush(self) -> None:
        """Nothing to flush here; the underlying file flushes on close."""

    def writable(self) -> bool:
        """Always writable."""
        return True

    def close(self) -> None:
        """Mark closed (the underlying file is closed by its owner)."""
        self.closed = True

    def hexdigest(self) -> str:
        """The SHA-256 of everything written."""
        return self._digest.hexdigest()
