/* queue.c - the FIFO core shared by queues and channels, and the Queue.
 *
 * Design
 * ------
 * A queue is a process-wide C object (an `sobj`: id, C reference count)
 * around a `fifo`: a linked list of items -- encoded messages plus the
 * id of the interpreter that put them -- and two lists of blocked
 * waiters, protected by one mutex:
 *
 *     fifo.mutex
 *       head -> item -> item -> ... -> tail        (count, capacity)
 *       receivers: node(waiter A) <-> node(select B) ...
 *       senders:   node(waiter C) ...
 *
 * Invariants, under fifo.mutex:
 *   - a live receiver node exists only while the buffer is empty: a
 *     sender hands its item straight to the first live receiver (the item
 *     never touches the buffer), and a receiver that finds an item takes
 *     it without waiting;
 *   - a live sender node exists only while the buffer is full (or, for a
 *     rendezvous channel, always: capacity 0); a receiver that empties a
 *     slot refills it from the first live sender and fires it.
 * Nodes whose waiter is gone (cancelled, or fired through another
 * source) are unlinked by whoever meets them.  A queue has capacity -1
 * (unbounded, maxsize 0) or maxsize; a channel 0 (rendezvous) or maxsize.
 *
 * Items are encoded before the mutex is taken (an object that fails to
 * encode never half-enters a queue) and decoded after it is released;
 * messages are freed outside the mutex too (freeing one may drop the
 * last reference to another object and take the registry mutex).
 *
 * Unbound items: when the interpreter that put an item is destroyed
 * while the item waits in the buffer, the registry calls
 * queue_interp_closed(): UNBOUND_REMOVE items are dropped, UNBOUND_ERROR
 * and UNBOUND items lose their message and make get() raise
 * ItemInterpreterDestroyed or return UNBOUND, as in the stdlib.
 */
#include "wait.h"

/* ------------------------------------------------------------------ */
/* the FIFO core                                                       */

/* A buffer node.  Nodes are recycled through fifo.spare, up to
 * MAX_SPARE of them, so steady traffic allocates nothing. */
typedef struct inode {
    struct inode *next;
    item v;
    int64_t nself;          /* mutex: references v holds to the FIFO's
                               owner, counted in owner->inner while the
                               node is in the buffer */
} inode;

#define MAX_SPARE 64

void
fifo_init(fifo *f, Py_ssize_t capacity, sobj *owner)
{
    f->owner = owner;
    wait_mutex_init(&f->mutex);
    f->head = f->tail = NULL;
    f->count = 0;
    f->spare = NULL;
    f->nspare = 0;
    f->capacity = capacity;
    f->closed = FIFO_OPEN;
    wlist_init(&f->receivers);
    wlist_init(&f->senders);
}

/* Free a chain of nodes and their messages (no lock held). */
static void
inode_free_chain(inode *n)
{
    while (n != NULL) {
        inode *next = n->next;
        item_clear(&n->v);
        PyMem_RawFree(n);
        n = next;
    }
}

void
fifo_fini(fifo *f)
{
    assert(wlist_empty(&f->receivers) && wlist_empty(&f->senders));
    inode_free_chain(f->head);
    inode_free_chain(f->spare);
    f->head = f->tail = f->spare = NULL;
    sub_mutex_destroy(&f->mutex);
}

/* A node from the spares, or a new one (NULL: no memory).  mutex held;
 * malloc under it is rare (the spares are empty only while the buffer
 * grows) and never waits for anything of ours. */
static inode *
node_get(fifo *f)
{
    inode *n = f->spare;
    if (n != NULL) {
        f->spare = n->next;
        f->nspare--;
        return n;
    }
    n = PyMem_RawMalloc(sizeof(inode));
    if (n != NULL) {
        n->v.m = NULL;
        n->nself = 0;
    }
    return n;
}

/* Node n's item entered the buffer: count the references it holds to
 * the FIFO's own object (a queue holding a handle to itself), so that the
 * object can tell when nothing else refers to it (sobj_decref).  mutex
 * held. */
static void
node_enter(fifo *f, inode *n)
{
    n->nself = 0;
    if (f->owner != NULL && n->v.m != NULL) {
        n->nself = msg_count_refs(n->v.m, f->owner);
        if (n->nself > 0) {
            atomic_fetch_add(&f->owner->inner, n->nself);
        }
    }
}

/* Node n's item leaves the buffer (its message is still alive).  mutex
 * held. */
static void
node_leave(fifo *f, inode *n)
{
    if (n->nself > 0) {
        atomic_fetch_sub(&f->owner->inner, n->nself);
        n->nself = 0;
    }
}

/* Recycle a node whose item was moved out.  mutex held. */
static void
node_put(fifo *f, inode *n)
{
    assert(n->v.m == NULL);
    if (f->nspare < MAX_SPARE) {
        n->next = f->spare;
        f->spare = n;
        f->nspare++;
    }
    else {
        PyMem_RawFree(n);
    }
}

/* Append node n holding *it (moved).  mutex held. */
static void
buf_push(fifo *f, inode *n, item *it)
{
    n->v = *it;
    it->m = NULL;
    node_enter(f, n);
    n->next = NULL;
    if (f->tail == NULL) {
        f->head = n;
    }
    else {
        f->tail->next = n;
    }
    f->tail = n;
    f->count++;
}

/* Move the head item into *out.  mutex held, buffer not empty. */
static void
buf_pop(fifo *f, item *out)
{
    inode *n = f->head;
    f->head = n->next;
    if (f->head == NULL) {
        f->tail = NULL;
    }
    f->count--;
    node_leave(f, n);
    *out = n->v;
    n->v.m = NULL;
    node_put(f, n);
}

static int
buf_has_room(const fifo *f)
{
    return f->capacity < 0 || f->count < f->capacity;
}

/* Whether some node of l has a waiter nobody fired or cancelled yet. */
static int
wlist_has_live(const wlist *l)
{
    for (const wnode *n = l->head.next; n != &l->head; n = n->next) {
        uint32_t s = atomic_load_explicit(&n->w->state,
                                          memory_order_acquire);
        if (s == W_WAITING || s == W_PARKED) {
            return 1;
        }
    }
    return 0;
}

/* Longest buffer whose length fifo_check() counts (a debug build checks
 * after every operation: a full walk of a long buffer each time would
 * make a long queue quadratic). */
#define FIFO_CHECK_WALK 4096

/* Debug builds: the buffer, the spares and the waiter lists of f agree
 * with each other (see the invariants at the top).  mutex held. */
static void
fifo_check(const fifo *f)
{
    if (!SUBINTERP_CHECKS) {
        return;
    }
    INVARIANT((f->head == NULL) == (f->tail == NULL),
              "head and tail are both set or both NULL");
    INVARIANT(f->tail == NULL || f->tail->next == NULL,
              "nothing follows the tail");
    INVARIANT(f->count >= 0, "count is not negative");
    INVARIANT((f->count == 0) == (f->head == NULL),
              "count is 0 exactly when the buffer is empty");
    if (f->count <= FIFO_CHECK_WALK) {
        Py_ssize_t len = 0;
        const inode *last = NULL;
        for (const inode *n = f->head; n != NULL && len <= f->count;
             n = n->next) {
            last = n;
            len++;
        }
        INVARIANT(len == f->count, "count is the buffer's length");
        INVARIANT(last == f->tail, "tail is the buffer's last node");
    }
    int nspare = 0;
    for (const inode *n = f->spare; n != NULL && nspare <= MAX_SPARE;
         n = n->next) {
        INVARIANT(n->v.m == NULL, "a spare node holds no message");
        nspare++;
    }
    INVARIANT(nspare == f->nspare && nspare <= MAX_SPARE,
              "nspare counts the spares, at most MAX_SPARE");
    INVARIANT(f->closed != FIFO_CLOSED || f->head == NULL,
              "a force-closed FIFO buffers nothing");
    /* Capacity: a buffer with room never leaves a sender waiting, and a
       non-empty one never leaves a receiver waiting.  (The buffer itself
       may exceed capacity by items given back by fifo_unget.) */
    wlist_check(&f->receivers);
    wlist_check(&f->senders);
    INVARIANT(f->head == NULL || !wlist_has_live(&f->receivers),
              "a receiver waits only while the buffer is empty");
}

