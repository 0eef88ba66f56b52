/* aio.c - the awaitable operations of queues, channels, select() and
 * the locks, for asyncio (subinterp/_aiowait.py is the Python side).
 *
 * An event loop watches one _AioHub: a file descriptor that the wait
 * engine writes when it fires a waiter of that loop (the WAKE_FD kind,
 * wait.c).  An _AioOp is one operation of a task: start() runs the
 * source's poll step with the GIL (done at once when possible), else
 * links its waiter on the sources and the parking list; the loop's
 * reader callback, drain(), takes the fired waiters and completes their
 * operations; withdraw() and cancel() run the source's withdraw step,
 * for a timeout and a cancelled task.  No thread waits for anybody.
 *
 * Lifetime: the payload (aio_wait and the source's arg) is C heap
 * memory, as is the hub's core (wait_hub): firers touch only those.
 * The hub object holds a reference to each op of its loop from start()
 * until the op's result is taken or the op is given up (WAITING, and
 * DONE after a drain), on a list the garbage collector traverses: the
 * hub -> op -> future -> task -> coroutine -> op cycles of a loop dropped
 * with its tasks pending are collectable.  A registered op is never
 * freed: the hub lets go of it only after withdrawing it.
 *
 * The loop letting go of its reader callback (loop.close() drops it;
 * subinterp/_aiowait.py) closes the hub: nobody can take the results of
 * its ops any more, so each is given up as if its task were cancelled
 * (withdrawn; a completed one undone: an item goes back to its FIFO, a
 * lock is released), without touching the closed loop's futures.
 *
 * States, all under the GIL of the loop's interpreter:
 *
 *   NEW --start--> WAITING --drain/withdraw--> DONE --result--> FINISHED
 *                      \                         \--cancel--> FINISHED
 *                       `--withdraw--> TIMED_OUT / FINISHED    (undone)
 *
 * An op dropped in state DONE is undone too: an item taken for a task
 * that will never see it goes back to the head of its FIFO.
 */
#include "wait.h"

#include <errno.h>
#include <string.h>

enum {
    OP_NEW = 0,
    OP_WAITING,     /* registered: on its hub's list, which holds it */
    OP_DONE,        /* completed; the result not taken yet */
    OP_TIMED_OUT,   /* withdrawn by its timeout */
    OP_FAILED,      /* exc is the outcome */
    OP_FINISHED,    /* result taken, or undone */
};

typedef struct AioHubObject AioHubObject;

typedef struct AioOpObject {
    PyObject_HEAD
    const aio_op_kind *kind;    /* immutable */
    aio_wait *aw;               /* the payload (C heap) */
    PyObject *keep;             /* what the payload borrows from */
    /* On the hub's list (a reference held by the hub): hub is the hub
       (borrowed: it unlinks its ops before it goes), NULL when not. */
    AioHubObject *hub;
    struct AioOpObject *hprev, *hnext;
    PyObject *future;           /* the Python layer's */
    PyObject *exc;              /* OP_FAILED */
    int state;
} AioOpObject;

struct AioHubObject {
    PyObject_HEAD
    wait_hub *h;                /* one reference */
    AioOpObject *ops;           /* linked ops, one reference each */
    int closed;                 /* close() ran: start() refused */
};

static void op_give_up(AioOpObject *op);

/* ------------------------------------------------------------------ */
/* _AioHub                                                             */

/* Put op on hub's list: the hub holds a reference to it from here. */
static void
hub_link(AioHubObject *hub, AioOpObject *op)
{
    INVARIANT(op->hub == NULL, "an op is on one hub's list at a time");
    op->hub = hub;
    op->hprev = NULL;
    op->hnext = hub->ops;
    if (hub->ops != NULL) {
        hub->ops->hprev = op;
    }
    hub->ops = op;
    Py_INCREF(op);
}

/* Take op off its hub's list, if it is on one, and drop the hub's
 * reference: a caller that still uses op holds one of its own. */
