"""Partner pushes (real-time sync): Agoda BookingHints and Airbnb reservation events.

Partners cannot hold our API keys, so these endpoints authenticate the partner instead:
Airbnb signs the body (HMAC-SHA256, `X-Airbnb-Signature`), Agoda presents the channel's
shared secret (`X-Webhook-Token` header or `token` query parameter). Each event is recorded
once per channel (replays and re-sends answer `duplicate: true` and trigger nothing), then a
targeted booking fetch runs at once as a `sync-booking-by-id` flow; polling stays the
fallback.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response, status
from sqlalchemy.orm import Session

from api.deps import SessionDep
from api.errors import AppError, NotFound, Unauthorized
from api.schemas import APIModel, contains_nul
from channels.base import ChannelName
from db.repositories.accounts import effective_config
from db.repositories.webhook_intake import enabled_channels_of, record_event

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_BODY = 256 * 1024


class BadPayload(AppError):
    code = "bad_payload"


class WebhookAccepted(APIModel):
    accepted: bool
    duplicate: bool
    event_id: int | None = None
    channel_id: int | None = None


def _candidates(session: Session, channel_name: str) -> list[tuple[Any, str | None]]:
    return list(enabled_channels_of(session, channel_name))


def _secret(candidate: tuple[Any, str | None]) -> str | None:
    row, account_sealed = candidate
    secret = effective_config(row.config_encrypted, account_sealed).webhook_secret
    return secret.get_secret_value() if secret else None


def _airbnb(session: Session, body: bytes, request: Request) -> tuple[int, str, str]:
    """(channel id, event key, booking id) of a correctly signed Airbnb event."""
    from channels.airbnb import SIGNATURE_HEADER, verify_webhook_signature

    header = request.headers.get(SIGNATURE_HEADER, "")
    if not header:
        raise Unauthorized(f"missing {SIGNATURE_HEADER}")
    channel_id = next(
        (
            candidate[0].id
            for candidate in _candidates(session, ChannelName.AIRBNB)
            if (secret := _secret(candidate)) and verify_webhook_signature(body, header, secret)
        ),
        None,
    )
    if channel_id is None:
        raise Unauthorized("signature does not match any Airbnb channel")
    try:
        event = json.loads(body)
        code = _booking_ref(event["reservation"]["confirmation_code"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise BadPayload("Airbnb event without a usable reservation.confirmation_code") from None
    # Identical bodies are the same event: a replay or a re-send.
    return channel_id, "sha256:" + hashlib.sha256(body).hexdigest(), code


def _agoda(session: Session, body: bytes, request: Request) -> tuple[int, str, str]:
    """(channel id, event key, booking id) of an Agoda BookingHint with the shared secret.

    JSON (`property_id`, `booking_id`, `last_action`) is our relay form; Agoda's documented
    push is XML (`_agoda_xml`)."""
    token = request.headers.get("X-Webhook-Token") or request.query_params.get("token") or ""
    if not token:
        raise Unauthorized("missing X-Webhook-Token")
    try:
        hint = json.loads(body)
        property_id = _booking_ref(hint["property_id"])
        booking_id = _booking_ref(hint["booking_id"])
        last_action = str(hint.get("last_action") or "")[:40]
        if contains_nul(last_action):
            raise ValueError("NUL")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise BadPayload("BookingHint needs usable property_id and booking_id") from None
    return _agoda_channel(session, property_id, token), f"hint:{booking_id}:{last_action}", booking_id


def _agoda_channel(session: Session, property_id: str, token: str) -> int:
    for candidate in _candidates(session, ChannelName.AGODA):
        row = candidate[0]
        public = row.config_public or {}
        if property_id not in (public.get("hotelId"), public.get("propertyId")):
            continue
        secret = _secret(candidate)
        if secret and hmac.compare_digest(secret.encode(), token.encode()):
            return int(row.id)
    raise Unauthorized("token does not match the Agoda channel of this property")


def _agoda_xml(session: Session, body: bytes, request: Request) -> tuple[int, list[tuple[str, str]]]:
    """(channel id, [(event key, booking id)]) of Agoda's documented XML BookingHint; only
    bookings of the property the token opens are taken (others stay to polling)."""
    from channels.agoda_wire import parse_booking_hint
    from channels.base import MalformedPayloadError

    token = request.headers.get("X-Webhook-Token") or request.query_params.get("token") or ""
    if not token:
        raise Unauthorized("missing X-Webhook-Token")
    try:
        rows = parse_booking_hint(body)
    except MalformedPayloadError as exc:
        raise BadPayload(f"BookingHint: {exc.message}") from None
    property_id = rows[0].property_id
    channel_id = _agoda_channel(session, property_id, token)
    return channel_id, [(f"hint:{r.booking_id}:{r.last_action}", r.booking_id)
                        for r in rows if r.property_id == property_id]


def _booking_ref(value: Any) -> str:
    """A partner id from an event: a short string or integer, without NUL (ValueError)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("not an id")
    text_value = str(value)
    if not text_value or len(text_value) > 128 or contains_nul(text_value):
        raise ValueError("not an id")
    return text_value