/* Let blocked senders fill the free slots.  mutex held. */
static void
refill(fifo *f)
{
    uint32_t prev;
    while (f->closed == FIFO_OPEN && buf_has_room(f) &&
           !wlist_empty(&f->senders)) {
        inode *slot = node_get(f);
        if (slot == NULL) {
            break;  /* XXX no memory: the sender waits for the next get */
        }
        wnode *n = wlist_claim_first(&f->senders, &prev);
        if (n == NULL) {
            node_put(f, slot);
            break;
        }
        buf_push(f, slot, &n->send_item);
        wnode_fire(n, prev, WS_OK, NULL);
    }
}

fifo_status
fifo_try_send(fifo *f, item *it)
{
    uint32_t prev;
    if (f->closed != FIFO_OPEN) {
        return FIFO_IS_CLOSED;
    }
    wnode *n = wlist_claim_first(&f->receivers, &prev);
    if (n != NULL) {
        assert(f->head == NULL);
        wnode_fire(n, prev, WS_OK, it);
        return FIFO_DONE;
    }
    if (buf_has_room(f)) {
        inode *slot = node_get(f);
        if (slot == NULL) {
            return FIFO_NO_MEMORY;
        }
        buf_push(f, slot, it);
        fifo_check(f);
        return FIFO_DONE;
    }
    return FIFO_NOT_READY;
}

fifo_status
fifo_try_recv(fifo *f, item *got)
{
    uint32_t prev;
    if (f->head != NULL) {
        buf_pop(f, got);
        refill(f);
        fifo_check(f);
        return FIFO_DONE;
    }
    wnode *n = wlist_claim_first(&f->senders, &prev);
    if (n != NULL) {
        *got = n->send_item;
        n->send_item.m = NULL;
        wnode_fire(n, prev, WS_OK, NULL);
        return FIFO_DONE;
    }
    if (f->closed != FIFO_OPEN) {
        return FIFO_IS_CLOSED;
    }
    return FIFO_NOT_READY;
}

void
fifo_unget_many(fifo *f, item *its, Py_ssize_t n)
{
    uint32_t prev;
    Py_ssize_t i = 0;
    inode *first = NULL, *last = NULL;
    Py_ssize_t nback = 0;

    sub_mutex_lock(&f->mutex);
    /* Receivers wait only on an empty buffer: the first items go to them,
       in order, the rest back to the head, in order. */
    for (; i < n; i++) {
        wnode *w = wlist_claim_first(&f->receivers, &prev);
        if (w == NULL) {
            break;
        }
        wnode_fire(w, prev, WS_OK, &its[i]);
    }
    for (; i < n && f->closed != FIFO_CLOSED; i++) {
        inode *slot = node_get(f);
        if (slot == NULL) {
            break;  /* XXX no memory: the rest of the items go */
        }
        /* back at the head, even beyond capacity: they were taken once */
        slot->v = its[i];
        its[i].m = NULL;
        node_enter(f, slot);
        slot->next = NULL;
        if (last == NULL) {
            first = slot;
        }
        else {
            last->next = slot;
        }
        last = slot;
        nback++;
    }
    if (last != NULL) {
        last->next = f->head;
        if (f->head == NULL) {
            f->tail = last;
        }
        f->head = first;
        f->count += nback;
    }
    /* else force-closed meanwhile: dropped with the rest */
    fifo_check(f);
    sub_mutex_unlock(&f->mutex);
    for (i = 0; i < n; i++) {
        item_clear(&its[i]);
    }
}

void
fifo_unget(fifo *f, item *it)
{
    fifo_unget_many(f, it, 1);
}

Py_ssize_t
fifo_send_many(fifo *f, item *its, Py_ssize_t n, fifo_status *st)
{
    Py_ssize_t i = 0;
    *st = FIFO_DONE;
    while (i < n && (*st = fifo_try_send(f, &its[i])) == FIFO_DONE) {
        i++;
    }
    return i;
}

Py_ssize_t
fifo_recv_many(fifo *f, item *out, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n && fifo_try_recv(f, &out[i]) == FIFO_DONE) {
        i++;
    }
    return i;
}

void
fifo_close(fifo *f, int force)
{
    uint32_t prev;
    inode *dropped = NULL;
    wnode *n;

    sub_mutex_lock(&f->mutex);
    if (force) {
        dropped = f->head;
        for (inode *d = dropped; d != NULL; d = d->next) {
            node_leave(f, d);
        }
        f->head = f->tail = NULL;
        f->count = 0;
        /* FIFO_CLOSED only when forced: fifo_unget drops items then */
        f->closed = FIFO_CLOSED;
    }
    else if (f->closed == FIFO_OPEN) {
        f->closed = FIFO_CLOSING;
    }
    /* Blocked senders keep their items and raise. */
    while ((n = wlist_claim_first(&f->senders, &prev)) != NULL) {
        wnode_fire(n, prev, WS_CLOSED, NULL);
    }
    /* Receivers wait only on an empty buffer: nothing left for them. */
    while ((n = wlist_claim_first(&f->receivers, &prev)) != NULL) {
        wnode_fire(n, prev, WS_CLOSED, NULL);
    }
    fifo_check(f);
    sub_mutex_unlock(&f->mutex);
    inode_free_chain(dropped);
}

void
fifo_drop_buffer(fifo *f)
{
    sub_mutex_lock(&f->mutex);
    inode *dropped = f->head;
    for (inode *d = dropped; d != NULL; d = d->next) {
        node_leave(f, d);
    }
    f->head = f->tail = NULL;
    f->count = 0;
    refill(f);
    fifo_check(f);
    sub_mutex_unlock(&f->mutex);
    /* freeing the messages drops the references they held to the owner
       (and perhaps the last ones to other objects) */
    inode_free_chain(dropped);
}

/* ------------------------------------------------------------------ */
/* items                                                               */

/* item_encode for the current interpreter, whose id the caller knows
 * (put_many asks once for all its objects). */
static int
item_encode_in(module_state *st, PyObject *obj, int unboundop,
               int64_t interp_id, item *out)
{
    out->m = codec_encode(st, obj);
    if (out->m == NULL) {
        return -1;
    }
    out->interp_id = interp_id;
    out->unboundop = unboundop;
    out->unbound = 0;
    return 0;
}

int
item_encode(module_state *st, PyObject *obj, int unboundop, item *out)
{
    return item_encode_in(st, obj, unboundop,
                          PyInterpreterState_GetID(PyInterpreterState_Get()),
                          out);
}

/* Whether the error that decoding a received item raised consumes the
 * item: a decoding error (an Exception) does, or an item that cannot be
 * decoded would stay at the head for good; a KeyboardInterrupt or a
 * SystemExit that interrupted the decoding (a signal handler that
 * raised while an object's reconstructor ran, the interpreter exiting)
 * does not: the item goes back to the head, order kept, as when a
 * handler raises after the decoding. */
static int
decode_error_consumes(void)
{
    return PyErr_ExceptionMatches(PyExc_Exception);
}

/* An item on its way to the caller (see queue_item_to_object). */
typedef struct {
    PyObject_HEAD
    PyObject *source;   /* the Queue or RecvChannel: keeps f alive */
    fifo *f;
    item it;        /* the item, while not done */
    item *many;     /* or get_many()'s items (PyMem_RawMalloc), in order */
    Py_ssize_t nmany;
    int done;
} TakenObject;

