/* sync.c - Lock, RLock, Event, Semaphore, BoundedSemaphore and Barrier
 * usable from every interpreter of the process.
 *
 * Each is a process-wide C object (sobj) with one mutex and one list of
 * blocked waiters (wait.h), behind handles that cross between
 * interpreters like queues do.  The methods follow the threading
 * module's.
 *
 * Hand-off: a release gives the lock (or a semaphore permit) straight to
 * the first blocked waiter, in arrival order, and fires it; nobody can
 * barge in between, so waiters are served FIFO.  A waiter that times out
 * or is interrupted cancels itself under the object's mutex, which
 * settles the race with a release for good: either it was given the lock
 * (and keeps it), or it is off the list before anybody could give it.
 *
 * Abandoned locks: when the interpreter in which a Lock or RLock was
 * acquired is destroyed while the lock is held, the lock is released (or
 * handed to the first waiter).  The next acquirer gets the lock and an
 * AbandonedLockWarning saying which interpreter held it: what the lock
 * protected may be half-updated.  The warning is given once; if a warnings
 * filter turns it into an exception, acquire() releases the lock again
 * and raises (the lock is not left held by nobody-knows-whom).
 *
 * Ownership: Lock has none (like threading.Lock, any thread may release
 * it); RLock belongs to the OS thread that acquired it (an interpreter
 * entered from that thread with Interpreter.call re-enters it instead of
 * deadlocking).  Barrier(action=...) is not supported: a callable belongs
 * to one interpreter.
 */
#include "wait.h"

typedef enum {
    SYNC_LOCK = 0,
    SYNC_RLOCK,
    SYNC_EVENT,
    SYNC_SEMAPHORE,
    SYNC_BSEMAPHORE,
    SYNC_BARRIER,
    SYNC_NKINDS,
} sync_kind;

typedef struct sync_obj {
    sobj base;
    sync_kind kind;             /* immutable */
    sub_mutex mutex;
    wlist waiters;              /* mutex */
    /* Lock, RLock: */
    int locked;                 /* mutex */
    int64_t owner_interp;       /* mutex: where it was acquired, or -1 */
    unsigned long owner_thread; /* mutex: RLock owner */
    int64_t abandoned_by;       /* mutex: interpreter whose destruction
                                   released the lock, not yet reported to
                                   an acquirer (-1: none) */
    /* RLock depth, Semaphore value, Barrier arrivals: */
    Py_ssize_t count;           /* mutex */
    /* Event flag, Barrier broken: */
    int flag;                   /* mutex */
    Py_ssize_t initial;         /* immutable: BoundedSemaphore bound,
                                   Barrier parties */
    double timeout;             /* immutable: Barrier default, < 0 none */
} sync_obj;

static const handle_kind sync_kinds[SYNC_NKINDS];
static const sobj_type sync_types[SYNC_NKINDS];

static sync_obj *
sync_of(PyObject *self)
{
    return (sync_obj *)((HandleObject *)self)->ref;
}

static int64_t
current_interp_id(void)
{
    return PyInterpreterState_GetID(PyInterpreterState_Get());
}

/* ------------------------------------------------------------------ */
/* per-interpreter state (st->sync)                                    */

struct sync_state {
    PyTypeObject *types[SYNC_NKINDS];   /* by sync_kind */
    /* exceptions, made on first use (BrokenBarrierError derives from
       threading's, and importing threading costs every interpreter) */
    int have_exceptions;
    PyObject *BrokenBarrierError;
    PyObject *AbandonedLockWarning;
};

static void
clear_exceptions(struct sync_state *ss)
{
    Py_CLEAR(ss->BrokenBarrierError);
    Py_CLEAR(ss->AbandonedLockWarning);
}

static const exc_spec sync_exceptions[] = {
    {"BrokenBarrierError", {"threading.BrokenBarrierError"},
     "The Barrier is broken (aborted, reset, or a wait timed out)."},
    {"AbandonedLockWarning", {"builtins.RuntimeWarning"},
     "The lock was held by an interpreter that was destroyed; it was "
     "released and given to this acquirer.  What it protected may be "
     "inconsistent."},
};

int
sync_exceptions_ensure(module_state *st)
{
    struct sync_state *ss = st->sync;
    PyObject **const slots[] = {
        &ss->BrokenBarrierError, &ss->AbandonedLockWarning,
    };
    return exceptions_make(st->queue->module, sync_exceptions,
                           (int)Py_ARRAY_LENGTH(sync_exceptions), slots,
                           &ss->have_exceptions);
}

