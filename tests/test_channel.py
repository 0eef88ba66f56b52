"""Channels: rendezvous and buffered, two-phase close, across
interpreters, Ctrl-C, bad input."""

import os
import pickle
import queue as stdlib_queue
import signal
import threading
import time

import pytest

import queue_helpers
import subinterp
from subinterp import _queues as sq


def later(delay, fn, *args):
    t = threading.Timer(delay, fn, args)
    t.start()
    return t


def run_in_thread(fn, *args):
    """Start fn(*args) in a thread; the thread's .outcome is ('ok', value)
    or ('err', exception) once it ended."""
    def target():
        try:
            t.outcome = ("ok", fn(*args))
        except BaseException as exc:  # reported to the test
            t.outcome = ("err", exc)

    t = threading.Thread(target=target)
    t.outcome = None
    t.start()
    return t


# ---------------------------------------------------------------------------
# basics


def test_ends_and_attributes():
    recv, send = sq.create_channel()
    assert isinstance(recv, sq.RecvChannel)
    assert isinstance(send, sq.SendChannel)
    assert recv.id == send.id
    assert recv.maxsize == send.maxsize == 0
    assert not recv.closed and not send.closed
    assert repr(recv) == f"subinterp.RecvChannel(id={recv.id}, maxsize=0)"
    r2, s2 = sq.create_channel(maxsize=5)
    assert s2.maxsize == 5 and r2.id != recv.id
    with pytest.raises(TypeError):
        sq.RecvChannel()
    with pytest.raises(TypeError):
        sq.SendChannel()


def test_exception_hierarchy():
    assert issubclass(sq.ChannelClosedError, sq.ChannelError)
    assert issubclass(sq.ChannelEmptyError, sq.ChannelError)
    assert issubclass(sq.ChannelEmptyError, stdlib_queue.Empty)
    assert issubclass(sq.ChannelFullError, stdlib_queue.Full)
    assert issubclass(sq.ChannelError, subinterp.InterpreterError)


def test_rendezvous_send_returns_once_received():
    recv, send = sq.create_channel()
    t = run_in_thread(send.send, "hello")
    time.sleep(0.1)
    assert t.is_alive()               # nobody received yet
    assert recv.recv(timeout=10) == "hello"
    t.join(10)
    assert t.outcome == ("ok", None)


def test_rendezvous_send_to_waiting_receiver():
    recv, send = sq.create_channel()
    t = run_in_thread(recv.recv)
    time.sleep(0.05)
    send.send(1, timeout=10)
    t.join(10)
    assert t.outcome == ("ok", 1)


def test_rendezvous_send_timeout_sends_nothing():
    recv, send = sq.create_channel()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        send.send("x", timeout=0.05)
    assert time.monotonic() - t0 >= 0.04
    with pytest.raises(sq.ChannelEmptyError):
        recv.recv_nowait()


def test_rendezvous_send_nowait():
    recv, send = sq.create_channel()
    with pytest.raises(sq.ChannelFullError):
        send.send_nowait(1)           # nobody is waiting
    t = run_in_thread(recv.recv, 10)
    deadline = time.monotonic() + 10
    while True:                        # until the receiver is blocked
        try:
            send.send_nowait(2)
            break
        except sq.ChannelFullError:
            assert time.monotonic() < deadline
            time.sleep(0.001)
    t.join(10)
    assert t.outcome == ("ok", 2)


def test_buffered():
    recv, send = sq.create_channel(2)
    send.send(1)
    send.send_nowait(2)
    assert send.qsize() == 2
    with pytest.raises(sq.ChannelFullError):
        send.send_nowait(3)
    with pytest.raises(TimeoutError):
        send.send(3, timeout=0.02)
    assert recv.recv() == 1
    send.send(3, timeout=0)
    assert [recv.recv(), recv.recv()] == [2, 3]


