"""Channel bookings as the partners sent them: the list and one booking in detail.

Besides the sync state, every booking carries what the PMS works with (stay, amounts,
payment, booker, policy, requests, loyalty, partner group) and its booked rooms (nightly
prices, meal plan, staying guest, room-level extras and requests). Card data is the card
type and the last four digits at most. The detail adds the masked partner message and the
other bookings of the same partner group (Expedia's one booking per room of a multi-room
order).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import SessionDep, ViewerDep
from api.errors import NotFound
from api.paging import LIST_DOCS, PageDep, capped_count
from api.schemas import APIModel
from api.validators import Day, Id
from channels.base import CancelPenalty, ExtraService, NightlyPrice, SpecialRequest
from db.models import ChannelBooking, ChannelBookingRoom
from db.repositories.channel_bookings import channel_bookings_query, group_members, rooms_of
from db.repositories.scopes import channels_in_properties

router = APIRouter(tags=["channel sync"])


class NightlyPriceOut(NightlyPrice, APIModel):
    pass


class ExtraOut(ExtraService, APIModel):
    pass


class SpecialRequestOut(SpecialRequest, APIModel):
    pass


class CancelPenaltyOut(CancelPenalty, APIModel):
    pass


class PaymentOut(APIModel):
    model: str | None = Field(description="ota_collect, hotel_collect or virtual_card")
    card_type: str | None
    card_last4: str | None = Field(description="never more than the last four digits")
    activation_date: date | None = Field(description="virtual card: chargeable from")
    deactivation_date: date | None = Field(description="virtual card: chargeable until")
    card_amount: Decimal | None = Field(description="virtual card: its balance")


class PersonOut(APIModel):
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    country: str | None = Field(description="ISO 3166-1 alpha-2")


class BookerOut(PersonOut):
    language: str | None


class BookingRoomOut(APIModel):
    room_index: int
    reservation_id: int | None
    external_room_id: str | None
    partner_room_type_code: str
    partner_rate_plan_code: str | None
    room_name: str | None
    rate_plan_name: str | None
    meal_plan: str | None
    check_in: date | None
    check_out: date | None
    adults: int
    children: int
    child_ages: list[int]
    extra_beds: int | None
    smoking: bool | None
    amount: Decimal | None
    amount_before_tax: Decimal | None
    taxes: Decimal | None
    commission: Decimal | None
    currency: str | None
    guest: PersonOut | None = Field(description="the staying guest, when not the booker")
    nightly_prices: list[NightlyPriceOut]
    extras: list[ExtraOut]
    special_requests: list[SpecialRequestOut]


class ChannelBookingOut(APIModel):
    id: int
    channel_id: int
    reservation_id: int | None
    external_booking_id: str
    revision: str | None
    status: str
    sync_status: str
    sync_error: str | None
    overbooked: bool
    acknowledged_at: datetime | None
    last_synced_at: datetime | None
    created_at: datetime
    updated_at: datetime
    hotel_code: str | None
    check_in: date | None
    check_out: date | None
    booked_at: datetime | None
    total_amount: Decimal | None
    amount_before_tax: Decimal | None
    taxes: Decimal | None
    commission: Decimal | None
    currency: str | None
    payment: PaymentOut
    booker: BookerOut
    loyalty: list[str]
    group_id: str | None = Field(description="shared by the bookings of one partner group")
    source: str | None
    cancel_policy: str | None
    cancel_penalties: list[CancelPenaltyOut]
    extras: list[ExtraOut]
    special_requests: list[SpecialRequestOut]
    comments: str | None
    rooms: list[BookingRoomOut]


class GroupMemberOut(APIModel):
    id: int
    external_booking_id: str
    status: str
    reservation_id: int | None


class ChannelBookingDetail(ChannelBookingOut):
    booking_data: dict[str, Any] = Field(description="the partner message, cards masked")
    group_bookings: list[GroupMemberOut] = Field(
        description="the other bookings of the same partner group (groupId), oldest first"
    )


def _room_out(row: ChannelBookingRoom) -> BookingRoomOut:
    named = row.guest_first_name or row.guest_last_name or row.guest_email
    return BookingRoomOut.model_validate(
        {
            **{k: getattr(row, k) for k in BookingRoomOut.model_fields if hasattr(row, k)},
            "guest": PersonOut(
                first_name=row.guest_first_name,
                last_name=row.guest_last_name,
                email=row.guest_email,
                phone=row.guest_phone,
                country=row.guest_country,
            )
            if named
            else None,
        }
    )


def _booking_values(row: ChannelBooking, rooms: list[ChannelBookingRoom]) -> dict[str, Any]:
    plain = {
        k: getattr(row, k)
        for k in ChannelBookingOut.model_fields
        if k not in ("payment", "booker", "rooms") and hasattr(row, k)
    }
    return {
        **plain,
        "loyalty": row.loyalty or [],
        "cancel_penalties": row.cancel_penalties or [],
        "extras": row.extras or [],
        "special_requests": row.special_requests or [],
        "payment": PaymentOut(
            model=row.payment_model,
            card_type=row.card_type,
            card_last4=row.card_last4,
            activation_date=row.card_activation_date,
            deactivation_date=row.card_deactivation_date,
            card_amount=row.card_amount,
        ),
        "booker": BookerOut(
            first_name=row.booker_first_name,
            last_name=row.booker_last_name,
            email=row.booker_email,
            phone=row.booker_phone,
            country=row.booker_country,
            language=row.language,
        ),
        "rooms": [_room_out(r) for r in rooms],
    }


@router.get("/channel-bookings", response_model=list[ChannelBookingOut], **LIST_DOCS)
def list_channel_bookings(
    session: SessionDep,
    principal: ViewerDep,
    page: PageDep,
    channel_id: Id | None = Query(None, alias="channelId"),
    property_id: Id | None = Query(None, alias="propertyId"),
    status: str | None = Query(None, max_length=32),
    sync_status: str | None = Query(None, alias="syncStatus"),
    overbooked: bool | None = None,
    external_booking_id: str | None = Query(None, alias="externalBookingId", max_length=128),
    group_id: str | None = Query(None, alias="groupId", max_length=128),
    created_from: Day | None = Query(None, alias="from"),
    created_to: Day | None = Query(None, alias="to"),
    check_in_from: Day | None = Query(None, alias="checkInFrom"),
    check_in_to: Day | None = Query(None, alias="checkInTo"),
) -> list[ChannelBookingOut]:
    """Bookings as the partners sent them, newest first, with their rooms."""
    stmt = channel_bookings_query(
        channel_id=channel_id,
        status=status,
        sync_status=sync_status,
        overbooked=overbooked,
        external_booking_id=external_booking_id,
        group_id=group_id,
        created_from=created_from,
        created_to=created_to,
        check_in_from=check_in_from,
        check_in_to=check_in_to,
    )
    properties = principal.property_filter(property_id)
    if properties is not None:
        stmt = stmt.where(ChannelBooking.channel_id.in_(channels_in_properties(properties)))
    # the count stops at COUNT_CAP (large tables); X-Total-Count-Capped then says so
    total, capped = capped_count(session, stmt)
    rows = session.scalars(stmt.limit(page.limit).offset(page.offset)).all()
    rooms = rooms_of(session, [r.id for r in rows])
    return page.answer(
        [ChannelBookingOut.model_validate(_booking_values(r, rooms[r.id])) for r in rows],
        total,
        capped,
    )


@router.get("/channel-bookings/{booking_id}", response_model=ChannelBookingDetail)
def get_channel_booking(booking_id: Id, session: SessionDep, _: ViewerDep) -> Any:
    """One booking: its fields, rooms, the masked partner message and its partner group."""
    row = session.get(ChannelBooking, booking_id)
    if row is None:
        raise NotFound(f"channel booking {booking_id} not found")
    group = (
        [m for m in group_members(session, row.channel_id, row.group_id) if m.id != row.id]
        if row.group_id
        else []
    )
    return ChannelBookingDetail.model_validate(
        {
            **_booking_values(row, rooms_of(session, [row.id])[row.id]),
            "booking_data": row.raw_payload,
            "group_bookings": [GroupMemberOut.model_validate(m) for m in group],
        }
    )