PyObject *
sync_exception(module_state *st, int Py_UNUSED(err))
{
    /* ERR_BARRIER_BROKEN is the only error of ours with a class of ours */
    return sync_exceptions_ensure(st) < 0 ? NULL
                                          : st->sync->BrokenBarrierError;
}

/* The warning an acquirer gets for a lock abandoned by interpreter
 * interp_id (see lock_acquire): 0, or -1 if the warning raised. */
static int
warn_abandoned(module_state *st, int64_t interp_id)
{
    if (sync_exceptions_ensure(st) < 0) {
        return -1;
    }
    return PyErr_WarnFormat(
        st->sync->AbandonedLockWarning, 1,
        "the lock was held by interpreter %lld, which was destroyed; it "
        "was released and is now yours, but what it protected may be "
        "inconsistent", (long long)interp_id);
}

/* ------------------------------------------------------------------ */
/* waiting                                                             */

/* Fire the claimed node n.  s->mutex held. */
static void
fire(wnode *n, uint32_t prev, int status)
{
    n->w->fired_case = n->case_index;
    n->w->status = status;
    waiter_publish(n->w, prev);
}

static void
fire_all(sync_obj *s, int status)
{
    uint32_t prev;
    wnode *n;
    while ((n = wlist_claim_first(&s->waiters, &prev)) != NULL) {
        fire(n, prev, status);
    }
}

/* Block on s: s->mutex is held on entry and released on return; GIL
 * held on entry and return (released while waiting).  When the wait ends
 * without being fired, w is cancelled under s->mutex -- so a concurrent
 * release either fired it (and the result counts) or did not see it --
 * and on_cancel(s) runs there. */
static wait_result
sync_block(sync_obj *s, waiter *w, const deadline *dl, int check_signals,
           void (*on_cancel)(sync_obj *))
{
    wnode n = {.w = w, .case_index = 0};
    wait_result r;

    w->interp_id = PyInterpreterState_GetID(PyInterpreterState_Get());
    wlist_append(&s->waiters, &n);
    sub_mutex_unlock(&s->mutex);
    Py_BEGIN_ALLOW_THREADS
    r = waiter_wait(w, dl, check_signals, 0);
    if (r != WAIT_FIRED) {
        sub_mutex_lock(&s->mutex);
        if (waiter_cancel(w) || w->status == WS_STOPPED) {
            wnode_unlink(&n);
            if (on_cancel != NULL) {
                on_cancel(s);
            }
        }
        else {
            /* fired meanwhile, under this mutex: the result is there */
            r = WAIT_FIRED;
        }
        sub_mutex_unlock(&s->mutex);
    }
    Py_END_ALLOW_THREADS
    return r;
}

/* ------------------------------------------------------------------ */
/* Lock and RLock                                                      */

/* Give the lock to the first waiter, or free it.  s->mutex held.
 * abandoned_by >= 0: released because that interpreter was destroyed. */
static void
lock_pass_on(sync_obj *s, int64_t abandoned_by)
{
    uint32_t prev;
    wnode *n = wlist_claim_first(&s->waiters, &prev);
    if (n != NULL) {
        s->owner_interp = n->w->interp_id;
        s->owner_thread = n->w->thread_id;
        s->count = 1;
        n->w->value = (Py_ssize_t)abandoned_by;
        fire(n, prev, abandoned_by >= 0 ? WS_ABANDONED : WS_OK);
    }
    else {
        s->locked = 0;
        s->owner_interp = -1;
        s->owner_thread = 0;
        s->count = 0;
        if (abandoned_by >= 0) {
            s->abandoned_by = abandoned_by;
        }
    }
}

static void
lock_interp_closed(sobj *o, int64_t id)
{
    sync_obj *s = (sync_obj *)o;
    sub_mutex_lock(&s->mutex);
    if (s->locked && s->owner_interp == id) {
        lock_pass_on(s, id);
    }
    sub_mutex_unlock(&s->mutex);
}

