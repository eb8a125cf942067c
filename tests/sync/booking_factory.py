"""A booking record with every extended field set (values chosen here, never parsed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from channels.base import (
    BookedRoom,
    BookingEvent,
    BookingRecord,
    CancelPenalty,
    ChannelName,
    ExtraService,
    GuestInfo,
    NightlyPrice,
    PaymentInfo,
    PaymentModel,
    SpecialRequest,
)
from channels.simulators.catalog import CATALOG

EXP = ChannelName.EXPEDIA
D = Decimal


def full_booking(
    ext: str,
    hotel,
    *,
    rev: str = "0001",
    event: BookingEvent = BookingEvent.NEW,
    rooms: int = 2,
    group_id: str | None = "G-77",
    channel: ChannelName = EXP,
) -> BookingRecord:
    """A booking with every extended field set (values chosen here, not parsed)."""
    cat = CATALOG[channel]
    ci = hotel.start + timedelta(days=4)
    co = ci + timedelta(days=2)
    booked = [
        BookedRoom(
            partner_room_type_code=cat["room_types"]["STD" if i == 0 else "DLX"],
            partner_rate_plan_code=cat["rate_plans"]["BAR"],
            check_in=ci,
            check_out=co,
            adults=2,
            children=1,
            child_ages=[7],
            amount=D("230.00") + i,
            currency="EUR",
            nightly_rates={ci: D("115.00"), ci + timedelta(days=1): D("115.00")},
            external_room_id=f"R{i + 1}",
            room_name=f"Room {i + 1}",
            rate_plan_name="Best available",
            meal_plan="breakfast",
            extra_beds=1,
            nightly_prices=[
                NightlyPrice(
                    night=ci + timedelta(days=n),
                    amount=D("115.00"),
                    base=D("100.00"),
                    extra_person_fees=D("10.00"),
                    service_fees=D("5.00"),
                    currency="EUR",
                    promotion="EARLY",
                )
                for n in range(2)
            ],
            amount_before_tax=D("210.00"),
            taxes=D("20.00"),
            commission=D("34.50"),
            guest=GuestInfo(
                first_name=f"Stay{i}", last_name="Guest", email=f"s{i}@example.org", country="PT"
            ),
            extras=[ExtraService(code="PARK", name="Parking", amount=D("12.00"), nights=2)],
            special_requests=[SpecialRequest(code="2.1", text=f"high floor {i}")],
            smoking=False,
        )
        for i in range(rooms)
    ]
    return BookingRecord(
        channel=channel,
        external_id=ext,
        event=event,
        status=event.value,
        revision=rev,
        booked_at=datetime(2026, 11, 1, 9, 30, tzinfo=UTC),
        hotel_code="H-1",
        check_in=ci,
        check_out=co,
        guest=GuestInfo(
            first_name="Ana",
            last_name="Sousa",
            email="ana@example.org",
            phone="+351 21 000 0000",
            country="PT",
            language="pt",
        ),
        rooms=booked,
        total_amount=D("461.00"),
        currency="EUR",
        card_last4="4242",
        comments="arriving late",
        raw_payload={"id": ext, "revision": rev, "card": {"number": "************4242"}},
        amount_before_tax=D("420.00"),
        taxes=D("41.00"),
        commission=D("69.15"),
        payment=PaymentInfo(
            model=PaymentModel.VIRTUAL_CARD,
            card_type="VI",
            card_last4="4242",
            activation_date=ci,
            deactivation_date=co + timedelta(days=30),
            card_amount=D("391.85"),
            currency="EUR",
        ),
        extras=[ExtraService(code="BRK", name="Breakfast", quantity=2, amount=D("30.00"))],
        special_requests=[SpecialRequest(code="1.14", text="Non-smoking")],
        cancel_penalties=[
            CancelPenalty(
                deadline=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
                amount=D("115.00"),
                currency="EUR",
                nights=1,
            )
        ],
        cancel_policy="FREE_UNTIL_48H",
        loyalty=["expedia_vip", "one_key"],
        group_id=group_id,
        source="Hotels.com",
        language="pt",
    )
