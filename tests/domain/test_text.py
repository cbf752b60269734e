from hypothesis import given
from hypothesis import strategies as st

from devlink.domain.text import storable


def test_nul_and_lone_surrogates_become_replacement_characters() -> None:
    assert storable("a\x00b") == "a\ufffdb"
    assert storable("x\ud800y\udfffz") == "x\ufffdy\ufffdz"
    assert storable("ok ✓ 😀") == "ok ✓ 😀"


@given(st.text())
def test_anything_becomes_encodable_text_of_the_same_length(text: str) -> None:
    clean = storable(text)
    clean.encode("utf-8")
    assert "\x00" not in clean and len(clean) == len(text)
