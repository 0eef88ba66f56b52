"""The error path of the core: every error code becomes its exception
class and message in one place (set_err in src/module.c), and each
component makes its own exception classes on first use."""

import pickle

import pytest

import subinterp
import subinterp._core as _core
from subinterp import _queues as sq

from script_helpers import run_script


def _dead_pickle(make):
    obj = make()
    data = pickle.dumps(obj)
    oid = obj.id
    del obj
    return data, oid


def test_unpickling_dead_queue_raises_queue_not_found():
    data, qid = _dead_pickle(sq.Queue)
    with pytest.raises(sq.QueueNotFoundError) as info:
        pickle.loads(data)
    assert str(info.value) == (
        f"queue {qid} not found (every handle to it was dropped, or it "
        "never existed)")


def test_unpickling_dead_channel_raises_channel_not_found():
    recv, send = sq.create_channel()
    data = pickle.dumps(send)
    cid = send.id
    del recv, send
    with pytest.raises(sq.ChannelNotFoundError) as info:
        pickle.loads(data)
    assert str(info.value) == f"channel {cid} not found"


def test_unpickling_dead_lock_raises_interpreter_error():
    data, lid = _dead_pickle(subinterp.Lock)
    with pytest.raises(subinterp.InterpreterError) as info:
        pickle.loads(data)
    assert type(info.value) is subinterp.InterpreterError
    assert str(info.value) == f"object {lid} not found"


def test_select_on_closed_channel_names_its_source():
    recv, send = sq.create_channel()
    send.close()
    with pytest.raises(sq.ChannelClosedError) as info:
        sq.select([recv], timeout=0)
    assert info.value.source is recv
    assert str(info.value) == "the channel is closed"


def test_lock_errors_keep_their_builtin_classes():
    lock = subinterp.Lock()
    with pytest.raises(RuntimeError, match="^release unlocked lock$"):
        lock.release()
    sem = subinterp.BoundedSemaphore(1)
    with pytest.raises(ValueError,
                       match="^Semaphore released too many times$"):
        sem.release()
    with pytest.raises(ValueError, match="^can't specify a timeout for a "
                                         "non-blocking call$"):
        lock.acquire(False, 1)


def test_each_component_makes_its_own_exception_classes():
    # In a fresh process, the lock error comes first: the classes of
    # locks are made without those of queues and channels, and each
    # later class still has its bases.
    out = run_script("""
        import queue, threading
        import subinterp
        from subinterp import _queues as sq
        b = subinterp.Barrier(2)
        b.abort()
        try:
            b.wait()
        except threading.BrokenBarrierError as e:
            assert type(e).__name__ == "BrokenBarrierError", type(e)
            assert type(e).__module__ == "subinterp", type(e).__module__
        recv, send = sq.create_channel()
        try:
            recv.recv_nowait()
        except queue.Empty as e:
            assert isinstance(e, sq.ChannelError)
            assert isinstance(e, subinterp.InterpreterError)
            assert str(e) == "nothing to receive"
        q = sq.Queue()
        try:
            q.get_nowait()
        except queue.Empty as e:
            assert isinstance(e, sq.QueueError)
            assert isinstance(e, RuntimeError)
            assert str(e) == "the queue is empty"
        try:
            q.put(1, unbounditems=5)
        except NotImplementedError as e:
            assert isinstance(e, ValueError)
        print("ok")
    """, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_exception_lookup_by_name_makes_every_class():
    for name in sq.LAZY_NAMES:
        cls = _core._exception(name)
        assert cls.__name__ == name
        assert getattr(sq, name) is cls