static void
taken_dealloc(PyObject *op)
{
    TakenObject *self = (TakenObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (!self->done) {
        /* dropped with the objects it carried: the items go back */
        if (self->many != NULL) {
            fifo_unget_many(self->f, self->many, self->nmany);
        }
        else {
            fifo_unget(self->f, &self->it);
        }
    }
    item_clear(&self->it);
    if (self->many != NULL) {
        for (Py_ssize_t i = 0; i < self->nmany; i++) {
            item_clear(&self->many[i]);
        }
        PyMem_RawFree(self->many);
    }
    Py_DECREF(self->source);
    tp->tp_free(op);
    Py_DECREF(tp);
}

/* `taken.done = True`: a store, which the eval loop does without running
 * signal handlers (a call would give them a chance). */
static int
taken_set_done(PyObject *op, PyObject *value, void *Py_UNUSED(closure))
{
    (void)value;
    ((TakenObject *)op)->done = 1;
    return 0;
}

static PyObject *
taken_get_done(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((TakenObject *)op)->done);
}

static PyGetSetDef taken_getset[] = {
    {"done", taken_get_done, taken_set_done, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot taken_slots[] = {
    {Py_tp_doc, "A received item until the receiver has it (internal)."},
    {Py_tp_dealloc, taken_dealloc},
    {Py_tp_getset, taken_getset},
    {0, NULL},
};

static PyType_Spec taken_spec = {
    .name = "subinterp._core._Taken",
    .basicsize = sizeof(TakenObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = taken_slots,
};

PyObject *
taken_pair(PyObject *obj, PyObject *taken)
{
    if (obj == NULL) {
        Py_XDECREF(taken);
        return NULL;
    }
    PyObject *res = PyTuple_Pack(2, obj, taken ? taken : Py_None);
    Py_DECREF(obj);
    Py_XDECREF(taken);  /* on failure, puts the item back */
    return res;
}

/* The object an item stands for (it stays the caller's): decoded, or
 * UNBOUND, or NULL with ItemInterpreterDestroyed for an unbound item put
 * with UNBOUND_ERROR (or the decoder's exception). */
static PyObject *
item_object(module_state *st, const item *it)
{
    if (!it->unbound) {
        return codec_decode(st, it->m);
    }
    if (it->unboundop == UNBOUND_REPLACE) {
        return Py_NewRef(st->queue->UNBOUND);
    }
    set_err(st, ERR_ITEM_INTERP_DESTROYED, (long long)it->interp_id);
    return NULL;
}

PyObject *
queue_item_to_object(module_state *st, PyObject *source, fifo *f, item *it,
                     PyObject **taken)
{
    struct queue_state *qs = st->queue;
    PyObject *res = item_object(st, it);

    if (res == NULL && !decode_error_consumes()) {
        fifo_unget(f, it);
    }
    if (res == NULL && (PyErr_ExceptionMatches(PyExc_StopIteration) ||
                        PyErr_ExceptionMatches(PyExc_StopAsyncIteration))) {
        /* a reconstructor's StopIteration would end `for x in recv` (or
           `async for`) as if the channel were closed and drained: as
           PEP 479 does for generators, it becomes a RuntimeError */
        PyObject *exc = PyErr_GetRaisedException();
        PyErr_Format(PyExc_RuntimeError, "decoding the item raised %s",
                     Py_TYPE(exc)->tp_name);
        raise_from(exc);
    }

    /* The item is the caller's once this function returns it.  A signal
       that arrived since it was taken -- during the hand-off, the wake-up
       or the decoding -- would have its handler run by the eval loop
       right after the call returns, and a handler that raises would
       discard the object: run the handlers here instead, while the item
       can still go back to the head of its FIFO (order kept).  This is a
       no-op outside the thread that runs signal handlers. */
    if (res != NULL && PyErr_CheckSignals() < 0) {
        Py_CLEAR(res);
        fifo_unget(f, it);
    }
    if (res != NULL && taken != NULL) {
        TakenObject *t = PyObject_New(TakenObject, qs->TakenType);
        if (t == NULL) {
            Py_CLEAR(res);
            fifo_unget(f, it);
        }
        else {
            t->source = Py_NewRef(source);
            t->f = f;
            t->it = *it;
            t->many = NULL;
            t->nmany = 0;
            t->done = 0;
            it->m = NULL;
            *taken = (PyObject *)t;
        }
    }
    item_clear(it);
    return res;
}

/* ------------------------------------------------------------------ */
/* objects around a FIFO (queues, channels)                            */

fifo_obj *
fifo_obj_new(size_t size, Py_ssize_t capacity)
{
    fifo_obj *o = PyMem_RawCalloc(1, size);
    if (o == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    fifo_init(&o->f, capacity, &o->base);
    return o;
}

sub_mutex *
fifo_obj_mutex(sobj *o)
{
    return &((fifo_obj *)o)->f.mutex;
}

void
fifo_obj_after_fork(sobj *o)
{
    fifo *f = &((fifo_obj *)o)->f;
    wlist_reset(&f->receivers);
    wlist_reset(&f->senders);
}

void
fifo_obj_drop_buffer(sobj *o)
{
    fifo_drop_buffer(&((fifo_obj *)o)->f);
}

int
maxsize_from_object(PyObject *obj, int allow_negative, const char *hint,
                    Py_ssize_t *out)
{
    *out = 0;
    if (obj == NULL) {
        return 0;
    }
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "maxsize must be an int, not %.100s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *out = PyLong_AsSsize_t(obj);
    if (*out == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*out < 0 && !allow_negative) {
        PyErr_Format(PyExc_ValueError, "maxsize must be >= 0 (%s)", hint);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* the process-wide queue                                              */

typedef struct {
    fifo_obj fo;
    Py_ssize_t maxsize;  /* immutable, as given */
    int unboundop;       /* immutable: default for put() */
} queue_obj;

static void
queue_destroy(sobj *o)
{
    queue_obj *q = (queue_obj *)o;
    fifo_fini(&q->fo.f);
    PyMem_RawFree(q);
}

/* Interpreter `id` was destroyed: unbind its items (see the top). */
static void
queue_interp_closed(sobj *o, int64_t id)
{
    queue_obj *q = (queue_obj *)o;
    fifo *f = &q->fo.f;
    inode *garbage = NULL;

    sub_mutex_lock(&f->mutex);
    inode **pp = &f->head;
    inode *last = NULL;
    while (*pp != NULL) {
        inode *n = *pp;
        item *it = &n->v;
        if (it->interp_id != id || it->unbound ||
            it->unboundop == UNBOUND_KEEP) {
            last = n;
            pp = &n->next;
            continue;
        }
        node_leave(f, n);
        if (it->unboundop == UNBOUND_REMOVE) {
            *pp = n->next;
            f->count--;
            n->next = garbage;
            garbage = n;
            continue;
        }
        /* UNBOUND_ERROR / UNBOUND_REPLACE: keep a placeholder; its
           message goes (in a carrier node, freed after unlocking). */
        inode *carrier = node_get(f);
        if (carrier != NULL) {
            carrier->v = *it;   /* moved: it->m is cleared below */
            carrier->next = garbage;
            garbage = carrier;
            it->m = NULL;
        }
        else {
            /* XXX: the message stays until the item is taken */
            node_enter(f, n);
        }
        it->unbound = 1;
        last = n;
        pp = &n->next;
    }
    f->tail = last;
    refill(f);
    fifo_check(f);
    sub_mutex_unlock(&f->mutex);
    inode_free_chain(garbage);
}

static PyObject *queue_wrap(module_state *st, void *ref);
static PyObject *interp_queue_wrap(module_state *st, void *ref);

static PyObject **
queue_cache(module_state *st)
{
    return st != NULL && st->queue != NULL ? &st->queue->queue_handles
                                           : NULL;
}

static PyObject **
interp_queue_cache(module_state *st)
{
    return st != NULL && st->queue != NULL
               ? &st->queue->interp_queue_handles
               : NULL;
}

static const handle_kind queue_kind = {
    .name = "Queue",
    .tag = TAG_QUEUE,
    .incref = (void (*)(void *))sobj_incref,
    .decref = (void (*)(void *))sobj_decref,
    .wrap = queue_wrap,
    .cache = queue_cache,
};

/* The same queue seen through subinterp.interpreters: a handle keeps its
 * kind in messages, so a queue sent by code written for the standard
 * library's API arrives as the type that code expects. */
static const handle_kind interp_queue_kind = {
    .name = "interpreters.Queue",
    .tag = TAG_INTERP_QUEUE,
    .incref = (void (*)(void *))sobj_incref,
    .decref = (void (*)(void *))sobj_decref,
    .wrap = interp_queue_wrap,
    .cache = interp_queue_cache,
};

/* select(): both faces of a queue receive and send. */
static fifo *
queue_fifo_of(sobj *o, const handle_kind *Py_UNUSED(kind), int *ops,
              int *unboundop)
{
    queue_obj *q = (queue_obj *)o;
    *ops = FIFO_OP_RECV | FIFO_OP_SEND;
    *unboundop = q->unboundop;
    return &q->fo.f;
}

static const sobj_type queue_type = {
    .name = "Queue",
    .destroy = queue_destroy,
    .interp_closed = queue_interp_closed,
    .mutex = fifo_obj_mutex,
    .after_fork = fifo_obj_after_fork,
    .kinds = {&queue_kind, &interp_queue_kind},
    .drop_buffer = fifo_obj_drop_buffer,
    .fifo_of = queue_fifo_of,
    .item_encode = item_encode,
    .item_to_object = queue_item_to_object,
    .closed_err = ERR_OK,   /* a queue is never closed */
};

static PyObject *
queue_wrap(module_state *st, void *ref)
{
    return handle_get(st, st->queue->QueueType, &queue_kind, (sobj *)ref);
}

static PyObject *
interp_queue_wrap(module_state *st, void *ref)
{
    return handle_get(st, st->queue->InterpQueueType, &interp_queue_kind,
                      (sobj *)ref);
}

static queue_obj *
queue_of(PyObject *self)
{
    return (queue_obj *)((HandleObject *)self)->ref;
}

/* The unbound op named by a sentinel; -1 with an exception otherwise.
 * None gives `dflt`. */
int
unboundop_from_object(module_state *st, PyObject *obj, int dflt)
{
    struct queue_state *qs = st->queue;
    if (obj == NULL || obj == Py_None) {
        return dflt;
    }
    if (obj == qs->UNBOUND) {
        return UNBOUND_REPLACE;
    }
    if (obj == qs->UNBOUND_ERROR) {
        return UNBOUND_ERROR;
    }
    if (obj == qs->UNBOUND_REMOVE) {
        return UNBOUND_REMOVE;
    }
    return set_err(st, ERR_UNBOUND_ITEMS, obj);
}

static PyObject *
unboundop_to_object(module_state *st, int op)
{
    struct queue_state *qs = st->queue;
    switch (op) {
    case UNBOUND_ERROR:
        return Py_NewRef(qs->UNBOUND_ERROR);
    case UNBOUND_REMOVE:
        return Py_NewRef(qs->UNBOUND_REMOVE);
    default:
        return Py_NewRef(qs->UNBOUND);
    }
}

/* ------------------------------------------------------------------ */
/* creating queues                                                     */

/* A new queue; its handle is of the face `interp` asks for: 0 for
 * subinterp.Queue (maxsize >= 0, 0 unbounded, like queue.Queue but
 * refusing negative sizes), 1 for subinterp.interpreters (the standard
 * library's create_queue: maxsize <= 0 is unbounded and reported as
 * given). */
static PyObject *
queue_create(module_state *st, PyObject *maxsize_obj, PyObject *unbound,
             int interp)
{
    PyObject *res = NULL;
    Py_ssize_t maxsize;

    if (maxsize_from_object(maxsize_obj, interp, "0 means unbounded",
                            &maxsize) < 0) {
        return NULL;
    }
    int op = unboundop_from_object(st, unbound, UNBOUND_REPLACE);
    if (op < 0) {
        return NULL;
    }
    queue_obj *q = (queue_obj *)fifo_obj_new(sizeof(queue_obj),
                                              maxsize <= 0 ? -1 : maxsize);
    if (q == NULL) {
        return NULL;
    }
    q->maxsize = maxsize;
    q->unboundop = op;
    /* registered once complete: others may find it by id from now on */
    sobj_register(&q->fo.base, &queue_type);
    res = interp ? interp_queue_wrap(st, q) : queue_wrap(st, q);
    sobj_decref(&q->fo.base);  /* the handle holds it now (or nobody) */
    return res;
}

static PyObject *
queue_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"maxsize", "unbounditems", NULL};
    PyObject *maxsize = NULL, *unbound = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$O:Queue", kwlist,
                                     &maxsize, &unbound)) {
        return NULL;
    }
    module_state *st = get_mod_state_by_type(tp);
    if (st == NULL) {
        return NULL;
    }
    if (tp != st->queue->QueueType) {
        /* only subinterp.interpreters.Queue derives from Queue, and it
           has a constructor of its own */
        PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances "
                     "(subinterp.Queue cannot be subclassed)", tp->tp_name);
        return NULL;
    }
    return queue_create(st, maxsize, unbound, 0);
}

static PyObject *
coremod_create_queue(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"maxsize", "unbounditems", NULL};
    PyObject *maxsize = NULL, *unbound = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$O:create_queue",
                                     kwlist, &maxsize, &unbound)) {
        return NULL;
    }
    return queue_create(get_mod_state(mod), maxsize, unbound, 0);
}