/* 1 acquired, 0 not (timeout or non-blocking), -1 error. */
static int
lock_acquire(PyObject *self, int blocking, const deadline *dl)
{
    module_state *st = get_mod_state_by_type(Py_TYPE(self));
    sync_obj *s = sync_of(self);
    int64_t me_interp = current_interp_id();
    unsigned long me_thread = PyThread_get_thread_ident();
    int64_t abandoned = -1;
    int res = 0, check_signals = -1;

    for (;;) {
        sub_mutex_lock(&s->mutex);
        if (s->kind == SYNC_RLOCK && s->locked &&
            s->owner_thread == me_thread) {
            s->count++;
            sub_mutex_unlock(&s->mutex);
            res = 1;
            break;
        }
        if (!s->locked) {
            s->locked = 1;
            s->owner_interp = me_interp;
            s->owner_thread = me_thread;
            s->count = 1;
            abandoned = s->abandoned_by;
            s->abandoned_by = -1;
            sub_mutex_unlock(&s->mutex);
            res = 1;
            break;
        }
        if (!blocking || deadline_remaining_ns(dl) == 0) {
            sub_mutex_unlock(&s->mutex);
            res = 0;
            break;
        }
        if (check_signals < 0) {
            check_signals = wait_is_signal_thread();
        }
        waiter w;
        waiter_init(&w);
        w.interp_id = me_interp;
        w.thread_id = me_thread;
        wait_result r = sync_block(s, &w, dl, check_signals, NULL);
        int status = w.status;
        int64_t value = (int64_t)w.value;
        waiter_fini(&w);
        if (r == WAIT_FIRED) {
            if (status == WS_ABANDONED) {
                abandoned = value;
            }
            res = 1;
            break;
        }
        if (r == WAIT_TIMEOUT) {
            res = 0;
            break;
        }
        if (wait_after_interrupt() < 0) {
            res = -1;
            break;
        }
    }
    if (res == 1 && abandoned >= 0 &&
        warn_abandoned(st, abandoned) < 0) {
        /* told, by an exception: do not keep the lock */
        sub_mutex_lock(&s->mutex);
        lock_pass_on(s, -1);
        sub_mutex_unlock(&s->mutex);
        res = -1;
    }
    return res;
}

static int
lock_release(PyObject *self)
{
    sync_obj *s = sync_of(self);
    int err = ERR_OK;
    sub_mutex_lock(&s->mutex);
    if (!s->locked) {
        err = ERR_RELEASE_UNLOCKED;
    }
    else if (s->kind == SYNC_RLOCK &&
             s->owner_thread != PyThread_get_thread_ident()) {
        err = ERR_RELEASE_UNOWNED;
    }
    else if (s->kind == SYNC_RLOCK && --s->count > 0) {
        /* still held */
    }
    else {
        lock_pass_on(s, -1);
    }
    sub_mutex_unlock(&s->mutex);
    if (err != ERR_OK) {
        return set_err(get_mod_state_by_type(Py_TYPE(self)), err);
    }
    return 0;
}

static PyObject *
lockobj_acquire(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"blocking", "timeout", NULL};
    int blocking = 1;
    PyObject *timeout = NULL;
    deadline dl;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pO:acquire", kwlist,
                                     &blocking, &timeout)) {
        return NULL;
    }
    if (!blocking && timeout != NULL) {
        /* threading.Lock allows the default timeout, -1, here */
        int is_default = 0;
        if (PyLong_Check(timeout)) {
            int overflow;
            is_default = PyLong_AsLongAndOverflow(timeout, &overflow) == -1
                         && !overflow;
            if (PyErr_Occurred()) {
                return NULL;
            }
        }
        if (!is_default) {
            set_err(get_mod_state_by_type(Py_TYPE(self)),
                    ERR_NONBLOCKING_TIMEOUT);
            return NULL;
        }
    }
    if (deadline_from_timeout(timeout, 1, &dl) < 0) {
        return NULL;
    }
    int r = lock_acquire(self, blocking, &dl);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *
lockobj_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    static const deadline forever = {.forever = 1};
    int r = lock_acquire(self, 1, &forever);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *
