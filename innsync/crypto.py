"""Secrets at rest: AES-256-GCM with a key derived from INNSYNC_SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "v1:"


class DecryptionError(Exception):
    """Ciphertext was tampered with or encrypted under another key."""


def derive_key(secret: str, purpose: str = "secrets-at-rest") -> bytes:
    """A 256-bit key for one purpose, so one master secret never encrypts two kinds of data."""
    return hashlib.sha256(f"innsync:{purpose}:{secret}".encode()).digest()


def encrypt_bytes(key: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad or None)


def decrypt_bytes(key: bytes, blob: bytes, aad: bytes = b"") -> bytes:
    try:
        return AESGCM(key).decrypt(blob[:12], blob[12:], aad or None)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionError("cannot decrypt: wrong key or tampered data") from exc


def encrypt_json(key: bytes, value: dict[str, Any]) -> str:
    blob = encrypt_bytes(key, json.dumps(value, separators=(",", ":")).encode())
    return PREFIX + base64.urlsafe_b64encode(blob).decode()


def decrypt_json(key: bytes, token: str) -> dict[str, Any]:
    if not token.startswith(PREFIX):
        raise DecryptionError("unknown ciphertext format")
    result: dict[str, Any] = json.loads(
        decrypt_bytes(key, base64.urlsafe_b64decode(token[len(PREFIX) :]))
    )
    return result


def app_key() -> bytes:
    """The key for secrets at rest, from the configured (or generated) secret."""
    from innsync.settings import get_settings

    return derive_key(get_settings().ensure_secret_key())
