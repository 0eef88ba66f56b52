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

#define LOCK_LEVEL_INTERPS 16

typedef struct sync_obj {
    sobj base;
    sync_kind kind;             /* immutable */
    sub_mutex mutex;
    wlist waiters;              /* mutex */
    union {
        struct {                /* SYNC_LOCK, SYNC_RLOCK */
            int locked;                 /* mutex */
            unsigned long owner_thread; /* mutex: RLock owner */
            Py_ssize_t depth;           /* mutex: RLock recursion depth
                                           (1 while a Lock is held) */
            struct {
                int64_t interp;         /* -1: a free entry */
                Py_ssize_t n;
            } levels[LOCK_LEVEL_INTERPS];
                                        /* mutex: the levels of depth
                                           each interpreter took (an
                                           RLock's owner thread may
                                           re-enter it from several):
                                           a destroyed interpreter's
                                           levels go, the others stay.
                                           Levels of more interpreters
                                           than there are entries are
                                           nobody's: they stay. */
            int64_t abandoned_by;       /* mutex: interpreter whose
                                           destruction released the lock,
                                           not yet reported to an
                                           acquirer (-1: none) */
        } lock;
        struct {                /* SYNC_SEMAPHORE, SYNC_BSEMAPHORE */
            Py_ssize_t value;           /* mutex: permits available */
            Py_ssize_t bound;           /* immutable: BoundedSemaphore's
                                           largest value */
        } sem;
        struct {                /* SYNC_EVENT */
            int set;                    /* mutex: the flag */
        } event;
        struct {                /* SYNC_BARRIER */
            Py_ssize_t parties;         /* immutable */
            Py_ssize_t arrived;         /* mutex: parties waiting now */
            int broken;                 /* mutex */
            double timeout;             /* immutable: wait()'s default,
                                           < 0 none */
        } barrier;
    };
} sync_obj;

static const handle_kind sync_kinds[SYNC_NKINDS];
static const sobj_type sync_types[SYNC_NKINDS];

