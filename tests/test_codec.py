"""The codec: objects -> messages -> objects, in one interpreter and across.

Most tests run both ways a message is made: dumps()/loads() (portable
bytes, copies everything) and _roundtrip() (what a crossing does: big
bytes and str are pinned, not copied).
"""

import array
import collections
import ctypes
import datetime
import decimal
import fractions
import functools
import gc
import math
import os
import pickle
import re
import struct
import subprocess
import sys
import textwrap
import threading
import uuid

import pytest

import subinterp
from subinterp import NotShareableError, _core

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import codec_helpers as H  # noqa: E402
from script_helpers import by_value_off  # noqa: E402, F401 (fixture)

CorruptMessageError = _core.CorruptMessageError

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

PIN = 64 * 1024  # CODEC_PIN_THRESHOLD


def dumps_loads(obj):
    return _core.loads(_core.dumps(obj))


WAYS = [
    pytest.param(dumps_loads, id="dumps"),
    pytest.param(_core._roundtrip, id="cross"),
]


@pytest.fixture(params=WAYS)
def rt(request):
    return request.param


@pytest.fixture(scope="module")
def interp():
    it = subinterp.create()
    yield it
    it.close()


def same(a, b):
    """Equal, of the same type, recursively (and NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, complex):
        return same(a.real, b.real) and same(a.imag, b.imag)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


# ---------------------------------------------------------------------------
# native types

SCALARS = [
    None, True, False, ..., NotImplemented,
    0, 1, -1, 63, 64, -64, -65, 127, 128, 255, 256, 2**30, -(2**30),
    2**31, 2**62, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64,
    3**200, -(7**300), 10**5000,
    0.0, -0.0, 1.5, -2.25e300, float("inf"), float("-inf"), float("nan"),
    5e-324, 1 + 2j, complex(-0.0, float("inf")),
    "", "a", "hello world", "é", "caf\xe9", "\xff" * 3, "€uro", "\u0100",
    "\uffff", "😀", "a😀b", "\ud800", "x\udfff", "\U0010ffff",
    "key" * 1000, "é" * 5000, "€" * 40000, "😀" * 20000,
    b"", b"\x00\xff", bytes(range(256)), bytearray(), bytearray(b"abc"),
    range(0), range(10), range(-5, 100, 7), range(10, 0, -1),
    range(2**70, 2**71, 2**65), slice(None), slice(1, 2, 3),
    slice("a", [1], None),
]


@pytest.mark.parametrize("obj", SCALARS, ids=lambda o: type(o).__name__)
def test_scalars(rt, obj):
    assert same(rt(obj), obj)


CONTAINERS = [
    (), (1,), (1, "a", None), [], [1, 2, 3], list(range(-100, 100)),
    {}, {"a": 1}, {1: "x", 2.5: "y", None: "z", (1, 2): "t", "k": [1, {}]},
    set(), {1, 2, 3}, {"a", "b"}, frozenset(), frozenset({1, (2, 3)}),
    [[[[[]]]]], {"a": {"b": {"c": {}}}}, ((((),),),),
    [1.5, "x", b"y", bytearray(b"z"), None, True, 3 + 4j],
]


@pytest.mark.parametrize("obj", CONTAINERS, ids=lambda o: type(o).__name__)
def test_containers(rt, obj):
    assert same(rt(obj), obj)


def test_int_lists(rt):
    """Lists of ints take a run loop in the encoder and a fast path in the
    decoder: every size class, mixed with other items."""
    edges = [0, 1, -1, 63, 64, -64, -65, 8191, 8192, -8192, -8193, 2**29,
             2**30 - 1, 2**30, -(2**30), 2**31, 2**62, 2**63, -(2**64), 10**30]
    mixed = edges + [True, False, 1.0, None, "x", [1, 2]] + edges[::-1]
    for obj in [edges, mixed, list(range(-5000, 5000, 7)),
                [i * 2**20 for i in range(-3000, 3000)], [True] * 5]:
        out = rt(obj)
        assert out == obj and [type(x) for x in out] == [type(x) for x in obj]


# the ints at each end of every varint length (zigzag: 7 * k - 1 bits of
# magnitude in k bytes), and around the compact and 64-bit limits
VARINT_EDGES = sorted({v for k in range(1, 11) for b in [min(7 * k - 1, 63)]
                       for v in (2**b - 1, 2**b, -(2**b), -(2**b) - 1)} |
                      {0, 1, -1, 8191, 8192, 2**20, 2**27, 2**29, 2**30,
                       2**31, 2**34 - 1, 2**34, -(2**34), -(2**34) - 1,
                       2**62, -(2**62), 2**63 - 1, -(2**63), 2**64})


def test_int_runs_at_every_varint_length(rt):
    """Lists and tuples of ints are decoded as runs, which stop at other
    items, at varints longer than the run reads and near the end of the
    message: every length, in every position, up to the end."""
    others = [None, 1.5, "s", (), [7]]
    for v in VARINT_EDGES:
        for k in range(1, 5):
            for obj in [[v] * k, [v] * k + [0], [0] + [v] * k,
                        [v, 2**40] * k, [v, 8192, 100] * k,
                        others[:k] + [v] * k + others[k:]]:
                for seq in [obj, tuple(obj), [obj, v], (obj, tuple(obj)),
                            {"k": obj, "t": tuple(obj)}]:
                    out = rt(seq)
                    assert same(out, seq), (v, k, seq)


def test_int_run_all_lengths_mixed(rt):
    obj = [x * s for x in VARINT_EDGES for s in (1, -1)]
    for seq in [obj, obj[::-1], tuple(obj), obj + ["end"], ["start"] + obj,
                [[x] for x in obj], [(x, None) for x in obj]]:
        assert same(rt(seq), seq)


def _varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7f | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _int_item(x, extra=0):
    """OP_INT x, its varint with `extra` redundant bytes (overlong)."""
    v = bytearray(_varint((x << 1) ^ (x >> 63)))
    if extra:
        v[-1] |= 0x80
        v += b"\x80" * (extra - 1) + b"\x00"
    return b"\x04" + bytes(v)


def test_int_items_handmade():
    """Messages the encoder does not make but the format allows: one-byte
    OP_INT, overlong varints (up to the 10-byte limit), ints with the memo
    flag in a run, in lists and tuples, with and without bytes after."""
    assert _int_item(5, 0) == b"\x04\x0a"
    assert _int_item(5, 2) == b"\x04\x8a\x80\x00"
    assert _int_item(200, 1) == b"\x04\x90\x83\x00"
    cases = []
    for x in [0, 5, -5, 100, 8192, 2**20, -(2**27), 2**33]:
        n = len(_varint((x << 1) ^ (x >> 63)))
        for extra in range(0, 10 - n + 1):
            cases.append((x, _int_item(x, extra)))
    # the largest 10-byte varints
    cases.append((2**63 - 1, b"\x04" + b"\xfe" + b"\xff" * 8 + b"\x01"))
    cases.append((-(2**63), b"\x04" + b"\xff" * 9 + b"\x01"))
    for x, item in cases:
        for n in range(1, 4):
            for op in (b"\x10", b"\x0f"):
                want = [x] * n if op == b"\x10" else (x,) * n
                body = op + bytes([n]) + item * n
                assert _core.loads(message(body)) == want, (x, item, n)
                body = b"\x0f\x02" + body + b"\x00"
                assert _core.loads(message(body)) == (want, None)
    # an int with the memo flag in the middle of a run, referred to after
    big = _int_item(10**6)[1:]
    body = (b"\x10\x04" + _int_item(3) + b"\x44" + big + b"\x08\x00" +
            _int_item(8192))
    out = _core.loads(message(body))
    assert out == [3, 10**6, 10**6, 8192] and out[1] is out[2]


INT_RUN_BAD = [
    # (body, the error's message)
    (b"\x10\x02\x04\x80\x80", "truncated varint (at body offset 5)"),
    (b"\x10\x03\x04\x80\x80\x80\x80\x80\x01\x04",
     "truncated varint (at body offset 10)"),
    (b"\x10\x02" + b"\x04" + b"\xff" * 10 + b"\x01" + b"\x81" * 12,
     "varint too long (at body offset 13)"),
    (b"\x0f\x02" + b"\x04" + b"\xff" * 9 + b"\x02" + b"\x81" * 12,
     "varint too long (at body offset 13)"),
    (b"\x10\x03" + _int_item(2**30) + _int_item(2**31),
     "truncated (at body offset 14)"),
    (b"\x10\x03" + _int_item(2**30) + b"\x3e" + b"\x81" * 8,
     "unknown opcode (at body offset 8)"),
    (b"\x10\x02" + _int_item(2**30) + b"\x08\x05" + b"\x81" * 8,
     "reference to a missing or unfinished object (at body offset 10)"),
    (b"\x0f\x02" + b"\x81" * 6 + b"\x00",
     "trailing bytes after the object (at body offset 4)"),
]


@pytest.mark.parametrize("body,err", INT_RUN_BAD, ids=range(len(INT_RUN_BAD)))
def test_int_run_bad_messages(body, err):
    for trusted in (True, False):
        with pytest.raises(ValueError, match=re.escape(err)):
            _core.loads(message(body), trusted=trusted)


def _block(vals, w):
    """OP_INT_RUN of vals, w bytes each."""
    return (b"\x3f" + _varint(len(vals)) + bytes([w]) +
            b"".join(v.to_bytes(w, "little", signed=True) for v in vals))


# compact ints (one 30-bit digit) at the edges of each width
BLOCK_EDGES = [0, 1, -1, 63, 64, -64, -65, 127, -128, 128, -129, 255, 256,
               2**15 - 1, -(2**15), 2**15, -(2**15) - 1, 2**30 - 1,
               -(2**30 - 1)]


@pytest.mark.parametrize("n", [1, 7, 8, 9, 1023, 1024, 1025, 2049, 5000])
def test_int_blocks_round_trip(n):
    """Lists of compact ints of every width and length round-trip, alone,
    between other items, next to ints that are not compact, and as one
    item of a larger message; the blocks make them smaller than items."""
    for base in (0, 100, 1000, 40000, 2**29):
        seq = [(base + i * 7919) % (2**30) * (-1) ** i for i in range(n)]
        for obj in (seq, seq + ["x"] + seq, [2**40] + seq + [2**62, None],
                    {"a": seq, "b": (seq, 1.5)}, [BLOCK_EDGES * 3, seq]):
            out = _core.loads(_core.dumps(obj))
            assert out == obj
    assert len(_core.dumps(list(range(30000)))) < 2 * 30000 + 200
    assert len(_core.dumps([i % 256 for i in range(10**4)])) < 2 * 10**4 + 200


def test_int_blocks_take_the_narrowest_width():
    """A run of 10 ints written exactly as expected, with each edge value
    first, last or alone among zeros: items when all are in -64..63, else
    a block of the narrowest width that holds every value."""
    def width(vals):
        if all(-64 <= v <= 63 for v in vals):
            return 0
        for w in (1, 2):
            lim = 2 ** (8 * w - 1)
            if all(-lim <= v < lim for v in vals):
                return w
        return 4
    for v in BLOCK_EDGES + [-2, 62, -63, 126, -127, 2**15 - 2, 2**23, -(2**23)]:
        for vals in ([v] + [0] * 9, [0] * 9 + [v], [v, -v] * 5, [v] * 10):
            w = width(vals)
            items = (bytes(0x80 + 64 + x for x in vals) if w == 0
                     else _block(vals, w))
            data = _core.dumps(vals)
            assert data == message(data[24:26] + items), (vals, w)
            assert data[24] & ~0x40 == 0x10 and data[25] == 10  # a list of 10
            assert _core.loads(data) == vals


def test_int_blocks_handmade():
    """Blocks of each width decode, in lists and tuples, several in a row,
    mixed with other items and with the one-item int runs."""
    for w in (1, 2, 4):
        lim = 2 ** (8 * w - 1)
        vals = [0, 1, -1, lim - 1, -lim, 5]
        for op in (b"\x10", b"\x0f"):
            want = vals * 2 + [7] + vals
            body = (op + bytes([len(want)]) + _block(vals, w) + _block(vals, w) +
                    b"\x04\x0e" + _block(vals, w))
            out = _core.loads(message(body))
            assert list(out) == want and isinstance(out, list if op == b"\x10" else tuple)
    assert _core.loads(message(b"\x10\x03" + _block([2**31 - 1, -(2**31)], 4) +
                               b"\x81")) == [2**31 - 1, -(2**31), -63]


INT_BLOCK_BAD = [
    (b"\x10\x02" + _block([1, 2, 3], 1), "run of ints empty or longer"),
    (b"\x10\x02" + b"\x3f\x00\x01" + b"\x81\x81",
     "run of ints empty or longer"),
    (b"\x10\x02" + b"\x3f\x02\x03" + b"\x00" * 6, "bad width"),
    (b"\x10\x02" + b"\x3f\x02\x08" + b"\x00" * 16, "bad width"),
    (b"\x10\x02" + b"\x3f\x02\x04" + b"\x00" * 7, "truncated"),
    (b"\x10\x02" + b"\x3f\x02", "count larger"),
    (b"\x10\x01" + b"\x3f", "truncated"),
    (b"\x10\x00\x3f\x01\x01\x05", "trailing bytes"),
    (b"\x10\x02" + b"\x3f\x7f\x01" + b"\x00\x00", "count larger"),
    (_block([1, 2], 1), "unknown opcode (at body offset 0)"),
    (b"\x7f\x02\x01\x00\x00", "bad memo flag"),
    (b"\x11\x01\x81" + _block([1], 1), "unknown opcode"),
    (b"\x10\x01\x7f\x01\x01\x00", "bad memo flag"),
]


@pytest.mark.parametrize("body,err", INT_BLOCK_BAD, ids=range(len(INT_BLOCK_BAD)))
def test_int_block_bad_messages(body, err):
    for trusted in (True, False):
        with pytest.raises(ValueError, match=re.escape(err)):
            _core.loads(message(body), trusted=trusted)


def _swap_shape_key(key):
    for o in gc.get_objects():
        if type(o) is dict and key in o and o[key] == ["MARK"]:
            o[_fresh(key)] = o.pop(key)
    return "swapped"


class _SwapShapeKey:
    def __init__(self, key):
        self.key = key

    def __reduce__(self):
        return (_swap_shape_key, (self.key,))


_HOSTILE_KEY_ON = [False]
_BIG_KEY = 10**15 + 7   # an int key that is not memoised


class _HostileKey:
    """A dict key whose __hash__ (Python code, in a trusted message)
    changes the dicts gc.get_objects() shows: the shape's blank, if it
    were in sight, and the dict that defined the shape."""

    def __init__(self, v):
        self.v = v

    def __hash__(self):
        if _HOSTILE_KEY_ON[0]:
            for o in gc.get_objects():
                if type(o) is dict and _BIG_KEY in o:
                    if o[_BIG_KEY] is None:
                        del o[_BIG_KEY]
                        o["X" * 30] = None
                    elif o[_BIG_KEY] == ["MARK"]:
                        o.clear()
        return self.v

    def __eq__(self, other):
        return self is other


def test_key_hash_changing_a_shape_blank_while_it_is_built():
    """The blank of a shape is checked to hold exactly the shape's key
    objects once built: a key's __hash__ that swapped one of them (the
    blank is in the collector's sight while keys it tracks go in) would
    otherwise leave the shape's dicts using a key nobody holds once the
    slot is taken over (a segfault on 3.12)."""
    a, b = _HostileKey(1), _HostileKey(2)
    big = int(str(_BIG_KEY))
    data = _core.dumps([{a: 0, big: ["MARK"], b: 0},
                        {a: 1, big: [{f"n{j}": [j]} for j in range(8)], b: 1}])
    _HOSTILE_KEY_ON[0] = True
    try:
        with pytest.raises(CorruptMessageError,
                           match="dict shape with a repeated or changed key"):
            _core.loads(data, trusted=True)
    finally:
        _HOSTILE_KEY_ON[0] = False
    out = _core.loads(data, trusted=True)
    assert [len(d) for d in out] == [3, 3] and out[1][big][7] == {"n7": [7]}


def _with_gc_callback(act, fn):
    """fn() with a GC callback that calls act(o) for every object
    gc.get_objects() shows, collections every 5 allocations.  Returns
    (what fn returned, how many collections ran)."""
    runs = [0]

    def cb(phase, info):
        if phase == "start":
            runs[0] += 1
            for o in gc.get_objects():
                act(o)

    old = gc.get_threshold()
    gc.callbacks.append(cb)
    gc.set_threshold(5)
    try:
        return fn(), runs[0]
    finally:
        gc.callbacks.remove(cb)
        gc.set_threshold(*old)


def _mid_decode(make, act, trusted):
    """loads(dumps(make())) with a GC callback that calls act(o) for
    every container gc.get_objects() shows whose first item is "MARK"
    (a list, a tuple: more than 10 items), that holds "MARK" (a
    frozenset) or whose "k0" is "MARK" (a dict), as code may do that
    runs during a decode: the UUIDs'
    __init__ is Python, whose bytecode runs the collections.  Returns
    (the result or the exception, what make() returns now, how many
    collections ran, how many objects act got)."""
    data = _core.dumps(make())
    hits = [0]

    def marked(o):
        t = type(o)
        # (not the tuples of constants in code objects)
        if ((t in (list, tuple) and len(o) > 10 and type(o[0]) is str
             and o[0] == "MARK") or
                (t is frozenset and len(o) > 10 and "MARK" in o) or
                (t is dict and o.get("k0") == "MARK")):
            hits[0] += 1
            act(o)

    def decode():
        try:
            return _core.loads(data, trusted=trusted)
        except Exception as e:      # noqa: BLE001 (what the decode raised)
            return e

    out, runs = _with_gc_callback(marked, decode)
    return out, make(), runs, hits[0]


MID_DECODE_ACTS = {
    "read": lambda o: (repr(o), list(o), hash(o) if type(o) is frozenset else 0),
    "pop": lambda o: o.pop() if type(o) is list else None,
    "insert": lambda o: o.insert(0, "x") if type(o) is list else None,
    "del": lambda o: o.__delitem__(slice(1, None)) if type(o) is list else None,
    "clear": lambda o: o.clear() if type(o) in (list, dict) else None,
    "extend": lambda o: o.extend(range(10)) if type(o) is list else None,
    "add_key": lambda o: o.update(zz=1) if type(o) is dict else None,
}


@pytest.mark.parametrize("trusted", [False, True])
@pytest.mark.parametrize("act", list(MID_DECODE_ACTS))
def test_code_run_during_a_decode_cannot_break_it(act, trusted):
    """Python code that runs in the middle of a decode (a collection's
    callback here) and finds a half-built container gets a whole one: a
    list holding the items decoded so far (a change to it makes the decode
    fail with RuntimeError, untrusted: CorruptMessageError), never a tuple
    with empty slots (it stays out of the collector's sight until
    complete) nor a frozenset (made once its elements are all decoded);
    and emptying or growing the dict that defined a
    shape changes neither the keys the shape's later dicts use nor
    what they decode to."""
    f = MID_DECODE_ACTS[act]
    changes_lists = act in ("pop", "insert", "del", "clear", "extend")

    def seq():
        return (["MARK"] + [{"k": i} for i in range(300)] +
                [uuid.UUID(int=i) for i in range(50)] + [[i] for i in range(300)])

    for make in (seq, lambda: tuple(seq()),
                 lambda: [frozenset(["MARK", 1, 2] + seq()[301:351])]):
        out, want, runs, hits = _mid_decode(make, f, trusted)
        assert runs > 0
        if type(want) is list and want[0] == "MARK":
            # the half-built list was found (and changed: the decode failed)
            assert hits > 0
            if changes_lists:
                assert isinstance(out, RuntimeError if trusted else CorruptMessageError)
                if trusted:
                    assert str(out) == "list changed while it was being decoded"
                del out, want   # for the next round's collections to find
                continue
        else:
            # the tuple and the frozenset were never found half-built (at
            # most complete, by a collection as the decode ends)
            assert hits <= 1
        assert out == want
        del out, want
    # the dict that defines a shape, emptied or given a key before the
    # shape's first reuse (the UUIDs come first)
    def recs():
        return ([{"k0": "MARK", "k1": [], "key_beta": 0}] +
                [uuid.UUID(int=i) for i in range(50)] +
                [{"k0": "r", "k1": [i], "key_beta": i} for i in range(1, 300)])

    out, want, runs, hits = _mid_decode(recs, f, trusted)
    assert runs > 0
    if act in ("clear", "add_key"):
        assert hits > 0
    assert out[1:] == want[1:]
    assert out[0] == {"clear": {}, "add_key": dict(want[0], zz=1)}.get(act, want[0])


def _fresh(text):
    """An equal str that is a distinct object (so not one memo entry)."""
    return "".join(list(text))


@pytest.mark.parametrize("trusted", [False, True])
def test_code_run_during_a_decode_cannot_break_dict_shapes(trusted):
    """A dict shape keeps its own keys, in a blank nobody else can reach:
    emptying the dict that defined it, swapping one of its keys for an
    equal one, or changing every dict in sight cannot free a key the
    shape's later dicts use (the shape's slot taken over meanwhile by
    SHAPE_SLOTS = 8 new shapes) nor change what they decode to."""
    K = "key_" + "k" * 40
    uuids = [uuid.UUID(int=i) for i in range(50)]

    def shapes():
        # d1 defines a shape; d2, of the same shape, holds 8 new shapes
        # that take over d1's slot, and UUIDs (Python code runs)
        d1 = {_fresh(K): [0]}
        d2 = {_fresh(K): [{_fresh(f"n{j}"): [j]} for j in range(8)] + uuids}
        return [d1, d2]

    def clear(o):
        if type(o) is dict and len(o) == 1 and K in o:
            o.clear()
    data = _core.dumps(shapes())
    out, _ = _with_gc_callback(clear, lambda: _core.loads(data, trusted=trusted))
    assert out[0] == {} and out[1] == shapes()[1]
    assert [type(k) for k in out[1]] == [str]

    # the key of the defining dict swapped for an equal, distinct one
    def swap(o):
        if type(o) is dict and o.get(1) == ["MARK"] and type(next(iter(o))) is int:
            o[1.0] = o.pop(1)
    recs = [{1: ["MARK"], 2: 0}] + uuids + [{1: [i], 2: i} for i in range(3)]
    data = _core.dumps(recs)
    out, _ = _with_gc_callback(swap, lambda: _core.loads(data, trusted=trusted))
    assert out[0] == {2: 0, 1.0: ["MARK"]}
    assert out[1:] == recs[1:]
    assert all([type(k) for k in r] == [int, int] for r in out[-3:])

    # every dict with the shape's keys, the blank too if it were in
    # sight, given one more key
    def grow(o):
        if type(o) is dict and len(o) == 2 and "key_a" in o:
            o["EXTRA"] = 1
    recs = [{"key_a": [i], "key_b": i} for i in range(3)]
    data = _core.dumps(recs[:2] + uuids + recs[2:])
    out, _ = _with_gc_callback(grow, lambda: _core.loads(data, trusted=trusted))
    assert out[-1] == {"key_a": [2], "key_b": 2}


def test_reconstructor_swapping_a_shape_key():
    """A trusted message's reconstructor (no collection needed) that
    swaps a key of the dict defining a shape, before the shape is used
    again by a dict whose values take over the shape's slot."""
    KA = "alpha_" + "q" * 40

    def d1():
        return {_fresh(KA): ["MARK"], _fresh("beta_key_long"): 0}

    def d2():
        return {_fresh(KA): [{_fresh(f"nest{j}_key"): [j]} for j in range(8)],
                _fresh("beta_key_long"): 1}

    data = _core.dumps([d1(), _SwapShapeKey(KA), d2()])
    out = _core.loads(data, trusted=True)
    assert out[1] == "swapped" and out[2] == d2()
    assert out[0] == d1()


