"""phone.py: masks hide at least half the digits, at most 4 shown at an end; reprs mask too."""

from __future__ import annotations

import pytest

from airflow_provider_fuse.phone import mask_phone, split_tel_uri


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("+16175551234", "+16***234"),
        ("'6175551234'", "61***234"),
        ("tel:+16175551234;ani=+18005550100;postd=1234#", "+16***234"),
        ("+298212345", "+29***45"),
        ("+12345678", "+12***78"),
        ("+447911123456", "+447***456"),
        ("+123456789012345", "+123***2345"),
        ("1234567", "***"),
        ("+", "+***"),
        ("9" * 40, "9999***9999"),
    ],
)
def test_masks_show_at_most_half_the_digits(number: str, masked: str) -> None:
    assert mask_phone(number) == masked


@pytest.mark.parametrize("number", ["+16175551234", "6175551234", "+298212345", "+123456789012345"])
def test_a_mask_read_back_is_kept(number: str) -> None:
    """Values read back from XCom or an event are masked again on the way out: that changes nothing."""
    assert mask_phone(mask_phone(number)) == mask_phone(number)


def test_a_split_destination_shows_no_number_or_post_dial_digits() -> None:
    parts = split_tel_uri("tel:+16175551234;ani=+18005550100;postd=1234#")
    assert parts.number == "+16175551234" and parts.post_dial == "1234#"
    assert repr(parts) == "TelUri(number='+16***234', caller_id='+18***100', post_dial='***')"
