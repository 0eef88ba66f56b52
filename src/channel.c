/* channel.c - channels: a FIFO core (queue.c) seen through two ends.
 *
 * create_channel(maxsize) makes one process-wide channel object and two
 * handles on it: a RecvChannel and a SendChannel.  Both cross to other
 * interpreters like queues do (the handle kind, not the object, says
 * which end arrives).
 *
 *   maxsize 0   rendezvous: send() returns once a receiver has the item
 *               (handed over directly, or taken from the blocked sender);
 *   maxsize N   buffered: send() returns once the item is in the buffer.
 *
 * Closing is two-phase.  SendChannel.close() stops sends: blocked and
 * later senders get ChannelClosedError; receivers drain the buffer, then
 * get ChannelClosedError (iteration stops).  close(force=True) -- and
 * RecvChannel.close(), since nobody would receive any more -- also drops
 * what is buffered.  Either way every blocked sender and receiver, in
 * every interpreter, wakes up at once.
 *
 * When the last receive end goes (every RecvChannel handle, and every
 * message carrying one, is gone) nobody can ever receive again: the
 * channel closes as RecvChannel.close() would, so blocked and later
 * senders get ChannelClosedError instead of waiting forever.  The receive
 * ends are counted apart from the object's reference count (recv_ends),
 * through the receive end's handle kind.
 *
 * Items on a channel are self-contained messages; unlike queue items they
 * stay valid when the sending interpreter is destroyed (UNBOUND_KEEP).
 */
#include "wait.h"

typedef struct {
    fifo_obj fo;
    Py_ssize_t maxsize;  /* immutable */
    /* References to the receive end (handles, messages); atomic: changed
       with no lock held, from any thread.  Each is also one reference in
       fo.base.refcount. */
    atomic_long recv_ends;
} channel_obj;

static void
channel_destroy(sobj *o)
{
    channel_obj *ch = (channel_obj *)o;
    fifo_fini(&ch->fo.f);
    PyMem_RawFree(ch);
}

static void
recv_incref(void *ref)
{
    channel_obj *ch = (channel_obj *)ref;
    atomic_fetch_add(&ch->recv_ends, 1);
    sobj_incref(&ch->fo.base);
}

/* Any thread, no GIL needed, no lock of ours held (like sobj_decref). */
static void
recv_decref(void *ref)
{
    channel_obj *ch = (channel_obj *)ref;
    if (atomic_fetch_sub(&ch->recv_ends, 1) == 1) {
        /* the last receive end: close as RecvChannel.close() does (the
           reference below keeps the channel alive meanwhile) */
        fifo_close(&ch->fo.f, 1);
    }
    sobj_decref(&ch->fo.base);
}

static PyObject *recv_wrap(module_state *st, void *ref);
static PyObject *send_wrap(module_state *st, void *ref);

static const handle_kind recv_kind = {
    .name = "RecvChannel",
    .tag = TAG_RECV_CHANNEL,
    .incref = recv_incref,
    .decref = recv_decref,
    .wrap = recv_wrap,
};

static const handle_kind send_kind = {
    .name = "SendChannel",
    .tag = TAG_SEND_CHANNEL,
    .incref = (void (*)(void *))sobj_incref,
    .decref = (void (*)(void *))sobj_decref,
    .wrap = send_wrap,
};

/* select(): each end does what its name says; items on a channel outlive
 * their sender's interpreter. */
static fifo *
channel_fifo_of(sobj *o, const handle_kind *kind, int *ops, int *unboundop)
{
    *ops = kind == &send_kind ? FIFO_OP_SEND : FIFO_OP_RECV;
    *unboundop = UNBOUND_KEEP;
    return &((channel_obj *)o)->fo.f;
}