def test_buffered_blocked_sender_refills():
    recv, send = sq.create_channel(1)
    send.send(1)
    t = run_in_thread(send.send, 2)
    time.sleep(0.05)
    assert t.is_alive()
    assert recv.recv() == 1
    t.join(10)
    assert t.outcome == ("ok", None)
    assert recv.recv_nowait() == 2


def test_recv_nowait_and_timeout():
    recv, send = sq.create_channel(1)
    sentinel = object()
    assert recv.recv_nowait(sentinel) is sentinel
    assert recv.recv_nowait(default=None) is None
    with pytest.raises(sq.ChannelEmptyError):
        recv.recv_nowait()
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        recv.recv(timeout=0.05)
    assert time.monotonic() - t0 >= 0.04


def test_iteration_until_closed():
    recv, send = sq.create_channel(3)
    t = later(0.01, queue_helpers.send_all, send, list(range(20)), True)
    assert list(recv) == list(range(20))
    t.join()


def test_send_buffer_roundtrip():
    recv, send = sq.create_channel(1)
    data = bytearray(b"x" * 1000 + b"end")
    send.send_buffer(data)
    got = recv.recv()
    assert bytes(got) == bytes(data)
    with pytest.raises(TypeError):
        send.send_buffer("not a buffer")


# ---------------------------------------------------------------------------
# closing


def test_two_phase_close_drains_then_raises():
    recv, send = sq.create_channel(3)
    for i in range(3):
        send.send(i)
    send.close()
    assert send.closed and recv.closed
    with pytest.raises(sq.ChannelClosedError):
        send.send(99)
    with pytest.raises(sq.ChannelClosedError):
        send.send_nowait(99)
    assert [recv.recv() for _ in range(3)] == [0, 1, 2]
    with pytest.raises(sq.ChannelClosedError) as info:
        recv.recv()
    assert info.value.source is recv
    with pytest.raises(sq.ChannelClosedError):
        recv.recv_nowait(None)
    assert list(recv) == []
    send.close()                      # closing twice is fine


def test_force_close_drops_buffer():
    recv, send = sq.create_channel(3)
    send.send(1)
    send.send(2)
    send.close(force=True)
    with pytest.raises(sq.ChannelClosedError):
        recv.recv_nowait()


def test_recv_end_close_is_forced():
    recv, send = sq.create_channel(3)
    send.send(1)
    recv.close()
    with pytest.raises(sq.ChannelClosedError):
        recv.recv_nowait()
    with pytest.raises(sq.ChannelClosedError):
        send.send(2)


def test_close_after_normal_close_can_force():
    recv, send = sq.create_channel(3)
    send.send(1)
    send.close()
    send.close(force=True)
    with pytest.raises(sq.ChannelClosedError):
        recv.recv_nowait()


def test_close_wakes_every_waiter():
    recv, send = sq.create_channel()
    receivers = [run_in_thread(recv.recv) for _ in range(3)]
    r2, s2 = sq.create_channel()
    senders = [run_in_thread(s2.send, i) for i in range(3)]
    time.sleep(0.1)
    assert all(t.is_alive() for t in receivers + senders)
    send.close()
    s2.close()
    for t in receivers + senders:
        t.join(10)
        assert not t.is_alive()
        assert t.outcome[0] == "err"
        assert isinstance(t.outcome[1], sq.ChannelClosedError)
    # the blocked senders' items were not delivered
    with pytest.raises(sq.ChannelClosedError):
        r2.recv_nowait()


def test_close_wakes_receiver_in_other_interpreter(interp):
    recv, send = sq.create_channel()
    t = interp.call_in_thread(queue_helpers.recv_all, recv)
    send.send("a")
    send.send("b")
    time.sleep(0.05)
    send.close()
    assert t.result(timeout=30) == ["a", "b"]


# ---------------------------------------------------------------------------
# across interpreters


def test_echo_through_other_interpreter(interp):
    to_sub, from_main = sq.create_channel()
    from_sub, to_main = sq.create_channel(4)
    t = interp.call_in_thread(queue_helpers.echo_channel, to_sub, to_main)
    for i in range(500):
        from_main.send(i)
        assert from_sub.recv(timeout=30) == i
    from_main.close()
    assert t.result(timeout=30) == 500


