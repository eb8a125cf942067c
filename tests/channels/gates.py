"""ASGI gates in front of a partner simulator, shared by the adapter and sync tests."""

from __future__ import annotations

from fastapi import FastAPI


class FailingConfirms:
    """The simulator behind a gate that answers 503 to BC requests after the first `passing`
    ones, `times` times (then lets them through again)."""

    def __init__(self, app: FastAPI, *, passing: int = 1, times: int = 1_000) -> None:
        self.app, self.passing, self.times, self.seen = app, passing, times, 0

    async def __call__(self, scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and scope["path"] == "/eqc/bc":
            self.seen += 1
            if self.seen > self.passing and self.times > 0:
                self.times -= 1
                await send({"type": "http.response.start", "status": 503, "headers": []})
                await send({"type": "http.response.body", "body": b"Service Unavailable"})
                return
        await self.app(scope, receive, send)