static const sobj_type channel_type = {
    .name = "Channel",
    .destroy = channel_destroy,
    .interp_closed = NULL,
    .mutex = fifo_obj_mutex,
    .after_fork = fifo_obj_after_fork,
    .kinds = {&recv_kind, &send_kind},
    .drop_buffer = fifo_obj_drop_buffer,
    .fifo_of = channel_fifo_of,
    .item_encode = item_encode,
    .item_to_object = queue_item_to_object,
    .closed_err = ERR_CHANNEL_CLOSED,
};

static PyObject *
recv_wrap(module_state *st, void *ref)
{
    return handle_get(st, st->channel->RecvChannelType, &recv_kind,
                      (sobj *)ref);
}

static PyObject *
send_wrap(module_state *st, void *ref)
{
    return handle_get(st, st->channel->SendChannelType, &send_kind,
                      (sobj *)ref);
}

static channel_obj *
channel_of(PyObject *self)
{
    return (channel_obj *)((HandleObject *)self)->ref;
}

/* ------------------------------------------------------------------ */
/* creation                                                            */

static PyObject *
coremod_create_channel(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"maxsize", NULL};
    module_state *st = get_mod_state(mod);
    PyObject *maxsize_obj = NULL, *recv = NULL, *send = NULL, *res = NULL;
    Py_ssize_t maxsize;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:create_channel",
                                     kwlist, &maxsize_obj)) {
        return NULL;
    }
    if (maxsize_from_object(maxsize_obj, 0, "0: rendezvous", &maxsize) < 0) {
        return NULL;
    }
    channel_obj *ch = (channel_obj *)fifo_obj_new(sizeof(channel_obj),
                                                  maxsize);
    if (ch == NULL) {
        return NULL;
    }
    atomic_init(&ch->recv_ends, 0);
    ch->maxsize = maxsize;
    /* registered once complete: others may find it by id from now on */
    sobj_register(&ch->fo.base, &channel_type);
    recv = recv_wrap(st, ch);
    if (recv != NULL) {
        send = send_wrap(st, ch);
    }
    sobj_decref(&ch->fo.base);
    if (send != NULL) {
        res = PyTuple_Pack(2, recv, send);
    }
    Py_XDECREF(recv);
    Py_XDECREF(send);
    return res;
}

/* ------------------------------------------------------------------ */
/* both ends                                                           */

static PyObject *
channel_close(PyObject *self, int force)
{
    fifo *f = &channel_of(self)->fo.f;
    Py_BEGIN_ALLOW_THREADS
    fifo_close(f, force);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *
channel_get_closed(PyObject *self, void *Py_UNUSED(closure))
{
    fifo *f = &channel_of(self)->fo.f;
    sub_mutex_lock(&f->mutex);
    int closed = f->closed != FIFO_OPEN;
    sub_mutex_unlock(&f->mutex);
    return PyBool_FromLong(closed);
}

static PyObject *
channel_get_maxsize(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(channel_of(self)->maxsize);
}

static PyObject *
channel_qsize(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    fifo *f = &channel_of(self)->fo.f;
    sub_mutex_lock(&f->mutex);
    Py_ssize_t n = f->count;
    sub_mutex_unlock(&f->mutex);
    return PyLong_FromSsize_t(n);
}

static PyObject *
channel_repr(PyObject *self)
{
    channel_obj *ch = channel_of(self);
    return PyUnicode_FromFormat("subinterp.%s(id=%lld, maxsize=%zd)",
                                ((HandleObject *)self)->kind->name,
                                (long long)ch->fo.base.id, ch->maxsize);
}

/* ------------------------------------------------------------------ */
/* RecvChannel                                                         */

static PyObject *
recv_impl(PyObject *self, const deadline *dl, PyObject *dflt, int iterating)
{
    module_state *st = get_mod_state_by_type(Py_TYPE(self));
    sel_case c = {.f = &channel_of(self)->fo.f, .kind = CASE_RECV};
    int index;
    item got = {.m = NULL};

    int r = select_blocking(&c, 1, 0, dl, &index, &got);
    switch (r) {
    case SEL_DONE: {
        /* the iterator has no wrapper: FOR_ITER stores what tp_iternext
           returns without running signal handlers in between */
        PyObject *taken = NULL;
        PyObject *obj = queue_item_to_object(st, self, c.f, &got,
                                             iterating ? NULL : &taken);
        return iterating ? obj : taken_pair(obj, taken);
    }
    case SEL_NO_MEMORY:
        set_err(st, ERR_NO_MEMORY);
        return NULL;
    case SEL_CLOSED:
        if (!iterating) {
            set_err(st, ERR_CHANNEL_CLOSED, self);
        }
        return NULL;  /* iterating: StopIteration */
    case SEL_TIMEOUT:
        if (dl == NULL && dflt != NULL) {
            return taken_pair(Py_NewRef(dflt), NULL);
        }
        set_err(st, dl == NULL ? ERR_CHANNEL_EMPTY : ERR_TIMEOUT);
        return NULL;
    default:
        return NULL;
    }
}

/* _recv(timeout): called by recv() only */
static PyObject *
recvchannel_recv(PyObject *self, PyObject *timeout)
{
    deadline dl;
    if (deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    return recv_impl(self, &dl, NULL, 0);
}

static PyObject *
recvchannel_recv_nowait(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"default", NULL};
    PyObject *dflt = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:recv_nowait", kwlist,
                                     &dflt)) {
        return NULL;
    }
    return recv_impl(self, NULL, dflt, 0);
}

