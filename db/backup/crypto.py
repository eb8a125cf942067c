"""Streaming AES-256-GCM for backup files (STREAM construction: 1 MiB segments).

Each segment is sealed with nonce = prefix(7) | counter(4) | last(1) and the file name as
associated data, so reordering, truncation, swapping files or a wrong key all fail.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"INNSYNCENC1\n"
SEGMENT = 1 << 20
TAG = 16


class BackupDecryptionError(Exception):
    """A file does not decrypt: wrong key or passphrase, or tampered data."""


def key_from_secret(secret: str) -> bytes:
    """The backup key derived from the service secret (distinct from other purposes)."""
    return hashlib.sha256(f"innsync:backup:{secret}".encode()).digest()


def key_from_passphrase(passphrase: str, salt: bytes) -> bytes:
    """A 256-bit key from a per-backup passphrase (scrypt, n=2**15)."""
    return hashlib.scrypt(passphrase.encode(), salt=salt, n=2**15, r=8, p=1, maxmem=64 << 20,
                          dklen=32)


def mac(key: bytes, data: bytes) -> str:
    """HMAC-SHA256 of the manifest body under a key derived from the backup key."""
    mac_key = hashlib.sha256(b"innsync:backup-mac:" + key).digest()
    return hmac.new(mac_key, data, hashlib.sha256).hexdigest()


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class EncryptingWriter:
    """A binary sink that encrypts everything written to it into `out`."""

    def __init__(self, out: BinaryIO, key: bytes, name: str) -> None:
        self._out, self._aead, self._aad = out, AESGCM(key), name.encode()
        self._prefix = os.urandom(7)
        self._buf = bytearray()
        self._counter = 0
        out.write(MAGIC + self._prefix)

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer plaintext, emitting full segments."""
        self._buf += data
        while len(self._buf) > SEGMENT:
            self._seal(bytes(self._buf[:SEGMENT]), last=False)
            del self._buf[:SEGMENT]
        return len(data)

    def _seal(self, plain: bytes, last: bool) -> None:
        nonce = _nonce(self._prefix, self._counter, last)
        self._out.write(self._aead.encrypt(nonce, plain, self._aad))
        self._counter += 1

    def finish(self) -> None:
        """Seal the final segment (possibly empty)."""
        self._seal(bytes(self._buf), last=True)
        self._buf.clear()


def decrypt_stream(src: BinaryIO, dst: BinaryIO, key: bytes, name: str) -> None:
    """Decrypt and authenticate `src` into `dst`; raises BackupDecryptionError."""
    head = src.read(len(MAGIC) + 7)
    if len(head) != len(MAGIC) + 7 or not head.startswith(MAGIC):
        raise BackupDecryptionError(f"{name}: not an innsync encrypted file")
    prefix, aead, aad = head[len(MAGIC):], AESGCM(key), name.encode()
    counter = 0
    chunk = src.read(SEGMENT + TAG)
    while True:
        following = src.read(SEGMENT + TAG) if len(chunk) == SEGMENT + TAG else b""
        last = not following
        try:
            dst.write(aead.decrypt(_nonce(prefix, counter, last), chunk, aad))
        except (InvalidTag, ValueError) as exc:
            raise BackupDecryptionError(
                f"{name}: cannot decrypt (wrong key or passphrase, or tampered file)"
            ) from exc
        if last:
            return
        chunk, counter = following, counter + 1
