"""manifest.json: the backup's table of contents, self-checksummed (and MACed if encrypted).

On disk: `{"body": {...}, "sha256": "<hex of the canonical body>", "mac": "<hmac>"|null}` in
one canonical serialisation, so any flipped byte breaks the JSON, the re-serialisation
or the checksum.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from db.backup.crypto import mac as compute_mac


class ManifestError(Exception):
    """The manifest is missing, corrupt, or does not match the files."""


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def dump_manifest(body: dict[str, Any], key: bytes | None = None) -> bytes:
    """The manifest file bytes for `body`."""
    canon = _canonical(body)
    return _canonical(
        {
            "body": body,
            "sha256": hashlib.sha256(canon).hexdigest(),
            "mac": compute_mac(key, canon) if key is not None else None,
        }
    ) + b"\n"


def load_manifest(raw: bytes) -> dict[str, Any]:
    """The manifest body; raises ManifestError on any corruption (MAC checked separately)."""
    try:
        doc = json.loads(raw.decode("utf-8"))
        if set(doc) != {"body", "sha256", "mac"}:
            raise ValueError("unexpected keys")
        body = doc["body"]
        canon = _canonical(body)
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestError(f"manifest.json is corrupt: {exc}") from exc
    if _canonical(doc) + b"\n" != raw:
        raise ManifestError("manifest.json is corrupt: it is not in its canonical form")
    if hashlib.sha256(canon).hexdigest() != doc.get("sha256"):
        raise ManifestError("manifest.json is corrupt: its checksum does not match")
    result: dict[str, Any] = body
    result["_mac"] = doc.get("mac")
    return result


def check_mac(body: dict[str, Any], key: bytes) -> bool:
    """True when the manifest's MAC was made with `key` (right key or passphrase)."""
    clean = {k: v for k, v in body.items() if k != "_mac"}
    expected = body.get("_mac")
    return isinstance(expected, str) and compute_mac(key, _canonical(clean)) == expected
