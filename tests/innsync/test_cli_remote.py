"""What the CLI makes of the stack's API answers: run here only when nothing was done there."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from innsync.cli_remote import NotOnStack, RemoteFailed, StackAPI, call


class _Answer(BaseHTTPRequestHandler):
    status = 200
    body: bytes = b"{}"
    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.seen.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[ThreadingHTTPServer, type[_Answer]]]:
    handler = type("Handler", (_Answer,), {"seen": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, handler
    httpd.shutdown()


def _api(httpd: ThreadingHTTPServer) -> StackAPI:
    return StackAPI(f"http://127.0.0.1:{httpd.server_address[1]}", "isk_test")


def test_a_refused_key_means_nothing_was_done_there(server) -> None:  # type: ignore[no-untyped-def]
    httpd, handler = server
    handler.status, handler.body = 401, b'{"error": {"code": "unauthorized", "message": "no"}}'
    with pytest.raises(NotOnStack, match="refused"):
        call(_api(httpd), "POST", "/backup/create", {})


def test_an_error_answer_is_a_failure_with_its_message_and_details(server) -> None:  # type: ignore[no-untyped-def]
    httpd, handler = server
    handler.status = 422
    handler.body = json.dumps({"error": {"code": "backup_validation_failed", "message":
                                         "2 problems", "details": {"problems": [{"table": "x"}]}}
                               }).encode()
    with pytest.raises(RemoteFailed, match="2 problems") as failed:
        call(_api(httpd), "POST", "/backup/restore", {"file_path": "p"})
    assert failed.value.details == {"problems": [{"table": "x"}]}
    assert json.loads(handler.seen[0]) == {"file_path": "p"}
    handler.status, handler.body = 500, b"Internal Server Error"  # not JSON
    with pytest.raises(RemoteFailed, match="HTTP 500: Internal Server Error"):
        call(_api(httpd), "POST", "/backup/create", {})


def test_no_listener_means_nothing_was_done_there() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(NotOnStack, match="cannot be reached"):
        call(StackAPI(f"http://127.0.0.1:{port}", "k"), "POST", "/backup/create", {})


def test_a_connection_lost_after_sending_is_a_failure_never_a_rerun_here() -> None:
    """The request reached the stack: the backup may be running there, so no fallback."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    got: list[bytes] = []

    def drop() -> None:
        conn, _ = listener.accept()
        got.append(conn.recv(65536))
        conn.close()

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    try:
        with pytest.raises(RemoteFailed, match="may still be going on there"):
            call(StackAPI(f"http://127.0.0.1:{listener.getsockname()[1]}", "k"), "POST",
                 "/backup/create", {})
    finally:
        thread.join(5)
        listener.close()
    assert got and got[0].startswith(b"POST /api/backup/create")


def test_a_failure_prints_one_line_and_each_validation_problem(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The same report whether the restore failed here or on the stack (problems as dicts)."""
    import typer

    from db.backup.validate import Problem
    from innsync.cli_backup import _failed

    problem = Problem(table="guests", column="email", check="not_null", message="NULL values",
                      rows=3)
    with pytest.raises(typer.Exit) as stopped:
        _failed("restoring", RemoteFailed("[Errno 2] backup 7 fails\nmore"), [problem.to_dict()])
    assert stopped.value.exit_code == 1
    err = capsys.readouterr().err
    assert "restoring failed: [Errno 2] backup 7 fails" in err and "more" not in err
    assert "guests.email [not_null] NULL values (3 rows)" in err