static void
hub_unlink(AioOpObject *op)
{
    AioHubObject *hub = op->hub;
    if (hub == NULL) {
        return;
    }
    if (op->hprev != NULL) {
        op->hprev->hnext = op->hnext;
    }
    else {
        hub->ops = op->hnext;
    }
    if (op->hnext != NULL) {
        op->hnext->hprev = op->hprev;
    }
    op->hub = NULL;
    op->hprev = op->hnext = NULL;
    Py_DECREF(op);
}

/* The loop let go of the hub, or the hub is collected: nobody will take
 * the outcome of its ops, so give each up (op_give_up unlinks it; what
 * dropping it runs may link or unlink others, hence the re-reading of
 * the head). */
static void
hub_close_ops(AioHubObject *hub)
{
    hub->closed = 1;
    while (hub->ops != NULL) {
        AioOpObject *op = hub->ops;
        Py_INCREF(op);
        op_give_up(op);
        Py_DECREF(op);
    }
}

static PyObject *
hub_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 ||
        (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "_AioHub() takes no arguments");
        return NULL;
    }
    AioHubObject *self = (AioHubObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    self->h = wait_hub_new();
    if (self->h == NULL) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
hub_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    for (AioOpObject *op = ((AioHubObject *)self)->ops; op != NULL;
         op = op->hnext) {
        Py_VISIT((PyObject *)op);
    }
    return 0;
}

/* Garbage (with its loop, say): its ops are too, or they would keep it
 * alive. */
static int
hub_clear(PyObject *self)
{
    hub_close_ops((AioHubObject *)self);
    return 0;
}

static void
hub_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    AioHubObject *hub = (AioHubObject *)self;
    PyObject_GC_UnTrack(self);
    /* a linked op holds no reference to its hub: give them up first */
    hub_close_ops(hub);
    if (hub->h != NULL) {
        /* a registered wait holds a reference of its own (none is left
           now), and so does a firer's publish, through its waiter */
        wait_hub_decref(hub->h);
    }
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
hub_fileno(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(wait_hub_fd(((AioHubObject *)self)->h));
}

static PyObject *
hub_close(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    hub_close_ops((AioHubObject *)self);
    Py_RETURN_NONE;
}

/* Complete the operations whose waiters fired; a list of those that are
 * over (DONE or FAILED), for the caller to resolve their futures.  A
 * DONE op stays on the hub's list until its result is taken (or it is
 * given up); a FAILED one leaves it after the loop.  Completing one may
 * run signal handlers (an interpreter's stop, aio_wait_fired), which may
 * cancel or give up others of the chain: each op of the chain is held
 * first, and handled only while it still waits. */
static PyObject *
hub_drain(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *done = PyList_New(0);
    if (done == NULL) {
        return NULL;
    }
    Py_ssize_t n = 0;
    waiter *w = wait_hub_take(((AioHubObject *)self)->h);
    for (waiter *x = w; x != NULL; x = x->hnext) {
        n++;
    }
    /* PyMem_Malloc and Py_INCREF run no Python code */
    AioOpObject **held = PyMem_Malloc((n ? n : 1) * sizeof(*held));
    if (held == NULL) {
        /* the waiters are taken already: complete them all the same;
           only a handler cancelling another of them is not guarded */
        PyErr_Clear();
    }
    for (Py_ssize_t i = 0; held != NULL && i < n; i++, w = w->hnext) {
        /* the first member: an aio_wait's waiter */
        held[i] = (AioOpObject *)Py_NewRef(((aio_wait *)w)->owner);
    }
    for (Py_ssize_t i = 0; held != NULL ? i < n : w != NULL; i++) {
        AioOpObject *op = held != NULL ? held[i]
                                       : (AioOpObject *)((aio_wait *)w)->owner;
        if (held == NULL) {
            w = w->hnext;   /* a new registration resets it */
        }
        if (op->state != OP_WAITING) {
            continue;       /* given up meanwhile */
        }
        int r = aio_wait_fired(op->aw);
        if (r != 0) {
            if (r > 0) {
                op->state = OP_DONE;
            }
            else {
                op->state = OP_FAILED;
                op->exc = PyErr_GetRaisedException();
            }
            /* on failure to append, the op is still resolved: its task
               finds the outcome when it is cancelled or times out */
            if (PyList_Append(done, (PyObject *)op) < 0) {
                PyErr_Clear();
            }
        }
    }
    if (held != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_DECREF(held[i]);
        }
        PyMem_Free(held);
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(done); i++) {
        AioOpObject *op = (AioOpObject *)PyList_GET_ITEM(done, i);
        if (op->state == OP_FAILED) {
            hub_unlink(op);     /* the list's reference keeps it */
        }
    }
    return done;
}