static PyObject *
coremod_create_interp_queue(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"maxsize", "unbounditems", NULL};
    PyObject *maxsize = NULL, *unbound = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O$O:create_queue",
                                     kwlist, &maxsize, &unbound)) {
        return NULL;
    }
    return queue_create(get_mod_state(mod), maxsize, unbound, 1);
}

/* interpreters.Queue(id, /): the live queue with that id, as the
 * standard library's Queue(id) (TypeError for a non-int, ValueError for
 * a negative id, OverflowError beyond 64 bits, QueueNotFoundError for an
 * unknown one). */
static PyObject *
interp_queue_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    PyObject *arg;
    PyObject *res = NULL;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError,
                        "Queue() takes no keyword arguments (use "
                        "create_queue() to make a queue)");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "Queue", 1, 1, &arg)) {
        return NULL;
    }
    int64_t id;
    if (id_from_object(arg, "queue", &id) < 0) {
        return NULL;
    }
    module_state *st = get_mod_state_by_type(tp);
    if (st == NULL) {
        return NULL;
    }
    sobj *o = sobj_lookup(id, &queue_type);
    if (o == NULL) {
        set_err(st, ERR_QUEUE_NOT_FOUND, (long long)id);
        return NULL;
    }
    res = interp_queue_wrap(st, o);
    sobj_decref(o);
    return res;
}

/* Pickled as interpreters.Queue(id), as the standard library's queues:
 * valid in this process while the queue lives. */
static PyObject *
interp_queue_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(O(L))", (PyObject *)Py_TYPE(self),
                         (long long)queue_of(self)->fo.base.id);
}

