"""The reports' canonical JSON is RFC 8785's (checked against the rfc8785 package)."""

from __future__ import annotations

import hashlib

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from application.compliance.digest import canonical, digest_of, finish

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(values)
def test_canonical_json_is_rfc_8785(value):
    assert canonical(value).encode("utf-8") == rfc8785.dumps(value)


def test_keys_sort_by_utf16_code_units():
    # U+1F600 is D83D DE00 in UTF-16: before U+FFFD, though after it in code points.
    value = {"\ufffd": 1, "\U0001f600": 2, "a": 3}
    assert canonical(value) == rfc8785.dumps(value).decode()
    assert canonical(value).index("\U0001f600") < canonical(value).index("\ufffd")


def test_floats_are_refused():
    with pytest.raises(TypeError):
        canonical({"amount": 1.5})


def test_the_digest_leaves_out_what_may_change_between_generations():
    report = finish({"date": "2026-03-02", "ctrs": []}, position=7, rules_version="r-1", final=False)
    later = finish({"date": "2026-03-02", "ctrs": []}, position=99, rules_version="r-1", final=True)
    assert report["digest"] == later["digest"]
    body = {"ctrs": [], "date": "2026-03-02", "rules_version": "r-1"}
    assert report["digest"] == hashlib.sha256(rfc8785.dumps(body)).hexdigest()
    assert digest_of({**report, "ctrs": [{"x": "1"}]}) != report["digest"]
    other_rules = finish({"date": "2026-03-02", "ctrs": []}, position=7, rules_version="r-2", final=False)
    assert other_rules["digest"] != report["digest"]
