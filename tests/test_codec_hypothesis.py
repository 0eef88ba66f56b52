"""Property tests of the codec (hypothesis).

Profiles: "quick" (the default, for every test run) and "long"
(HYPOTHESIS_PROFILE=long, thousands of examples per property).
"""

import datetime
import decimal
import math
import os
import struct

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from subinterp import _core  # noqa: E402

settings.register_profile(
    "quick", max_examples=150, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "long", max_examples=5000, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quick"))

HEADER = 24


def same(a, b):
    """Equal and of the same type, recursively; NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, decimal.Decimal):
        return str(a) == str(b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return (list(a) == list(b) and
                all(same(a[k], b[k]) for k in a))
    if isinstance(a, datetime.datetime):
        return a == b and a.fold == b.fold and a.tzinfo == b.tzinfo
    return a == b


timezones = st.none() | st.just(datetime.timezone.utc) | st.builds(
    datetime.timezone,
    st.timedeltas(min_value=datetime.timedelta(hours=-23),
                  max_value=datetime.timedelta(hours=23)))

# hashable and equal to themselves after a round trip (no NaN)
hashable_leaves = (
    st.none() | st.booleans() | st.integers() |
    st.integers(min_value=-(2**200), max_value=2**200) |
    st.floats(allow_nan=False) | st.text() | st.binary() |
    st.dates() | st.timedeltas() | st.uuids() |
    st.decimals(allow_nan=False) | st.just(...)
)
hashables = st.recursive(
    hashable_leaves,
    lambda c: st.tuples(c, c) | st.frozensets(c, max_size=4),
    max_leaves=8)

leaves = (
    hashable_leaves | st.floats() | st.complex_numbers() |
    st.builds(bytearray, st.binary()) |
    st.datetimes(timezones=timezones) |
    st.times(timezones=timezones) | st.decimals() |
    st.text(alphabet=st.characters(codec="utf-8"), min_size=50) |
    st.builds(range, st.integers(-50, 50), st.integers(-50, 50),
              st.integers(1, 5)) |
    st.builds(slice, st.integers(), st.none(), st.integers())
)

values = st.recursive(
    leaves,
    lambda c: (st.lists(c, max_size=6) | st.tuples(c, c) |
               st.dictionaries(hashables, c, max_size=6) |
               st.sets(hashables, max_size=5) |
               st.frozensets(hashables, max_size=5)),
    max_leaves=40)


@given(values)
def test_roundtrip_dumps(obj):
    assert same(_core.loads(_core.dumps(obj)), obj)


@given(values)
def test_roundtrip_cross(obj):
    assert same(_core._roundtrip(obj), obj)


@given(st.lists(st.dictionaries(st.sampled_from("abcdefgh"),
                                st.integers() | st.text(), max_size=8),
                max_size=30))
def test_records(rows):
    """Dict shapes: many dicts, few distinct key lists."""
    assert same(_core._roundtrip(rows), rows)


@given(st.lists(st.integers(0, 5), min_size=1, max_size=20), values)
def test_shared_references_kept(pattern, leaf):
    """A list whose items repeat a few containers: the same identities
    come out."""
    pool = [[leaf], {"k": leaf}, (leaf, 1), {1, 2}, [], bytearray(b"x")]
    obj = [pool[i] for i in pattern]
    out = _core._roundtrip(obj)
    for i in range(len(obj)):
        for j in range(len(obj)):
            assert (out[i] is out[j]) == (obj[i] is obj[j])


@given(values, st.data())
def test_corrupted_messages_raise_value_error(obj, data):
    msg = bytearray(_core.dumps(obj))
    if len(msg) > HEADER:
        flips = data.draw(st.lists(
            st.tuples(st.integers(HEADER, len(msg) - 1),
                      st.integers(0, 255)), min_size=1, max_size=5))
        for pos, byte in flips:
            msg[pos] = byte
    try:
        _core.loads(msg, trusted=False)
    except ValueError:
        pass


@given(values, st.data())
def test_truncated_messages_raise_value_error(obj, data):
    msg = _core.dumps(obj)
    n = data.draw(st.integers(0, len(msg) - 1))
    with pytest.raises(ValueError):
        _core.loads(msg[:n], trusted=False)


@given(st.binary(max_size=300))
def test_random_bodies(body):
    msg = b"SIc\x01\0\0\0\0" + struct.pack("<QQ", len(body), 0) + body
    try:
        _core.loads(msg, trusted=False)
    except ValueError:
        pass


@given(typecode=st.sampled_from("bBhHiIlLqQfd"),
       n=st.integers(min_value=0, max_value=40),
       start=st.none() | st.integers(min_value=-45, max_value=45),
       stop=st.none() | st.integers(min_value=-45, max_value=45),
       step=st.integers(min_value=-5, max_value=5).filter(bool))
def test_sliced_memoryview_keeps_format_and_shape(typecode, n, start, stop,
                                                  step):
    import array

    view = memoryview(array.array(typecode, range(n)))[start:stop:step]
    for out in (_core.loads(_core.dumps(view)), _core._roundtrip(view)):
        assert (out.format, out.itemsize, out.shape) == (
            view.format, view.itemsize, view.shape)
        assert out.tolist() == view.tolist()