static sync_obj *
sync_of(PyObject *self)
{
    return (sync_obj *)((HandleObject *)self)->ref;
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

static void
fire_all(sync_obj *s, int status)
{
    uint32_t prev;
    wnode *n;
    while ((n = wlist_claim_first(&s->waiters, &prev)) != NULL) {
        wnode_fire(n, prev, status, NULL);
    }
}

/* One acquire-like wait on s, run by sync_wait_run() through the wait
 * engine.  A release hands the lock (a permit...) to the first waiter
 * and fires it, so a fire completes the operation. */
typedef struct sync_wait {
    sync_obj *s;
    /* s->mutex held: complete the operation now if possible (1); 0 to
       wait */
    int (*try_now)(struct sync_wait *a);
    /* s->mutex held: remove what a try that must wait left behind (a
       Barrier's arrival), when the wait ends unfired; may be NULL */
    void (*undo)(sync_obj *s);
    int blocking;
    const deadline *dl;
    int64_t interp_id;      /* Lock: the acquirer's identity */
    unsigned long thread_id;
    wnode node;
    int waited;             /* the last poll linked node */
    /* out */
    int got;                /* completed */
    int status;             /* WS_*: how a hand-off completed it */
    Py_ssize_t value;       /* the hand-off's waiter.value */
    Py_ssize_t index;       /* Barrier: the arrival index */
    int64_t abandoned;      /* Lock: released by that interpreter's
                               destruction (-1: no) */
    int broken;             /* Barrier: found broken */
} sync_wait;

static int
sync_poll(void *arg, waiter *w)
{
    sync_wait *a = (sync_wait *)arg;
    sync_obj *s = a->s;
    int done = 1;
    sub_mutex_lock(&s->mutex);
    a->waited = 0;
    if (a->try_now(a)) {
        a->got = 1;
    }
    else if (a->blocking && deadline_remaining_ns(a->dl) > 0 && w != NULL) {
        a->node.w = w;
        a->node.case_index = 0;
        wlist_append(&s->waiters, &a->node);
        a->waited = 1;
        done = 0;
    }
    else {
        /* not waiting (yet: w is NULL for the first try) */
        if (a->undo != NULL) {
            a->undo(s);
        }
        done = w != NULL || !a->blocking ||
               deadline_remaining_ns(a->dl) == 0;
    }
    sub_mutex_unlock(&s->mutex);
    return done;
}

/* Under s->mutex, which settles the race with a release: either it
 * fired w (the result counts) or it never sees w. */
static int
sync_withdraw(void *arg, waiter *w)
{
    sync_wait *a = (sync_wait *)arg;
    sync_obj *s = a->s;
    sub_mutex_lock(&s->mutex);
    int withdrawn = waiter_withdraw(w);
    if (withdrawn) {
        wnode_unlink(&a->node);
        if (a->undo != NULL) {
            a->undo(s);
        }
    }
    sub_mutex_unlock(&s->mutex);
    return withdrawn;
}

static const wait_cond sync_cond = {sync_poll, sync_withdraw, 1};

/* Field by field: an initializer would clear the whole struct, which
 * costs as much as an uncontended acquire itself. */
static inline void
sync_wait_init(sync_wait *a, sync_obj *s, int (*try_now)(sync_wait *),
               void (*undo)(sync_obj *), int blocking, const deadline *dl)
{
    a->s = s;
    a->try_now = try_now;
    a->undo = undo;
    a->blocking = blocking;
    a->dl = dl;
    a->abandoned = -1;
    a->broken = 0;
}

/* Run a (GIL held; released while waiting): 1 when the operation
 * completed (a->status tells how a hand-off did), 0 when it did not
 * (non-blocking, or the deadline passed), -1 with an exception set. */
static int
sync_wait_run(sync_wait *a)
{
    waiter w;
    a->node.linked = 0;
    a->waited = 0;
    a->got = 0;
    a->status = WS_OK;
    a->value = 0;
    int r = wait_until(&sync_cond, a, &w, a->dl, WAIT_POLL_WITH_GIL);
    if (r == WAIT_FIRED && !a->got && a->waited) {
        /* handed over by a release */
        a->got = 1;
        a->status = w.status;
        a->value = w.value;
    }
    waiter_fini(&w);
    return r < 0 ? -1 : (r == WAIT_FIRED && a->got);
}

/* ------------------------------------------------------------------ */
/* Lock and RLock                                                      */

/* The levels of a lock's depth by interpreter (s->mutex held). */
static void
lock_levels_clear(sync_obj *s)
{
    for (int i = 0; i < LOCK_LEVEL_INTERPS; i++) {
        s->lock.levels[i].interp = -1;
        s->lock.levels[i].n = 0;
    }
}

/* A level taken in interpreter `interp` (depth counts it already). */
static void
lock_level_add(sync_obj *s, int64_t interp)
{
    int free = -1;
    for (int i = 0; i < LOCK_LEVEL_INTERPS; i++) {
        if (s->lock.levels[i].n > 0 && s->lock.levels[i].interp == interp) {
            s->lock.levels[i].n++;
            return;
        }
        if (s->lock.levels[i].n == 0 && free < 0) {
            free = i;
        }
    }
    if (free >= 0) {
        s->lock.levels[free].interp = interp;
        s->lock.levels[free].n = 1;
    }
    /* else nobody's */
}

/* A level released in interpreter `interp` (before depth drops): its
 * own if it has one, else one of nobody's, else another's (the owner
 * thread may release a level it took in another interpreter). */
static void
lock_level_drop(sync_obj *s, int64_t interp)
{
    Py_ssize_t counted = 0;
    int other = -1;
    for (int i = 0; i < LOCK_LEVEL_INTERPS; i++) {
        if (s->lock.levels[i].n > 0) {
            if (s->lock.levels[i].interp == interp) {
                s->lock.levels[i].n--;
                return;
            }
            counted += s->lock.levels[i].n;
            other = i;
        }
    }
    if (counted == s->lock.depth && other >= 0) {
        s->lock.levels[other].n--;
    }
}

/* Give the lock to the first waiter, or free it.  s->mutex held.
 * abandoned_by >= 0: released because that interpreter was destroyed. */
static void
lock_pass_on(sync_obj *s, int64_t abandoned_by)
{
    uint32_t prev;
    wnode *n = wlist_claim_first(&s->waiters, &prev);
    lock_levels_clear(s);
    if (n != NULL) {
        s->lock.owner_thread = n->w->thread_id;
        s->lock.depth = 1;
        lock_level_add(s, n->w->interp_id);
        n->w->value = (Py_ssize_t)abandoned_by;
        wnode_fire(n, prev, abandoned_by >= 0 ? WS_ABANDONED : WS_OK, NULL);
    }
    else {
        s->lock.locked = 0;
        s->lock.owner_thread = 0;
        s->lock.depth = 0;
        if (abandoned_by >= 0) {
            s->lock.abandoned_by = abandoned_by;
        }
    }
}

static void
lock_interp_closed(sobj *o, int64_t id)
{
    sync_obj *s = (sync_obj *)o;
    sub_mutex_lock(&s->mutex);
    for (int i = 0; s->lock.locked && i < LOCK_LEVEL_INTERPS; i++) {
        if (s->lock.levels[i].n > 0 && s->lock.levels[i].interp == id) {
            /* its levels go; levels other interpreters took on the same
               thread keep the lock held */
            s->lock.depth -= s->lock.levels[i].n;
            s->lock.levels[i].n = 0;
            if (s->lock.depth == 0) {
                lock_pass_on(s, id);
            }
            break;
        }
    }
    sub_mutex_unlock(&s->mutex);
}

static int
lock_try(sync_wait *a)
{
    sync_obj *s = a->s;
    if (s->kind == SYNC_RLOCK && s->lock.locked &&
        s->lock.owner_thread == a->thread_id) {
        s->lock.depth++;
        lock_level_add(s, a->interp_id);
        return 1;
    }
    if (!s->lock.locked) {
        s->lock.locked = 1;
        s->lock.owner_thread = a->thread_id;
        s->lock.depth = 1;
        /* a free lock has no levels (lock_pass_on cleared them) */
        lock_level_add(s, a->interp_id);
        a->abandoned = s->lock.abandoned_by;
        s->lock.abandoned_by = -1;
        return 1;
    }
    return 0;
}

static int
sem_try(sync_wait *a)
{
    sync_obj *s = a->s;
    if (s->sem.value > 0) {
        s->sem.value--;
        return 1;
    }
    return 0;
}

/* acquire() of the lock and semaphore kinds: 1 acquired, 0 not (timeout
 * or non-blocking), -1 error. */
static int
sync_acquire(PyObject *self, int blocking, const deadline *dl)
{
    sync_obj *s = sync_of(self);
    int is_lock = s->kind == SYNC_LOCK || s->kind == SYNC_RLOCK;
    sync_wait a;
    sync_wait_init(&a, s, is_lock ? lock_try : sem_try, NULL, blocking, dl);
    if (is_lock) {
        /* the same as the wait engine gives a handed-over lock's waiter */
        a.interp_id = PyInterpreterState_GetID(PyInterpreterState_Get());
        a.thread_id = PyThread_get_thread_ident();
    }
    int res = sync_wait_run(&a);
    if (res == 1 && a.status == WS_ABANDONED) {
        a.abandoned = (int64_t)a.value;
    }
    if (res == 1 && a.abandoned >= 0 &&
        warn_abandoned(get_mod_state_by_type(Py_TYPE(self)),
                       a.abandoned) < 0) {
        /* told, by an exception: do not keep the lock */
        sub_mutex_lock(&s->mutex);
        lock_pass_on(s, -1);
        sub_mutex_unlock(&s->mutex);
        res = -1;
    }
    return res;
}

/* acquire(blocking=True, timeout=...) with threading's conventions: a
 * Lock's timeout defaults to -1 (forever), which a non-blocking call may
 * pass; a Semaphore's to None, and a non-blocking call takes none. */
static PyObject *
syncobj_acquire(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"blocking", "timeout", NULL};
    sync_obj *s = sync_of(self);
    int is_lock = s->kind == SYNC_LOCK || s->kind == SYNC_RLOCK;
    int blocking = 1;
    PyObject *timeout = NULL;
    deadline dl;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|pO:acquire", kwlist,
                                     &blocking, &timeout)) {
        return NULL;
    }
    if (!blocking && timeout != NULL && (is_lock || timeout != Py_None)) {
        /* threading.Lock allows the default timeout, -1, here */
        int is_default = 0;
        if (is_lock && PyLong_Check(timeout)) {
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
    if (deadline_from_timeout(timeout, is_lock, &dl) < 0) {
        return NULL;
    }
    int r = sync_acquire(self, blocking, &dl);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

static PyObject *
syncobj_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    static const deadline forever = {.forever = 1};
    int r = sync_acquire(self, 1, &forever);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

/* Release as thread `thread_id`, in interpreter `interp_id`; the thread
 * must own an RLock: the current thread, or the one an undone
 * acquire_async acquired for (its loop's thread; the loop may be closed
 * from another one). */
static int
lock_release(PyObject *self, int64_t interp_id, unsigned long thread_id)
{
    sync_obj *s = sync_of(self);
    int err = ERR_OK;
    sub_mutex_lock(&s->mutex);
    if (!s->lock.locked) {
        err = ERR_RELEASE_UNLOCKED;
    }
    else if (s->kind == SYNC_RLOCK && s->lock.owner_thread != thread_id) {
        err = ERR_RELEASE_UNOWNED;
    }
    else if (s->kind == SYNC_RLOCK && s->lock.depth > 1) {
        lock_level_drop(s, interp_id);
        s->lock.depth--;        /* still held */
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
lockobj_release(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    if (lock_release(self,
                     PyInterpreterState_GetID(PyInterpreterState_Get()),
                     PyThread_get_thread_ident()) < 0) {
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
    int locked = s->lock.locked;
    sub_mutex_unlock(&s->mutex);
    return PyBool_FromLong(locked);
}

static PyObject *
lockobj_is_owned(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    int owned = s->lock.locked &&
                s->lock.owner_thread == PyThread_get_thread_ident();
    sub_mutex_unlock(&s->mutex);
    return PyBool_FromLong(owned);
}

/* ------------------------------------------------------------------ */
/* Semaphore and BoundedSemaphore                                      */

/* Give back n permits: to waiters first, in arrival order. */
static int
sem_release(PyObject *self, Py_ssize_t n)
{
    sync_obj *s = sync_of(self);
    int err = ERR_OK;
    sub_mutex_lock(&s->mutex);
    if (s->kind == SYNC_BSEMAPHORE && s->sem.value > s->sem.bound - n) {
        err = ERR_TOO_MANY_RELEASES;
    }
    else if (s->sem.value > PY_SSIZE_T_MAX - n) {
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
                s->sem.value += n - i;
                break;
            }
            wnode_fire(node, prev, WS_OK, NULL);
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
    int set = s->event.set;
    sub_mutex_unlock(&s->mutex);
    return PyBool_FromLong(set);
}

static PyObject *
eventobj_set(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    s->event.set = 1;
    fire_all(s, WS_OK);
    sub_mutex_unlock(&s->mutex);
    Py_RETURN_NONE;
}

static PyObject *
eventobj_clear(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    s->event.set = 0;
    sub_mutex_unlock(&s->mutex);
    Py_RETURN_NONE;
}

static int
event_try(sync_wait *a)
{
    return a->s->event.set;
}

static PyObject *
eventobj_wait(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout = Py_None;
    deadline dl;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait", kwlist,
                                     &timeout)) {
        return NULL;
    }
    if (deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    sync_wait a;
    sync_wait_init(&a, sync_of(self), event_try, NULL, 1, &dl);
    int r = sync_wait_run(&a);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

/* ------------------------------------------------------------------ */
/* awaitable acquire and wait (aio.c): the same sync_wait, run by an     */
/* event loop                                                          */

typedef struct {
    aio_wait aw;            /* first: aio.c finds the payload from it */
    sync_wait sw;
    deadline dl;
    PyObject *self;         /* borrowed from the op's `keep` */
    int settled;
} sync_async;

/* The operation completed: how (a->status, a->value), as sync_wait_run
 * works it out. */
static void
sync_async_settle(sync_async *p)
{
    if (!p->settled) {
        p->settled = 1;
        if (!p->sw.got && p->sw.waited) {
            /* handed over by a release */
            p->sw.got = 1;
            p->sw.status = p->aw.w.status;
            p->sw.value = p->aw.w.value;
        }
        if (p->sw.status == WS_ABANDONED) {
            p->sw.abandoned = (int64_t)p->sw.value;
        }
    }
}

static PyObject *
sync_async_timeout(module_state *Py_UNUSED(st), aio_wait *Py_UNUSED(a))
{
    Py_RETURN_FALSE;
}

static PyObject *
sync_async_result(module_state *st, aio_wait *a)
{
    sync_async *p = (sync_async *)a;
    sync_obj *s = p->sw.s;
    sync_async_settle(p);
    if (p->sw.got && p->sw.abandoned >= 0 &&
        warn_abandoned(st, p->sw.abandoned) < 0) {
        /* told, by an exception: do not keep the lock (sync_acquire) */
        sub_mutex_lock(&s->mutex);
        lock_pass_on(s, -1);
        sub_mutex_unlock(&s->mutex);
        return NULL;
    }
    return PyBool_FromLong(p->sw.got);
}

/* The task was cancelled after it acquired: give the lock or the permit
 * back (an Event's wait has nothing to undo). */
static void
sync_async_undo(aio_wait *a)
{
    sync_async *p = (sync_async *)a;
    sync_obj *s = p->sw.s;
    sync_async_settle(p);
    if (!p->sw.got || s->kind == SYNC_EVENT) {
        return;
    }
    PyObject *exc = PyErr_GetRaisedException();
    int r = (s->kind == SYNC_LOCK || s->kind == SYNC_RLOCK)
                ? lock_release(p->self, p->sw.interp_id, p->sw.thread_id)
                : sem_release(p->self, 1);
    if (r < 0) {
        PyErr_WriteUnraisable(p->self);
    }
    PyErr_SetRaisedException(exc);
}

static void
sync_async_free(aio_wait *a)
{
    PyMem_RawFree(a);
}

static const aio_op_kind sync_async_kind = {
    sync_async_result, sync_async_timeout, sync_async_undo, sync_async_free,
};

/* _acquire_async_op(timeout) of the locks and semaphores, and
 * _wait_async_op(timeout) of Event: an _AioOp (select.c has the Python
 * wrappers that await it). */
static PyObject *
syncobj_async_op(PyObject *self, PyObject *timeout)
{
    sync_obj *s = sync_of(self);
    int is_lock = s->kind == SYNC_LOCK || s->kind == SYNC_RLOCK;
    sync_async *p = PyMem_RawCalloc(1, sizeof(*p));
    if (p == NULL) {
        return PyErr_NoMemory();
    }
    if (deadline_from_timeout(timeout, is_lock, &p->dl) < 0) {
        PyMem_RawFree(p);
        return NULL;
    }
    /* the loop enforces a timeout (see coremod_aio_select) */
    if (!p->dl.forever && deadline_remaining_ns(&p->dl) > 0) {
        p->dl.forever = 1;
    }
    sync_wait_init(&p->sw,
                   s, s->kind == SYNC_EVENT ? event_try
                      : is_lock             ? lock_try
                                            : sem_try,
                   NULL, 1, &p->dl);
    if (is_lock) {
        p->sw.interp_id = PyInterpreterState_GetID(PyInterpreterState_Get());
        p->sw.thread_id = PyThread_get_thread_ident();
    }
    p->sw.status = WS_OK;
    p->self = self;
    p->aw.c = &sync_cond;
    p->aw.arg = &p->sw;
    return aio_op_new(get_mod_state_by_type(Py_TYPE(self)), &sync_async_kind, &p->aw, self);
}

/* ------------------------------------------------------------------ */
/* Barrier                                                             */

/* s->mutex held */
static void
barrier_break(sync_obj *s)
{
    s->barrier.broken = 1;
    s->barrier.arrived = 0;
    fire_all(s, WS_BROKEN);
}

/* Arrive: the last party lets everybody through.  s->mutex held. */
static int
barrier_try(sync_wait *a)
{
    sync_obj *s = a->s;
    if (s->barrier.broken) {
        a->broken = 1;
        return 1;
    }
    a->index = s->barrier.arrived++;
    if (s->barrier.arrived == s->barrier.parties) {
        fire_all(s, WS_OK);
        s->barrier.arrived = 0;
        return 1;
    }
    return 0;
}

/* A waiter gave up: its arrival no longer counts.  s->mutex held. */
static void
barrier_undo_arrival(sync_obj *s)
{
    s->barrier.arrived--;
}

static PyObject *
barrierobj_wait(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"timeout", NULL};
    sync_obj *s = sync_of(self);
    PyObject *timeout = Py_None;
    deadline dl;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait", kwlist,
                                     &timeout)) {
        return NULL;
    }
    if (timeout == Py_None && s->barrier.timeout >= 0) {
        deadline_from_seconds(s->barrier.timeout, &dl);
    }
    else if (deadline_from_timeout(timeout, 0, &dl) < 0) {
        return NULL;
    }
    sync_wait a;
    sync_wait_init(&a, s, barrier_try, barrier_undo_arrival, 1, &dl);
    int r = sync_wait_run(&a);
    if (r <= 0) {
        /* a timeout or an exception breaks the barrier, as in threading */
        sub_mutex_lock(&s->mutex);
        barrier_break(s);
        sub_mutex_unlock(&s->mutex);
    }
    if (r < 0) {
        return NULL;
    }
    if (r == 0 || a.broken || a.status != WS_OK) {
        if (a.status != WS_OK || a.broken) {
            /* Broken by a party whose interpreter is being stopped, as
               this one's is: that is the stop (SystemExit) here too,
               whichever party the stop reached first. */
            if (wait_stopping()) {
                return NULL;
            }
        }
        set_err(get_mod_state_by_type(Py_TYPE(self)), ERR_BARRIER_BROKEN);
        return NULL;
    }
    return PyLong_FromSsize_t(a.index);
}

static PyObject *
barrierobj_reset(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    fire_all(s, WS_BROKEN);
    s->barrier.arrived = 0;
    s->barrier.broken = 0;
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
    return PyLong_FromSsize_t(sync_of(self)->barrier.parties);
}

static PyObject *
barrierobj_get_n_waiting(PyObject *self, void *Py_UNUSED(closure))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    Py_ssize_t n = s->barrier.broken ? 0 : s->barrier.arrived;
    sub_mutex_unlock(&s->mutex);
    return PyLong_FromSsize_t(n);
}

static PyObject *
barrierobj_get_broken(PyObject *self, void *Py_UNUSED(closure))
{
    sync_obj *s = sync_of(self);
    sub_mutex_lock(&s->mutex);
    int broken = s->barrier.broken;
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
    switch (kind) {
    case SYNC_LOCK:
    case SYNC_RLOCK:
        lock_levels_clear(s);
        s->lock.abandoned_by = -1;
        break;
    case SYNC_SEMAPHORE:
    case SYNC_BSEMAPHORE:
        s->sem.value = s->sem.bound = initial;
        break;
    case SYNC_BARRIER:
        s->barrier.parties = initial;
        s->barrier.timeout = timeout;
        break;
    default:
        break;
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
    int yes;            /* locked, set, broken */
    Py_ssize_t n = 0;   /* semaphore value, barrier arrivals */
    sub_mutex_lock(&s->mutex);
    switch (s->kind) {
    case SYNC_LOCK:
    case SYNC_RLOCK:
        yes = s->lock.locked;
        break;
    case SYNC_EVENT:
        yes = s->event.set;
        break;
    case SYNC_SEMAPHORE:
    case SYNC_BSEMAPHORE:
        yes = 0;
        n = s->sem.value;
        break;
    default:
        yes = s->barrier.broken;
        n = s->barrier.arrived;
        break;
    }
    sub_mutex_unlock(&s->mutex);
    switch (s->kind) {
    case SYNC_LOCK:
    case SYNC_RLOCK:
        return PyUnicode_FromFormat("<subinterp.%s id=%lld %s>", name, id,
                                    yes ? "locked" : "unlocked");
    case SYNC_EVENT:
        return PyUnicode_FromFormat("<subinterp.%s id=%lld %s>", name, id,
                                    yes ? "set" : "unset");
    case SYNC_SEMAPHORE:
    case SYNC_BSEMAPHORE:
        return PyUnicode_FromFormat("<subinterp.%s id=%lld value=%zd>", name,
                                    id, n);
    default:
        return PyUnicode_FromFormat(
            "<subinterp.%s id=%lld waiters=%zd/%zd%s>", name, id, n,
            s->barrier.parties, yes ? " broken" : "");
    }
}

/* ------------------------------------------------------------------ */
/* type specs                                                          */

#define ACQUIRE_DOC(DEFAULT)                                               \
    "acquire($self, blocking=True, timeout=" DEFAULT ")\n--\n\n"            \
    "Acquire, waiting at most timeout seconds unless blocking is false; "  \
    "True if acquired."

static PyMethodDef lock_methods[] = {
    {"_acquire_async_op", syncobj_async_op, METH_O,
     "_acquire_async_op($self, timeout, /)\n--\n\n"
     "acquire_async() and async with (internal)."},
    {"acquire", _PyCFunction_CAST(syncobj_acquire),
     METH_VARARGS | METH_KEYWORDS, ACQUIRE_DOC("-1")},
    {"release", lockobj_release, METH_NOARGS,
     "release($self, /)\n--\n\nRelease (from any thread or interpreter)."},
    {"locked", lockobj_locked, METH_NOARGS,
     "locked($self, /)\n--\n\nTrue if held."},
    {"__enter__", syncobj_enter, METH_NOARGS, NULL},
    {"__exit__", lockobj_exit, METH_VARARGS, NULL},
    {"__reduce__", handle_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef rlock_methods[] = {
    {"_acquire_async_op", syncobj_async_op, METH_O,
     "_acquire_async_op($self, timeout, /)\n--\n\n"
     "acquire_async() and async with (internal)."},
    {"acquire", _PyCFunction_CAST(syncobj_acquire),
     METH_VARARGS | METH_KEYWORDS, ACQUIRE_DOC("-1")},
    {"release", lockobj_release, METH_NOARGS,
     "release($self, /)\n--\n\n"
     "Release once; the owning thread only."},
    {"locked", lockobj_locked, METH_NOARGS,
     "locked($self, /)\n--\n\nTrue if held by some thread."},
    {"_is_owned", lockobj_is_owned, METH_NOARGS, NULL},
    {"__enter__", syncobj_enter, METH_NOARGS, NULL},
    {"__exit__", lockobj_exit, METH_VARARGS, NULL},
    {"__reduce__", handle_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef event_methods[] = {
    {"_wait_async_op", syncobj_async_op, METH_O,
     "_wait_async_op($self, timeout, /)\n--\n\n"
     "wait_async() (internal)."},
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
    {"_acquire_async_op", syncobj_async_op, METH_O,
     "_acquire_async_op($self, timeout, /)\n--\n\n"
     "acquire_async() and async with (internal)."},
    {"acquire", _PyCFunction_CAST(syncobj_acquire),
     METH_VARARGS | METH_KEYWORDS, ACQUIRE_DOC("None")},
    {"release", _PyCFunction_CAST(semobj_release),
     METH_VARARGS | METH_KEYWORDS,
     "release($self, n=1)\n--\n\n"
     "Give back n permits (waiters get them first, in arrival order)."},
    {"__enter__", syncobj_enter, METH_NOARGS, NULL},
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
sync_awaitable_types(module_state *st, PyTypeObject *locks[4],
                     PyTypeObject **event)
{
    struct sync_state *ss = st->sync;
    locks[0] = ss->types[SYNC_LOCK];
    locks[1] = ss->types[SYNC_RLOCK];
    locks[2] = ss->types[SYNC_SEMAPHORE];
    locks[3] = ss->types[SYNC_BSEMAPHORE];
    *event = ss->types[SYNC_EVENT];
    return 4;
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
