"""Functions and classes the codec tests send to other interpreters, by
reference (new interpreters start with our sys.path).

Kept apart from the test module so that importing them in a fresh
interpreter does not import pytest.
"""

import collections
import dataclasses
import datetime
import enum
import pickle
import sys

import subinterp
from subinterp import _core


def echo(x):
    return x


def type_name(x):
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


def echo_with_type(x):
    return x, type_name(x)


def identity_pairs(x):
    """Which items of the list x are the same object."""
    return [[a is b for b in x] for a in x]


def call(fn, *args):
    return fn(*args)


def write_first(view, value):
    """Write into a shared buffer received as a memoryview."""
    view[0] = value
    return view.readonly


def view_info(view):
    return (type(view).__name__, view.readonly, view.format, view.shape,
            bytes(view[:8]) if view.ndim == 1 else view.tolist())


def view_layout(view):
    return (view.format, view.itemsize, view.shape, view.readonly,
            view.tolist())


def make_shared(n, fill=b"x"):
    """A writable buffer of this interpreter, shared (the receiver views
    it without a copy)."""
    data = bytearray(fill * n)
    return _core.share(data, writable=True)


def make_view(n):
    return memoryview(bytearray(b"v" * n))


def put_shared(q, n):
    data = bytearray(b"q" * n)
    q.put(_core.share(data))


def codec_debug():
    return _core._codec_debug()


def interp_id():
    return subinterp.get_current().id


def datetime_module():
    return datetime.datetime.__module__


def which_main():
    main = sys.modules.get("__mp_main__")
    return None if main is None else getattr(main, "__file__", None)


class Point(collections.namedtuple("Point", "x y")):
    pass


@dataclasses.dataclass
class Record:
    name: str
    values: list
    nested: dict = dataclasses.field(default_factory=dict)


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class MyList(list):
    pass


class MyDict(dict):
    pass


class MyStr(str):
    pass


class MyInt(int):
    pass


class Outer:
    class Inner:
        def method(self):
            return "inner"

    def method(self, x):
        return ("outer", x)

    @staticmethod
    def static(x):
        return x * 3

    @classmethod
    def klass(cls, x):
        return (cls.__name__, x)


OBJ = Outer()


class BigBuffer:
    """Pickles its data out-of-band (protocol 5)."""

    def __init__(self, data):
        self.data = data

    def __reduce_ex__(self, protocol):
        if protocol >= 5:
            return type(self)._rebuild, (pickle.PickleBuffer(self.data),)
        return type(self)._rebuild, (bytes(self.data),)

    @classmethod
    def _rebuild(cls, buf):
        view = memoryview(buf)
        obj = cls.__new__(cls)
        obj.data = view
        return obj


class Unpicklable:
    def __reduce__(self):
        raise TypeError("no pickling for you")


def module_level(x, y=10):
    return x + y


def uses_global(x):
    return collections.Counter(x)