lockobj_release(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    if (lock_release(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
lockobj_exit(PyObject *self, PyObject *Py_UNUSED(args))
{
    return lockobj_release(self, NULL);
}

static PyObject *
lockobj_locked(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    int locked = s->locked;
    sub_mutex_unlock(&s->mutex);
    return PyBool_FromLong(locked);
}

static PyObject *
lockobj_is_owned(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    int owned = s->locked && s->owner_thread == PyThread_get_thread_ident();
    sub_mutex_unlock(&s->mutex);
    return PyBool_FromLong(owned);
}

/* ------------------------------------------------------------------ */
/* Semaphore and BoundedSemaphore                                      */

static int
sem_acquire(PyObject *self, int blocking, const deadline *dl)
{
    sync_obj *s = sync_of(self);
    int res = 0, check_signals = -1;
    for (;;) {
        sub_mutex_lock(&s->mutex);
        if (s->count > 0) {
            s->count--;
            sub_mutex_unlock(&s->mutex);
            res = 1;
            break;
        }
        if (!blocking || deadline_remaining_ns(dl) == 0) {
            sub_mutex_unlock(&s->mutex);
            res = 0;
            break;
        }
        if (check_signals < 0) {
            check_signals = wait_is_signal_thread();
        }
        waiter w;
        waiter_init(&w);
        /* fired = handed a permit */
        wait_result r = sync_block(s, &w, dl, check_signals, NULL);
        waiter_fini(&w);
        if (r != WAIT_INTERRUPTED) {
            res = r == WAIT_FIRED;
            break;
        }
        if (wait_after_interrupt() < 0) {
            res = -1;
            break;
        }
    }
    return res;
}

static PyObject *
semobj_acquire(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"blocking", "timeout", NULL};
    int blocking = 1;
    PyObject *timeout = Py_None;
    deadline dl;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pO:acquire", kwlist,
                                     &blocking, &timeout)) {
        return NULL;
    }
    if (!blocking && timeout != Py_None) {
        set_err(get_mod_state_by_type(Py_TYPE(self)),
                    ERR_NONBLOCKING_TIMEOUT);
        return NULL;
    }
    if (deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    int r = sem_acquire(self, blocking, &dl);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *
semobj_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    static const deadline forever = {.forever = 1};
    int r = sem_acquire(self, 1, &forever);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

/* Give back n permits: to waiters first, in arrival order. */
static int
sem_release(PyObject *self, Py_ssize_t n)
{
    sync_obj *s = sync_of(self);
    int err = ERR_OK;
    sub_mutex_lock(&s->mutex);
    if (s->kind == SYNC_BSEMAPHORE && s->count > s->initial - n) {
        err = ERR_TOO_MANY_RELEASES;
    }
    else if (s->count > PY_SSIZE_T_MAX - n) {
        /* Checked before any waiter is woken, so a refused release
           changes nothing (waiters are only ever parked at count 0, so
           this refuses nothing that could have fitted). */
        err = ERR_VALUE_OVERFLOW;
    }
    else {
        for (Py_ssize_t i = 0; i < n; i++) {
            uint32_t prev;
            wnode *node = wlist_claim_first(&s->waiters, &prev);
            if (node == NULL) {
                s->count += n - i;
                break;
            }
            fire(node, prev, WS_OK);
        }
    }
    sub_mutex_unlock(&s->mutex);
    if (err != ERR_OK) {
        return set_err(get_mod_state_by_type(Py_TYPE(self)), err);
    }
    return 0;
}

static PyObject *
semobj_release(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"n", NULL};
    Py_ssize_t n = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n:release", kwlist,
                                     &n)) {
        return NULL;
    }
    if (n < 1) {
        PyErr_SetString(PyExc_ValueError, "n must be one or more");
        return NULL;
    }
    if (sem_release(self, n) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
semobj_exit(PyObject *self, PyObject *Py_UNUSED(args))
{
    if (sem_release(self, 1) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------ */
/* Event                                                               */

static PyObject *
eventobj_is_set(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    int flag = s->flag;
    sub_mutex_unlock(&s->mutex);
    return PyBool_FromLong(flag);
}

static PyObject *
eventobj_set(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    s->flag = 1;
    fire_all(s, WS_OK);
    sub_mutex_unlock(&s->mutex);
    Py_RETURN_NONE;
}

static PyObject *
eventobj_clear(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    s->flag = 0;
    sub_mutex_unlock(&s->mutex);
    Py_RETURN_NONE;
}

static PyObject *
eventobj_wait(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"timeout", NULL};
    sync_obj *s = sync_of(self);
    PyObject *timeout = Py_None;
    deadline dl;
    int res = 0, check_signals = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait", kwlist,
                                     &timeout)) {
        return NULL;
    }
    if (deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    for (;;) {
        sub_mutex_lock(&s->mutex);
        if (s->flag) {
            sub_mutex_unlock(&s->mutex);
            res = 1;
            break;
        }
        if (deadline_remaining_ns(&dl) == 0) {
            sub_mutex_unlock(&s->mutex);
            res = 0;
            break;
        }
        if (check_signals < 0) {
            check_signals = wait_is_signal_thread();
        }
        waiter w;
        waiter_init(&w);
        wait_result r = sync_block(s, &w, &dl, check_signals, NULL);
        waiter_fini(&w);
        if (r != WAIT_INTERRUPTED) {
            res = r == WAIT_FIRED;
            break;
        }
        if (wait_after_interrupt() < 0) {
            return NULL;
        }
    }
    return PyBool_FromLong(res);
}

/* ------------------------------------------------------------------ */
/* Barrier                                                             */

/* s->mutex held */
static void
barrier_break(sync_obj *s)
{
    s->flag = 1;
    s->count = 0;
    fire_all(s, WS_BROKEN);
}

/* A waiter gave up: its arrival no longer counts.  s->mutex held. */
static void
barrier_undo_arrival(sync_obj *s)
{
    s->count--;
}

static PyObject *
barrierobj_wait(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"timeout", NULL};
    module_state *st = get_mod_state_by_type(Py_TYPE(self));
    sync_obj *s = sync_of(self);
    PyObject *timeout = Py_None;
    deadline dl;
    Py_ssize_t index = -1;
    int check_signals = -1, err = 0;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait", kwlist,
                                     &timeout)) {
        return NULL;
    }
    if (timeout == Py_None && s->timeout >= 0) {
        deadline_from_seconds(s->timeout, &dl);
    }
    else if (deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    for (;;) {
        sub_mutex_lock(&s->mutex);
        if (s->flag) {
            sub_mutex_unlock(&s->mutex);
            err = ERR_BARRIER_BROKEN;
            break;
        }
        index = s->count++;
        if (s->count == s->initial) {
            /* the last one: let everybody through */
            fire_all(s, WS_OK);
            s->count = 0;
            sub_mutex_unlock(&s->mutex);
            break;
        }
        if (check_signals < 0) {
            check_signals = wait_is_signal_thread();
        }
        waiter w;
        waiter_init(&w);
        wait_result r = sync_block(s, &w, &dl, check_signals,
                                   barrier_undo_arrival);
        int status = w.status;
        waiter_fini(&w);
        if (r == WAIT_FIRED) {
            if (status != WS_OK) {
                err = ERR_BARRIER_BROKEN;
            }
            break;
        }
        if (r == WAIT_INTERRUPTED && wait_after_interrupt() == 0) {
            continue;  /* arrive again */
        }
        /* a timeout or an exception breaks the barrier, as in threading */
        sub_mutex_lock(&s->mutex);
        barrier_break(s);
        sub_mutex_unlock(&s->mutex);
        if (r == WAIT_TIMEOUT) {
            err = ERR_BARRIER_BROKEN;
        }
        else {
            return NULL;
        }
        break;
    }
    if (err != ERR_OK) {
        set_err(st, err);
        return NULL;
    }
    return PyLong_FromSsize_t(index);
}