def test_ends_cross_as_the_right_end(interp):
    recv, send = sq.create_channel(2)
    interp.prepare_main(r=recv, s=send)
    interp.exec("s.send(('from', 'sub')); assert type(r).__name__ == "
                "'RecvChannel'")
    assert recv.recv_nowait() == ("from", "sub")
    back = interp.call(queue_helpers.roundtrip, (recv, send))
    assert back == (recv, send)


def test_pickle_ends_by_id():
    recv, send = sq.create_channel(1)
    r = pickle.loads(pickle.dumps(recv))
    s = pickle.loads(pickle.dumps(send))
    assert type(r) is sq.RecvChannel and r == recv
    assert type(s) is sq.SendChannel and s == send
    s.send(1)
    assert recv.recv() == 1


def test_channel_kept_alive_by_one_end():
    recv, send = sq.create_channel(1)
    send.send(1)
    del send
    assert recv.recv_nowait() == 1


@pytest.mark.parametrize("maxsize", [0, 1])
def test_dropping_every_receive_end_closes(maxsize):
    recv, send = sq.create_channel(maxsize)
    again = pickle.loads(pickle.dumps(recv))
    t = run_in_thread(lambda: send.send("a", timeout=60))
    if maxsize:
        t.join(60)
        assert t.outcome == ("ok", None)
        t = run_in_thread(lambda: send.send("b", timeout=60))
    del recv
    assert not send.closed  # another receive end is left
    del again
    # the blocked sender wakes at once; later sends fail at once
    t.join(60)
    assert t.outcome[0] == "err"
    assert type(t.outcome[1]) is sq.ChannelClosedError
    assert send.closed
    with pytest.raises(sq.ChannelClosedError):
        send.send_nowait("c")


def test_receive_end_in_a_message_or_interpreter_keeps_channel_open(interp):
    recv, send = sq.create_channel(2)
    q = sq.Queue()
    q.put(recv)
    del recv
    send.send_nowait(1)
    recv = q.get_nowait()
    interp.prepare_main(recv=recv)
    del recv
    send.send_nowait(2)
    assert not send.closed
    interp.exec("assert recv.recv_nowait() == 1\ndel recv")
    assert send.closed


def test_channel_holding_its_own_ends_is_freed():
    recv, send = sq.create_channel(2)
    probe = pickle.dumps(send)
    send.send_nowait((recv, send))
    send.send_nowait(send)
    del recv, send
    with pytest.raises(sq.ChannelNotFoundError):
        pickle.loads(probe)


# ---------------------------------------------------------------------------
# Ctrl-C and bad input


def test_ctrl_c_interrupts_recv_and_send():
    recv, send = sq.create_channel()
    main = threading.main_thread().ident
    t = later(0.2, signal.pthread_kill, main, signal.SIGINT)
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        recv.recv()
    assert time.monotonic() - t0 < 5
    t.join()
    t = later(0.2, os.kill, os.getpid(), signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        send.send("never delivered")
    t.join()
    with pytest.raises(sq.ChannelEmptyError):
        recv.recv_nowait()


def test_bad_arguments():
    with pytest.raises(ValueError):
        sq.create_channel(-1)
    with pytest.raises(TypeError):
        sq.create_channel("1")
    recv, send = sq.create_channel(1)
    with pytest.raises(ValueError):
        recv.recv(timeout=-1)
    with pytest.raises(ValueError):
        send.send(1, timeout=-1)
    with pytest.raises(TypeError):
        send.close(True)               # force is keyword-only


class Unpicklable:
    def __reduce__(self):
        raise TypeError("no")


def test_unencodable_never_enters():
    recv, send = sq.create_channel(2)
    with pytest.raises(Exception):
        send.send([1, Unpicklable()])
    with pytest.raises(sq.ChannelEmptyError):
        recv.recv_nowait()
