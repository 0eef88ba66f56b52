/* select.c - wait on several queues and channel ends at once.
 *
 * Every blocking queue and channel operation goes through
 * select_blocking(): a get is a select with one receive case, a put one
 * with one send case.  It supplies the poll and withdraw steps of the
 * wait engine (wait_until in wait.c), which does the waiting:
 *
 *   poll      1. lock the cases' FIFOs, each once, in address order (the
 *                only place where two of our object mutexes are held at
 *                once; the fork handler takes them in the same order);
 *             2. try the cases, starting at a random one (fairness: with
 *                two always-ready sources each wins half of the time);
 *                the first that can complete does, and the wait is over;
 *             3. otherwise link one node per case -- all sharing one
 *                waiter -- and unlock; nobody could fire the waiter while
 *                the FIFOs were locked, so no case can complete behind
 *                the select's back between 2 and 3;
 *   (engine)  4. wait; the first thread that makes a case possible
 *                claims the waiter (a compare-and-swap: exactly one case
 *                fires) and completes that case for us: a sender hands
 *                over its item, a receiver takes ours;
 *   withdraw  5. unlink the nodes, one FIFO at a time (after a fire: the
 *                others than the one that fired).
 */
#include "wait.h"

#include <string.h>

#define STACK_CASES 8

/* Insert f into the sorted set locks[0..*n). */
static void
lockset_add(fifo **locks, int *n, fifo *f)
{
    int i = *n;
    for (int j = 0; j < *n; j++) {
        if (locks[j] == f) {
            return;
        }
    }
    while (i > 0 && (uintptr_t)locks[i - 1] > (uintptr_t)f) {
        locks[i] = locks[i - 1];
        i--;
    }
    locks[i] = f;
    (*n)++;
}

static fifo_status
try_case(sel_case *c, item *got)
{
    if (c->kind == CASE_SEND) {
        return fifo_try_send(c->f, &c->send_item);
    }
    return fifo_try_recv(c->f, got);
}

/* One select, as the wait engine sees it. */
typedef struct {
    sel_case *cases;
    int n, start;
    const deadline *dl;     /* NULL: no waiting */
    fifo **locks;           /* the cases' FIFOs, each once, sorted */
    int nlocks;
    int linked;             /* the last poll linked the nodes */
    int unlinked;           /* and sel_withdraw unlinked them since */
    /* out, when a poll completed a case (or found none, with no waiting
       wanted) */
    sel_status res;
    int index;
    item *got;
} sel_wait;

static int
sel_poll(void *arg, waiter *w)
{
    sel_wait *a = (sel_wait *)arg;
    int done = 0;

    a->linked = a->unlinked = 0;
    a->res = SEL_TIMEOUT;
    for (int j = 0; j < a->nlocks; j++) {
        sub_mutex_lock(&a->locks[j]->mutex);
    }
    for (int k = 0; k < a->n; k++) {
        int i = (a->start + k) % a->n;
        fifo_status r = try_case(&a->cases[i], a->got);
        if (r != FIFO_NOT_READY) {
            a->index = i;
            a->res = r == FIFO_DONE        ? SEL_DONE
                     : r == FIFO_IS_CLOSED ? SEL_CLOSED
                                           : SEL_NO_MEMORY;
            done = 1;
            break;
        }
    }
    if (!done && (a->dl == NULL || deadline_remaining_ns(a->dl) == 0)) {
        done = 1;   /* SEL_TIMEOUT */
    }
    if (!done && w != NULL) {
        for (int i = 0; i < a->n; i++) {
            sel_case *c = &a->cases[i];
            c->node.w = w;
            c->node.case_index = i;
            if (c->kind == CASE_SEND) {
                c->node.send_item = c->send_item;   /* on loan */
                wlist_append(&c->f->senders, &c->node);
            }
            else {
                c->node.send_item.m = NULL;
                wlist_append(&c->f->receivers, &c->node);
            }
        }
        a->linked = 1;
    }
    for (int j = 0; j < a->nlocks; j++) {
        sub_mutex_unlock(&a->locks[j]->mutex);
    }
    return done;
}

/* Unlink every node but `skip`'s (-1: none), which its firer unlinked
 * and is done with. */
static void
sel_unlink(sel_wait *a, int skip)
{
    for (int i = 0; i < a->n; i++) {
        sel_case *c = &a->cases[i];
        if (i == skip) {
            continue;
        }
        sub_mutex_lock(&c->f->mutex);
        wnode_unlink(&c->node);
        sub_mutex_unlock(&c->f->mutex);
    }
}