static PyObject *
interp_queue_repr(PyObject *self)
{
    return PyUnicode_FromFormat("Queue(%lld)",
                                (long long)queue_of(self)->fo.base.id);
}

/* ------------------------------------------------------------------ */
/* Queue methods                                                       */

static PyObject *
queue_put_impl(PyObject *self, PyObject *obj, int block, PyObject *timeout,
               PyObject *unbound)
{
    module_state *st = get_mod_state_by_type(Py_TYPE(self));
    queue_obj *q = queue_of(self);
    PyObject *res = NULL;
    deadline dl;
    sel_case c = {.f = &q->fo.f, .kind = CASE_SEND};
    int index;

    int op = unboundop_from_object(st, unbound, q->unboundop);
    if (op < 0) {
        return NULL;
    }
    if (block && deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    if (item_encode(st, obj, op, &c.send_item) < 0) {
        return NULL;
    }
    switch (select_blocking(&c, 1, 0, block ? &dl : NULL, &index, NULL)) {
    case SEL_DONE:
        res = Py_NewRef(Py_None);
        break;
    case SEL_TIMEOUT:
        set_err(st, ERR_QUEUE_FULL);
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

static PyObject *
queue_get_impl(PyObject *self, int block, PyObject *timeout)
{
    module_state *st = get_mod_state_by_type(Py_TYPE(self));
    queue_obj *q = queue_of(self);
    deadline dl;
    sel_case c = {.f = &q->fo.f, .kind = CASE_RECV};
    int index;
    item got = {.m = NULL};

    if (block && deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    switch (select_blocking(&c, 1, 0, block ? &dl : NULL, &index, &got)) {
    case SEL_DONE: {
        PyObject *taken = NULL;
        PyObject *obj = queue_item_to_object(st, self, &q->fo.f, &got,
                                             &taken);
        return taken_pair(obj, taken);
    }
    case SEL_TIMEOUT:
        set_err(st, ERR_QUEUE_EMPTY);
        return NULL;
    case SEL_NO_MEMORY:
        set_err(st, ERR_NO_MEMORY);
        return NULL;
    default:
        return NULL;
    }
}

/* Record on the exception being raised how many of put_many()'s objects
 * went in before it (they stay in): its `count` attribute.  Best effort:
 * an exception that takes no attribute is raised as it is. */
static void
exc_set_count(Py_ssize_t count)
{
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *n = PyLong_FromSsize_t(count);
    if (n == NULL || exc == NULL ||
        PyObject_SetAttrString(exc, "count", n) < 0) {
        PyErr_Clear();
    }
    Py_XDECREF(n);
    PyErr_SetRaisedException(exc);
}

/* put_many(objs): every object is encoded first (one that fails to
 * encode raises before anything went in), then as many as fit go in
 * under one lock of the FIFO; while the rest do not fit, one blocking
 * put of the next object (select_blocking: the one wait engine) waits
 * for room, and the next lock puts what fits again.  Order is kept:
 * only one object of the call is ever waiting.  On a timeout (or
 * block false) QueueFull says how many went in (`count`); so does any
 * exception raised while waiting (KeyboardInterrupt, SystemExit). */
static PyObject *
queue_put_many_impl(PyObject *self, PyObject *objs, int block,
                    PyObject *timeout, PyObject *unbound)
{
    module_state *st = get_mod_state_by_type(Py_TYPE(self));
    queue_obj *q = queue_of(self);
    fifo *f = &q->fo.f;
    PyObject *seq = NULL, *res = NULL;
    item *its = NULL;
    Py_ssize_t n = 0, nenc = 0, sent = 0;
    fifo_status fs = FIFO_DONE;
    deadline dl;

    int op = unboundop_from_object(st, unbound, q->unboundop);
    if (op < 0) {
        return NULL;
    }
    if (block && deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    /* a tuple: encoding may run Python code, which could resize a list */
    seq = PySequence_Tuple(objs);
    if (seq == NULL) {
        goto done;
    }
    n = PyTuple_GET_SIZE(seq);
    its = PyMem_RawMalloc((size_t)(n > 0 ? n : 1) * sizeof(item));
    if (its == NULL) {
        set_err(st, ERR_NO_MEMORY);
        goto done;
    }
    int64_t interp_id = PyInterpreterState_GetID(PyInterpreterState_Get());
    for (; nenc < n; nenc++) {
        if (item_encode_in(st, PyTuple_GET_ITEM(seq, nenc), op, interp_id,
                           &its[nenc]) < 0) {
            goto done;
        }
    }
    /* as put(): handlers that raise stop it before anything moved */
    if (PyErr_CheckSignals() < 0) {
        goto done;
    }
    sub_mutex_lock(&f->mutex);
    sent = fifo_send_many(f, its, n, &fs);
    sub_mutex_unlock(&f->mutex);
    while (sent < n && fs == FIFO_NOT_READY && block) {
        sel_case c = {.f = f, .kind = CASE_SEND, .send_item = its[sent]};
        int index, r;
        its[sent].m = NULL;
        r = select_blocking(&c, 1, 0, &dl, &index, NULL);
        its[sent] = c.send_item;    /* m is NULL once delivered */
        if (r != SEL_DONE) {
            if (r == SEL_TIMEOUT) {
                set_err(st, ERR_QUEUE_FULL);
            }
            else if (r == SEL_NO_MEMORY) {
                set_err(st, ERR_NO_MEMORY);
            }
            /* else the engine raised (a queue is never closed) */
            exc_set_count(sent);
            goto done;
        }
        sent++;
        sub_mutex_lock(&f->mutex);
        sent += fifo_send_many(f, its + sent, n - sent, &fs);
        sub_mutex_unlock(&f->mutex);
    }
    if (sent < n) {
        set_err(st, fs == FIFO_NO_MEMORY ? ERR_NO_MEMORY : ERR_QUEUE_FULL);
        exc_set_count(sent);
        goto done;
    }
    res = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < nenc; i++) {
        item_clear(&its[i]);    /* those that did not go in */
    }
    PyMem_RawFree(its);
    Py_XDECREF(seq);
    return res;
}

/* _put_many(block, timeout, unbounditems) -> a _StoreOp (put_many()
 * calls it) */
static PyObject *
queue_put_many_op(PyObject *queue, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "_put_many(block, timeout, unbounditems)");
        return NULL;
    }
    int block = PyObject_IsTrue(args[0]);
    if (block < 0) {
        return NULL;
    }
    return store_op_new(get_mod_state_by_type(Py_TYPE(queue)),
                        queue_put_many_impl, queue, block, args[1], args[2]);
}

/* First size of get_many()'s array of items; it grows to what the
 * buffer holds (at most max_items) when that is more. */
#define GET_MANY_FIRST 64

/* Receive up to `want` items into (*its)[from..), growing the array
 * (capacity *cap) to what the buffer holds first.  Returns how many. */
static Py_ssize_t
recv_many_locked(fifo *f, item **its, Py_ssize_t *cap, Py_ssize_t from,
                 Py_ssize_t want)
{
    Py_ssize_t n;
    sub_mutex_lock(&f->mutex);
    n = Py_MIN(want, f->count);
    if (from + n > *cap) {
        /* under the mutex, like node_get: only when a batch is bigger
           than any before it */
        item *p = PyMem_RawRealloc(*its, (size_t)(from + n) * sizeof(item));
        if (p != NULL) {
            *its = p;
            *cap = from + n;
        }
    }
    n = fifo_recv_many(f, *its + from, Py_MIN(want, *cap - from));
    sub_mutex_unlock(&f->mutex);
    return n;
}

/* get_many(max_items): every item the buffer holds now, up to
 * max_items, taken under one lock; when there is none (and block), one
 * blocking get (select_blocking) waits for the first, and whatever has
 * arrived with it is taken too, without waiting again.  The items are
 * decoded after the mutex is released and returned as a list with a
 * _Taken holding them all (as get(): put back, in order, if the list
 * never reaches the caller).  Delivery is exactly once: when item j > 0
 * fails to decode (ItemInterpreterDestroyed, a decoding error), the
 * first j are returned and item j and those after it go back to the
 * head, where the next get raises for item j; when the first fails, it
 * is consumed and raises, as with get().  A KeyboardInterrupt or
 * SystemExit puts all of them back (decode_error_consumes). */
static PyObject *
queue_get_many_impl(PyObject *self, Py_ssize_t max_items, int block,
                    PyObject *timeout)
{
    module_state *st = get_mod_state_by_type(Py_TYPE(self));
    queue_obj *q = queue_of(self);
    fifo *f = &q->fo.f;
    struct queue_state *qs = st->queue;
    PyObject *list = NULL;
    TakenObject *t = NULL;
    Py_ssize_t cap = Py_MIN(max_items, GET_MANY_FIRST), k = 0, j;
    item *its = NULL;
    deadline dl;

    if (max_items < 1) {
        PyErr_SetString(PyExc_ValueError, "max_items must be >= 1");
        return NULL;
    }
    if (block && deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    /* as get(): handlers that raise stop it before anything moved */
    if (PyErr_CheckSignals() < 0) {
        return NULL;
    }
    its = PyMem_RawMalloc((size_t)cap * sizeof(item));
    if (its == NULL) {
        set_err(st, ERR_NO_MEMORY);
        return NULL;
    }
    k = recv_many_locked(f, &its, &cap, 0, max_items);
    if (k == 0) {
        sel_case c = {.f = f, .kind = CASE_RECV};
        int index;
        int r = select_blocking(&c, 1, 0, block ? &dl : NULL, &index,
                                &its[0]);
        if (r != SEL_DONE) {
            if (r == SEL_TIMEOUT) {
                set_err(st, ERR_QUEUE_EMPTY);
            }
            else if (r == SEL_NO_MEMORY) {
                set_err(st, ERR_NO_MEMORY);
            }
            goto error;
        }
        k = 1;
        if (max_items > 1) {
            k += recv_many_locked(f, &its, &cap, 1, max_items - 1);
        }
    }
    list = PyList_New(k);
    if (list == NULL) {
        goto unget_all;
    }
    for (j = 0; j < k; j++) {
        PyObject *obj = item_object(st, &its[j]);
        if (obj == NULL) {
            break;
        }
        PyList_SET_ITEM(list, j, obj);
    }
    if (j < k) {
        if (!decode_error_consumes()) {
            goto unget_all;     /* KeyboardInterrupt, SystemExit... */
        }
        if (j == 0) {
            /* as get(): the item that raised is consumed */
            item_clear(&its[0]);
            fifo_unget_many(f, its + 1, k - 1);
            goto error;
        }
        /* the first j objects are the result; item j raises next time */
        PyErr_Clear();
        /* shortened first: when that fails, unget_all puts all k back,
           so none of them may have gone back yet */
        if (PyList_SetSlice(list, j, k, NULL) < 0) {
            goto unget_all;
        }
        fifo_unget_many(f, its + j, k - j);
        k = j;
    }
    /* the signal handlers, while the items can still go back (see
       queue_item_to_object) */
    if (PyErr_CheckSignals() < 0) {
        goto unget_all;
    }
    t = PyObject_New(TakenObject, qs->TakenType);
    if (t == NULL) {
        goto unget_all;
    }
    t->source = Py_NewRef(self);
    t->f = f;
    t->it.m = NULL;
    t->many = its;
    t->nmany = k;
    t->done = 0;
    return taken_pair(list, (PyObject *)t);

unget_all:
    fifo_unget_many(f, its, k);
error:
    Py_XDECREF(list);
    PyMem_RawFree(its);
    return NULL;
}

/* _get_many(max_items, block, timeout): called by get_many() only,
 * positionally */
static PyObject *
queue_get_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "_get_many(max_items, block, timeout)");
        return NULL;
    }
    Py_ssize_t max_items = PyNumber_AsSsize_t(args[0], NULL);
    if (max_items == -1 && PyErr_Occurred()) {
        return NULL;
    }
    int block = PyObject_IsTrue(args[1]);
    if (block < 0) {
        return NULL;
    }
    return queue_get_many_impl(self, max_items, block, args[2]);
}

