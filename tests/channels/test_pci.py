from __future__ import annotations

from lxml import etree

from channels.pci import (
    last4,
    luhn_ok,
    mask_card_number,
    scrub_card_element,
    scrub_mapping,
    scrub_text,
    scrub_xml,
)

VISA = "4111111111111111"
AMEX = "378282246310005"


def test_mask_keeps_only_last4() -> None:
    assert mask_card_number(VISA) == "XXXXXXXXXXXX1111"
    assert mask_card_number("4111 1111 1111 1234") == "XXXXXXXXXXXX1234"
    assert mask_card_number("12") == "XXXXXXXXXXXX"
    assert mask_card_number(None) is None
    assert last4(AMEX) == "0005"


def test_luhn() -> None:
    assert luhn_ok(VISA) and luhn_ok(AMEX)
    assert not luhn_ok("4111111111111112")


def test_scrub_text_masks_card_runs_but_not_other_numbers() -> None:
    text = f"card {VISA} and {AMEX[:4]}-{AMEX[4:10]}-{AMEX[10:]}; phone +49 30 1234567; id 4000000001"
    out = scrub_text(text)
    assert VISA not in out and "XXXXXXXXXXXX1111" in out
    assert "XXXXXXXXXXXX0005" in out
    assert "+49 30 1234567" in out and "4000000001" in out


def test_scrub_mapping_drops_security_codes_and_masks_numbers() -> None:
    data = {
        "PaymentCard": {"CardNumber": VISA, "SeriesCode": "123", "CardCode": "VI", "ExpireDate": "1229"},
        "card": {"number": AMEX, "cvv": "1234", "CVC2": "9"},
        "rooms": [{"seriesCode": "999", "note": f"paid with {VISA}"}],
        "booking": {"number": "4000000001"},
    }
    out = scrub_mapping(data)
    assert out["PaymentCard"] == {"CardNumber": "XXXXXXXXXXXX1111", "CardCode": "VI", "ExpireDate": "1229"}
    assert out["card"] == {"number": "XXXXXXXXXXXX0005"}
    assert out["rooms"] == [{"note": "paid with XXXXXXXXXXXX1111"}]
    assert out["booking"] == {"number": "4000000001"}  # not a card context: left alone
    assert data["PaymentCard"]["SeriesCode"] == "123"  # input untouched


def test_scrub_card_element_in_place() -> None:
    el = etree.fromstring(
        f'<PaymentCard CardCode="MC" CardNumber="{VISA}" SeriesCode="321" ExpireDate="0128">'
        f"<CardHolderName>Zoë</CardHolderName><CVV>321</CVV></PaymentCard>".encode()
    )
    assert scrub_card_element(el) == "1111"
    xml = etree.tostring(el).decode()
    assert VISA not in xml and "321" not in xml and 'CardCode="MC"' in xml


def test_scrub_xml_whole_tree() -> None:
    root = etree.fromstring(
        f'<r xmlns="urn:x"><a><PaymentCard cardNumber="{AMEX}" seriesCode="1234"/></a>'
        f"<card><CardNumber>{VISA}</CardNumber><SecurityCode>999</SecurityCode></card></r>".encode()
    )
    assert scrub_xml(root) == "0005"
    xml = etree.tostring(root).decode()
    assert AMEX not in xml and VISA not in xml and "1234" not in xml and "999" not in xml