static PyObject *
aio_pending(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(aio_wait_count());
}

static PyMethodDef hub_methods[] = {
    {"fileno", hub_fileno, METH_NOARGS,
     "fileno($self, /)\n--\n\nThe descriptor the loop watches."},
    {"drain", hub_drain, METH_NOARGS,
     "drain($self, /)\n--\n\n"
     "Complete the operations whose waits fired; return those that are "
     "over."},
    {"close", hub_close, METH_NOARGS,
     "close($self, /)\n--\n\n"
     "The loop let go of the hub: give up every operation of its tasks "
     "(withdrawn; a completed one undone) and refuse new ones."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot hub_slots[] = {
    {Py_tp_doc,
     "_AioHub()\n--\n\n"
     "What one event loop watches for its tasks' waits (internal)."},
    {Py_tp_new, hub_new},
    {Py_tp_dealloc, hub_dealloc},
    {Py_tp_traverse, hub_traverse},
    {Py_tp_clear, hub_clear},
    {Py_tp_methods, hub_methods},
    {0, NULL},
};

static PyType_Spec hub_spec = {
    .name = "subinterp._core._AioHub",
    .basicsize = sizeof(AioHubObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_HAVE_GC,
    .slots = hub_slots,
};

/* ------------------------------------------------------------------ */
/* _AioOp                                                              */

PyObject *
aio_op_new(module_state *st, const aio_op_kind *kind, aio_wait *a,
           PyObject *keep)
{
    AioOpObject *op = PyObject_GC_New(AioOpObject, st->queue->AioOpType);
    if (op == NULL) {
        kind->free(a);
        return NULL;
    }
    op->kind = kind;
    op->aw = a;
    a->owner = op;
    a->registered = 0;
    op->keep = Py_XNewRef(keep);
    op->hub = NULL;
    op->hprev = op->hnext = NULL;
    op->future = NULL;
    op->exc = NULL;
    op->state = OP_NEW;
    PyObject_GC_Track(op);
    return (PyObject *)op;
}

static int
op_traverse(PyObject *self, visitproc visit, void *arg)
{
    AioOpObject *op = (AioOpObject *)self;
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(op->keep);
    Py_VISIT(op->future);
    Py_VISIT(op->exc);
    return 0;
}

static int
op_clear(PyObject *self)
{
    AioOpObject *op = (AioOpObject *)self;
    /* keep stays: the payload borrows from it.  An op on a hub's list
       (WAITING, DONE) is garbage with its hub, whose clear or dealloc
       gives it up. */
    Py_CLEAR(op->future);
    Py_CLEAR(op->exc);
    return 0;
}

static void
op_dealloc(PyObject *self)
{
    AioOpObject *op = (AioOpObject *)self;
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    INVARIANT(op->hub == NULL && op->state != OP_WAITING,
              "the hub holds a reference to its registered ops");
    /* nobody took the result of a DONE op: never lose an item */
    op_give_up(op);
    op->kind->free(op->aw);
    (void)op_clear(self);
    Py_CLEAR(op->keep);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
op_start(PyObject *self, PyObject *hub)
{
    AioOpObject *op = (AioOpObject *)self;
    module_state *st = get_mod_state_by_type(Py_TYPE(self));
    if (!Py_IS_TYPE(hub, st->queue->AioHubType)) {
        PyErr_SetString(PyExc_TypeError, "start() needs an _AioHub");
        return NULL;
    }
    if (op->state != OP_NEW) {
        PyErr_SetString(PyExc_RuntimeError, "the operation was started");
        return NULL;
    }
    if (((AioHubObject *)hub)->closed) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the event loop let go of this hub");
        return NULL;
    }
    int r = aio_wait_start(op->aw, ((AioHubObject *)hub)->h);
    if (r < 0) {
        op->state = OP_FINISHED;
        return NULL;
    }
    if (r > 0) {
        op->state = OP_DONE;
        Py_RETURN_TRUE;
    }
    op->state = OP_WAITING;
    hub_link((AioHubObject *)hub, op);
    Py_RETURN_FALSE;
}

/* WAITING: withdraw.  1 withdrawn (off the hub's list), 0 completed
 * meanwhile (DONE, on it until the result is taken).  The caller holds
 * a reference to op. */
static int
op_withdraw_now(AioOpObject *op, int new_state)
{
    int withdrawn = aio_wait_withdraw(op->aw);
    op->state = withdrawn ? new_state : OP_DONE;
    if (withdrawn) {
        hub_unlink(op);
    }
    return withdrawn;
}

/* Nobody will take op's outcome -- its task was cancelled, its loop let
 * go of the hub, or op is being deallocated (then off every list):
 * withdraw it if it waits, undo it if it completed (a received item goes
 * back to the head of its FIFO, an acquired lock is released), and take
 * it off its hub's list.  The caller holds a reference to op, unless it
 * is the deallocation. */
static void
op_give_up(AioOpObject *op)
{
    if (op->state == OP_WAITING) {
        (void)op_withdraw_now(op, OP_FINISHED);
    }
    if (op->state == OP_DONE) {
        op->kind->undo(op->aw);
    }
    op->state = OP_FINISHED;
    hub_unlink(op);
}

/* withdraw(): the timeout passed.  True when the operation was
 * withdrawn (result() gives the timeout's outcome), False when it is
 * over anyway (completed meanwhile, or failed). */
static PyObject *
op_withdraw(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    AioOpObject *op = (AioOpObject *)self;
    int withdrawn = 0;
    Py_INCREF(self);
    if (op->state == OP_WAITING) {
        withdrawn = op_withdraw_now(op, OP_TIMED_OUT);
    }
    Py_DECREF(self);
    return PyBool_FromLong(withdrawn);
}

/* cancel(): the awaiting task was cancelled.  Withdraw; what completed
 * meanwhile and would be lost is undone (a received item goes back). */
static PyObject *
op_cancel(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    Py_INCREF(self);
    op_give_up((AioOpObject *)self);
    Py_DECREF(self);
    Py_RETURN_NONE;
}

static PyObject *
op_result(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    AioOpObject *op = (AioOpObject *)self;
    module_state *st = get_mod_state_by_type(Py_TYPE(self));
    PyObject *res = NULL;
    switch (op->state) {
    case OP_DONE:
        op->state = OP_FINISHED;
        res = op->kind->result(st, op->aw);
        hub_unlink(op);     /* the caller's reference keeps it */
        break;
    case OP_TIMED_OUT:
        op->state = OP_FINISHED;
        res = op->kind->timeout(st, op->aw);
        break;
    case OP_FAILED:
        op->state = OP_FINISHED;
        PyErr_SetRaisedException(op->exc);
        op->exc = NULL;
        break;
    default:
        PyErr_SetString(PyExc_RuntimeError,
                        "the operation has no result (yet)");
        break;
    }
    return res;
}

static PyObject *
op_get_future(PyObject *self, void *Py_UNUSED(closure))
{
    AioOpObject *op = (AioOpObject *)self;
    return Py_NewRef(op->future != NULL ? op->future : Py_None);
}

static int
op_set_future(PyObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    AioOpObject *op = (AioOpObject *)self;
    Py_XSETREF(op->future, Py_XNewRef(value));
    return 0;
}

static PyMethodDef op_methods[] = {
    {"start", op_start, METH_O,
     "start($self, hub, /)\n--\n\n"
     "Try the operation; True when it is over, False when it waits for "
     "the hub's loop."},
    {"withdraw", op_withdraw, METH_NOARGS,
     "withdraw($self, /)\n--\n\n"
     "The timeout passed: True when withdrawn, False when it is over "
     "anyway."},
    {"cancel", op_cancel, METH_NOARGS,
     "cancel($self, /)\n--\n\n"
     "The task was cancelled: withdraw, and undo a completed receive."},
    {"result", op_result, METH_NOARGS,
     "result($self, /)\n--\n\nThe outcome (once over)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef op_getset[] = {
    {"future", op_get_future, op_set_future,
     "The Future the awaiting task waits on.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot op_slots[] = {
    {Py_tp_doc, "One awaitable operation (internal)."},
    {Py_tp_dealloc, op_dealloc},
    {Py_tp_traverse, op_traverse},
    {Py_tp_clear, op_clear},
    {Py_tp_methods, op_methods},
    {Py_tp_getset, op_getset},
    {0, NULL},
};

static PyType_Spec op_spec = {
    .name = "subinterp._core._AioOp",
    .basicsize = sizeof(AioOpObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = op_slots,
};

static PyMethodDef aio_functions[] = {
    {"_aio_pending", aio_pending, METH_NOARGS,
     "_aio_pending()\n--\n\n"
     "Number of event-loop waits registered in the process (debugging)."},
    {NULL, NULL, 0, NULL},
};

/* The awaitable methods of the locks and Event, around the C parts
 * (sync.c); the queues' and channels' are with their other wrappers
 * (select.c). */
static const char sync_wrappers[] =
    "async def _run(op, timeout):\n"
    "    from subinterp._aiowait import wait_op\n"
    "    return await wait_op(op, timeout)\n"
    "def acquire_async(self, timeout=None):\n"
    "    op = self._acquire_async_op(timeout)\n"
    "    return _run(op, None if timeout == -1 else timeout)\n"
    "async def __aenter__(self):\n"
    "    await _run(self._acquire_async_op(None), None)\n"
    "async def __aexit__(self, *exc_info):\n"
    "    self.release()\n"
    "def wait_async(self, timeout=None):\n"
    "    return _run(self._wait_async_op(timeout), timeout)\n";

static const struct {
    const char *name;
    const char *doc;
} sync_wrapper_docs[] = {
    {"acquire_async",
     "acquire_async(timeout=None)\n\n"
     "Awaitable acquire(): the task waits (not the thread), at most "
     "timeout seconds; True if acquired, False on timeout.  An acquire "
     "that completed before the task was cancelled is given back."},
    {"__aenter__", "async with: acquire_async()."},
    {"__aexit__", "async with: release()."},
    {"wait_async",
     "wait_async(timeout=None)\n\n"
     "Awaitable wait(): the task waits until the flag is set, at most "
     "timeout seconds; returns the flag."},
};

static int
add_sync_wrappers(module_state *st)
{
    enum { NDOCS = sizeof(sync_wrapper_docs) / sizeof(sync_wrapper_docs[0]) };
    PyTypeObject *types[5], *event;
    int nlocks = sync_awaitable_types(st, types, &event);
    types[nlocks] = event;
    wrapper_place places[5 * NDOCS];
    size_t n = 0;
    for (int i = 0; i <= nlocks; i++) {
        for (size_t j = 0; j < NDOCS; j++) {
            const char *name = sync_wrapper_docs[j].name;
            /* Event: wait_async only; the locks: the others */
            if ((types[i] == event) == (strcmp(name, "wait_async") == 0)) {
                places[n].name = name;
                places[n].owner = (PyObject *)types[i];
                places[n].doc = sync_wrapper_docs[j].doc;
                n++;
            }
        }
    }
    static code_cache cache;
    return wrappers_install(st->queue->module, sync_wrappers, &cache, NULL,
                            places, n);
}

int
aioop_init(PyObject *mod, module_state *st)
{
    struct queue_state *qs = st->queue;
    qs->AioOpType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &op_spec, NULL);
    if (qs->AioOpType == NULL) {
        return -1;
    }
    qs->AioHubType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &hub_spec, NULL);
    if (qs->AioHubType == NULL) {
        return -1;
    }
    if (PyModule_AddObjectRef(mod, "_AioHub", (PyObject *)qs->AioHubType) <
        0) {
        return -1;
    }
    if (PyModule_AddFunctions(mod, aio_functions) < 0) {
        return -1;
    }
    return add_sync_wrappers(st);
}