def test_decoded_list_is_whole_at_every_moment():
    """The decoder fills a list's item array without zeroing it first and
    raises the list's size with each item: a list that fails midway frees
    the items it holds, a list inside itself is whole, and the result is
    an ordinary list with the room of [None] * n."""
    import tracemalloc
    vals = list(range(10**6, 10**6 + 2000))
    bigs = b"".join(_int_item(2**40 + i) for i in range(500))
    bad = [
        # a block of 2000 ints, then an unknown opcode
        b"\x10" + _varint(3000) + _block(vals, 4) + b"\x3e",
        # 500 ints one by one, then a truncated int block
        b"\x10" + _varint(600) + bigs + b"\x3f\x05\x04",
        # a list in a list, failing inside the inner one
        b"\x10\x02" + b"\x10" + _varint(2100) + _block(vals, 4) + b"\x3f",
    ]
    tracemalloc.start()
    try:
        for body in bad * 3:
            with pytest.raises(CorruptMessageError):
                _core.loads(message(body))
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(30):
            for body in bad:
                with pytest.raises(CorruptMessageError):
                    _core.loads(message(body))
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # a leaked list of 2000 ints would be 80 KB, thirty of them 2.4 MB
    assert after - before < 40_000
    inner = list(vals)
    outer = [inner, "x"]
    inner.append(inner)
    inner.append(outer)
    back = _core.loads(_core.dumps(outer))
    assert back[0][:-2] == vals and back[0][-2] is back[0]
    assert back[0][-1] is back and len(back[0]) == len(vals) + 2
    for n in (0, 1, 5, 64, 65, 1000, 100_000):
        out = _core.loads(_core.dumps(list(range(n))))
        assert type(out) is list and out == list(range(n))
        assert sys.getsizeof(out) == sys.getsizeof([None] * n)
        for lst in (out, list(range(n))):
            lst.append(-1)
            lst.extend(range(3))
            lst.insert(0, "a")
            del lst[1:3]
            lst.pop()
            lst.sort(key=str)
        assert out == lst
        out.clear()
        assert out == []