static PyObject *
barrierobj_reset(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    fire_all(s, WS_BROKEN);
    s->count = 0;
    s->flag = 0;
    sub_mutex_unlock(&s->mutex);
    Py_RETURN_NONE;
}

static PyObject *
barrierobj_abort(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    barrier_break(s);
    sub_mutex_unlock(&s->mutex);
    Py_RETURN_NONE;
}

static PyObject *
barrierobj_get_parties(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(sync_of(self)->initial);
}

static PyObject *
barrierobj_get_n_waiting(PyObject *self, void *Py_UNUSED(closure))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    Py_ssize_t n = s->flag ? 0 : s->count;
    sub_mutex_unlock(&s->mutex);
    return PyLong_FromSsize_t(n);
}

static PyObject *
barrierobj_get_broken(PyObject *self, void *Py_UNUSED(closure))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    int broken = s->flag;
    sub_mutex_unlock(&s->mutex);
    return PyBool_FromLong(broken);
}

/* ------------------------------------------------------------------ */
/* objects and handles                                                 */

static void
sync_destroy(sobj *o)
{
    sync_obj *s = (sync_obj *)o;
    assert(wlist_empty(&s->waiters));
    sub_mutex_destroy(&s->mutex);
    PyMem_RawFree(s);
}

static sub_mutex *
sync_mutex(sobj *o)
{
    return &((sync_obj *)o)->mutex;
}

static void
sync_after_fork(sobj *o)
{
    wlist_reset(&((sync_obj *)o)->waiters);
}

static PyObject *
sync_wrap(module_state *st, void *ref)
{
    sync_obj *s = (sync_obj *)ref;
    return handle_get(st, st->sync->types[s->kind], &sync_kinds[s->kind],
                      &s->base);
}

#define SYNC_KIND(NAME, TAG)                                               \
    {                                                                      \
        .name = NAME, .tag = TAG,                                          \
        .incref = (void (*)(void *))sobj_incref,                           \
        .decref = (void (*)(void *))sobj_decref, .wrap = sync_wrap,        \
    }