/* Once every node is unlinked nobody can claim w any more; a firer that
 * did is done with it (it fires under the FIFO's mutex). */
static int
sel_withdraw(void *arg, waiter *w)
{
    sel_wait *a = (sel_wait *)arg;
    sel_unlink(a, -1);
    a->unlinked = 1;
    return waiter_withdraw(w);
}

static const wait_cond sel_cond = {sel_poll, sel_withdraw, 1};

/* The outcome of a select a firer completed: case w->fired_case (and
 * sel_withdraw, if it ran, found it fired meanwhile).  Unlinks the other
 * cases' nodes; a received item moves to *a->got.  Returns SEL_DONE or
 * SEL_CLOSED. */
static int
sel_fired(sel_wait *a, waiter *w, int *index)
{
    int fired = w->fired_case;
    if (!a->unlinked) {
        sel_unlink(a, fired);
        a->unlinked = 1;
    }
    *index = fired;
    if (w->status != WS_OK) {
        return SEL_CLOSED;
    }
    if (a->cases[fired].kind == CASE_RECV) {
        *a->got = w->got;
        w->got.m = NULL;
    }
    else {
        a->cases[fired].send_item.m = NULL;  /* delivered */
    }
    return SEL_DONE;
}

int
select_blocking(sel_case *cases, int n, int start, const deadline *dl,
                int *index, item *got)
{
    static const deadline now = {.forever = 0};
    fifo *stack_locks[STACK_CASES];
    sel_wait a = {
        .cases = cases, .n = n, .start = start, .dl = dl,
        .locks = stack_locks, .got = got,
    };
    waiter w;
    int r, res = -1;

    if (n > STACK_CASES) {
        a.locks = PyMem_Malloc(n * sizeof(fifo *));
        if (a.locks == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    for (int i = 0; i < n; i++) {
        lockset_add(a.locks, &a.nlocks, cases[i].f);
    }
    /* Signal handlers first (a no-op outside the thread that runs
       them): one that raises stops the operation before any item moved.
       A received item is also protected after it moved (see
       queue_item_to_object); a sent one cannot be taken back. */
    if (PyErr_CheckSignals() < 0) {
        goto done;
    }
    /* The first try runs with the GIL held: no hand-off of the GIL
       when a case can complete at once. */
    r = wait_until(&sel_cond, &a, &w, dl != NULL ? dl : &now,
                   WAIT_POLL_WITH_GIL);
    if (r == WAIT_FIRED && a.linked) {
        res = sel_fired(&a, &w, index);
    }
    else if (r == WAIT_FIRED) {
        *index = a.index;
        res = a.res;
    }
    else if (r == WAIT_TIMEOUT) {
        res = SEL_TIMEOUT;
    }
    waiter_fini(&w);
done:
    if (a.locks != stack_locks) {
        PyMem_Free(a.locks);
    }
    return res;
}

/* ------------------------------------------------------------------ */
/* select()                                                            */

/* One case of select(), as given and as the engine runs it. */
typedef struct {
    PyObject *source;           /* borrowed from the cases: the handle */
    const sobj_type *type;      /* of the object behind source */
} case_source;

/* Case i of select(): a handle to receive from, or a (handle, obj) pair
 * to send obj through; *c and *src made from it (obj encoded into
 * c->send_item, with unbound op `unboundop`, or the target's default
 * when it is -1).  0, or -1 with an exception.  Queues and channels are
 * reached through their object type (objects.h), so select() knows
 * neither. */
static int
case_parse(module_state *st, PyObject *spec, Py_ssize_t i, int unboundop_arg,
           sel_case *c, case_source *src)
{
    int send = PyTuple_Check(spec) && PyTuple_GET_SIZE(spec) == 2;
    PyObject *target = send ? PyTuple_GET_ITEM(spec, 0) : spec;
    const handle_kind *kind = NULL;
    sobj *o = handle_sobj(target, &kind);
    int ops = 0, unboundop = UNBOUND_KEEP;
    fifo *f = NULL;

    if (o != NULL && o->type->fifo_of != NULL) {
        f = o->type->fifo_of(o, kind, &ops, &unboundop);
    }
    if (f == NULL || !(ops & (send ? FIFO_OP_SEND : FIFO_OP_RECV))) {
        if (send) {
            PyErr_Format(PyExc_TypeError,
                         "select() send case %zd: (target, obj) needs a "
                         "Queue or a SendChannel as target, not %.100s", i,
                         Py_TYPE(target)->tp_name);
        }
        else {
            PyErr_Format(PyExc_TypeError,
                         "select() case %zd must be a Queue or a "
                         "RecvChannel (receive), or a (Queue or "
                         "SendChannel, obj) pair (send), not %.100s",
                         i, Py_TYPE(spec)->tp_name);
        }
        return -1;
    }
    if (unboundop_arg >= 0) {
        unboundop = unboundop_arg;
    }
    if (send && o->type->item_encode(st, PyTuple_GET_ITEM(spec, 1),
                                     unboundop, &c->send_item) < 0) {
        return -1;
    }
    c->f = f;
    c->kind = send ? CASE_SEND : CASE_RECV;
    src->source = target;
    src->type = o->type;
    return 0;
}

/* What a select gives for the engine's outcome r, case c done: the
 * received item (taken over: *taken) or None for a send -- as a (source,
 * item) pair when `pair` (select(), select_async()) --, None on timeout;
 * NULL with an exception otherwise: a closed channel raises its error
 * with the source, or StopAsyncIteration when `closed_ends` (async
 * for). */
static PyObject *
select_result(module_state *st, int r, sel_case *c, case_source *src,
              item *got, PyObject **taken, int pair, int closed_ends)
{
    PyObject *value;
    switch (r) {
    case SEL_DONE:
        if (c->kind == CASE_SEND) {
            value = Py_NewRef(Py_None);
        }
        else {
            value = src->type->item_to_object(st, src->source, c->f, got,
                                              taken);
            if (value == NULL) {
                return NULL;
            }
        }
        if (pair) {
            Py_SETREF(value, PyTuple_Pack(2, src->source, value));
        }
        return value;
    case SEL_TIMEOUT:
        Py_RETURN_NONE;
    case SEL_CLOSED:
        if (closed_ends) {
            PyErr_SetNone(PyExc_StopAsyncIteration);
        }
        else {
            set_err(st, src->type->closed_err, src->source);
        }
        return NULL;
    case SEL_NO_MEMORY:
        set_err(st, ERR_NO_MEMORY);
        return NULL;
    default:
        return NULL;    /* the engine raised */
    }
}

/* select() takes 1 to 2**20 cases: 0, or -1 with ValueError. */
static int
cases_count_check(Py_ssize_t n)
{
    if (n == 0 || n > 1024 * 1024) {
        PyErr_SetString(PyExc_ValueError,
                        n == 0 ? "select() needs at least one case"
                               : "select(): too many cases");
        return -1;
    }
    return 0;
}

/* The store_fn of select(): cases_obj is the iterable of cases. */
static PyObject *
select_store(PyObject *mod, PyObject *cases_obj, int Py_UNUSED(block),
             PyObject *timeout, PyObject *Py_UNUSED(extra))
{
    module_state *st = get_mod_state(mod);
    PyObject *seq = NULL, *res = NULL, *taken = NULL;
    case_source *sources = NULL;
    sel_case *cases = NULL;
    Py_ssize_t n = 0;
    deadline dl;
    int index = -1;
    item got = {.m = NULL};

    if (deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    /* a tuple, not the caller's list: encoding a send case's object may
       run code (pickle) that changes the list, while the cases parsed
       before it borrow their targets from it */
    seq = PySequence_Tuple(cases_obj);
    if (seq == NULL) {
        goto done;
    }
    n = PyTuple_GET_SIZE(seq);
    if (cases_count_check(n) < 0) {
        goto done;
    }
    cases = PyMem_Calloc((size_t)n, sizeof(sel_case));
    sources = PyMem_Calloc((size_t)n, sizeof(case_source));
    if (cases == NULL || sources == NULL) {
        set_err(st, ERR_NO_MEMORY);
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (case_parse(st, PyTuple_GET_ITEM(seq, i), i, -1,
                       &cases[i], &sources[i]) < 0) {
            goto done;
        }
    }
    int r = select_blocking(cases, (int)n,
                            (int)(wait_random() % (uint32_t)n), &dl, &index,
                            &got);
    res = select_result(st, r, &cases[index < 0 ? 0 : index],
                        &sources[index < 0 ? 0 : index], &got, &taken, 1, 0);
done:
    if (cases != NULL) {
        for (Py_ssize_t i = 0; i < n; i++) {
            item_clear(&cases[i].send_item);
        }
    }
    PyMem_Free(cases);
    PyMem_Free(sources);
    Py_XDECREF(seq);
    return taken_pair(res, taken);
}

/* _select(timeout) -> a _StoreOp whose result is (result, taken) */
static PyObject *
coremod_select_op(PyObject *mod, PyObject *timeout)
{
    return store_op_new(get_mod_state(mod), select_store, mod, 1, timeout,
                        Py_None);
}

/* ------------------------------------------------------------------ */
/* awaitable operations (aio.c): get_async, put_async, recv_async,      */
/* send_async and select_async are selects run by an event loop         */

/* What the operation is, for its result and its timeout. */
enum {
    AIO_SELECT = 0, AIO_GET, AIO_PUT, AIO_RECV, AIO_SEND,
    AIO_ITER,   /* async for: a closed, drained channel ends it */
};

typedef struct {
    aio_wait aw;            /* first: aio.c finds the payload from it */
    sel_wait sw;
    deadline dl;
    int mode;               /* AIO_* */
    sel_case *cases;        /* C heap: firers touch their nodes */
    fifo **locks;
    case_source *sources;   /* borrowed from the op's `keep` tuple */
    item got;
    int settled;            /* outcome worked out (res, index) */
    int res, index;
} sel_async;

static void
sel_async_settle(sel_async *p)
{
    if (!p->settled) {
        p->settled = 1;
        if (p->sw.linked) {
            p->res = sel_fired(&p->sw, &p->aw.w, &p->index);
        }
        else {
            p->res = p->sw.res;
            p->index = p->sw.index;
        }
    }
}

static PyObject *
sel_async_timeout(module_state *st, aio_wait *a)
{
    sel_async *p = (sel_async *)a;
    switch (p->mode) {
    case AIO_GET:
        set_err(st, ERR_QUEUE_EMPTY);
        return NULL;
    case AIO_PUT:
        set_err(st, ERR_QUEUE_FULL);
        return NULL;
    case AIO_RECV:
    case AIO_SEND:
    case AIO_ITER:
        set_err(st, ERR_TIMEOUT);
        return NULL;
    default:
        return taken_pair(Py_NewRef(Py_None), NULL);
    }
}

/* (value, taken), like the receive functions' C parts */
static PyObject *
sel_async_result(module_state *st, aio_wait *a)
{
    sel_async *p = (sel_async *)a;
    PyObject *taken = NULL;
    sel_async_settle(p);
    if (p->res == SEL_TIMEOUT) {
        return sel_async_timeout(st, a);
    }
    PyObject *res = select_result(st, p->res, &p->cases[p->index],
                                  &p->sources[p->index], &p->got, &taken,
                                  p->mode == AIO_SELECT,
                                  p->mode == AIO_ITER);
    return taken_pair(res, taken);
}

static void
sel_async_undo(aio_wait *a)
{
    sel_async *p = (sel_async *)a;
    sel_async_settle(p);
    if (p->res == SEL_DONE && p->cases[p->index].kind == CASE_RECV &&
        p->got.m != NULL) {
        /* taken for a task that will not see it: back to the head */
        fifo_unget(p->cases[p->index].f, &p->got);
    }
    /* a send that completed counts as sent */
}

static void
sel_async_free(aio_wait *a)
{
    sel_async *p = (sel_async *)a;
    if (p->cases != NULL) {
        for (int i = 0; i < p->sw.n; i++) {
            item_clear(&p->cases[i].send_item);
        }
    }
    item_clear(&p->got);
    PyMem_RawFree(p->cases);
    PyMem_RawFree(p->locks);
    PyMem_Free(p->sources);
    PyMem_RawFree(p);
}

static const aio_op_kind sel_async_kind = {
    sel_async_result, sel_async_timeout, sel_async_undo, sel_async_free,
};

/* _aio_select(cases, timeout, mode, unbounditems) -> an _AioOp (see
 * aio.c); unbounditems (None: the targets' own) is put_async's */
static PyObject *
coremod_aio_select(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    module_state *st = get_mod_state(mod);
    PyObject *keep = NULL, *res = NULL;
    sel_async *p = NULL;
    Py_ssize_t n;

    if (nargs != 4 || !PyLong_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "_aio_select(cases, timeout, mode, unbounditems)");
        return NULL;
    }
    int unboundop = -1;     /* the targets' own */
    if (args[3] != Py_None) {
        unboundop = unboundop_from_object(st, args[3], -1);
        if (unboundop < 0) {
            return NULL;
        }
    }
    long mode = PyLong_AsLong(args[2]);
    if (mode < AIO_SELECT || mode > AIO_ITER) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "_aio_select: bad mode");
        }
        return NULL;
    }
    /* a tuple: the op borrows its items for as long as it lives */
    keep = PySequence_Tuple(args[0]);
    if (keep == NULL) {
        return NULL;
    }
    n = PyTuple_GET_SIZE(keep);
    if (cases_count_check(n) < 0) {
        goto done;
    }
    p = PyMem_RawCalloc(1, sizeof(*p));
    if (p == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    p->cases = PyMem_RawCalloc((size_t)n, sizeof(sel_case));
    p->locks = PyMem_RawCalloc((size_t)n, sizeof(fifo *));
    p->sources = PyMem_Calloc((size_t)n, sizeof(case_source));
    p->sw.n = (int)n;   /* sel_async_free clears that many cases */
    if (p->cases == NULL || p->locks == NULL || p->sources == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (deadline_from_timeout(args[1], 0, &p->dl) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (case_parse(st, PyTuple_GET_ITEM(keep, i), i, unboundop,
                       &p->cases[i], &p->sources[i]) < 0) {
            goto done;
        }
    }
    /* A timeout the loop enforces (call_later, then withdraw()): the
       engine waits forever.  Zero (or one already passed) only polls. */
    if (!p->dl.forever && deadline_remaining_ns(&p->dl) > 0) {
        p->dl.forever = 1;
    }
    p->mode = (int)mode;
    p->sw.cases = p->cases;
    p->sw.start = n > 1 ? (int)(wait_random() % (uint32_t)n) : 0;
    p->sw.dl = &p->dl;
    p->sw.locks = p->locks;
    p->sw.got = &p->got;
    for (Py_ssize_t i = 0; i < n; i++) {
        lockset_add(p->locks, &p->sw.nlocks, p->cases[i].f);
    }
    p->aw.c = &sel_cond;
    p->aw.arg = &p->sw;
    res = aio_op_new(st, &sel_async_kind, &p->aw, keep);
    p = NULL;   /* the op's (or freed) */
done:
    if (p != NULL) {
        sel_async_free(&p->aw);
    }
    Py_XDECREF(keep);
    return res;
}

static PyMethodDef select_functions[] = {
    /* select() is a Python wrapper of this (below) */
    {"_select", coremod_select_op, METH_O,
     "_select(timeout, /)\n--\n\n"
     "An operation running select() on the cases stored into it; its "
     "result is (result, taken) (internal)."},
    {"_aio_select", _PyCFunction_CAST(coremod_aio_select), METH_FASTCALL,
     "_aio_select(cases, timeout, mode, unbounditems, /)\n--\n\n"
     "An awaitable select (get_async, put_async, recv_async, send_async, "
     "select_async; subinterp/_aiowait.py) (internal)."},
    {NULL, NULL, 0, NULL},
};

/* The blocking operations of queues and channels, and select(), as Python
 * functions around their C parts, so that a signal handler that raises
 * never loses or doubles an item.  A C function's return value can be
 * lost after the function is done: the eval loop runs pending signal
 * handlers right after a call returns, and a handler that raises
 * discards the value.
 *
 * - Receives: the C part returns (result, taken), where `taken` holds
 *   the received item and puts it back into its FIFO if it is dropped
 *   unmarked.  Only the pair can be lost (the item goes back); then the
 *   wrapper marks `taken` with an attribute store and returns, two steps
 *   the eval loop takes without running handlers.
 * - Puts, sends and select(): the operation runs inside an attribute
 *   store (`op.obj = obj`, store_op_new in queue.c), after which the
 *   wrapper only loads attributes and returns: an operation that raised
 *   did not move its item, one that returned did.
 *
 * So an item is delivered exactly once, or stays where it was, whenever
 * a handler raises. */
static const char receive_wrappers[] =
    "def put(self, obj, block=True, timeout=None, *, unbounditems=None):\n"
    "    _put(self, block, timeout, unbounditems).obj = obj\n"
    "def put_nowait(self, obj, *, unbounditems=None):\n"
    "    _put(self, False, None, unbounditems).obj = obj\n"
    "def get(self, block=True, timeout=None):\n"
    "    obj, taken = _get(self, block, timeout)\n"
    "    taken.done = True\n"
    "    return obj\n"
    "def put_many(self, objs, block=True, timeout=None, *,\n"
    "             unbounditems=None):\n"
    "    _put_many(self, block, timeout, unbounditems).obj = objs\n"
    "def get_many(self, max_items, block=True, timeout=None):\n"
    "    objs, taken = _get_many(self, max_items, block, timeout)\n"
    "    taken.done = True\n"
    "    return objs\n"
    "def get_nowait(self):\n"
    "    obj, taken = _get_nowait(self)\n"
    "    taken.done = True\n"
    "    return obj\n"
    "def recv(self, timeout=None):\n"
    "    obj, taken = _recv(self, timeout)\n"
    "    taken.done = True\n"
    "    return obj\n"
    "def send(self, obj, timeout=None):\n"
    "    _send(self, True, timeout, False).obj = obj\n"
    "def send_nowait(self, obj, /):\n"
    "    _send(self, False, None, False).obj = obj\n"
    "def send_buffer(self, obj, timeout=None):\n"
    "    _send(self, True, timeout, True).obj = obj\n"
    "def recv_nowait(self, *args, **kwargs):\n"
    "    obj, taken = _recv_nowait(self, *args, **kwargs)\n"
    "    if taken is not None:\n"
    "        taken.done = True\n"
    "    return obj\n"
    "async def _aio(cases, timeout, mode, unbounditems=None):\n"
    "    from subinterp._aiowait import wait_op\n"
    "    op = _aio_select(cases, timeout, mode, unbounditems)\n"
    "    obj, taken = await wait_op(op, timeout)\n"
    "    if taken is not None:\n"
    "        taken.done = True\n"
    "    return obj\n"
    "def get_async(self, timeout=None):\n"
    "    return _aio((self,), timeout, 1)\n"
    "def put_async(self, obj, timeout=None, *, unbounditems=None):\n"
    "    return _aio(((self, obj),), timeout, 2, unbounditems)\n"
    "def recv_async(self, timeout=None):\n"
    "    return _aio((self,), timeout, 3)\n"
    "def send_async(self, obj, timeout=None):\n"
    "    return _aio(((self, obj),), timeout, 4)\n"
    "def _anext(self):\n"
    "    return _aio((self,), None, 5)\n"
    "def select_async(cases, timeout=None):\n"
    "    return _aio(cases, timeout, 0)\n"
    "def select(cases, timeout=None):\n"
    "    op = _select(timeout)\n"
    "    op.obj = cases\n"
    "    res, taken = op.result\n"
    "    if taken is not None:\n"
    "        taken.done = True\n"
    "    return res\n";

/* Where a wrapper or its C part lives. */
enum { ON_QUEUE, ON_RECV, ON_SEND, ON_MODULE };

static const struct {
    const char *name;
    int owner;
    const char *doc;
} receive_docs[] = {
    {"put", ON_QUEUE,
     "Add obj to the queue, waiting while it is full (unless block is "
     "false), at most timeout seconds; raises QueueFull then.\n\n"
     "obj is copied (handles, such as queues, refer to the same object).  "
     "unbounditems (UNBOUND, UNBOUND_ERROR, UNBOUND_REMOVE; None: the "
     "queue's default) says what get() does with obj if this interpreter "
     "is destroyed before obj is taken."},
    {"put_nowait", ON_QUEUE,
     "put(obj, block=False): raises QueueFull if the queue is full."},
    {"get", ON_QUEUE,
     "Remove and return the next object, waiting while the queue is empty "
     "(unless block is false), at most timeout seconds; raises QueueEmpty "
     "then."},
    {"put_many", ON_QUEUE,
     "put_many(objs, block=True, timeout=None, *, unbounditems=None)\n\n"
     "Add every object of the iterable objs, in order, as put() would one "
     "after the other, but under one lock for as many as fit: waiting "
     "while the queue is full (unless block is false), at most timeout "
     "seconds in all.\n\n"
     "Every object is copied first: one that cannot be copied raises "
     "before any went in.  When not all fit in time (or block is false), "
     "raises QueueFull; its ``count`` attribute says how many went in "
     "(they stay in the queue, the rest did not go in).  An exception "
     "raised while waiting (KeyboardInterrupt, SystemExit) carries "
     "``count`` too."},
    {"get_many", ON_QUEUE,
     "get_many(max_items, block=True, timeout=None)\n\n"
     "Remove and return, as a list, the next objects the queue holds, at "
     "most max_items of them: waiting while the queue is empty (unless "
     "block is false), at most timeout seconds (QueueEmpty then), but "
     "never for more than the first object.\n\n"
     "Each object is returned exactly once: when an object after the "
     "first cannot be returned (an UNBOUND_ERROR item), the list ends "
     "before it and the next get raises for it."},
    {"get_nowait", ON_QUEUE,
     "get(block=False): raises QueueEmpty if the queue is empty."},
    {"recv", ON_RECV,
     "Return the next object, waiting for one at most timeout seconds "
     "(TimeoutError then).  Raises ChannelClosedError once the channel is "
     "closed and drained."},
    {"recv_nowait", ON_RECV,
     "recv_nowait(default=<unset>)\n\n"
     "Return the next object if one can be had without waiting, else "
     "default (ChannelEmptyError when no default is given).  Raises "
     "ChannelClosedError once the channel is closed and drained."},
    {"select", ON_MODULE,
     "Wait until one of several queue or channel operations can complete, "
     "complete exactly that one, and return (source, item).\n\n"
     "A case is a Queue or RecvChannel (receive: item is what was "
     "received) or a (Queue or SendChannel, obj) pair (send obj: item is "
     "None).  When several cases are ready one is chosen at random.  "
     "Returns None when timeout seconds pass first (timeout=0 polls).  "
     "A case on a closed channel raises ChannelClosedError with the "
     "channel end as its ``source`` attribute."},
    {"send", ON_SEND,
     "Send a copy of obj.  On a rendezvous channel (maxsize 0) returns "
     "once a receiver has it; otherwise once it is buffered.  Waits at "
     "most timeout seconds (TimeoutError then; obj was not sent).  Raises "
     "ChannelClosedError when the channel is closed."},
    {"send_nowait", ON_SEND,
     "Send obj if that needs no waiting (a receiver is waiting, or the "
     "buffer has room); else raise ChannelFullError."},
    {"get_async", ON_QUEUE,
     "get_async(timeout=None)\n\n"
     "Awaitable get(): remove and return the next object, the task "
     "waiting (not the thread) while the queue is empty, at most timeout "
     "seconds (QueueEmpty then).  Cancelling the task never loses an "
     "item: one taken meanwhile goes back to the head of the queue."},
    {"put_async", ON_QUEUE,
     "put_async(obj, timeout=None, *, unbounditems=None)\n\n"
     "Awaitable put(): add obj, the task waiting while the queue is full, "
     "at most timeout seconds (QueueFull then).  unbounditems as for "
     "put() (None: the queue's default).  A put that completed before "
     "the task was cancelled counts."},
    {"recv_async", ON_RECV,
     "recv_async(timeout=None)\n\n"
     "Awaitable recv(): the task waits for the next object (TimeoutError "
     "after timeout seconds); ChannelClosedError once the channel is "
     "closed and drained.  Cancelling the task never loses an item."},
    {"_anext", ON_RECV, "async for (internal)."},
    {"send_async", ON_SEND,
     "send_async(obj, timeout=None)\n\n"
     "Awaitable send(): the task waits for room or a receiver "
     "(TimeoutError after timeout seconds; obj was not sent).  A send "
     "that completed before the task was cancelled counts."},
    {"select_async", ON_MODULE,
     "select_async(cases, timeout=None)\n\n"
     "Awaitable select(): the same cases and result; the task waits, "
     "not the thread.  Returns None when timeout seconds pass first."},
    {"send_buffer", ON_SEND,
     "Send a buffer (bytes-like object) without copying it: the receiver "
     "gets a memoryview on the same memory."},
};

int
wrappers_install(PyObject *mod, const char *source, code_cache *cache,
                 PyObject *globals, const wrapper_place *places, size_t n)
{
    int res = -1;
    PyObject *ns = PyDict_New();
    PyObject *name = PyModule_GetNameObject(mod);
    PyObject *code = NULL;
    PyObject *run = NULL;
    if (ns == NULL || name == NULL ||
        PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0 ||
        PyDict_SetItemString(ns, "__name__", name) < 0 ||
        (globals != NULL && PyDict_Update(ns, globals) < 0)) {
        goto done;
    }
    code = code_cached(cache, source, "<string>");
    if (code == NULL) {
        goto done;
    }
    run = PyEval_EvalCode(code, ns, ns);
    if (run == NULL) {
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        PyObject *owner = places[i].owner;
        int on_type = PyType_Check(owner);
        PyObject *fn = PyDict_GetItemString(ns, places[i].name);
        if (fn == NULL || !PyFunction_Check(fn)) {
            PyErr_Format(PyExc_SystemError, "no wrapper %s", places[i].name);
            goto done;
        }
        /* A copy per place: one function on several types would carry
           the last one's qualname. */
        PyObject *copy = PyFunction_New(PyFunction_GetCode(fn), ns);
        PyObject *qual =
            on_type ? PyUnicode_FromFormat(
                          "%s.%s",
                          strrchr(((PyTypeObject *)owner)->tp_name, '.') + 1,
                          places[i].name)
                    : PyUnicode_FromString(places[i].name);
        PyObject *doc = PyUnicode_FromString(places[i].doc);
        PyObject *defaults = PyFunction_GetDefaults(fn);
        PyObject *kwdefaults = PyFunction_GetKwDefaults(fn);
        int err = copy == NULL || qual == NULL || doc == NULL ||
                  PyObject_SetAttrString(copy, "__qualname__", qual) < 0 ||
                  PyObject_SetAttrString(copy, "__doc__", doc) < 0 ||
                  (defaults != NULL &&
                   PyFunction_SetDefaults(copy, defaults) < 0) ||
                  (kwdefaults != NULL &&
                   PyFunction_SetKwDefaults(copy, kwdefaults) < 0);
        if (!err && on_type) {
            /* Our own immutable heap type: its dict is filled in here,
               before any instance exists. */
            PyTypeObject *tp = (PyTypeObject *)owner;
            err = PyDict_SetItemString(tp->tp_dict, places[i].name, copy) <
                  0;
            PyType_Modified(tp);
        }
        else if (!err) {
            err = PyModule_AddObjectRef(owner, places[i].name, copy) < 0;
        }
        Py_XDECREF(copy);
        Py_XDECREF(qual);
        Py_XDECREF(doc);
        if (err) {
            goto done;
        }
    }
    res = 0;
done:
    Py_XDECREF(run);
    Py_XDECREF(code);
    Py_XDECREF(name);
    Py_XDECREF(ns);
    return res;
}

/* Make the wrappers (in every interpreter that imports the module) and
 * put them where users look for them. */
static int
add_receive_wrappers(PyObject *mod, module_state *st)
{
    static const struct {
        const char *global;
        int owner;
        const char *attr;
    } parts[] = {
        {"_get", ON_QUEUE, "_get"},
        {"_get_nowait", ON_QUEUE, "_get_nowait"},
        {"_put", ON_QUEUE, "_put"},
        {"_put_many", ON_QUEUE, "_put_many"},
        {"_get_many", ON_QUEUE, "_get_many"},
        {"_recv", ON_RECV, "_recv"},
        {"_recv_nowait", ON_RECV, "_recv_nowait"},
        {"_send", ON_SEND, "_send"},
        {"_select", ON_MODULE, "_select"},
        {"_aio_select", ON_MODULE, "_aio_select"},
    };
    enum { NDOCS = sizeof(receive_docs) / sizeof(receive_docs[0]) };
    PyObject *owners[] = {
        [ON_QUEUE] = (PyObject *)st->queue->QueueType,
        [ON_RECV] = (PyObject *)st->channel->RecvChannelType,
        [ON_SEND] = (PyObject *)st->channel->SendChannelType,
        [ON_MODULE] = mod,
    };
    wrapper_place places[NDOCS];
    int res = -1;
    PyObject *globals = PyDict_New();
    if (globals == NULL) {
        return -1;
    }
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        PyObject *v = PyObject_GetAttrString(owners[parts[i].owner],
                                             parts[i].attr);
        if (v == NULL ||
            PyDict_SetItemString(globals, parts[i].global, v) < 0) {
            Py_XDECREF(v);
            goto done;
        }
        Py_DECREF(v);
    }
    for (size_t i = 0; i < NDOCS; i++) {
        places[i].name = receive_docs[i].name;
        places[i].owner = owners[receive_docs[i].owner];
        places[i].doc = receive_docs[i].doc;
    }
    static code_cache cache;
    res = wrappers_install(mod, receive_wrappers, &cache, globals, places,
                           NDOCS);
done:
    Py_DECREF(globals);
    return res;
}

int
select_init(PyObject *mod, module_state *st)
{
    if (PyModule_AddFunctions(mod, select_functions) < 0) {
        return -1;
    }
    return add_receive_wrappers(mod, st);
}