def test_int_run_truncations():
    """Every prefix of a message of int runs is rejected."""
    obj = [VARINT_EDGES, tuple(VARINT_EDGES), [5, 100, 10**6] * 3,
           list(range(-20, 40, 3)), [2**20 + i for i in range(9)]]
    data = _core.dumps(obj)
    for n in range(len(data)):
        with pytest.raises(ValueError):
            _core.loads(data[:n], trusted=False)


def test_many_shared_strings(rt):
    """More memo entries than one varint byte holds."""
    words = [f"word-{i}" for i in range(1000)]
    obj = [words, list(reversed(words)), {w: w for w in words}]
    out = rt(obj)
    assert out == obj
    assert all(a is b for a, b in zip(out[0], reversed(out[1])))


def test_str_kinds_are_canonical(rt):
    for s in ["ascii", "latin\xe9", "bmp\u20ac", "astral\U0001f600",
              "\xe9" * 100, "\u20ac" * 100]:
        r = rt(s)
        assert r == s and hash(r) == hash(s)
        assert r.isascii() == s.isascii()
        # same internal kind: the widest character decides it
        assert max(map(ord, r)) == max(map(ord, s))


def test_big_bytes_and_str(rt):
    b = os.urandom(3 * PIN + 5)
    assert rt(b) == b
    s = "x" * (PIN + 1) + "é"
    assert rt(s) == s
    s4 = "😀" * PIN
    assert rt(s4) == s4


def test_big_bytes_are_pinned_not_copied():
    b = os.urandom(1 << 20)
    size, refs = _core._message_size(b)
    assert size < 100 and refs == 1
    # dumps() copies: portable, no references
    assert len(_core.dumps(b)) > len(b)
    assert type(_core.dumps(b)) is bytes
    small = os.urandom(100)
    assert _core._message_size(small)[1] == 0


