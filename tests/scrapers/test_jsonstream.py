import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapers.errors import ParseError
from scrapers.jsonstream import JsonStream

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12)


def events(data: bytes, chunk: int = 7):
    return list(JsonStream(io.BytesIO(data), source="t.json", chunk=chunk).events("messages"))


@settings(max_examples=60, deadline=None)
@given(header=st.dictionaries(st.text(max_size=8).filter(lambda k: k != "messages"), json_values, max_size=4),
       items=st.lists(json_values, max_size=8), chunk=st.integers(1, 64), indent=st.sampled_from([None, 1, 2]))
def test_same_values_as_json_load_at_any_chunk_size(header, items, chunk, indent):
    doc = {**header, "messages": items}
    data = json.dumps(doc, ensure_ascii=False, indent=indent).encode()
    got = events(data, chunk)
    assert [v for k, _, v in got if k == "item"] == json.loads(data)["messages"]
    assert {key: v for k, key, v in got if k == "key"} == header


def test_multibyte_characters_split_across_reads():
    data = json.dumps({"name": "канал 🔥", "messages": [{"text": "注意力" * 50}]}, ensure_ascii=False).encode()
    assert events(data, chunk=1)[-1][2] == {"text": "注意力" * 50}


def test_numbers_at_buffer_end_are_not_cut():
    data = b'{"id": 1234567890123, "messages": [1, 22, 333, 0.5, 1e-3]}'
    for chunk in range(1, 12):
        assert [v for _, _, v in events(data, chunk)] == [1234567890123, 1, 22, 333, 0.5, 1e-3]


@pytest.mark.parametrize("data, where", [
    (b'{"messages": [1, 2,, 3]}', "char 19"),
    (b'[1, 2]', "char 0"),
    (b'{"messages": [1, 2]} trailing', "char 21"),
    (b'{"messages": [{"a": 1}', "char"),
    (b'{"name": "x\xff"}', "byte 11"),
])
def test_errors_carry_a_position(data, where):
    with pytest.raises(ParseError) as err:
        events(data, chunk=4)
    assert "t.json" in str(err.value) and where in str(err.value)


def test_syntax_error_reported_without_reading_everything():
    bad = b'{"messages": [{"a": 1}, {"a": oops}, ' + b'{"a": 2}, ' * 200_000 + b'{"a": 3}]}'
    f = io.BytesIO(bad)
    stream = JsonStream(f, source="big.json", chunk=4096)
    with pytest.raises(ParseError, match="big.json"):
        list(stream.events("messages"))
    assert stream.bytes_read < 64 * 1024
