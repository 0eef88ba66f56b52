"""Write seed inputs for fuzz_decode: one file per sample object, holding
the mode byte 0 and the body of the message subinterp encodes it to.

    python fuzz/make_seeds.py fuzz/seeds      (with _core built in place)
"""

import datetime
import decimal
import os
import sys
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from subinterp import _core  # noqa: E402

HEADER = 24

SAMPLES = {
    "scalars": [None, True, False, ..., NotImplemented, 0, 63, -64, 64, -65,
                2**40, -(2**63), 2**64, 10**40, 1.5, float("nan"), 1 + 2j],
    "strings": ["", "ascii", "caf\xe9", "\u20ac", "\U0001f600", "\ud800"],
    "bytes": [b"", b"abc", bytearray(b"xyz")],
    "containers": [(), (1, 2), [1, [2, [3]]], {"a": 1, 2: "b"}, {1, 2},
                   frozenset({3}), range(1, 10, 2), slice(1, None, 2)],
    "shared": [["k", "k"], [[1], [1]]],
    "records": [{"id": i, "name": "n", "tags": ["a", "b"]} for i in range(4)],
    "dates": [datetime.datetime(2024, 1, 2, 3, 4, 5, 6,
                                tzinfo=datetime.timezone.utc),
              datetime.date(2020, 1, 1), datetime.time(1, 2, fold=1),
              datetime.timedelta(-1, 2, 3)],
    "decimal": [decimal.Decimal("1.25"), decimal.Decimal("-Inf")],
    "uuid": [uuid.UUID(int=12345)],
    "globals": [len, os.path.join, dict],
    "module": [os],
    "deep": [[[[[[[[[[]]]]]]]]]],
    # ints of every varint length as items (runs shorter than a block),
    # then other items
    "int_runs": [[0, 63, 64, 8191, 8192, 2**20, 2**27, 2**34, 2**62, -1,
                  -(2**34) - 1, None, 5, 2**40],
                 (100, 200, 10**6, "x", 3)],
    # blocks of ints (OP_INT_RUN) of each width, then other items
    "int_blocks": [list(range(-3, 9)), list(range(100, 120)),
                   list(range(40000, 40012)), [2**40, None]],
}


def main(out):
    os.makedirs(out, exist_ok=True)
    lst = [1]
    lst.append(lst)
    SAMPLES["cycle"] = lst
    for name, obj in SAMPLES.items():
        data = _core.dumps(obj)
        with open(os.path.join(out, name), "wb") as f:
            f.write(b"\x00" + data[HEADER:])
    # one whole message (mode 1)
    with open(os.path.join(out, "whole"), "wb") as f:
        f.write(b"\x01" + _core.dumps({"whole": [1, 2.5, "x"]}))
    # buffer, pinned bytes and handle opcodes referring to the harness's
    # fake references (see fuzz_decode.c): blobs 0 and 1, handles 2 and 3
    hand = {
        "buffer": bytes([0x18, 0, 2, 8, 1, 0, 0]),
        "buffer_fmt": bytes([0x18, 1, 0, 8, 0, 1]) + b"i" + bytes([1, 2]),
        "bytes_pin": bytes([0x19, 0]),
        "str_pin": bytes([0x1A, 0, 52, 1]),
        "handle": bytes([0x10, 2, 0x17, 7, 2, 0x17, 7, 3]),
        "dict_shape": bytes([0x10, 2, 0x11, 1, 0x09, 1]) + b"a" + bytes(
            [0x81, 0x12, 0, 1, 0x82]),
    }
    for name, body in hand.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(b"\x00" + body)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "seeds")