/* _get(block, timeout): called by get() only, positionally */
static PyObject *
queue_get(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_get(block, timeout)");
        return NULL;
    }
    int block = PyObject_IsTrue(args[0]);
    if (block < 0) {
        return NULL;
    }
    return queue_get_impl(self, block, args[1]);
}

static PyObject *
queue_get_nowait(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return queue_get_impl(self, 0, NULL);
}

static Py_ssize_t
queue_count(PyObject *self)
{
    fifo *f = &queue_of(self)->fo.f;
    sub_mutex_lock(&f->mutex);
    Py_ssize_t n = f->count;
    sub_mutex_unlock(&f->mutex);
    return n;
}

static PyObject *
queue_qsize(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromSsize_t(queue_count(self));
}

static PyObject *
queue_empty(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(queue_count(self) == 0);
}

static PyObject *
queue_full(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    queue_obj *q = queue_of(self);
    return PyBool_FromLong(q->maxsize > 0 && queue_count(self) >= q->maxsize);
}

static PyObject *
queue_get_maxsize(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(queue_of(self)->maxsize);
}

static PyObject *
queue_get_unbounditems(PyObject *self, void *Py_UNUSED(closure))
{
    return unboundop_to_object(get_mod_state_by_type(Py_TYPE(self)),
                               queue_of(self)->unboundop);
}

static PyObject *
queue_repr(PyObject *self)
{
    queue_obj *q = queue_of(self);
    return PyUnicode_FromFormat("subinterp.Queue(id=%lld, maxsize=%zd)",
                                (long long)q->fo.base.id, q->maxsize);
}

/* An operation waiting for its object: `op.obj = obj` runs it, and
 * `op.result` is what it returned.  Queue.put (`queue._put(block,
 * timeout, unbounditems).obj = obj`), the sends of a SendChannel and
 * select() are Python wrappers doing exactly that (select.c): the eval
 * loop runs pending signal handlers after a call returns but not after
 * an attribute store or load, so an operation that raised never put or
 * sent its object, and one that returned did, whenever a handler raises.
 * (Signals that arrive during the operation are handled inside it,
 * before the object moves or while it waits.) */
typedef struct {
    PyObject_HEAD
    store_fn run;
    PyObject *target;
    int block;
    PyObject *timeout;
    PyObject *extra;
    PyObject *result;   /* NULL until the operation returned */
} StoreOp;

PyObject *
store_op_new(module_state *st, store_fn run, PyObject *target, int block,
             PyObject *timeout, PyObject *extra)
{
    StoreOp *self = PyObject_New(StoreOp, st->queue->StoreOpType);
    if (self == NULL) {
        return NULL;
    }
    self->run = run;
    self->target = Py_NewRef(target);
    self->block = block;
    self->timeout = Py_NewRef(timeout);
    self->extra = Py_NewRef(extra);
    self->result = NULL;
    return (PyObject *)self;
}

/* _put(block, timeout, unbounditems) -> a _StoreOp (put() calls it) */
static PyObject *
queue_put_op(PyObject *queue, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "_put(block, timeout, unbounditems)");
        return NULL;
    }
    int block = PyObject_IsTrue(args[0]);
    if (block < 0) {
        return NULL;
    }
    return store_op_new(get_mod_state_by_type(Py_TYPE(queue)), queue_put_impl, queue, block,
                        args[1], args[2]);
}

