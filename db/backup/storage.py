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

MANIFEST = "manifest.json"


class PathNotAllowed(ValueError):
    """A backup path outside the backup root and the configured remotes."""


def _is_url(value: str) -> bool:
    return "://" in value


def _check_no_dotdot(value: str) -> None:
    parts = value.replace("\\", "/").split("/")
    if any(p == ".." for p in parts):
        raise PathNotAllowed(f"'..' is not allowed in a backup path: {value!r}")


def _inside_remote(url: str, remotes: list[str]) -> bool:
    norm = url.rstrip("/")
    for remote in remotes:
        base = remote.rstrip("/")
        if norm == base or norm.startswith(base + "/"):
            return True
    return False


def resolve_location(value: str | None, root: Path, remotes: list[str]) -> str:
    """The backup directory (or URL) `value` names, refused if outside root and remotes.

    A relative path is taken under `root`; symlinks are resolved before the check.
    """
    if not value:
        return str(root.resolve())
    _check_no_dotdot(value)
    if _is_url(value):
        if value.startswith("file://"):
            value = value[len("file://"):]
        elif _inside_remote(value, remotes):
            return value.rstrip("/")
        else:
            raise PathNotAllowed(f"{value!r} is not under a configured backup remote")
    root = root.resolve()
    path = Path(value).expanduser()
    resolved = (path if path.is_absolute() else root / path).resolve()
    if resolved != root and not resolved.is_relative_to(root):
        raise PathNotAllowed(f"{value!r} is outside the backup root")
    return str(resolved)


def resolve_backup_path(value: str, root: Path, remotes: list[str]) -> str:
    """A backup directory from a user's filePath (the directory or its manifest.json)."""
    resolved = resolve_location(value, root, remotes)
    if resolved.rstrip("/").endswith("/" + MANIFEST):
        resolved = resolved.rstrip("/")[: -len(MANIFEST) - 1]
    return resolved


@dataclass
class Store:
    """One backup directory on a filesystem (local or fsspec)."""

    fs: Any
    path: str
    url: str

    @classmethod
    def open(cls, url: str, storage_options: dict[str, Any] | None = None) -> Store:
        """The store for a backup directory URL or local path."""
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
        return cls(fs, path.rstrip("/"), url.rstrip("/"))

    @property
    def local(self) -> bool:
        """True for the local filesystem (atomic renames and fsync available)."""
        return "file" in _protocols(self.fs)

    def join(self, name: str) -> str:
        """The full path of a file in this directory."""
        return posixpath.join(self.path, name) if not self.local else os.path.join(self.path, name)

    def makedirs(self) -> None:
        """Create the directory (no-op on object stores)."""
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
            with open(tmp, "wb") as fh:
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