static const handle_kind sync_kinds[SYNC_NKINDS] = {
    SYNC_KIND("Lock", TAG_LOCK),
    SYNC_KIND("RLock", TAG_RLOCK),
    SYNC_KIND("Event", TAG_EVENT),
    SYNC_KIND("Semaphore", TAG_SEMAPHORE),
    SYNC_KIND("BoundedSemaphore", TAG_BOUNDED_SEMAPHORE),
    SYNC_KIND("Barrier", TAG_BARRIER),
};

#define SYNC_TYPE(KIND, NAME, CLOSED)                                      \
    {                                                                      \
        .name = NAME, .destroy = sync_destroy, .interp_closed = CLOSED,    \
        .mutex = sync_mutex, .after_fork = sync_after_fork,                \
        .kinds = {&sync_kinds[KIND], NULL},                                \
    }

static const sobj_type sync_types[SYNC_NKINDS] = {
    SYNC_TYPE(SYNC_LOCK, "Lock", lock_interp_closed),
    SYNC_TYPE(SYNC_RLOCK, "RLock", lock_interp_closed),
    SYNC_TYPE(SYNC_EVENT, "Event", NULL),
    SYNC_TYPE(SYNC_SEMAPHORE, "Semaphore", NULL),
    SYNC_TYPE(SYNC_BSEMAPHORE, "BoundedSemaphore", NULL),
    SYNC_TYPE(SYNC_BARRIER, "Barrier", NULL),
};

static PyObject *
sync_create(PyTypeObject *tp, sync_kind kind, Py_ssize_t initial,
            double timeout)
{
    module_state *st = get_mod_state_by_type(tp);
    sync_obj *s = PyMem_RawCalloc(1, sizeof(sync_obj));
    if (s == NULL) {
        return PyErr_NoMemory();
    }
    s->kind = kind;
    wait_mutex_init(&s->mutex);
    wlist_init(&s->waiters);
    s->owner_interp = -1;
    s->abandoned_by = -1;
    s->initial = initial;
    s->timeout = timeout;
    if (kind == SYNC_SEMAPHORE || kind == SYNC_BSEMAPHORE) {
        s->count = initial;
    }
    sobj_register(&s->base, &sync_types[kind]);
    PyObject *res = sync_wrap(st, s);
    sobj_decref(&s->base);
    return res;
}

/* Lock(), RLock(), Event(): no arguments. */
static PyObject *
noargs_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs,
           sync_kind kind, const char *name)
{
    if (PyTuple_GET_SIZE(args) > 0 ||
        (kwargs != NULL && PyDict_GET_SIZE(kwargs) > 0)) {
        PyErr_Format(PyExc_TypeError, "%s() takes no arguments", name);
        return NULL;
    }
    return sync_create(tp, kind, 0, -1);
}

static PyObject *
lock_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    return noargs_new(tp, args, kwargs, SYNC_LOCK, "Lock");
}

static PyObject *
rlock_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    return noargs_new(tp, args, kwargs, SYNC_RLOCK, "RLock");
}

static PyObject *
event_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    return noargs_new(tp, args, kwargs, SYNC_EVENT, "Event");
}

static PyObject *
sem_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs, sync_kind kind)
{
    static char *kwlist[] = {"value", NULL};
    Py_ssize_t value = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|n", kwlist, &value)) {
        return NULL;
    }
    if (value < 0) {
        PyErr_SetString(PyExc_ValueError,
                        "semaphore initial value must be >= 0");
        return NULL;
    }
    return sync_create(tp, kind, value, -1);
}

static PyObject *
sem_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    return sem_new(tp, args, kwargs, SYNC_SEMAPHORE);
}

static PyObject *
bsem_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    return sem_new(tp, args, kwargs, SYNC_BSEMAPHORE);
}

static PyObject *
barrier_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"parties", "action", "timeout", NULL};
    Py_ssize_t parties;
    PyObject *action = Py_None, *timeout = Py_None;
    double seconds = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "n|OO:Barrier", kwlist,
                                     &parties, &action, &timeout)) {
        return NULL;
    }
    if (parties < 1) {
        PyErr_SetString(PyExc_ValueError, "parties must be >= 1");
        return NULL;
    }
    if (action != Py_None) {
        PyErr_SetString(PyExc_TypeError,
                        "subinterp.Barrier does not take an action: a "
                        "callable belongs to one interpreter (run it after "
                        "wait() in the party that gets index 0)");
        return NULL;
    }
    if (timeout != Py_None) {
        deadline dl;
        if (deadline_from_timeout(timeout, 0, &dl) < 0) {
            return NULL;
        }
        seconds = PyFloat_AsDouble(timeout);
    }
    return sync_create(tp, SYNC_BARRIER, parties, seconds);
}