static void
store_op_dealloc(PyObject *op)
{
    StoreOp *self = (StoreOp *)op;
    PyTypeObject *tp = Py_TYPE(op);
    Py_DECREF(self->target);
    Py_DECREF(self->timeout);
    Py_DECREF(self->extra);
    Py_XDECREF(self->result);
    tp->tp_free(op);
    Py_DECREF(tp);
}

static int
store_op_set_obj(PyObject *op, PyObject *value, void *Py_UNUSED(closure))
{
    StoreOp *self = (StoreOp *)op;
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete obj");
        return -1;
    }
    PyObject *res = self->run(self->target, value, self->block,
                              self->block ? self->timeout : NULL,
                              self->extra);
    if (res == NULL) {
        return -1;
    }
    Py_XSETREF(self->result, res);
    return 0;
}

static PyObject *
store_op_get_result(PyObject *op, void *Py_UNUSED(closure))
{
    StoreOp *self = (StoreOp *)op;
    return Py_NewRef(self->result != NULL ? self->result : Py_None);
}

static PyGetSetDef store_op_getset[] = {
    {"obj", NULL, store_op_set_obj, NULL, NULL},
    {"result", store_op_get_result, NULL, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot store_op_slots[] = {
    {Py_tp_doc, "An operation waiting for its object (internal)."},
    {Py_tp_dealloc, store_op_dealloc},
    {Py_tp_getset, store_op_getset},
    {0, NULL},
};

static PyType_Spec store_op_spec = {
    .name = "subinterp._core._StoreOp",
    .basicsize = sizeof(StoreOp),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = store_op_slots,
};

static PyMethodDef queue_methods[] = {
    /* put() and put_nowait() are Python wrappers around _put (select.c) */
    {"_put", _PyCFunction_CAST(queue_put_op), METH_FASTCALL,
     "_put($self, block, timeout, unbounditems, /)\n--\n\n"
     "An operation putting the object stored into it (internal)."},
    /* get() and get_nowait() are Python wrappers of these (select.c) */
    {"_get", _PyCFunction_CAST(queue_get), METH_FASTCALL,
     "_get($self, block=True, timeout=None)\n--\n\n"
     "get(), returning (object, taken) (internal)."},
    {"_put_many", _PyCFunction_CAST(queue_put_many_op), METH_FASTCALL,
     "_put_many($self, block, timeout, unbounditems, /)\n--\n\n"
     "An operation putting the objects stored into it (internal)."},
    {"_get_many", _PyCFunction_CAST(queue_get_many), METH_FASTCALL,
     "_get_many($self, max_items, block, timeout, /)\n--\n\n"
     "get_many(), returning (list, taken) (internal)."},
    {"_get_nowait", queue_get_nowait, METH_NOARGS,
     "_get_nowait($self, /)\n--\n\n"
     "get_nowait(), returning (object, taken) (internal)."},
    {"qsize", queue_qsize, METH_NOARGS,
     "qsize($self, /)\n--\n\nNumber of objects in the queue."},
    {"empty", queue_empty, METH_NOARGS,
     "empty($self, /)\n--\n\nTrue if the queue holds no object."},
    {"full", queue_full, METH_NOARGS,
     "full($self, /)\n--\n\nTrue if the queue holds maxsize objects."},
    {"__reduce__", handle_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

/* subinterp.interpreters.Queue inherits the rest from Queue. */
static PyMethodDef interp_queue_methods[] = {
    {"__reduce__", interp_queue_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef queue_getset[] = {
    {"id", handle_get_id, NULL, "The queue's id, unique in the process.",
     NULL},
    {"maxsize", queue_get_maxsize, NULL,
     "The most objects the queue holds (0: unbounded).", NULL},
    {"unbounditems", queue_get_unbounditems, NULL,
     "The default of put()'s unbounditems.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot queue_slots[] = {
    {Py_tp_doc,
     "Queue(maxsize=0, *, unbounditems=UNBOUND)\n--\n\n"
     "A FIFO queue usable from every interpreter of the process.\n\n"
     "The handle crosses to other interpreters (prepare_main, call "
     "arguments, other queues) and refers to the same queue there.  "
     "Blocking operations release the GIL and sleep until woken: no "
     "polling.  maxsize 0 means unbounded."},
    {Py_tp_new, queue_tp_new},
    HANDLE_TYPE_SLOTS,
    {Py_tp_repr, queue_repr},
    {Py_tp_methods, queue_methods},
    {Py_tp_getset, queue_getset},
    {0, NULL},
};

/* A base type for subinterp.interpreters.Queue only: queue_tp_new
 * refuses other subclasses (a handle's type must be one the codec
 * knows). */
static PyType_Spec queue_spec = {
    .name = "subinterp.Queue",
    .basicsize = sizeof(HandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_BASETYPE,
    .slots = queue_slots,
};

static PyType_Slot interp_queue_slots[] = {
    {Py_tp_doc,
     "Queue(id, /)\n--\n\n"
     "A cross-interpreter queue, as the standard library's "
     "concurrent.interpreters.Queue.\n\n"
     "Queue(id) returns the live queue with that id (the same object each "
     "time, in this interpreter) or raises QueueNotFoundError: that is how "
     "code in another interpreter reaches a queue.  create_queue() makes "
     "one.  The C queue is the one subinterp.Queue wraps: blocking "
     "operations sleep until woken, no polling."},
    {Py_tp_new, interp_queue_tp_new},
    HANDLE_TYPE_SLOTS,
    {Py_tp_repr, interp_queue_repr},
    {Py_tp_methods, interp_queue_methods},
    {0, NULL},
};

/* A subclass of subinterp.Queue (queue_init), named after the module
 * that exports it, so that pickle finds it there; in _core it is
 * _InterpretersQueue. */
static PyType_Spec interp_queue_spec = {
    .name = "subinterp.interpreters.Queue",
    .basicsize = sizeof(HandleObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = interp_queue_slots,
};

/* ------------------------------------------------------------------ */
/* UNBOUND sentinels                                                   */

typedef struct {
    PyObject_HEAD
    const char *name;
} UnboundObject;

static PyObject *
unbound_repr(PyObject *self)
{
    return PyUnicode_FromFormat("subinterp.%s",
                                ((UnboundObject *)self)->name);
}

static PyObject *
unbound_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    /* pickle by name: the same sentinel in every interpreter */
    return PyUnicode_FromString(((UnboundObject *)self)->name);
}

/* The sentinels live in the module's dict and state for as long as the
 * module, and each refers to its heap type, which refers to the module.
 * They must be GC objects that visit their type: a reference from an
 * untracked object counts as external to the collector, which would then
 * keep the type, the module and with them the whole interpreter alive
 * after it ended (the module's m_free would never run). */
static int
unbound_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static void
unbound_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyMethodDef unbound_methods[] = {
    {"__reduce__", unbound_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot unbound_slots[] = {
    {Py_tp_doc, "A constant for what happens to a queued item whose "
                "interpreter was destroyed (UNBOUND, UNBOUND_ERROR, "
                "UNBOUND_REMOVE)."},
    {Py_tp_repr, unbound_repr},
    {Py_tp_dealloc, unbound_dealloc},
    {Py_tp_traverse, unbound_traverse},
    {Py_tp_methods, unbound_methods},
    {0, NULL},
};

static PyType_Spec unbound_spec = {
    .name = "subinterp._core.UnboundItem",
    .basicsize = sizeof(UnboundObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = unbound_slots,
};

static int
add_sentinel(PyObject *mod, PyTypeObject *tp, const char *name,
             PyObject **slot)
{
    UnboundObject *obj = (UnboundObject *)tp->tp_alloc(tp, 0);
    if (obj == NULL) {
        return -1;
    }
    obj->name = name;
    *slot = (PyObject *)obj;
    return PyModule_AddObjectRef(mod, name, (PyObject *)obj);
}

/* ------------------------------------------------------------------ */
/* exceptions, made on first use                                       */

/* Drop the exception classes made on first use (all NULL if never). */
static void
clear_exceptions(struct queue_state *qs)
{
    Py_CLEAR(qs->QueueError);
    Py_CLEAR(qs->QueueNotFoundError);
    Py_CLEAR(qs->QueueEmpty);
    Py_CLEAR(qs->QueueFull);
    Py_CLEAR(qs->ItemInterpreterDestroyed);
    Py_CLEAR(qs->UnboundItemsError);
}

/* queue.Full lives in queue.py, which imports threading: ~3 ms that
 * every new interpreter would pay at import. */
static const exc_spec queue_exceptions[] = {
    /* RuntimeError as well, like the standard library's QueueError */
    {"QueueError", {"subinterp.InterpreterError", "builtins.RuntimeError"},
     "A queue operation failed."},
    {"QueueNotFoundError", {"QueueError"}, "The queue no longer exists."},
    {"QueueEmpty", {"QueueError", "queue.Empty"},
     "Raised by get_nowait(), and by get() when it times out."},
    {"QueueFull", {"QueueError", "queue.Full"},
     "Raised by put_nowait(), and by put() when it times out."},
    {"ItemInterpreterDestroyed", {"QueueError"},
     "Raised by get() for an item put with UNBOUND_ERROR by an interpreter "
     "that was destroyed before the item was taken."},
    /* ValueError, as for any bad argument, and NotImplementedError, as
       the standard library's queues raise for one */
    {"UnboundItemsError",
     {"builtins.ValueError", "builtins.NotImplementedError"},
     "unbounditems is not UNBOUND, UNBOUND_ERROR or UNBOUND_REMOVE."},
};

int
queue_exceptions_ensure(module_state *st)
{
    struct queue_state *qs = st->queue;
    PyObject **const slots[] = {
        &qs->QueueError, &qs->QueueNotFoundError, &qs->QueueEmpty,
        &qs->QueueFull, &qs->ItemInterpreterDestroyed,
        &qs->UnboundItemsError,
    };
    return exceptions_make(qs->module, queue_exceptions,
                           (int)Py_ARRAY_LENGTH(queue_exceptions), slots,
                           &qs->have_exceptions);
}

PyObject *
queue_exception(module_state *st, int err)
{
    struct queue_state *qs = st->queue;
    if (queue_exceptions_ensure(st) < 0) {
        return NULL;
    }
    switch (err) {
    case ERR_QUEUE_EMPTY:
        return qs->QueueEmpty;
    case ERR_QUEUE_FULL:
        return qs->QueueFull;
    case ERR_QUEUE_NOT_FOUND:
        return qs->QueueNotFoundError;
    case ERR_ITEM_INTERP_DESTROYED:
        return qs->ItemInterpreterDestroyed;
    case ERR_UNBOUND_ITEMS:
        return qs->UnboundItemsError;
    default:
        return qs->QueueError;
    }
}

/* ------------------------------------------------------------------ */
/* module functions                                                    */

static PyObject *
coremod_list_queues(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    return sobj_list_ids(&queue_type);
}

static PyMethodDef queue_functions[] = {
    {"create_queue", _PyCFunction_CAST(coremod_create_queue),
     METH_VARARGS | METH_KEYWORDS,
     "create_queue(maxsize=0, *, unbounditems=UNBOUND)\n--\n\n"
     "Return a new Queue (the same as Queue(...))."},
    {"_create_interp_queue", _PyCFunction_CAST(coremod_create_interp_queue),
     METH_VARARGS | METH_KEYWORDS,
     "_create_interp_queue(maxsize=0, *, unbounditems=UNBOUND)\n--\n\n"
     "A new queue as subinterp.interpreters.create_queue() makes it."},
    {"_list_queue_ids", coremod_list_queues, METH_NOARGS,
     "_list_queue_ids()\n--\n\nIds of the live queues."},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------ */
/* init                                                                */

/* A heap type of the module that is not a handle type. */
static int
type_add(PyObject *mod, PyType_Spec *spec, PyTypeObject **slot)
{
    *slot = (PyTypeObject *)PyType_FromModuleAndSpec(mod, spec, NULL);
    return *slot == NULL ? -1 : 0;
}

int
queue_init(PyObject *mod, module_state *st)
{
    struct queue_state *qs = PyMem_Calloc(1, sizeof(struct queue_state));
    if (qs == NULL) {
        return set_err(st, ERR_NO_MEMORY);
    }
    st->queue = qs;
    qs->module = mod;
    /* interpreters.Queue is a subclass of Queue: it shares every method,
       the Python wrappers of select.c included, and overrides
       construction and pickling; in _core it is _InterpretersQueue. */
    if (handle_type_add(mod, st, &queue_spec, NULL, &qs->QueueType) < 0 ||
        handle_type_add(mod, st, &interp_queue_spec, qs->QueueType,
                        &qs->InterpQueueType) < 0 ||
        PyModule_AddObjectRef(mod, "_InterpretersQueue",
                              (PyObject *)qs->InterpQueueType) < 0) {
        return -1;
    }
    if (type_add(mod, &taken_spec, &qs->TakenType) < 0 ||
        type_add(mod, &store_op_spec, &qs->StoreOpType) < 0 ||
        type_add(mod, &unbound_spec, &qs->UnboundType) < 0) {
        return -1;
    }
    if (add_sentinel(mod, qs->UnboundType, "UNBOUND", &qs->UNBOUND) < 0 ||
        add_sentinel(mod, qs->UnboundType, "UNBOUND_ERROR",
                     &qs->UNBOUND_ERROR) < 0 ||
        add_sentinel(mod, qs->UnboundType, "UNBOUND_REMOVE",
                     &qs->UNBOUND_REMOVE) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(mod, queue_functions);
}

int
queue_traverse(module_state *st, visitproc visit, void *arg)
{
    struct queue_state *qs = st->queue;
    Py_VISIT(qs->QueueType);
    Py_VISIT(qs->UnboundType);
    Py_VISIT(qs->TakenType);
    Py_VISIT(qs->StoreOpType);
    Py_VISIT(qs->AioOpType);
    Py_VISIT(qs->AioHubType);
    Py_VISIT(qs->InterpQueueType);
    Py_VISIT(qs->queue_handles);
    Py_VISIT(qs->interp_queue_handles);
    Py_VISIT(qs->UNBOUND);
    Py_VISIT(qs->UNBOUND_ERROR);
    Py_VISIT(qs->UNBOUND_REMOVE);
    Py_VISIT(qs->QueueError);
    Py_VISIT(qs->QueueNotFoundError);
    Py_VISIT(qs->QueueEmpty);
    Py_VISIT(qs->QueueFull);
    Py_VISIT(qs->ItemInterpreterDestroyed);
    Py_VISIT(qs->UnboundItemsError);
    return 0;
}

void
queue_clear(module_state *st)
{
    struct queue_state *qs = st->queue;
    Py_CLEAR(qs->QueueType);
    Py_CLEAR(qs->UnboundType);
    Py_CLEAR(qs->TakenType);
    Py_CLEAR(qs->StoreOpType);
    Py_CLEAR(qs->AioOpType);
    Py_CLEAR(qs->AioHubType);
    Py_CLEAR(qs->InterpQueueType);
    Py_CLEAR(qs->queue_handles);
    Py_CLEAR(qs->interp_queue_handles);
    Py_CLEAR(qs->UNBOUND);
    Py_CLEAR(qs->UNBOUND_ERROR);
    Py_CLEAR(qs->UNBOUND_REMOVE);
    clear_exceptions(qs);
    PyMem_Free(qs);
    st->queue = NULL;
}