BIG_STRS = [
    pytest.param("a" * (PIN + 3), id="ascii"),
    pytest.param("\xe9" * (PIN + 3), id="latin1"),
    pytest.param("\u20ac" * (PIN // 2 + 3), id="ucs2"),
    pytest.param("\U0001f600" * (PIN // 4 + 3), id="ucs4"),
]


@pytest.mark.parametrize("s", BIG_STRS)
def test_dumps_big_str_every_kind(s):
    # dumps() writes large bytes and str straight into its result (a
    # segment each): around them, the UCS-2/UCS-4 padding must count the
    # segments written before, or the decoder reads the padding as data
    odd = os.urandom(PIN + 1)
    small2 = "\u20ac" * 3
    small4 = "\U0001f600" * 3
    for obj in [s, [odd, s], [odd, s, small2, odd, small4, s + "x"],
                {"k": s, "b": odd, "s": [small4, odd, small2]},
                (b"x", s, s, odd)]:
        data = _core.dumps(obj)
        assert type(data) is bytes
        back = _core.loads(data)
        assert same(back, obj)
    # the same object twice is written once (memo), not as two segments
    assert len(_core.dumps([s, s])) < len(s.encode("utf-32")) + 100


def test_dumps_big_bytes_written_once():
    b = os.urandom(3 * PIN + 1)
    data = _core.dumps(b)
    assert type(data) is bytes
    assert data.endswith(b) and len(data) < len(b) + 40
    assert _core.loads(data) == b
    # with references (a local message), the segments are gathered too
    sb = _core.share(bytearray(10))
    obj = [b, sb, "\U0001f600" * PIN, b]
    out = _core.loads(_core.dumps(obj))
    assert out[0] == b and out[3] == b and out[2] == obj[2]
    assert bytes(out[1]) == bytes(10)


def _grown_payloads():
    # encoded sizes from below the encoder's stack buffer (256 bytes) to
    # a few MiB, on both sides of each doubling of the buffer: dumps()
    # writes its result in place, a bytes object that grows, then keeps
    # a small slack or gives a large one back
    for n in [0, 1, 50, 60, 63, 64, 65, 120, 127, 128, 129, 250, 255, 256,
              257, 1000, 1023, 1024, 1025, 4095, 4096, 4097, 100_000,
              262_143, 262_144, 262_145, 700_000, 1_048_600]:
        yield list(range(1000, 1000 + n))   # 4 bytes per int
    for n in [200, 255, 256, 257, 511, 512, 513, 3000, 65_535, 65_536]:
        yield "x" * n if n < PIN else b"y" * (n - 1)
        yield [i % 50 for i in range(n)]    # 1 byte per int


def test_dumps_result_grown_in_place():
    empty = sys.getsizeof(b"")      # the header and the trailing NUL
    for obj in _grown_payloads():
        data = _core.dumps(obj)
        assert type(data) is bytes
        assert _core.loads(data) == obj
        assert data == _core.dumps(obj)
        copy = bytes(bytearray(data))
        assert data == copy and hash(data) == hash(copy)
        assert len(data) == _core._message_size(obj)[0]
        assert sys.getsizeof(data) == empty + len(data)
        # the NUL every bytes object ends with (C code may rely on it)
        tail = id(data) + empty - 1 + len(data)
        assert ctypes.string_at(tail, 1) == b"\0"


def test_dumps_grown_buffer_on_every_path():
    big = list(range(-3000, 3000))
    # a message with references (a local message) takes the buffer
    sb = _core.share(bytearray(b"abc"))
    out = _core.loads(_core.dumps([big, sb, "z" * 1000]))
    assert out[0] == big and bytes(out[1]) == b"abc" and out[2] == "z" * 1000
    # with segments: gathered into a new result
    seg = os.urandom(PIN + 3)
    assert _core.loads(_core.dumps([big, seg, big])) == [big, seg, big]
    # a cycle through a tuple after the buffer grew: starts over in it
    t = (list(big),)
    t[0].append(t)
    back = _core.loads(_core.dumps(t))
    assert back[0][:-1] == big and back[0][-1] is back


def test_dumps_failing_after_the_buffer_grew_frees_it():
    import tracemalloc
    big = list(range(10**6, 10**6 + 20_000))    # about 80 KB encoded
    lock = threading.Lock()
    tracemalloc.start()
    try:
        for _ in range(3):
            with pytest.raises(NotShareableError):
                _core.dumps([big, lock])
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(50):
            with pytest.raises(NotShareableError):
                _core.dumps([big, lock])
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # one leaked buffer would be 80 KB, fifty 4 MB
    assert after - before < 40_000


HUGE = 4 << 20  # CODEC_HUGE_MIN: larger copies ask for huge pages


@pytest.mark.parametrize("n", [HUGE - 1, HUGE, HUGE + 1, 3 * HUGE + 4097])
def test_copies_the_size_of_huge_pages(rt, n):
    # around the size from which a copy's destination is marked for
    # transparent huge pages (only its 2 MiB-aligned inside)
    b = os.urandom(n)
    assert rt(b) == b
    ba = bytearray(b)
    back = rt(ba)
    assert type(back) is bytearray and back == ba
    s = "a" * (n - 1) + "b"
    assert rt(s) == s
    u = "\u20ac" * (n // 2)
    assert rt(u) == u
    mixed = [b, s, ba, b"x", u]
    assert same(rt(mixed), mixed)
    # out-of-band pickle buffers: the second decoding copies
    big = H.BigBuffer(bytearray(b))
    data = _core.dumps([big])
    first, second = _core.loads(data), _core.loads(data)
    first[0].data[0] ^= 1
    assert bytes(second[0].data) == b
    # a local message (it holds a reference) copies its body too
    sb = _core.share(bytearray(10))
    out = _core.loads(_core.dumps([b, sb]))
    assert out[0] == b and bytes(out[1]) == bytes(10)


HUGE_FLAGS = textwrap.dedent("""
    import os, sys
    from subinterp import _core
    b = os.urandom(24 << 20)
    out = _core.loads(_core.dumps(b))
    assert out == b
    addr = id(out) + len(out) // 2      # inside the data, 2 MiB-aligned part
    with open("/proc/self/smaps") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        head = line.split()[0]
        if "-" in head and all(c in "0123456789abcdef-" for c in head):
            lo, hi = (int(x, 16) for x in head.split("-"))
            if lo <= addr < hi:
                flags = next(l for l in lines[i + 1:] if l.startswith("VmFlags"))
                print("hg" in flags.split()[1:])
                break
""")


def _kernel_takes_hugepage_advice():
    import mmap
    if not hasattr(mmap, "MADV_HUGEPAGE"):
        return False
    m = mmap.mmap(-1, 4 << 20)
    try:
        m.madvise(mmap.MADV_HUGEPAGE)
        return True
    except OSError:
        return False
    finally:
        m.close()


@pytest.mark.skipif(
    not _kernel_takes_hugepage_advice(),
    reason="no transparent huge pages (Linux with CONFIG_TRANSPARENT_HUGEPAGE)")
@pytest.mark.parametrize("setting, marked", [(None, "True"), ("0", "False"),
                                             ("1", "True")])
def test_large_copies_ask_for_huge_pages(setting, marked):
    # the mapping that holds a large decoded bytes object carries the
    # kernel's "hg" (MADV_HUGEPAGE) flag, unless SUBINTERP_HUGEPAGES=0
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("SUBINTERP_HUGEPAGES", None)
    if setting is not None:
        env["SUBINTERP_HUGEPAGES"] = setting
    out = subprocess.run([sys.executable, "-c", HUGE_FLAGS], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == marked


def test_dumps_error_after_segments_releases_them():
    # an error (and a restart with pickle) after large bytes/str became
    # segments: their references are dropped with the encoder's
    b = os.urandom(PIN + 7)
    s = "\u20ac" * PIN
    lock = threading.Lock()
    before = (sys.getrefcount(b), sys.getrefcount(s))
    for _ in range(20):
        with pytest.raises(NotShareableError):
            _core.dumps([b, s, {"x": [s, b, lock]}])
        # a cycle through a tuple: the encoder starts over with pickle
        t = ([b, s],)
        t[0].append(t)
        back = _core.loads(_core.dumps(t))
        assert back[0][0] == b and back[0][1] == s and back[0][2] is back
        del t, back
        gc.collect()
    assert (sys.getrefcount(b), sys.getrefcount(s)) == before


def test_dict_order_and_keys_shared(rt):
    keys = [f"key{i}" for i in range(20)]
    rows = [{k: i * j for j, k in enumerate(keys)} for i in range(50)]
    out = rt(rows)
    assert out == rows
    for row in out:
        assert list(row) == keys
    # one key object per distinct key in the whole result
    assert all(a is b for a, b in zip(out[0], out[-1]))


class StrKey(str):
    pass


def test_dict_shapes_match_equal_keys(rt):
    # keys built apart: equal str values, distinct objects
    rows = [{f"key{j:02d}": f"v{i}-{j}" for j in range(32)} for i in range(40)]
    assert len({id(k) for row in rows for k in row}) == 32 * 40
    out = rt(rows)
    assert out == rows
    assert all(list(a) == list(b) for a, b in zip(out, rows))
    # the records share one message-wide set of keys, so the message is
    # smaller than one that spells every key out
    size_fresh = _core._message_size(rows)[0]
    shared = [dict(zip(list(rows[0]), row.values())) for row in rows]
    assert size_fresh <= _core._message_size(shared)[0] + 64

    # near misses are other shapes: equal hash or length is not enough,
    # a str subclass or a non-str key never matches by value
    near = [
        {"ab": 1, "cd": 2},
        {"ab": 3, "ce": 4},
        {"ab": 5, StrKey("cd"): 6},
        {"ab": 7, "cd": 8},
        {"ab": 9, 1: 10},
        {"ab": 11, 1.0: 12},
        {"ab": 13, "é": 14},
        {"ab": 15, "\u20ac": 16},
    ]
    out = rt(near)
    assert out == near
    for got, want in zip(out, near):
        assert [type(k) for k in got] == [type(k) for k in want]
        assert list(got) == list(want)


def test_dict_shapes_copy_a_blank(rt):
    # from its second use a shape is decoded from a private copy with the
    # value None: results are independent, none shows a None it did not
    # have, and a dict holding a container is tracked by the GC (or a
    # cycle through it would never be collected)
    rows = [{"a": i, "b": str(i), "c": None if i % 3 else [i]}
            for i in range(20)]
    rows.insert(5, {"a": "x"})
    out = rt(rows)
    assert same(out, rows)
    out[0]["a"] = "changed"
    out[1].clear()
    assert out[2] == rows[2] and out[7] == rows[7]
    for r in out:
        if r.get("c") is not None:
            assert gc.is_tracked(r)
    cyc = [{"k": 1, "v": 2}, {"k": 3, "v": 4}]
    cyc[1]["v"] = cyc
    back = rt(cyc)
    assert back[1]["v"] is back and gc.is_tracked(back[1])


def test_dict_shapes_many_and_nested(rt):
    shapes = [[f"s{s}_{i}" for i in range(s % 5 + 1)] for s in range(12)]
    data = []
    for rep in range(4):
        for s, keys in enumerate(shapes):
            d = {k: (rep, s, i) for i, k in enumerate(keys)}
            d_nested = {k: {kk: rep for kk in shapes[(s + 1) % 12]} for k in keys}
            data.append(d)
            data.append(d_nested)
    assert rt(data) == data
    # same keys, other order: not the same shape
    a = {"x": 1, "y": 2}
    b = {"y": 3, "x": 4}
    out = rt([a, b, a, b])
    assert [list(d) for d in out] == [["x", "y"], ["y", "x"]] * 2


def test_shared_references(rt):
    inner = [1, 2]
    d = {"k": "v"}
    t = (1, 2, "three")
    s = "shared-string-" * 3
    obj = [inner, inner, d, d, t, t, s, s]
    out = rt(obj)
    assert out == obj
    assert out[0] is out[1] and out[2] is out[3] and out[4] is out[5]
    assert out[6] is out[7]


def test_cycles(rt):
    lst = [1]
    lst.append(lst)
    out = rt(lst)
    assert out[1] is out

    d = {}
    d["self"] = d
    out = rt(d)
    assert out["self"] is out

    # a cycle through a tuple: the codec falls back to pickle for it
    t = ([],)
    t[0].append(t)
    out = rt(t)
    assert out[0][0] is out

    s = set()
    holder = [s, s]
    out = rt(holder)
    assert out[0] is out[1]


def test_depth_limit():
    deep = []
    cur = deep
    for _ in range(990):
        nxt = []
        cur.append(nxt)
        cur = nxt
    assert _core._roundtrip(deep) == deep
    too_deep = [deep]
    for _ in range(20):
        too_deep = [too_deep]
    with pytest.raises(ValueError, match="too deep"):
        _core.dumps(too_deep)
    # dicts and tuples count too; never a C stack overflow
    x = ()
    for _ in range(100000):
        x = (x,)
    with pytest.raises(ValueError):
        _core.dumps(x)


DEEP_IN_A_SMALL_STACK = textwrap.dedent("""
    import threading
    from subinterp import _core
    x = list(range(100, 120))
    for _ in range(990):
        x = [1000, 2000, x, 3000]
    out = []
    def run():
        out.append(_core.loads(_core.dumps(x)) == x)
        out.append(_core.loads(_core.dumps(tuple(x))) == tuple(x))
        out.append(_core._roundtrip(x) == x)
    threading.stack_size(1 << 20)
    t = threading.Thread(target=run)
    t.start()
    t.join()
    print(out)
""")


@pytest.mark.skipif(bool(os.environ.get("SUBINTERP_SANITIZER")),
                    reason="the sanitizers' instrumentation makes every "
                    "frame much larger")
def test_nesting_at_the_depth_limit_fits_a_small_thread_stack():
    # a list at each of the 990 levels, with ints: every level's frame of
    # the encoder stays small (the ints' 4 KiB block is not in it), so a
    # thread with 1 MiB of stack encodes it (it took 4 MB)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(HERE), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", DEEP_IN_A_SMALL_STACK],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[True, True, True]"


@pytest.mark.parametrize("size", [100, 100_000], ids=["copied", "raw_blob"])
def test_out_of_band_buffers_at_the_depth_limit(rt, size):
    # The out-of-band buffers of a pickle are part of its opcode, not
    # objects one level deeper: a pickled object the encoder accepts at
    # the last level decodes (a big buffer at level 999 was refused as
    # "nesting deeper than 1000 levels").
    obj = H.BigBuffer(bytearray(b"x" * size))
    for _ in range(999):
        obj = [obj]
    out = rt(obj)
    for _ in range(999):
        out = out[0]
    assert bytes(out.data) == b"x" * size


def test_pinned_str_at_the_depth_limit():
    # A str of 64 KiB and more crosses pinned (OP_STR_PIN) and, like every
    # str, is no nesting level: the decoder takes it at the level where
    # the encoder wrote it (it refused one at level 1000).
    obj = "y" * 100_000
    for _ in range(1000):
        obj = [obj]
    out = _core._roundtrip(obj)
    for _ in range(1000):
        out = out[0]
    assert out == "y" * 100_000


def test_mutation_during_encoding_is_detected():
    class Grow:
        def __init__(self, target):
            self.target = target

        def __reduce__(self):
            self.target.append(1)
            return (int, (0,))

    lst = [0, 0]
    lst.insert(1, Grow(lst))
    with pytest.raises(RuntimeError, match="changed size"):
        _core.dumps(lst)


class _Shrink:
    """Deletes the items after it from its list when it is pickled."""

    def __init__(self, target, keep):
        self.target = target
        self.keep = keep

    def __reduce__(self):
        del self.target[self.keep:]
        return (int, (0,))


@pytest.mark.parametrize("n", [1, 10, 2000])
def test_list_shrunk_while_encoding_is_detected(n):
    """A run of ints after an item whose __reduce__ shrinks the list: the
    run is read up to the list's size now, not the size it had (under
    ASan, reading the freed slots is an error)."""
    lst = [None, 1] + [100_000 + i for i in range(n)]
    lst[0] = _Shrink(lst, 2)
    with pytest.raises(RuntimeError, match="changed size"):
        _core.dumps(lst)
    assert len(lst) == 2



class _RunsWhenPickled:
    """Calls fn when it is encoded (pickled), and crosses as 0."""

    def __init__(self, fn):
        self.fn = fn

    def __reduce__(self):
        self.fn()
        return (int, (0,))


def _dict_payload(d, shape):
    # with shape, a dict of the same keys before d makes d a dict shape
    return [dict.fromkeys(d, 1), d] if shape else [d]


@pytest.mark.parametrize("shape", [False, True])
@pytest.mark.parametrize("change", ["add", "delete", "clear"])
def test_dict_changed_size_while_encoding_is_detected(shape, change):
    d = {"a": None, "b": [100_000, "b"], "c": "x"}
    act = {"add": lambda: d.__setitem__("z", 1),
           "delete": lambda: d.pop("c"),
           "clear": d.clear}[change]
    d["a"] = _RunsWhenPickled(act)
    with pytest.raises(RuntimeError, match="dict changed size"):
        _core.dumps(_dict_payload(d, shape))


@pytest.mark.parametrize("shape", [False, True])
def test_dict_items_replaced_while_encoding(shape):
    """A dict is read in place, item by item, each held while it is
    written: values that code run by the encode replaces (and frees, but
    for the encoder's reference) cross as they are when reached."""
    d = {"a": None, "b": ["old", 100_000], "c": "x"}

    def replace():
        d["b"] = "new"
        d["c"] = None

    d["a"] = _RunsWhenPickled(replace)
    out = _core.loads(_core.dumps(_dict_payload(d, shape)))
    assert out[-1] == {"a": 0, "b": "new", "c": None}


class _KeyRunsWhenPickled(_RunsWhenPickled):
    """A dict key that calls fn when it is encoded, and crosses as "k"."""

    def __hash__(self):
        return 1

    def __reduce__(self):
        self.fn()
        return (str, ("k",))


@pytest.mark.parametrize("roundtrip", [False, True])
def test_value_dropped_while_its_key_is_encoded_keeps_identity(roundtrip):
    """A dict's key is written before its value, and code that the key's
    encoding runs may drop the value from the dict.  The value, still
    held by the encoder, must then not count the encoder's reference as
    the dict's, or the memo misses its other reference in the graph and
    it crosses as two objects (or a cycle through it as a chain)."""
    code = _core._roundtrip if roundtrip else (
        lambda x: _core.loads(_core.dumps(x)))
    x = [1, 2, 3]
    d = {}
    k = _KeyRunsWhenPickled(lambda: d.__setitem__(k, None))
    d[k] = x
    payload = [d, x]
    del x
    out = code(payload)
    assert out[0]["k"] is out[1] == [1, 2, 3]
    # a two-list cycle, dropped
    x = []
    y = [x]
    x.append(y)
    d = {}
    k = _KeyRunsWhenPickled(lambda: d.__setitem__(k, None))
    d[k] = x
    del x, y
    a = code(d)["k"]
    assert a[0][0] is a

# ---------------------------------------------------------------------------
# datetime, Decimal, UUID

DATES = [
    datetime.date(2024, 2, 29),
    datetime.date.min,
    datetime.time(23, 59, 59, 999999),
    datetime.time(1, 2, 3, fold=1),
    datetime.time(4, 5, tzinfo=datetime.timezone.utc),
    datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
    datetime.datetime(2024, 1, 2, 3, 4, 5, 6, fold=1),
    datetime.datetime.max,
    datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone(
        datetime.timedelta(hours=-3, minutes=-30), "NST")),
    datetime.timedelta(days=-3, seconds=5, microseconds=7),
    datetime.timedelta.max,
    datetime.timezone.utc,
    datetime.timezone(datetime.timedelta(hours=5)),
    decimal.Decimal("1.10"),
    decimal.Decimal("-0"),
    decimal.Decimal("NaN"),
    decimal.Decimal("sNaN"),
    decimal.Decimal("-Infinity"),
    decimal.Decimal("1e-999999"),
    uuid.UUID(int=0),
    uuid.uuid4(),
    uuid.UUID(int=2**128 - 1, is_safe=uuid.SafeUUID.safe),
    uuid.UUID(int=12345, is_safe=uuid.SafeUUID.unsafe),
]


@pytest.mark.parametrize("obj", DATES, ids=lambda o: type(o).__name__)
def test_datetime_decimal_uuid(rt, obj):
    out = rt(obj)
    assert type(out) is type(obj)
    if isinstance(obj, decimal.Decimal):
        assert str(out) == str(obj)
    else:
        assert out == obj
    if isinstance(obj, (datetime.time, datetime.datetime)):
        assert out.fold == obj.fold and out.tzinfo == obj.tzinfo
    if isinstance(obj, uuid.UUID):
        assert out.is_safe == obj.is_safe


def test_datetime_is_native_not_pickled():
    dt = datetime.datetime(2024, 1, 2, 3, 4, 5)
    assert b"datetime" not in _core.dumps(dt)  # no pickle GLOBAL


def test_datetime_across(interp):
    dt = datetime.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=datetime.timezone.utc)
    back, tname = interp.call(H.echo_with_type, dt)
    assert back == dt and type(back) is datetime.datetime
    # On 3.12, _datetime cannot be imported in an isolated interpreter:
    # the receiver gets its pure-Python datetime (equal values).
    if sys.version_info < (3, 13):
        assert tname == "_pydatetime.datetime"
    else:
        assert tname.endswith("datetime")
    for obj in DATES:
        out = interp.call(H.echo, obj)
        assert type(out) is type(obj)
        assert str(out) == str(obj)


# ---------------------------------------------------------------------------
# everything else: pickle


PICKLED = [
    H.Point(1, 2),
    H.Record("r", [1, 2], {"x": (1,)}),
    H.Color.GREEN,
    H.MyList([1, 2]),
    H.MyDict(a=1),
    H.MyStr("sub"),
    H.MyInt(5),
    collections.OrderedDict(a=1, b=2),
    collections.defaultdict(list, {"a": [1]}),
    collections.Counter("hello"),
    collections.deque([1, 2, 3]),
    fractions.Fraction(3, 7),
    ValueError("boom", 3),
    KeyError("k"),
    array.array("i", [1, 2, 3]),
]


@pytest.mark.parametrize("obj", PICKLED, ids=lambda o: type(o).__name__)
def test_pickle_fallback(rt, obj):
    out = rt(obj)
    assert type(out) is type(obj)
    if isinstance(obj, BaseException):
        assert out.args == obj.args
    else:
        assert out == obj


def test_pickled_objects_share_one_memo(rt):
    rec = H.Record("shared", [1])
    out = rt([rec, rec, {"r": rec}])
    assert out[0] is out[1] is out[2]["r"]


def test_out_of_band_buffers(rt):
    small = H.BigBuffer(bytearray(b"abc"))
    out = rt(small)
    assert bytes(out.data) == b"abc"
    big = H.BigBuffer(bytearray(os.urandom(200_000)))
    out = rt(big)
    assert bytes(out.data) == bytes(big.data)
    assert not out.data.readonly
    out.data[0] = 1   # a private copy: writing is fine
    ro = H.BigBuffer(bytes(300_000))
    out = rt(ro)
    assert out.data.readonly and bytes(out.data) == bytes(300_000)


def test_decoding_one_message_twice_gives_independent_copies():
    big = H.BigBuffer(bytearray(200_000))
    data = _core.dumps([big, big])
    a = _core.loads(data)
    b = _core.loads(data)
    a[0].data[0] = 7
    assert b[0].data[0] == 0


# ---------------------------------------------------------------------------
# functions and classes


REFS = [len, print, dict, int, os.path.join, math.sqrt, H.module_level,
        H.Outer, H.Outer.Inner, H.Outer.method, H.Outer.Inner.method,
        H.Outer.static, functools.reduce, collections.OrderedDict,
        NotShareableError, subinterp.create, _core.dumps]


@pytest.mark.parametrize("fn", REFS, ids=lambda f: f.__qualname__)
def test_by_reference(rt, fn):
    assert rt(fn) is fn


def test_by_reference_is_small():
    size, refs = _core._message_size(H.module_level)
    assert size < 80 and refs == 0


def test_partial_and_bound_methods(rt):
    p = functools.partial(H.module_level, 1, y=5)
    out = rt(p)
    assert out() == 6
    assert rt(H.OBJ.method)(2) == ("outer", 2)
    assert rt(H.Outer.klass)(1) == ("Outer", 1)
    assert rt([].append).__name__ == "append"
    assert rt("abc".upper)() == "ABC"


def test_stateless_function_as_code(rt):
    f = lambda x, y=2, *, z=3: x * y + z  # noqa: E731
    out = rt(f)
    assert out is not f
    assert out(5) == 13 and out(5, 3, z=0) == 15
    assert out.__name__ == "<lambda>"

    def nested(a):
        return [i * a for i in range(3)] + [len(str(a))]  # builtins only

    assert rt(nested)(2) == [0, 2, 4, 1]


def test_closure_is_not_shareable(by_value_off):
    secret = 42

    def closure():
        return secret

    with pytest.raises(NotShareableError) as info:
        _core.dumps(closure)
    msg = str(info.value)
    assert "closure" in msg and "secret" in msg and "closure" in msg
    assert "module level" in msg
    assert "subinterp.set_functions_by_value(True)" in msg
    assert isinstance(info.value, TypeError) and isinstance(info.value, ValueError)


def test_lambda_using_globals_is_not_shareable(by_value_off):
    f = lambda x: collections.Counter(x)  # noqa: E731
    with pytest.raises(NotShareableError, match="global names.*collections"):
        _core.dumps(f)
    # a module-level function using globals goes by reference: fine
    assert _core._roundtrip(H.uses_global) is H.uses_global


def test_local_class_is_not_shareable(by_value_off):
    class Local:
        pass

    with pytest.raises(NotShareableError, match="class .*Local"):
        _core.dumps(Local)
    with pytest.raises(NotShareableError):
        _core.dumps(Local())


def test_not_shareable_names_where(rt):
    lock = threading.Lock()
    with pytest.raises(NotShareableError) as info:
        _core.dumps({"a": [1, {"b": lock}]})
    msg = str(info.value)
    assert "lock" in msg and "['a'][1]['b']" in msg
    with pytest.raises(NotShareableError, match="no pickling for you"):
        _core.dumps([1, H.Unpicklable()])
    gen = (i for i in range(3))
    with pytest.raises(NotShareableError, match="generator"):
        rt(gen)


def test_is_shareable(by_value_off):
    assert _core.is_shareable([1, "a", {"b": (2.5, None)}])
    assert _core.is_shareable(H.Record("x", []))
    assert _core.is_shareable(memoryview(b"abc"))
    assert not _core.is_shareable(threading.Lock())
    x = 1
    assert not _core.is_shareable(lambda: x)
    subinterp.set_functions_by_value(True)
    assert _core.is_shareable(lambda: x)   # by value, through cloudpickle
    with pytest.raises(TypeError):
        _core.is_shareable()


def test_modules_by_name(rt):
    assert rt(math) is math
    assert rt([os.path, collections]) == [os.path, collections]


# ---------------------------------------------------------------------------
# zero-copy buffers


def test_memoryview_zero_copy(rt):
    data = bytearray(b"hello world")
    mv = memoryview(data)
    out = rt(mv)
    assert type(out) is memoryview and out.readonly
    assert bytes(out) == b"hello world"
    data[0:5] = b"HELLO"   # same memory
    assert bytes(out[:5]) == b"HELLO"
    with pytest.raises(TypeError):
        out[0] = 1
    del out
    gc.collect()


def test_memoryview_size_does_not_matter():
    big = bytearray(64 << 20)
    size, refs = _core._message_size(memoryview(big))
    assert size < 100 and refs == 1


def test_memoryview_format_and_shape(rt):
    a = array.array("d", [1.5, 2.5, 3.5, 4.5, 5.5, 6.5])
    out = rt(memoryview(a))
    assert out.format == "d" and out.tolist() == a.tolist()
    m2 = memoryview(bytearray(24)).cast("i", (2, 3))
    out = rt(m2)
    assert out.format == "i" and out.shape == (2, 3)
    # formats memoryview.cast() cannot restore arrive as bytes
    m3 = memoryview(struct.pack("<2h", 1, 2)).cast("B").cast("<h") \
        if False else memoryview(bytearray(4))
    assert rt(m3).format == "B"


def test_memoryview_non_contiguous_is_copied(rt):
    data = bytearray(range(10))
    mv = memoryview(data)[::2]
    out = rt(mv)
    assert bytes(out) == bytes(data[::2])
    data[0] = 99
    assert out[0] == 0    # a copy


def _testbuffer_view(shape, fmt, flags, index=None):
    """A memoryview of a _testbuffer.ndarray (CPython's test module; the
    only stdlib way to make multi-dimensional non-contiguous buffers)."""
    tb = pytest.importorskip("_testbuffer",
                             reason="needs CPython's _testbuffer module")
    n = 1
    for d in shape:
        n *= d
    nd = tb.ndarray(list(range(n)), shape=list(shape), format=fmt,
                    flags=getattr(tb, flags) if flags else 0)
    if index is not None:
        nd = nd[index]
    return memoryview(nd)


# (id, a function making the view): every one is not C-contiguous
STRIDED_VIEWS = [
    ("d-step3", lambda: memoryview(array.array("d", range(10)))[::3]),
    ("i-reversed", lambda: memoryview(array.array("i", range(7)))[::-1]),
    ("q-odd", lambda: memoryview(array.array("q", range(9)))[1::2]),
    ("h-from-bytes", lambda: memoryview(bytearray(range(16))).cast("h")[::2]),
    ("B-step2", lambda: memoryview(bytes(range(20)))[::2]),
    ("f-empty", lambda: memoryview(array.array("f", range(4)))[3:3:2]),
    ("d-2d-fortran", lambda: _testbuffer_view((3, 4), "d", "ND_FORTRAN")),
    ("l-2d-sliced", lambda: _testbuffer_view(
        (4, 6), "l", None, (slice(None, None, 2), slice(None, None, -3)))),
    ("i-3d-sliced", lambda: _testbuffer_view(
        (2, 3, 4), "i", None, (slice(None), slice(1, None), slice(0, 4, 2)))),
    ("B-pil", lambda: _testbuffer_view((3, 4), "B", "ND_PIL")),
]


@pytest.mark.parametrize(
    "make", [pytest.param(m, id=i) for i, m in STRIDED_VIEWS])
def test_memoryview_non_contiguous_keeps_format_and_shape(rt, make):
    # A non-contiguous view was copied as flat bytes: format "B", shape
    # (nbytes,), so a strided view of doubles arrived as 32 bytes.
    view = make()
    assert not view.c_contiguous
    out = rt(view)
    assert type(out) is memoryview
    assert (out.format, out.itemsize, out.ndim, out.shape, out.nbytes) == (
        view.format, view.itemsize, view.ndim, view.shape, view.nbytes)
    assert out.tolist() == view.tolist()
    assert out.c_contiguous and out.readonly


@pytest.mark.parametrize(
    "make", [pytest.param(m, id=i) for i, m in STRIDED_VIEWS])
def test_memoryview_non_contiguous_across(interp, make):
    view = make()
    assert interp.call(H.view_layout, view) == (
        view.format, view.itemsize, view.shape, True, view.tolist())


def test_memoryview_strided_list_across(interp):
    view = memoryview(array.array("d", range(10)))[::3]
    assert interp.call(list, view) == [0.0, 3.0, 6.0, 9.0]


def test_memoryview_empty_keeps_format(rt):
    # memoryview.cast() refuses a shape with a zero in it: an empty view
    # of doubles could not be decoded at all.
    out = rt(memoryview(array.array("d")))
    assert (out.format, out.shape, out.tolist()) == ("d", (0,), [])


def test_memoryview_empty_multidim_arrives_flat(rt):
    view = _testbuffer_view((2, 5), "d", None, slice(0, 0))
    assert view.shape == (0, 5)
    out = rt(view)
    assert (out.format, out.shape, out.nbytes) == ("B", (0,), 0)


@pytest.mark.parametrize("readonly", [False, True])
def test_memoryview_contiguous_multidim_layout(rt, readonly):
    data = array.array("d", range(10))
    view = memoryview(bytes(data) if readonly else data).cast("B")
    view = view.cast("d", (2, 5))
    assert view.readonly is readonly
    out = rt(view)
    assert (out.format, out.shape, out.tolist()) == (
        "d", (2, 5), view.tolist())
    assert out.readonly    # memoryviews always arrive read-only


def test_memoryview_of_slice(rt):
    data = bytearray(range(100))
    out = rt(memoryview(data)[10:20])
    assert bytes(out) == bytes(range(10, 20))


def test_share_writable(rt):
    data = bytearray(b"abcdef")
    sb = _core.share(data, writable=True)
    assert isinstance(sb, _core.SharedBuffer)
    assert sb.nbytes == 6 and not sb.readonly and len(sb) == 6
    out = rt(sb)
    assert type(out) is memoryview and not out.readonly
    out[0] = ord("Z")
    assert data[0] == ord("Z")
    # while shared, the bytearray is pinned
    with pytest.raises(BufferError):
        data.append(1)
    del out, sb
    gc.collect()
    data.append(1)   # released


def test_share_readonly_and_errors(rt):
    sb = _core.share(b"immutable")
    assert sb.readonly
    out = rt(sb)
    assert out.readonly and bytes(out) == b"immutable"
    with pytest.raises(ValueError, match="read-only"):
        _core.share(b"immutable", writable=True)
    with pytest.raises(TypeError, match="buffer protocol"):
        _core.share([1, 2])
    with pytest.raises(ValueError, match="contiguous"):
        _core.share(memoryview(bytearray(10))[::2])
    with pytest.raises(TypeError):
        _core.share(b"x", bogus=1)
    assert _core.share(sb) is sb
    with pytest.raises(ValueError):
        _core.share(sb, writable=True)


def test_share_keeps_format():
    a = array.array("q", range(6))
    out = _core._roundtrip(_core.share(a))
    assert out.format == "q" and out.tolist() == list(range(6))


def test_forwarding_a_view_does_not_stack_pins():
    data = bytearray(b"0123456789")
    first = _core._roundtrip(_core.share(data, writable=True))
    before = _core._codec_debug()["live_blobs"]
    second = _core._roundtrip(first[2:5])
    assert bytes(second) == b"234"
    assert _core._codec_debug()["live_blobs"] == before
    del first, second
    gc.collect()


def test_blobs_are_released():
    gc.collect()
    base = _core._codec_debug()
    for _ in range(100):
        _core._roundtrip(memoryview(bytearray(100)))
        _core._roundtrip(os.urandom(PIN))
        _core._roundtrip(_core.share(bytearray(10), writable=True))
        _core.loads(_core.dumps(memoryview(b"x")))
    gc.collect()
    now = _core._codec_debug()
    assert now["live_blobs"] == base["live_blobs"]
    assert now["tokens"] == base["tokens"]
    assert now["pending"] == 0


# ---------------------------------------------------------------------------
# process-local messages


def test_handles_dumps_is_a_local_message(interp):
    data = _core.dumps([interp, "x"])
    assert isinstance(data, bytes) and type(data) is _core.Message
    out = _core.loads(data)
    assert out[0] == interp and out[1] == "x"
    copy = bytes(data)
    assert _core.loads(copy)[0] == interp   # while `data` lives
    with pytest.raises(TypeError):
        _core.Message(b"")
    del data
    gc.collect()
    with pytest.raises(ValueError, match="released"):
        _core.loads(copy)


def test_local_message_from_another_process():
    data = bytearray(_core.dumps(memoryview(b"abc")))
    # the pid field
    data[32:40] = struct.pack("<Q", os.getpid() + 1)
    with pytest.raises(ValueError, match="another process"):
        _core.loads(data)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from subinterp import _core
        try:
            _core.loads(bytes.fromhex(sys.stdin.read()))
        except ValueError as e:
            print("ValueError", e)
        print("plain", _core.loads(bytes.fromhex({_core.dumps([1, 'x']).hex()!r})))
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=120,
                         input=bytes(_core.dumps(memoryview(b"abc"))).hex())
    assert res.returncode == 0, res.stderr
    assert "ValueError" in res.stdout and "another process" in res.stdout
    assert "plain [1, 'x']" in res.stdout


# ---------------------------------------------------------------------------
# bad input


def message(body, pickled=b"", flags=0):
    return (b"SIc\x01" + bytes([flags]) + b"\0\0\0" +
            struct.pack("<QQ", len(body), len(pickled)) + body + pickled)


def test_message_helper_matches_format():
    assert _core.dumps(None) == message(b"\x00")
    assert _core.loads(message(bytes([0x80 + 64 + 5]))) == 5


BAD = [
    b"",
    b"SIc",
    b"XXXX" + bytes(20),
    message(b"")[:-1],
    message(b"\x00") + b"\x00",
    message(b"\x00\x00"),                     # trailing object
    b"SIc\x02" + message(b"\x00")[4:],        # other version
    message(b"\x3f"),                          # unknown opcode
    message(b"\x10\x05\x00"),                  # list of 5, one item
    message(b"\x10\xff\xff\xff\xff\x0f"),      # huge count
    message(b"\x04\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),  # varint
    message(b"\x08\x00"),                      # ref to nothing
    message(b"\x4f\x01\x08\x00"),              # ref to unfinished tuple
    message(b"\x09\x02a\xe9"),                 # non-ASCII in ASCII str
    message(b"\x0c\x01\x00\x00\x00" + struct.pack("<I", 0x110000)),
    message(b"\x11\x01\x10\x00\x00"),          # unhashable key
    message(b"\x13\x01\x10\x00"),              # unhashable set item
    message(b"\x12\x00\x01\x00"),              # dict shape never defined
    message(b"\x17\x01\x00"),                  # handle without refs
    message(b"\x18\x00\x00\x00\x00\x00\x00"),  # buffer without refs
    message(b"\x19\x00"),
    message(b"\x1a\x00\x01\x00"),
    message(b"\x15\x80\x09\x01a\x81"),         # range("a")
    message(b"\x1f\x07\x01\x00"),              # datetime kind 7
    message(b"\x1f\x02\x01\x0d\x03abc"),       # datetime from bad state
    message(b"\x20\x09\x03abc"),               # Decimal("abc")
    message(b"\x21" + bytes(15)),              # truncated UUID
    message(b"\x05\x05\x01"),                  # truncated bigint
    message(b"\x06\x00\x00"),                  # truncated float
    message(b"\x10" * 2000 + b"\x00"),         # deep nesting
    message(b"\x1b\x09\x05nocol"),             # global without ':'
]


@pytest.mark.parametrize("data", BAD, ids=range(len(BAD)))
def test_bad_messages_raise_value_error(data):
    with pytest.raises(ValueError):
        _core.loads(data)
    with pytest.raises(ValueError):
        _core.loads(data, trusted=False)


def test_untrusted_refuses_code():
    for obj in [H.Record("x", []), lambda: 1, math, H.module_level]:
        data = _core.dumps(obj)
        with pytest.raises(ValueError):
            _core.loads(data, trusted=False) if obj is not math and \
                obj is not H.module_level else _core.loads(
                    data.replace(b"codec_helpers", b"codec_helperz")
                    if obj is H.module_level else
                    data.replace(b"math", b"mat_"), trusted=False)
    # already imported modules and their functions are fine
    assert _core.loads(_core.dumps(math.sqrt), trusted=False) is math.sqrt


def test_truncations_and_flips():
    obj = {"a": [1, 2.5, "x" * 20, b"y", None, (True, False)], "b": {1, 2},
           "c": [{"k": i, "v": str(i)} for i in range(5)], "d": 3 + 4j,
           "e": 10**30, "f": "é€😀", "g": datetime.date(2020, 1, 1)}
    data = _core.dumps(obj)
    for n in range(len(data)):
        with pytest.raises(ValueError):
            _core.loads(data[:n], trusted=False)
    import random
    rnd = random.Random(1234)
    for _ in range(3000):
        mutated = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            mutated[rnd.randrange(24, len(data))] = rnd.randrange(256)
        try:
            _core.loads(mutated, trusted=False)
        except ValueError:
            pass


# ---------------------------------------------------------------------------
# across interpreters


ACROSS = [None, 1, 2**100, 1.5, "s", "é€😀", b"b", bytearray(b"ba"),
          (1, (2,)), [1, [2]], {"a": {"b": 1}}, {1, 2}, frozenset({3}),
          range(5), slice(1, 2), ..., 1j, H.Point(1, 2),
          H.Record("r", [1], {"n": None}), H.Color.RED,
          collections.OrderedDict(a=1), decimal.Decimal("2.5"),
          uuid.UUID(int=7), datetime.timedelta(1), H.module_level, len]


@pytest.mark.parametrize("obj", ACROSS, ids=lambda o: type(o).__name__)
def test_echo_across(interp, obj):
    out = interp.call(H.echo, obj)
    assert type(out) is type(obj)
    if callable(obj) and not isinstance(obj, type):
        assert out is obj
    else:
        assert out == obj


def test_shared_refs_across(interp):
    x = [1]
    assert interp.call(H.identity_pairs, [x, x, [1]]) == [
        [True, True, False], [True, True, False], [False, False, True]]


def test_handles_across(interp):
    other = subinterp.create()
    try:
        out = interp.call(H.echo, other)
        assert out == other
        assert interp.call(H.echo, [other, other])[0] == other
    finally:
        other.close()


def test_stateless_function_across(interp):
    assert interp.call(H.call, lambda a, b=4: a * b, 3) == 12


def test_closure_fails_at_the_call_site(interp, by_value_off):
    y = 3
    with pytest.raises(NotShareableError, match="closure"):
        interp.call(lambda: y)


def test_unimportable_module_in_receiver(interp):
    import types
    mod = types.ModuleType("only_in_main")
    exec("def f():\n    return 1\n", mod.__dict__)
    sys.modules["only_in_main"] = mod
    try:
        with pytest.raises(subinterp.ExecutionFailed) as info:
            interp.call(mod.f)
        assert "only_in_main" in str(info.value)
    finally:
        del sys.modules["only_in_main"]


def test_zero_copy_across(interp):
    data = bytearray(b"0" * 100)
    assert interp.call(H.write_first, _core.share(data, writable=True),
                       ord("X")) is False
    assert data[0] == ord("X")
    assert interp.call(H.view_info, memoryview(data)) == (
        "memoryview", True, "B", (100,), b"X0000000")
    a = array.array("i", range(6))
    kind, ro, fmt, shape, items = interp.call(H.view_info,
                                              memoryview(a).cast("B").cast("i", (2, 3)))
    assert (fmt, shape, items) == ("i", (2, 3), [[0, 1, 2], [3, 4, 5]])
    gc.collect()
    assert interp.call(H.codec_debug)["pending"] == 0


def test_buffers_from_a_closing_interpreter():
    gc.collect()
    leaked = _core._codec_debug()["leaked"]
    it = subinterp.create()
    # a view of the other interpreter's memory, alive when it closes:
    # kept valid (the exporter is kept: a deliberate, counted leak)
    view = it.call(H.make_shared, 1000, b"a")
    assert type(view) is memoryview and not view.readonly
    # a message that still refers to the other interpreter's memory when
    # it closes, but no view does: the data is copied out
    other = it.call(H.make_shared, 5000, b"q")
    msg = _core.dumps(other)
    del other
    gc.collect()
    it.close()
    assert bytes(view[:3]) == b"aaa"
    view[0] = ord("b")
    assert _core._codec_debug()["leaked"] == leaked + 1
    got = _core.loads(msg)
    assert bytes(got) == b"q" * 5000
    del view, got, msg
    gc.collect()
    assert _core._codec_debug()["pending"] == 0


def stdlib_interpreters():
    """The stdlib's low-level module: create, exec (raises on failure),
    destroy."""
    try:
        import _interpreters as mod
    except ImportError:
        import _xxsubinterpreters as mod  # 3.12

        return mod.create, mod.run_string, mod.destroy

    def run(i, code):
        err = mod.exec(i, code)
        assert err is None, err

    return mod.create, run, mod.destroy


def test_buffers_from_a_closing_stdlib_interpreter():
    """An interpreter subinterp did not create releases what it pinned
    when it ends (its module's clean-up): no owner is left behind, pending
    releases happen in it, and messages still queued get a copy."""
    create, run, destroy = stdlib_interpreters()
    q = subinterp.Queue()
    gc.collect()
    before = _core._codec_debug()
    i = create()
    try:
        run(i, f"import sys\nsys.path[:0] = {sys.path!r}")
        run(i, "import pickle\n"
               f"q = pickle.loads({pickle.dumps(q)!r})\n"
               # 64 KiB and more: pinned in this interpreter
               "q.put(b'a' * 100000)\n"
               "q.put(b'b' * 100000)\n")
        # freed here: the release waits for the owner
        assert q.get_nowait() == b"a" * 100000
        now = _core._codec_debug()
        assert now["owners"] == before["owners"] + 1, now
        assert now["pending"] == before["pending"] + 1, now
    finally:
        destroy(i)
    after = _core._codec_debug()
    assert after["owners"] == before["owners"], after
    assert after["pending"] == before["pending"], after
    # the queued one was copied out before its owner went
    assert q.get_nowait() == b"b" * 100000
    assert _core._codec_debug()["live_blobs"] == before["live_blobs"]


def test_main_script_functions(tmp_path):
    script = tmp_path / "main_script.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        import subinterp
        from subinterp import _core
        print("top level ran", __name__)

        def double(x):
            return x * 2

        class Box:
            def __init__(self, v):
                self.v = v

        if __name__ == "__main__":
            it = subinterp.create()
            print("call", it.call(double, 21))
            box = it.call(Box, 5)
            print("box", type(box).__module__, box.v)
            print("roundtrip", _core._roundtrip(double) is double)
            it.close()
    """))
    res = subprocess.run([sys.executable, str(script)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out.count("top level ran __main__") == 1
    assert "top level ran __mp_main__" in out   # imported in the worker
    assert "call 42" in out
    assert "box __main__ 5" in out
    assert "roundtrip True" in out


def test_main_script_function_missing_in_receiver(tmp_path):
    # Defined under the __main__ guard: found by name in the sender, not in
    # the receiver, which imports the script as __mp_main__; the error
    # says what was looked up and why.
    script = tmp_path / "late_def.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        import subinterp

        if __name__ == "__main__":
            def late(x):
                return x

            it = subinterp.create()
            try:
                it.call(late, 1)
            except Exception as exc:
                print("raised", exc)
            it.close()
    """))
    res = subprocess.run([sys.executable, str(script)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "has no attribute 'late'" in res.stdout
    assert ("while looking up late of the main script (" + str(script) +
            ") in this interpreter") in res.stdout


def test_main_script_without_guard(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        import subinterp

        def uses_globals(x):
            return subinterp, x

        def pure(x):
            return x + 1

        subinterp.set_functions_by_value(False)   # no cloudpickle
        it = subinterp.create()
        print("pure", it.call(pure, 1))   # sent as code: fine
        try:
            it.call(uses_globals, 1)
        except subinterp.NotShareableError as e:
            print("refused", "__main__" in str(e))
        it.close()
    """))
    res = subprocess.run([sys.executable, str(script)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["pure 2", "refused True"]


MAIN_FUNCTION = f"""
import sys
sys.path.insert(0, {ROOT!r})
import subinterp
def f(x):
    return subinterp, x
subinterp.set_functions_by_value(False)   # no cloudpickle
it = subinterp.create()
try:
    it.call(f, 1)
except subinterp.NotShareableError as e:
    print("refused:", e)
it.close()
"""


@pytest.mark.parametrize("how, where", [
    ("-c", "of `python -c` code"),
    ("stdin", "of a script read from standard input"),
])
def test_interactive_main_function(how, where):
    # Each says where the function comes from (before, stdin's "<stdin>"
    # was taken for a script file without the __main__ guard).
    if how == "-c":
        res = subprocess.run([sys.executable, "-c", MAIN_FUNCTION],
                             capture_output=True, text=True, timeout=120)
    else:
        res = subprocess.run([sys.executable, "-"], input=MAIN_FUNCTION,
                             capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "refused:" in res.stdout and where in res.stdout, res.stdout
    assert "if __name__" not in res.stdout


# ---------------------------------------------------------------------------
# leaks


LEAK_SCRIPT = r"""
import gc, sys, tracemalloc, datetime, decimal, uuid, collections, os
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)
from subinterp import _core
import codec_helpers as H

objs = [None, 1, 2**100, -5, 1.5, 1j, "s", "é€😀", "x" * 70000, b"b",
        os.urandom(70000), "\xe9" * 70000, "\u20ac" * 40000,
        "\U0001f600" * 20000, bytearray(b"ba"), (1, (2,)), [1, [2]],
        {"a": {"b": 1}}, [{"k": 1, "v": 2}, {"k": 3, "v": 4}], {1, 2},
        frozenset({3}), range(5), slice(1, 2), ..., H.Point(1, 2),
        H.Record("r", [1]), collections.OrderedDict(a=1),
        decimal.Decimal("2.5"), uuid.UUID(int=7), datetime.datetime(2020, 1, 1),
        datetime.timezone.utc, H.module_level, len, memoryview(b"mv"),
        _core.share(bytearray(10), writable=True), H.BigBuffer(bytearray(70000)),
        lambda x: x + 1]
cyc = [1]
cyc.append(cyc)
objs.append(cyc)
t = ([],)
t[0].append(t)
objs.append(t)
t2 = ([objs[10], objs[13]],)
t2[0].append(t2)
objs.append(t2)

def run(n):
    for _ in range(n):
        for o in objs:
            _core._roundtrip(o)
            _core.loads(_core.dumps(o))
            _core.is_shareable(o)
        # fails after large bytes/str were entered as segments
        bad_late = [objs[10], objs[8], {"k": [objs[13], threading_lock]}]
        for bad in (threading_lock, closure, bad_late):
            try:
                _core.dumps(bad)
            except Exception:
                pass
        try:
            _core.loads(b"SIc\x01" + bytes(4) + bytes(16) + b"\x10\x05\x00")
        except ValueError:
            pass

import threading
threading_lock = threading.Lock()
def make_closure():
    y = 1
    return lambda: y
closure = make_closure()

run(50)
gc.collect()
refs = [sys.getrefcount(o) for o in objs]
tracemalloc.start()
run(200)       # caches and free lists settle
gc.collect()
# A leak grows in every window; allocator warm-up does not.
growth = []
for _ in range(3):
    before = tracemalloc.get_traced_memory()[0]
    run(200)
    gc.collect()
    growth.append(tracemalloc.get_traced_memory()[0] - before)
refs2 = [sys.getrefcount(o) for o in objs]
debug = _core._codec_debug()
print("growth", min(growth))
print("windows", growth)
print("refs", [(i, a, b) for i, (a, b) in enumerate(zip(refs, refs2)) if a != b])
print("debug", debug)
"""


@pytest.mark.slow
def test_no_leaks():
    code = LEAK_SCRIPT.replace("ROOT", repr(ROOT)).replace("HERE", repr(HERE))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    lines = dict(line.split(" ", 1) for line in res.stdout.splitlines())
    # a leak of one byte per operation would be 22 KB in every window
    assert int(lines["growth"]) < 16 * 1024, res.stdout
    assert lines["refs"] == "[]", res.stdout
    debug = eval(lines["debug"])
    assert debug["pending"] == 0 and debug["tokens"] == 0
    # the share() object in objs keeps one blob
    assert debug["live_blobs"] == 1, debug