static PyObject *
sync_repr(PyObject *self)
{
    sync_obj *s = sync_of(self);
    const char *name = ((HandleObject *)self)->kind->name;
    long long id = (long long)s->base.id;
    sub_mutex_lock(&s->mutex);
    int locked = s->locked, flag = s->flag;
    Py_ssize_t count = s->count;
    sub_mutex_unlock(&s->mutex);
    switch (s->kind) {
    case SYNC_LOCK:
    case SYNC_RLOCK:
        return PyUnicode_FromFormat("<subinterp.%s id=%lld %s>", name, id,
                                    locked ? "locked" : "unlocked");
    case SYNC_EVENT:
        return PyUnicode_FromFormat("<subinterp.%s id=%lld %s>", name, id,
                                    flag ? "set" : "unset");
    case SYNC_SEMAPHORE:
    case SYNC_BSEMAPHORE:
        return PyUnicode_FromFormat("<subinterp.%s id=%lld value=%zd>", name,
                                    id, count);
    default:
        return PyUnicode_FromFormat(
            "<subinterp.%s id=%lld waiters=%zd/%zd%s>", name, id, count,
            s->initial, flag ? " broken" : "");
    }
}

/* ------------------------------------------------------------------ */
/* type specs                                                          */

#define ACQUIRE_DOC(DEFAULT)                                               \
    "acquire($self, blocking=True, timeout=" DEFAULT ")\n--\n\n"            \
    "Acquire, waiting at most timeout seconds unless blocking is false; "  \
    "True if acquired."

