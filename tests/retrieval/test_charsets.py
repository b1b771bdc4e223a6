"""Decoding bytes whose declared charset may be wrong (retrieval/loaders/charsets.py).

Issue 23: pages declaring gb2312 or Shift_JIS around UTF-8, and mail declaring UTF-8 around
Latin-1, were decoded with the declaration regardless. Plain pytest, no database.
"""

from __future__ import annotations

import pytest

from retrieval.loaders.charsets import codec_for, decode_declared

GERMAN = "Grüße aus München: die Lieferung ist nicht angekommen, bitte prüfen Sie das."
FRENCH = "Bonjour, je n'ai pas reçu ma commande. Très déçu, où est mon colis ?"
CHINESE = "退款将在五个工作日内退回您的信用卡。如有疑问，请联系我们的客服团队。"
JAPANESE = "返品は三十日以内に受け付けます。送料は無料です。"


@pytest.mark.parametrize(("label", "codec"), [("ISO-8859-1", "cp1252"), ("gb2312", "gb18030"), ("Shift_JIS", "cp932")])
def test_a_legacy_label_means_its_vendor_superset(label: str, codec: str) -> None:
    assert codec_for(label) == codec


@pytest.mark.parametrize("label", [None, "", "us-ascii", "x-made-up", '"\x00utf-8"'])
def test_missing_unknown_and_ascii_labels_declare_nothing(label: str | None) -> None:
    assert codec_for(label) is None


@pytest.mark.parametrize(("text", "charset"), [(CHINESE, "gb2312"), (JAPANESE, "shift_jis"), (GERMAN, "iso-8859-1")])
def test_a_right_declaration_is_used(text: str, charset: str) -> None:
    assert decode_declared(text.encode(charset), [charset]) == text


@pytest.mark.parametrize("charset", ["gb2312", "shift_jis", "euc-kr"])
def test_utf8_under_a_wrong_multibyte_declaration_is_read_as_utf8(charset: str) -> None:
    assert decode_declared((CHINESE + JAPANESE).encode(), [charset]) == CHINESE + JAPANESE


@pytest.mark.parametrize("text", [GERMAN, FRENCH])
def test_latin1_under_a_utf8_declaration_is_detected_not_replaced(text: str) -> None:
    assert decode_declared(text.encode("latin-1"), ["utf-8"]) == text


def test_the_first_declaration_the_bytes_fit_wins() -> None:
    assert decode_declared(JAPANESE.encode("shift_jis"), ["utf-8", "shift_jis"]) == JAPANESE


def test_a_byte_order_mark_outranks_any_declaration() -> None:
    assert decode_declared("Café".encode("utf-16"), ["iso-8859-1"]) == "Café"
