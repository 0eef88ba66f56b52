"""The public names: subinterp and its concurrent.interpreters twin."""

import importlib

import pytest

import subinterp
from subinterp import interpreters


def test_every_public_name_resolves():
    for name in subinterp.__all__:
        assert getattr(subinterp, name) is not None, name
    with pytest.raises(AttributeError):
        subinterp.no_such_name  # noqa: B018


def test_interpreters_module_matches_stdlib_names():
    for name in interpreters.__all__:
        assert getattr(interpreters, name) is not None, name
    try:
        std = importlib.import_module("concurrent.interpreters")
    except ImportError:
        pytest.skip("concurrent.interpreters is new in Python 3.14")
    missing = sorted(set(std.__all__) - set(interpreters.__all__))
    assert missing == [], missing


def test_interpreters_module_works():
    q = interpreters.create_queue()
    interp = interpreters.create()
    try:
        interp.prepare_main(q=q)
        interp.exec("q.put(('hello', 42))")
        assert q.get(timeout=30) == ("hello", 42)
        with pytest.raises(interpreters.QueueEmpty):
            q.get_nowait()
        assert issubclass(interpreters.QueueEmpty, interpreters.QueueError)
    finally:
        interp.close()


def test_lazy_names_do_not_load_threading_in_new_interpreters():
    with subinterp.create() as interp:
        interp.exec(
            "import sys\n"
            "loaded = sorted(m for m in ('threading', 'concurrent.futures',"
            " 'typing', 'queue') if m in sys.modules)\n"
        )
        interp.exec("assert loaded == [], loaded")