static PyMethodDef lock_methods[] = {
    {"acquire", _PyCFunction_CAST(lockobj_acquire),
     METH_VARARGS | METH_KEYWORDS, ACQUIRE_DOC("-1")},
    {"release", lockobj_release, METH_NOARGS,
     "release($self, /)\n--\n\nRelease (from any thread or interpreter)."},
    {"locked", lockobj_locked, METH_NOARGS,
     "locked($self, /)\n--\n\nTrue if held."},
    {"__enter__", lockobj_enter, METH_NOARGS, NULL},
    {"__exit__", lockobj_exit, METH_VARARGS, NULL},
    {"__reduce__", handle_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef rlock_methods[] = {
    {"acquire", _PyCFunction_CAST(lockobj_acquire),
     METH_VARARGS | METH_KEYWORDS, ACQUIRE_DOC("-1")},
    {"release", lockobj_release, METH_NOARGS,
     "release($self, /)\n--\n\n"
     "Release once; the owning thread only."},
    {"locked", lockobj_locked, METH_NOARGS,
     "locked($self, /)\n--\n\nTrue if held by some thread."},
    {"_is_owned", lockobj_is_owned, METH_NOARGS, NULL},
    {"__enter__", lockobj_enter, METH_NOARGS, NULL},
    {"__exit__", lockobj_exit, METH_VARARGS, NULL},
    {"__reduce__", handle_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef event_methods[] = {
    {"is_set", eventobj_is_set, METH_NOARGS,
     "is_set($self, /)\n--\n\nTrue if the flag is set."},
    {"set", eventobj_set, METH_NOARGS,
     "set($self, /)\n--\n\nSet the flag and wake every waiter."},
    {"clear", eventobj_clear, METH_NOARGS,
     "clear($self, /)\n--\n\nReset the flag."},
    {"wait", _PyCFunction_CAST(eventobj_wait), METH_VARARGS | METH_KEYWORDS,
     "wait($self, timeout=None)\n--\n\n"
     "Wait until the flag is set, at most timeout seconds; returns the "
     "flag."},
    {"__reduce__", handle_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef sem_methods[] = {
    {"acquire", _PyCFunction_CAST(semobj_acquire),
     METH_VARARGS | METH_KEYWORDS, ACQUIRE_DOC("None")},
    {"release", _PyCFunction_CAST(semobj_release),
     METH_VARARGS | METH_KEYWORDS,
     "release($self, n=1)\n--\n\n"
     "Give back n permits (waiters get them first, in arrival order)."},
    {"__enter__", semobj_enter, METH_NOARGS, NULL},
    {"__exit__", semobj_exit, METH_VARARGS, NULL},
    {"__reduce__", handle_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef barrier_methods[] = {
    {"wait", _PyCFunction_CAST(barrierobj_wait), METH_VARARGS | METH_KEYWORDS,
     "wait($self, timeout=None)\n--\n\n"
     "Wait until `parties` threads wait; returns this one's arrival index "
     "(0 .. parties-1).  A timeout breaks the barrier "
     "(BrokenBarrierError)."},
    {"reset", barrierobj_reset, METH_NOARGS,
     "reset($self, /)\n--\n\n"
     "Back to the empty state; current waiters get BrokenBarrierError."},
    {"abort", barrierobj_abort, METH_NOARGS,
     "abort($self, /)\n--\n\nBreak the barrier."},
    {"__reduce__", handle_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef sync_getset[] = {
    {"id", handle_get_id, NULL, "Unique id in the process.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyGetSetDef barrier_getset[] = {
    {"id", handle_get_id, NULL, "Unique id in the process.", NULL},
    {"parties", barrierobj_get_parties, NULL, "Number of parties.", NULL},
    {"n_waiting", barrierobj_get_n_waiting, NULL,
     "Number of parties waiting now.", NULL},
    {"broken", barrierobj_get_broken, NULL, "True if broken.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define SYNC_SLOTS(NAME, NEW, METHODS, GETSET, DOC)                        \
    static PyType_Slot NAME##_slots[] = {                                  \
        {Py_tp_doc, DOC},                                                  \
        {Py_tp_new, NEW},                                                  \
        HANDLE_TYPE_SLOTS,                                                 \
        {Py_tp_repr, sync_repr},                                           \
        {Py_tp_methods, METHODS},                                          \
        {Py_tp_getset, GETSET},                                            \
        {0, NULL},                                                         \
    };                                                                     \
    static PyType_Spec NAME##_spec = {                                     \
        .name = "subinterp." #NAME,                                        \
        .basicsize = sizeof(HandleObject),                                 \
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,            \
        .slots = NAME##_slots,                                             \
    };

SYNC_SLOTS(Lock, lock_tp_new, lock_methods, sync_getset,
           "Lock()\n--\n\n"
           "A lock like threading.Lock, usable from every interpreter.")
SYNC_SLOTS(RLock, rlock_tp_new, rlock_methods, sync_getset,
           "RLock()\n--\n\n"
           "A reentrant lock like threading.RLock, owned by an OS thread, "
           "usable from every interpreter.")
SYNC_SLOTS(Event, event_tp_new, event_methods, sync_getset,
           "Event()\n--\n\n"
           "An event like threading.Event, usable from every interpreter.")
SYNC_SLOTS(Semaphore, sem_tp_new, sem_methods, sync_getset,
           "Semaphore(value=1)\n--\n\n"
           "A semaphore like threading.Semaphore, usable from every "
           "interpreter.")
SYNC_SLOTS(BoundedSemaphore, bsem_tp_new, sem_methods, sync_getset,
           "BoundedSemaphore(value=1)\n--\n\n"
           "A semaphore that refuses to be released above its initial "
           "value.")
SYNC_SLOTS(Barrier, barrier_tp_new, barrier_methods, barrier_getset,
           "Barrier(parties, action=None, timeout=None)\n--\n\n"
           "A barrier like threading.Barrier, usable from every "
           "interpreter (action must be None).")

int
sync_init(PyObject *mod, module_state *st)
{
    static PyType_Spec *const specs[SYNC_NKINDS] = {
        [SYNC_LOCK] = &Lock_spec,
        [SYNC_RLOCK] = &RLock_spec,
        [SYNC_EVENT] = &Event_spec,
        [SYNC_SEMAPHORE] = &Semaphore_spec,
        [SYNC_BSEMAPHORE] = &BoundedSemaphore_spec,
        [SYNC_BARRIER] = &Barrier_spec,
    };
    struct sync_state *ss = PyMem_Calloc(1, sizeof(*ss));
    if (ss == NULL) {
        return set_err(st, ERR_NO_MEMORY);
    }
    st->sync = ss;
    for (int k = 0; k < SYNC_NKINDS; k++) {
        if (handle_type_add(mod, st, specs[k], NULL, &ss->types[k]) < 0) {
            return -1;
        }
    }
    return 0;
}

int
sync_traverse(module_state *st, visitproc visit, void *arg)
{
    struct sync_state *ss = st->sync;
    for (int k = 0; k < SYNC_NKINDS; k++) {
        Py_VISIT(ss->types[k]);
    }
    Py_VISIT(ss->BrokenBarrierError);
    Py_VISIT(ss->AbandonedLockWarning);
    return 0;
}

void
sync_clear(module_state *st)
{
    struct sync_state *ss = st->sync;
    for (int k = 0; k < SYNC_NKINDS; k++) {
        Py_CLEAR(ss->types[k]);
    }
    clear_exceptions(ss);
    PyMem_Free(ss);
    st->sync = NULL;
}
