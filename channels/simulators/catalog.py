"""Partner room-type / rate-plan codes each simulator knows: the single source of truth for
demo channel mappings (PMS room types STD, DLX, STE, FAM; rate plans BAR, NRF, BB)."""

from __future__ import annotations

from typing import TypedDict

from channels.base import ChannelName

PMS_ROOM_TYPES = ("STD", "DLX", "STE", "FAM")
PMS_RATE_PLANS = ("BAR", "NRF", "BB")


class PartnerCatalog(TypedDict):
    hotel_id: str
    currency: str
    room_types: dict[str, str]  # PMS room type code -> partner room type code
    rate_plans: dict[str, str]  # PMS rate plan code -> partner rate plan code


CATALOG: dict[ChannelName, PartnerCatalog] = {
    ChannelName.BOOKING_COM: {
        "hotel_id": "1234567",
        "currency": "EUR",
        "room_types": {"STD": "123456701", "DLX": "123456702", "STE": "123456703", "FAM": "123456704"},
        "rate_plans": {"BAR": "8001001", "NRF": "8001002", "BB": "8001003"},
    },
    ChannelName.EXPEDIA: {
        # EQC rate plan ids belong to a room type in reality; the simulator accepts any pair.
        "hotel_id": "411234",
        "currency": "EUR",
        "room_types": {"STD": "200101", "DLX": "200102", "STE": "200103", "FAM": "200104"},
        "rate_plans": {"BAR": "2001010A", "NRF": "2001011A", "BB": "2001012A"},
    },
    ChannelName.AGODA: {
        "hotel_id": "90210",
        "currency": "EUR",
        "room_types": {"STD": "3301", "DLX": "3302", "STE": "3303", "FAM": "3304"},
        "rate_plans": {"BAR": "77001", "NRF": "77002", "BB": "77003"},
    },
    ChannelName.AIRBNB: {
        # One listing per room type; Airbnb has no rate plans, so only BAR is mapped.
        "hotel_id": "host-4711",
        "currency": "EUR",
        "room_types": {"STD": "51000001", "DLX": "51000002", "STE": "51000003", "FAM": "51000004"},
        "rate_plans": {"BAR": "default"},
    },
}


def hotel_catalog(channel: ChannelName | str, index: int = 0) -> PartnerCatalog:
    """The catalog of hotel `index` of a simulated partner account (0: `CATALOG`'s hotel).

    Every hotel has its own hotel id. Where a partner's room and rate ids are global
    (Booking.com room ids begin with the hotel id and rate ids are the partner's own;
    Airbnb listings) each hotel gets its own codes; Expedia and Agoda name the hotel in
    every request, so their hotels keep the same room and rate codes."""
    name = ChannelName(channel)
    base = CATALOG[name]
    if index < 0:
        raise ValueError("hotel index must be >= 0")
    if index == 0:
        return {**base, "room_types": dict(base["room_types"]),
                "rate_plans": dict(base["rate_plans"])}
    rooms, plans = dict(base["room_types"]), dict(base["rate_plans"])
    if name is ChannelName.BOOKING_COM:
        hotel_id = str(int(base["hotel_id"]) + index)
        rooms = {pms: hotel_id + code[-2:] for pms, code in rooms.items()}
        plans = {pms: str(int(code) + 1000 * index) for pms, code in plans.items()}
    elif name is ChannelName.AIRBNB:
        hotel_id = f"host-{4711 + index}"
        rooms = {pms: str(int(code) + 10 * index) for pms, code in rooms.items()}
    else:
        hotel_id = str(int(base["hotel_id"]) + index)
    return {"hotel_id": hotel_id, "currency": base["currency"], "room_types": rooms,
            "rate_plans": plans}


def partner_room_type(channel: ChannelName | str, pms_code: str) -> str:
    """Partner room type code for a PMS room type code."""
    return CATALOG[ChannelName(channel)]["room_types"][pms_code]


def partner_rate_plan(channel: ChannelName | str, pms_code: str) -> str:
    """Partner rate plan code for a PMS rate plan code (falls back to BAR's when unmapped)."""
    plans = CATALOG[ChannelName(channel)]["rate_plans"]
    return plans.get(pms_code) or plans["BAR"]
