"""Fixtures of the operations tests (reaper, health, isolation)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.sync.conftest import committed  # noqa: F401  (committed writes, emptied afterwards)


@pytest.fixture
def hung_partner() -> Iterator[str]:
    """A partner that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()