static PyObject *
recvchannel_iternext(PyObject *self)
{
    static const deadline forever = {.forever = 1};
    return recv_impl(self, &forever, NULL, 1);
}

/* async for: recv_async until the channel is closed and drained (the
 * coroutine is the Python wrapper _anext, select.c) */
static PyObject *
recvchannel_anext(PyObject *self)
{
    return PyObject_CallMethod(self, "_anext", NULL);
}

static PyObject *
recvchannel_close(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return channel_close(self, 1);
}

static PyMethodDef recv_methods[] = {
    /* recv() and recv_nowait() are Python wrappers of these (select.c) */
    {"_recv", recvchannel_recv, METH_O,
     "_recv($self, timeout, /)\n--\n\n"
     "recv(), returning (object, taken) (internal)."},
    {"_recv_nowait", _PyCFunction_CAST(recvchannel_recv_nowait),
     METH_VARARGS | METH_KEYWORDS,
     "_recv_nowait($self, default=<unset>)\n--\n\n"
     "recv_nowait(), returning (object, taken) (internal)."},
    {"close", recvchannel_close, METH_NOARGS,
     "close($self, /)\n--\n\n"
     "Close the channel for everybody: what is buffered is dropped, and "
     "every sender and receiver gets ChannelClosedError."},
    {"qsize", channel_qsize, METH_NOARGS,
     "qsize($self, /)\n--\n\nNumber of buffered objects."},
    {"__reduce__", handle_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef channel_getset[] = {
    {"id", handle_get_id, NULL, "The channel's id, unique in the process.",
     NULL},
    {"closed", channel_get_closed, NULL,
     "True once close() was called on either end.", NULL},
    {"maxsize", channel_get_maxsize, NULL,
     "Buffer size (0: rendezvous).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot recv_slots[] = {
    {Py_tp_doc,
     "The receiving end of a channel (see create_channel()).\n\n"
     "Iterating over it receives until the channel is closed and "
     "drained."},
    HANDLE_TYPE_SLOTS,
    {Py_tp_repr, channel_repr},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, recvchannel_iternext},
    {Py_am_aiter, PyObject_SelfIter},
    {Py_am_anext, recvchannel_anext},
    {Py_tp_methods, recv_methods},
    {Py_tp_getset, channel_getset},
    {0, NULL},
};

static PyType_Spec recv_spec = {
    .name = "subinterp.RecvChannel",
    .basicsize = sizeof(HandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = recv_slots,
};

/* ------------------------------------------------------------------ */
/* SendChannel                                                         */

static PyObject *
send_impl(PyObject *self, PyObject *obj, const deadline *dl)
{
    module_state *st = get_mod_state_by_type(Py_TYPE(self));
    PyObject *res = NULL;
    sel_case c = {.f = &channel_of(self)->fo.f, .kind = CASE_SEND};
    int index;

    if (item_encode(st, obj, UNBOUND_KEEP, &c.send_item) < 0) {
        return NULL;
    }
    switch (select_blocking(&c, 1, 0, dl, &index, NULL)) {
    case SEL_DONE:
        res = Py_NewRef(Py_None);
        break;
    case SEL_CLOSED:
        set_err(st, ERR_CHANNEL_CLOSED, self);
        break;
    case SEL_TIMEOUT:
        set_err(st, dl == NULL ? ERR_CHANNEL_FULL : ERR_TIMEOUT);
        break;
    case SEL_NO_MEMORY:
        set_err(st, ERR_NO_MEMORY);
        break;
    default:
        break;
    }
    item_clear(&c.send_item);
    return res;
}

/* The store_fn of send(), send_nowait() and send_buffer() (extra:
 * Py_True to send obj's buffer without copying it). */
static PyObject *
send_store(PyObject *self, PyObject *obj, int block, PyObject *timeout,
           PyObject *buffer)
{
    deadline dl;
    PyObject *view = NULL, *res;
    if (block && deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    if (buffer == Py_True) {
        /* The codec carries a memoryview without copying its memory. */
        view = PyMemoryView_FromObject(obj);
        if (view == NULL) {
            return NULL;
        }
        obj = view;
    }
    res = send_impl(self, obj, block ? &dl : NULL);
    Py_XDECREF(view);
    return res;
}

/* _send(block, timeout, buffer) -> a _StoreOp; send(), send_nowait() and
 * send_buffer() are Python wrappers storing obj into it (select.c). */
static PyObject *
sendchannel_send_op(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_send(block, timeout, buffer)");
        return NULL;
    }
    int block = PyObject_IsTrue(args[0]);
    int buffer = block < 0 ? -1 : PyObject_IsTrue(args[2]);
    if (buffer < 0) {
        return NULL;
    }
    return store_op_new(get_mod_state_by_type(Py_TYPE(self)), send_store, self, block, args[1],
                        buffer ? Py_True : Py_False);
}

static PyObject *
sendchannel_close(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"force", NULL};
    int force = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$p:close", kwlist,
                                     &force)) {
        return NULL;
    }
    return channel_close(self, force);
}