HANDLERS = {ChannelName.AIRBNB: _airbnb, ChannelName.AGODA: _agoda}


async def raw_body(request: Request) -> bytes:
    """The request body, bounded (signatures are computed over the exact bytes). The edge
    middleware refuses a larger body before reading it (Content-Length) or while streaming."""
    body = await request.body()
    if len(body) > MAX_BODY:
        raise BadPayload("webhook body too large")
    return body


RawBody = Annotated[bytes, Depends(raw_body)]


def _run_fetch(channel_id: int, booking_id: str, event_id: int) -> None:
    """Hand the fetch to the task worker at once when one serves (flows/background.py),
    else start `sync-booking-by-id` (its deployment, or in this process)."""
    from flows.channel_sync import sync_booking_by_id
    from flows.runner import start_flow, via_task_worker

    if via_task_worker():
        from flows.background import fetch_pushed_booking

        fetch_pushed_booking.delay(channel_id, booking_id, event_id)
        return
    start_flow(
        sync_booking_by_id, channel_id=channel_id, external_id=booking_id, webhook_event_id=event_id
    )


@router.post(
    "/{channel_name}",
    response_model=WebhookAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"description": "Agoda XML BookingHint: `<result><success/></result>`",
              "content": {"text/xml": {}}},
        401: {"description": "bad signature or token"},
        404: {"description": "partner pushes no webhooks"},
    },
)
def receive(
    channel_name: str,
    request: Request,
    body: RawBody,
    session: SessionDep,
    background: BackgroundTasks,
) -> WebhookAccepted:
    """Receive a partner push; the booking is fetched right after the answer."""
    try:
        handler = HANDLERS[ChannelName(channel_name)]
    except (ValueError, KeyError):
        raise NotFound(
            f"no webhooks for {channel_name!r} (Agoda and Airbnb push; "
            f"Booking.com and Expedia are polled)"
        ) from None
    if handler is _agoda and body.lstrip()[:1] == b"<":
        # Agoda's documented XML push: one event per booking, answered in Agoda's form.
        from channels.agoda_wire import build_hint_answer

        channel_id, events = _agoda_xml(session, body, request)
        for key, booking_id in events:
            event_id = _record(session, channel_id, key, booking_id)
            if event_id is not None:
                background.add_task(_run_fetch, channel_id, booking_id, event_id)
        return Response(build_hint_answer(), media_type="text/xml")  # type: ignore[return-value]
    channel_id, key, booking_id = handler(session, body, request)
    event_id = _record(session, channel_id, key, booking_id)
    if event_id is None:
        return WebhookAccepted(accepted=True, duplicate=True, channel_id=channel_id)
    background.add_task(_run_fetch, channel_id, booking_id, event_id)
    return WebhookAccepted(accepted=True, duplicate=False, event_id=event_id, channel_id=channel_id)


def _record(session: Session, channel_id: int, key: str, booking_id: str) -> int | None:
    """The new event's id, None for a replay; committed before any work starts (a crash
    later is retried by polling)."""
    event_id = record_event(session, channel_id, key, booking_id)
    session.commit()
    return event_id
