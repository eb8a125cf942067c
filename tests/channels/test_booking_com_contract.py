"""Contract: every Booking.com simulator answer has the shape of Booking.com's documents.

Booking.com publishes no XSD for its OTA flavour, so the reference is the documented example
reservation (tests/fixtures/booking.com, see its README) and the field tables of
developers.booking.com/connectivity/docs/api-reference: each parent/child element pair the
simulator emits must occur in the documented example, each attribute must be one the example
uses on that element (or one listed below as an accepted extra), and every attribute the
field tables call required must be there. Answers are fetched over real HTTP.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from lxml import etree

from channels.booking_com_ota import NS
from channels.simulators.booking_com import create_app
from channels.simulators.catalog import CATALOG
from channels.simulators.server import running_server
from channels.xmlsafe import parse_xml

CAT = CATALOG["booking.com"]  # type: ignore[index]
DOC = "OTA_HotelResNotifRQ_new_reservation_vcc_genius.xml"

#: Attributes the field tables call required (min 1) on the elements the simulator emits.
REQUIRED = {
    "OTA_HotelResNotifRQ": {"TimeStamp", "Target", "Version"},
    "OTA_HotelResModifyNotifRQ": {"TimeStamp", "Target", "Version"},
    "RoomStay": {"IndexNumber"},
    "RoomType": {"RoomTypeCode"},
    "RoomDescription": {"Name"},
    "RoomRate": {"EffectiveDate", "RatePlanCode"},
    "HotelReservationID": {"ResID_Value", "ResID_Date"},
    "PaymentCard": {"CardCode", "CardNumber", "SeriesCode", "ExpireDate"},
    "BasicPropertyInfo": {"HotelCode"},
    "Warning": {"Code", "ShortText", "Status", "Type"},
}
#: Attributes beyond the documented example the simulator may send, and why.
ACCEPTED_EXTRA = {
    "Total": {"AmountAfterTax"},  # Total field table: AmountBeforeTax and AmountAfterTax
    "Warning": {"RecordID"},  # OTA ErrorType attribute; LocatorID echo (*unverified*)
    "Error": {"RecordID", "Code", "ShortText", "Type"},
}


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _shape(root: etree._Element) -> tuple[set[tuple[str, str]], dict[str, set[str]]]:
    edges: set[tuple[str, str]] = set()
    attrs: dict[str, set[str]] = defaultdict(set)
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        attrs[_local(el)].update(etree.QName(a).localname for a in el.attrib)
        parent = el.getparent()
        if parent is not None:
            edges.add((_local(parent), _local(el)))
    return edges, attrs


@pytest.fixture(scope="module")
def documented(request: pytest.FixtureRequest) -> tuple[set[tuple[str, str]], dict[str, set[str]]]:
    path = Path(__file__).resolve().parents[1] / "fixtures" / "booking.com" / DOC
    edges, attrs = _shape(parse_xml(path.read_bytes(), "doc"))
    # The same inner structure under the modification container (HotelResModify field table).
    edges |= {("OTA_HotelResModifyNotifRQ", "HotelResModifies"), ("HotelResModifies", "HotelResModify")}
    edges |= {("HotelResModify", child) for parent, child in set(edges) if parent == "HotelReservation"}
    attrs["OTA_HotelResModifyNotifRQ"] = set(attrs["OTA_HotelResNotifRQ"])
    return edges, attrs


def _check(root: etree._Element, documented: tuple[set[tuple[str, str]], dict[str, set[str]]],
           ) -> None:
    doc_edges, doc_attrs = documented
    assert etree.QName(root).namespace == NS
    edges, attrs = _shape(root)
    assert edges <= doc_edges, f"element pairs not in Booking.com's example: {sorted(edges - doc_edges)}"
    for name, seen in attrs.items():
        allowed = doc_attrs.get(name, set()) | ACCEPTED_EXTRA.get(name, set())
        assert seen <= allowed, f"{name}: undocumented attributes {sorted(seen - allowed)}"
    for el in root.iter():
        required = REQUIRED.get(_local(el), set())
        missing = required - set(el.attrib)
        assert not missing, f"{_local(el)} lacks required {sorted(missing)}"
        if _local(el) == "GuestCounts":
            assert len(el) == 1, "GuestCounts holds one GuestCount (field table: 1..1)"
        if _local(el) == "Total" and el.get("DecimalPlaces") is not None:
            # Total field table: AmountAfterTax when taxes are included, else AmountBeforeTax.
            assert (el.get("AmountAfterTax") is None) != (el.get("AmountBeforeTax") is None), \
                "Total carries exactly one of AmountAfterTax / AmountBeforeTax"
        if el.get("DecimalPlaces") is not None:
            for key in ("Amount", "AmountBeforeTax", "AmountAfterTax", "CurrentBalance"):
                value = el.get(key)
                assert value is None or value.isdigit(), f"{_local(el)}@{key}={value!r} is not an integer"


def _rs_check(root: etree._Element, tag: str) -> None:
    assert _local(root) == tag and etree.QName(root).namespace == NS
    assert {"TimeStamp", "Target", "Version"} <= set(root.attrib)
    datetime.fromisoformat(root.get("TimeStamp") or "")
    children = [_local(c) for c in root]
    # OTA *NotifRS field tables: Success (with optional Warnings) or Errors, never both.
    assert ("Success" in children) != ("Errors" in children), children
    for el in root.iter(f"{{{NS}}}Warning", f"{{{NS}}}Error"):
        allowed = {"Code", "ShortText", "Status", "Type"} | ACCEPTED_EXTRA.get(_local(el), set())
        assert {"Code", "ShortText", "Type"} <= set(el.attrib) <= allowed
        if _local(el) == "Warning":
            assert el.get("Status")


def test_every_simulator_answer_has_the_documented_shape(documented) -> None:  # type: ignore[no-untyped-def]
    app = create_app(bookings=30, seed=5, credentials={"id": "secret"})
    today = datetime.now(UTC).date()
    with running_server(app) as url, httpx.Client(base_url=url, timeout=10) as http:
        jwt = http.post("/token-based-authentication/exchange",
                        json={"client_id": "id", "client_secret": "secret"}).json()["jwt"]
        auth = {"Authorization": f"Bearer {jwt}", "Content-Type": "text/xml"}
        seen_cancel = seen_modify = False
        for _ in range(10):
            new = parse_xml(http.get("/hotels/ota/OTA_HotelResNotif", headers=auth).content, "t")
            assert _local(new) == "OTA_HotelResNotifRQ"
            _check(new, documented)
            ids = [i.get("ResID_Value") or "" for i in new.iter(f"{{{NS}}}HotelReservationID")]
            if ids:
                ack = (f'<OTA_HotelResNotifRS xmlns="{NS}" TimeStamp="2026-01-01T00:00:00+00:00" '
                       'Target="Production" Version="2.001"><Success/><HotelReservations>'
                       + "".join(f"<HotelReservation><ResGlobalInfo><HotelReservationIDs><HotelReservationID "
                                 f'ResID_Value="{i}"/></HotelReservationIDs></ResGlobalInfo></HotelReservation>'
                                 for i in ids) + "</HotelReservations></OTA_HotelResNotifRS>")
                answer = http.post("/hotels/ota/OTA_HotelResNotif", headers=auth, content=ack)
                _rs_check(parse_xml(answer.content, "t"), "OTA_HotelResNotifRS")
            mod = parse_xml(http.get("/hotels/ota/OTA_HotelResModifyNotif", headers=auth).content, "t")
            assert _local(mod) == "OTA_HotelResModifyNotifRQ"
            _check(mod, documented)
            for res in mod.iter(f"{{{NS}}}HotelResModify"):
                if res.find(f"{{{NS}}}RoomStays") is None:
                    seen_cancel = True
                else:
                    seen_modify = True
            mids = [i.get("ResID_Value") or "" for i in mod.iter(f"{{{NS}}}HotelReservationID")]
            if mids:
                ack = (f'<OTA_HotelResModifyNotifRS xmlns="{NS}" TimeStamp="2026-01-01T00:00:00+00:00" '
                       'Target="Production" Version="2.001"><Success/><HotelResModifies>'
                       + "".join(f"<HotelResModify><ResGlobalInfo><HotelReservationIDs><HotelReservationID "
                                 f'ResID_Value="{i}"/></HotelReservationIDs></ResGlobalInfo></HotelResModify>'
                                 for i in mids) + "</HotelResModifies></OTA_HotelResModifyNotifRS>")
                answer = http.post("/hotels/ota/OTA_HotelResModifyNotif", headers=auth, content=ack)
                _rs_check(parse_xml(answer.content, "t"), "OTA_HotelResModifyNotifRS")
            if not ids and not mids:
                break
        assert seen_modify and seen_cancel
        # An acknowledgement of an unknown reservation: Errors, never with Success.
        wrong = http.post("/hotels/ota/OTA_HotelResNotif", headers=auth, content=(
            f'<OTA_HotelResNotifRS xmlns="{NS}" TimeStamp="2026-01-01T00:00:00+00:00" Target="Production" '
            'Version="2.001"><Success/><HotelReservations><HotelReservation><ResGlobalInfo><HotelReservationIDs>'
            '<HotelReservationID ResID_Value="1"/></HotelReservationIDs></ResGlobalInfo></HotelReservation>'
            "</HotelReservations></OTA_HotelResNotifRS>"))
        assert wrong.status_code == 404
        _rs_check(parse_xml(wrong.content, "t"), "OTA_HotelResNotifRS")
        # ARI answers: success, success with warnings (one update refused), errors (all refused).
        day = (today + timedelta(days=3)).isoformat()
        good, bad = CAT["room_types"]["STD"], "999999"

        def avail(rooms: list[str]) -> bytes:
            msgs = "".join(f'<AvailStatusMessage LocatorID="{i}" BookingLimit="3"><StatusApplicationControl '
                           f'Start="{day}" End="{day}" InvTypeCode="{r}"/></AvailStatusMessage>'
                           for i, r in enumerate(rooms, 1))
            return (f'<OTA_HotelAvailNotifRQ xmlns="{NS}" Version="2.001" TimeStamp="2026-01-01T00:00:00+00:00">'
                    f'<AvailStatusMessages HotelCode="{CAT["hotel_id"]}">{msgs}</AvailStatusMessages>'
                    "</OTA_HotelAvailNotifRQ>").encode()

        for rooms, status in (([good], 200), ([good, bad], 200), ([bad], 400)):
            answer = http.post("/hotels/ota/OTA_HotelAvailNotif", headers=auth, content=avail(rooms))
            assert answer.status_code == status
            _rs_check(parse_xml(answer.content, "t"), "OTA_HotelAvailNotifRS")
        rate = (f'<OTA_HotelRateAmountNotifRQ xmlns="{NS}" Version="2.001" TimeStamp="2026-01-01T00:00:00+00:00">'
                f'<RateAmountMessages HotelCode="{CAT["hotel_id"]}"><RateAmountMessage LocatorID="1">'
                f'<StatusApplicationControl Start="{day}" End="{day}" InvTypeCode="{good}" '
                f'RatePlanCode="{CAT["rate_plans"]["BAR"]}"/><Rates><Rate><BaseByGuestAmts>'
                '<BaseByGuestAmt AmountAfterTax="100.00" CurrencyCode="EUR"/></BaseByGuestAmts></Rate></Rates>'
                "</RateAmountMessage></RateAmountMessages></OTA_HotelRateAmountNotifRQ>").encode()
        answer = http.post("/hotels/ota/OTA_HotelRateAmountNotif", headers=auth, content=rate)
        assert answer.status_code == 200
        _rs_check(parse_xml(answer.content, "t"), "OTA_HotelRateAmountNotifRS")


def test_contract_check_catches_an_undocumented_shape(documented) -> None:  # type: ignore[no-untyped-def]
    """The check is not vacuous: the old generic-OTA shape (TimeSpan, Base, decimal amounts)
    and an acknowledgement-less root fail it."""
    generic = parse_xml(
        f'<OTA_HotelResNotifRQ xmlns="{NS}" TimeStamp="2026-01-01T00:00:00+00:00" Target="Production" '
        'Version="2.001"><HotelReservations><HotelReservation><RoomStays><RoomStay IndexNumber="1">'
        '<TimeSpan Start="2027-01-01" End="2027-01-02"/></RoomStay></RoomStays></HotelReservation>'
        "</HotelReservations></OTA_HotelResNotifRQ>".encode(), "t")
    with pytest.raises(AssertionError, match="element pairs"):
        _check(generic, documented)
    decimal = parse_xml(
        f'<OTA_HotelResNotifRQ xmlns="{NS}" TimeStamp="2026-01-01T00:00:00+00:00" Target="Production" '
        'Version="2.001"><HotelReservations><HotelReservation><ResGlobalInfo><Total AmountBeforeTax="5.00" '
        'CurrencyCode="USD" DecimalPlaces="2"/></ResGlobalInfo></HotelReservation></HotelReservations>'
        "</OTA_HotelResNotifRQ>".encode(), "t")
    with pytest.raises(AssertionError, match="not an integer"):
        _check(decimal, documented)
    no_target = parse_xml(f'<OTA_HotelResNotifRQ xmlns="{NS}" TimeStamp="2026-01-01T00:00:00+00:00" '
                          'Version="2.001"><HotelReservations/></OTA_HotelResNotifRQ>'.encode(), "t")
    with pytest.raises(AssertionError, match="Target"):
        _check(no_target, documented)