static PyMethodDef send_methods[] = {
    /* send(), send_nowait() and send_buffer() are Python wrappers
       around _send (select.c) */
    {"_send", _PyCFunction_CAST(sendchannel_send_op), METH_FASTCALL,
     "_send($self, block, timeout, buffer, /)\n--\n\n"
     "An operation sending the object stored into it (internal)."},
    {"close", _PyCFunction_CAST(sendchannel_close),
     METH_VARARGS | METH_KEYWORDS,
     "close($self, *, force=False)\n--\n\n"
     "Stop sending.  Receivers still get what is buffered, then "
     "ChannelClosedError; blocked senders get ChannelClosedError now.  "
     "force=True also drops what is buffered."},
    {"qsize", channel_qsize, METH_NOARGS,
     "qsize($self, /)\n--\n\nNumber of buffered objects."},
    {"__reduce__", handle_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot send_slots[] = {
    {Py_tp_doc, "The sending end of a channel (see create_channel())."},
    HANDLE_TYPE_SLOTS,
    {Py_tp_repr, channel_repr},
    {Py_tp_methods, send_methods},
    {Py_tp_getset, channel_getset},
    {0, NULL},
};

static PyType_Spec send_spec = {
    .name = "subinterp.SendChannel",
    .basicsize = sizeof(HandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = send_slots,
};

/* ------------------------------------------------------------------ */
/* module functions                                                    */

static PyMethodDef channel_functions[] = {
    {"create_channel", _PyCFunction_CAST(coremod_create_channel),
     METH_VARARGS | METH_KEYWORDS,
     "create_channel(maxsize=0)\n--\n\n"
     "Return (recv, send): the two ends of a new channel.  maxsize 0 "
     "makes a rendezvous channel (send returns once received), N a "
     "channel buffering up to N objects.  When every receive end is gone "
     "(in every interpreter and message), the channel closes as "
     "recv.close() does."},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------ */
/* exceptions, made on first use (their bases live in the queue module) */

static void
clear_exceptions(struct channel_state *cs)
{
    Py_CLEAR(cs->ChannelError);
    Py_CLEAR(cs->ChannelNotFoundError);
    Py_CLEAR(cs->ChannelClosedError);
    Py_CLEAR(cs->ChannelEmptyError);
    Py_CLEAR(cs->ChannelFullError);
}

static const exc_spec channel_exceptions[] = {
    {"ChannelError", {"subinterp.InterpreterError"},
     "A channel operation failed."},
    {"ChannelNotFoundError", {"ChannelError"},
     "The channel no longer exists."},
    {"ChannelClosedError", {"ChannelError"},
     "The channel is closed (and, for receivers, drained).\n\n"
     "From select(), ``source`` is the channel end of the case."},
    {"ChannelEmptyError", {"ChannelError", "queue.Empty"},
     "recv_nowait() found nothing to receive."},
    {"ChannelFullError", {"ChannelError", "queue.Full"},
     "send_nowait() could not send without waiting."},
};

int
channel_exceptions_ensure(module_state *st)
{
    struct channel_state *cs = st->channel;
    PyObject **const slots[] = {
        &cs->ChannelError, &cs->ChannelNotFoundError,
        &cs->ChannelClosedError, &cs->ChannelEmptyError,
        &cs->ChannelFullError,
    };
    return exceptions_make(st->queue->module, channel_exceptions,
                           (int)Py_ARRAY_LENGTH(channel_exceptions), slots,
                           &cs->have_exceptions);
}

PyObject *
channel_exception(module_state *st, int err)
{
    struct channel_state *cs = st->channel;
    if (channel_exceptions_ensure(st) < 0) {
        return NULL;
    }
    switch (err) {
    case ERR_CHANNEL_CLOSED:
        return cs->ChannelClosedError;
    case ERR_CHANNEL_EMPTY:
        return cs->ChannelEmptyError;
    case ERR_CHANNEL_FULL:
        return cs->ChannelFullError;
    case ERR_CHANNEL_NOT_FOUND:
        return cs->ChannelNotFoundError;
    default:
        return cs->ChannelError;
    }
}

/* ------------------------------------------------------------------ */
/* init                                                                */

int
channel_init(PyObject *mod, module_state *st)
{
    struct channel_state *cs = PyMem_Calloc(1, sizeof(*cs));
    if (cs == NULL) {
        return set_err(st, ERR_NO_MEMORY);
    }
    st->channel = cs;
    if (handle_type_add(mod, st, &recv_spec, NULL, &cs->RecvChannelType) < 0 ||
        handle_type_add(mod, st, &send_spec, NULL, &cs->SendChannelType) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(mod, channel_functions);
}

int
channel_traverse(module_state *st, visitproc visit, void *arg)
{
    struct channel_state *cs = st->channel;
    Py_VISIT(cs->RecvChannelType);
    Py_VISIT(cs->SendChannelType);
    Py_VISIT(cs->ChannelError);
    Py_VISIT(cs->ChannelNotFoundError);
    Py_VISIT(cs->ChannelClosedError);
    Py_VISIT(cs->ChannelEmptyError);
    Py_VISIT(cs->ChannelFullError);
    return 0;
}

void
channel_clear(module_state *st)
{
    struct channel_state *cs = st->channel;
    Py_CLEAR(cs->RecvChannelType);
    Py_CLEAR(cs->SendChannelType);
    clear_exceptions(cs);
    PyMem_Free(cs);
    st->channel = NULL;
}
