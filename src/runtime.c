/* runtime.c - the process-wide registry of interpreters.
 *
 * Design
 * ------
 * Every interpreter subinterp knows about has one interp_entry, found by
 * the interpreter's own id (PyInterpreterState_GetID, so ids match the
 * standard library's).  Entries are plain C: no PyObject * lives here.
 * One mutex, `runtime.mutex`, protects the registry and every field of
 * every entry.  Nothing calls into Python, waits for a GIL or takes
 * another lock of subinterp while holding it (other locks of subinterp
 * may be held when it is taken: a pool's mutex, in terminate()).  It is
 * not a leaf lock, though: a thread state is made, or one that was never
 * attached is deleted, under it (slot_tstate), and PyThreadState_New and
 * PyThreadState_Delete take CPython's own lock of the interpreter's
 * thread list.  They must run under it: the mutex is what keeps the
 * interpreter from being ended meanwhile (closes mark the entry closing
 * under it, and force_close ends an interpreter whatever runs there).
 * CPython never calls into subinterp with that lock held, so the order
 * is always runtime.mutex, then CPython's lock.
 *
 *     runtime.head -> entry(id 0, main) -> entry(id 3, owned) -> ...
 *                                            |
 *                                   tstates: slot(thread A) -> slot(B)
 *
 * Entering an interpreter from a thread (runtime_run_in) needs a thread
 * state of that interpreter for that OS thread.  Making one costs a few
 * microseconds, so one is cached per (thread, interpreter): a `slot`.
 * Each slot is on two lists, its entry's and its thread's (the thread's
 * list hangs off a pthread key whose destructor runs when the OS thread
 * exits).  CPython refuses to end an interpreter that still has other
 * thread states ("not the last thread" is a fatal error), so:
 *
 *   - a thread that exits marks its slots orphaned; the next thread that
 *     enters the interpreter (holding its GIL) clears and deletes them;
 *   - closing an interpreter first clears and deletes every cached slot.
 *
 * Lifetimes: an entry is kept alive by a C reference count (Interpreter
 * objects in any interpreter, handles inside messages, running calls).
 * When the last reference to an interpreter this package created goes,
 * the entry is marked orphaned and closed by runtime_close_orphans() the
 * next time a thread with a GIL passes by (the decref itself may run
 * without any GIL).  At exit, an atexit callback in the main interpreter
 * closes everything that is left (runtime_shutdown).
 */
#include "subinterp.h"

#include <unistd.h>
#include "wait.h"

#include <string.h>

typedef struct thread_rec thread_rec;

/* One cached thread state for (thread, interpreter). */
typedef struct slot {
    PyThreadState *tstate;     /* owned; deleted by whoever unlinks the
                                  slot while holding the target's GIL */
    thread_rec *thread;        /* NULL once the OS thread exited */
    interp_entry *entry;       /* borrowed: the entry owns the slot */
    struct slot *next_in_entry;
    struct slot *next_in_thread;
} slot;

struct thread_rec {
    slot *slots;               /* runtime.mutex */
    /* every live record, so that a forked child can free those of the
       threads it does not have (runtime.mutex) */
    thread_rec *prev, *next;
};

struct interp_entry {
    int64_t id;                 /* immutable */
    int owned;                  /* immutable: created by subinterp */
    int is_main;                /* immutable */
    /* All fields below: runtime.mutex. */
    PyInterpreterState *interp; /* NULL once destroyed */
    int64_t refcount;
    int64_t self_refs;          /* Interpreter objects inside the
                                   interpreter itself: they keep the entry,
                                   not the interpreter (not in refcount) */
    unsigned long running;      /* thread running code in it, 0 if none */
    int closing;                /* being destroyed: no new entries */
    int orphaned;               /* refcount reached 0: close it */
    int has_dead_slots;         /* some slot's thread has exited */
    int exit_tried;             /* the exit handler tried to close it */
    int interrupting;           /* threads in interrupt_running() with a
                                   thread state of it: closing waits */
    int deferred;               /* 3.12: ended after the runtime stopped
                                   every other thread (exit_deferred) */
    int warn_at_exit;           /* made by subinterp.interpreters.create():
                                   left open at exit, it gets the standard
                                   library's RuntimeWarning */
    int ended;                  /* foreign (neither owned nor main): the
                                   standard library said it is gone */
    const char *whence;         /* foreign: where it came from, as the
                                   standard library says (a static
                                   string), NULL until asked */
    module_state *modstate;     /* _core's state in that interpreter, NULL
                                   until imported there (a plain pointer:
                                   only used from inside it) */
    slot *slots;
    interp_entry *next;
};

#define MAX_HOOKS 8

static struct {
    pthread_mutex_t mutex;
    pthread_cond_t idle;        /* broadcast when an entry stops running */
    interp_entry *head;
    thread_rec *threads;        /* every thread_rec (prev/next) */
    /* interp_closed_hook / interp_closing_hook, stored as void * so one
       function registers both */
    void *closed_hooks[MAX_HOOKS];
    int n_closed_hooks;
    void *closing_hooks[MAX_HOOKS];
    int n_closing_hooks;
    int creating;               /* runtime_create calls under way */
    int shutting_down;          /* atexit callback started */
    int shut_down;              /* atexit callback finished */
    interp_entry **deferred;    /* 3.12: see stop_at_exit(); only the
                                   exit handler's thread uses these */
    size_t n_deferred, cap_deferred;
} runtime = {
    .mutex = PTHREAD_MUTEX_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
};

static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key;

#define LOCK() pthread_mutex_lock(&runtime.mutex)
#define UNLOCK() pthread_mutex_unlock(&runtime.mutex)

/* ------------------------------------------------------------------ */
/* threads                                                             */

/* runtime.mutex held */
static void
thread_rec_unlink(thread_rec *rec)
{
    if (rec->prev != NULL) {
        rec->prev->next = rec->next;
    }
    else if (runtime.threads == rec) {
        runtime.threads = rec->next;
    }
    if (rec->next != NULL) {
        rec->next->prev = rec->prev;
    }
    rec->prev = rec->next = NULL;
}

/* pthread key destructor: the OS thread is exiting.  We cannot take a
 * GIL here safely (the runtime may be finalizing), so the slots are only
 * marked; runtime_run_in and close delete them later. */
static void
thread_rec_destroy(void *ptr)
{
    thread_rec *rec = (thread_rec *)ptr;
    LOCK();
    slot *s = rec->slots;
    while (s != NULL) {
        slot *next = s->next_in_thread;
        s->thread = NULL;
        s->next_in_thread = NULL;
        s->entry->has_dead_slots = 1;
        s = next;
    }
    rec->slots = NULL;
    thread_rec_unlink(rec);
    UNLOCK();
    PyMem_RawFree(rec);
}

static void
thread_key_create(void)
{
    (void)pthread_key_create(&thread_key, thread_rec_destroy);
}

static thread_rec *
current_thread_rec(void)
{
    (void)pthread_once(&thread_key_once, thread_key_create);
    thread_rec *rec = pthread_getspecific(thread_key);
    if (rec == NULL) {
        rec = PyMem_RawCalloc(1, sizeof(thread_rec));
        if (rec == NULL) {
            return NULL;
        }
        if (pthread_setspecific(thread_key, rec) != 0) {
            PyMem_RawFree(rec);
            return NULL;
        }
        LOCK();
        rec->next = runtime.threads;
        if (rec->next != NULL) {
            rec->next->prev = rec;
        }
        runtime.threads = rec;
        UNLOCK();
    }
    return rec;
}

/* Unlink s from its thread's list.  runtime.mutex held. */
static void
slot_unlink_thread(slot *s)
{
    if (s->thread == NULL) {
        return;
    }
    slot **pp = &s->thread->slots;
    while (*pp != NULL) {
        if (*pp == s) {
            *pp = s->next_in_thread;
            break;
        }
        pp = &(*pp)->next_in_thread;
    }
    s->thread = NULL;
    s->next_in_thread = NULL;
}

/* Unlink s from its entry's list.  runtime.mutex held. */
static void
slot_unlink_entry(slot *s)
{
    slot **pp = &s->entry->slots;
    while (*pp != NULL) {
        if (*pp == s) {
            *pp = s->next_in_entry;
            break;
        }
        pp = &(*pp)->next_in_entry;
    }
    s->next_in_entry = NULL;
}

/* The slot of (rec, e), or NULL.  runtime.mutex held. */
static slot *
slot_find(thread_rec *rec, interp_entry *e)
{
    for (slot *s = rec->slots; s != NULL; s = s->next_in_thread) {
        if (s->entry == e) {
            return s;
        }
    }
    return NULL;
}

/* Cache tstate as the slot of (rec, e).  runtime.mutex held. */
static int
slot_add(thread_rec *rec, interp_entry *e, PyThreadState *tstate)
{
    slot *s = PyMem_RawCalloc(1, sizeof(slot));
    if (s == NULL) {
        return ERR_NO_MEMORY;
    }
    s->tstate = tstate;
    s->entry = e;
    s->thread = rec;
    s->next_in_entry = e->slots;
    e->slots = s;
    s->next_in_thread = rec->slots;
    rec->slots = s;
    return 0;
}

/* This thread's thread state for e: the one its slot caches, or a new
 * one, cached.  NULL when out of memory.  runtime.mutex held, with e's
 * interpreter alive (set and not closing): the mutex keeps it from being
 * ended under PyThreadState_New (see the top of this file). */
static PyThreadState *
slot_tstate(thread_rec *rec, interp_entry *e)
{
    slot *s = slot_find(rec, e);
    if (s != NULL) {
        return s->tstate;
    }
    /* PyThreadState_New needs no GIL; it only allocates the thread state
       and links it into the interpreter's list. */
    PyThreadState *tstate = PyThreadState_New(e->interp);
    if (tstate != NULL && slot_add(rec, e, tstate) < 0) {
        /* never attached: clearing it runs no Python code */
        PyThreadState_Clear(tstate);
        PyThreadState_Delete(tstate);
        tstate = NULL;
    }
    return tstate;
}

/* Clear and delete the thread states of a detached list of slots.  The
 * GIL of their interpreter is held by the calling thread, through a thread
 * state that is not on the list. */
static void
slots_delete(slot *list)
{
    while (list != NULL) {
        slot *next = list->next_in_entry;
        PyThreadState_Clear(list->tstate);
        PyThreadState_Delete(list->tstate);
        PyMem_RawFree(list);
        list = next;
    }
}

/* Take the slots of threads that have exited off e's list.
 * runtime.mutex held. */
static slot *
take_dead_slots(interp_entry *e)
{
    slot *dead = NULL;
    slot **pp = &e->slots;
    while (*pp != NULL) {
        slot *s = *pp;
        if (s->thread == NULL) {
            *pp = s->next_in_entry;
            s->next_in_entry = dead;
            dead = s;
        }
        else {
            pp = &s->next_in_entry;
        }
    }
    e->has_dead_slots = 0;
    return dead;
}

/* Take every slot but keep off e's list (and off their threads').
 * runtime.mutex held. */
static slot *
take_all_slots(interp_entry *e, slot *keep)
{
    slot *all = NULL;
    slot *s = e->slots;
    while (s != NULL) {
        slot *next = s->next_in_entry;
        if (s != keep) {
            slot_unlink_thread(s);
            s->next_in_entry = all;
            all = s;
        }
        s = next;
    }
    e->slots = keep;
    if (keep != NULL) {
        keep->next_in_entry = NULL;
    }
    e->has_dead_slots = 0;
    return all;
}

/* ------------------------------------------------------------------ */
/* entries                                                             */

/* An interpreter subinterp did not create, other than the main one: the
 * standard library (subinterp/_foreign.py) says whether it lives.  Its
 * `interp` is known only while _core is imported there (set from inside,
 * cleared by runtime_module_freed), and is only ever compared: such an
 * interpreter may be destroyed by anyone at any moment, so nothing of
 * subinterp keeps a thread state in it or enters it by pointer. */
static inline int
entry_foreign(const interp_entry *e)
{
    return !e->owned && !e->is_main;
}

/* Not known to be gone.  runtime.mutex held. */
static inline int
entry_live(const interp_entry *e)
{
    return entry_foreign(e) ? !e->ended : e->interp != NULL;
}

static interp_entry *
entry_find(int64_t id)
{
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        if (e->id == id && entry_live(e)) {
            return e;
        }
    }
    return NULL;
}

/* A new entry for a live interpreter, by id (interp may be NULL for a
 * foreign one looked up from outside).  runtime.mutex held. */
static interp_entry *
entry_new_id(int64_t id, PyInterpreterState *interp, int owned)
{
    interp_entry *e = PyMem_RawCalloc(1, sizeof(interp_entry));
    if (e == NULL) {
        return NULL;
    }
    e->id = id;
    e->interp = interp;
    e->owned = owned;
    e->is_main = (id == PyInterpreterState_GetID(PyInterpreterState_Main()));
    e->next = runtime.head;
    runtime.head = e;
    return e;
}

static interp_entry *
entry_new(PyInterpreterState *interp, int owned)
{
    return entry_new_id(PyInterpreterState_GetID(interp), interp, owned);
}

/* Free e if nothing refers to it any more.  runtime.mutex held. */
static void
entry_maybe_free(interp_entry *e)
{
    if (e->refcount > 0 || e->self_refs > 0 || e->slots != NULL ||
        (e->interp != NULL && (e->owned || e->is_main ||
                               e->modstate != NULL))) {
        return;
    }
    interp_entry **pp = &runtime.head;
    while (*pp != NULL) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
        pp = &(*pp)->next;
    }
    PyMem_RawFree(e);
}

/* Drop a reference taken to close e (orphans, the exit handler).  Unlike
 * entry_decref, it never marks e orphaned: one that could not be closed
 * is left to the exit handler, not taken again by the loop that tried. */
static void
entry_drop_close_ref(interp_entry *e)
{
    LOCK();
    assert(e->refcount > 0);
    e->refcount--;
    entry_maybe_free(e);    /* (not while its interpreter lives) */
    UNLOCK();
}

void
entry_incref(interp_entry *e)
{
    LOCK();
    e->refcount++;
    UNLOCK();
}

void
entry_decref(interp_entry *e)
{
    LOCK();
    assert(e->refcount > 0);
    e->refcount--;
    if (e->refcount == 0) {
        if (e->owned && e->interp != NULL) {
            e->orphaned = 1;
        }
        else {
            entry_maybe_free(e);
        }
    }
    UNLOCK();
}

int
entry_incref_handle(interp_entry *e)
{
    /* by id: a foreign entry may not know its interpreter's address */
    int64_t current = PyInterpreterState_GetID(PyInterpreterState_Get());
    LOCK();
    int self_ref = entry_live(e) && e->id == current;
    if (self_ref) {
        e->self_refs++;
    }
    else {
        e->refcount++;
    }
    UNLOCK();
    return self_ref;
}

void
entry_decref_handle(interp_entry *e, int self_ref)
{
    if (!self_ref) {
        entry_decref(e);
        return;
    }
    LOCK();
    assert(e->self_refs > 0);
    e->self_refs--;
    entry_maybe_free(e);
    UNLOCK();
}

int64_t
entry_id(const interp_entry *e)
{
    return e->id;
}

interp_entry *
runtime_lookup(int64_t id, int *err)
{
    LOCK();
    interp_entry *e = entry_find(id);
    if (e == NULL || e->closing) {
        UNLOCK();
        *err = ERR_INTERP_NOT_FOUND;
        return NULL;
    }
    e->refcount++;
    e->orphaned = 0;
    UNLOCK();
    return e;
}

interp_entry *
runtime_lookup_foreign(int64_t id)
{
    int nomem = 0;
    LOCK();
    interp_entry *e = entry_find(id);
    if (e == NULL) {
        e = entry_new_id(id, NULL, 0);
        nomem = e == NULL;
    }
    else if (!entry_foreign(e)) {
        /* ours, being closed (runtime_lookup refused it) */
        e = NULL;
    }
    if (e != NULL) {
        e->refcount++;
        e->orphaned = 0;
    }
    UNLOCK();
    if (nomem) {
        PyErr_NoMemory();
    }
    return e;
}

static interp_entry *
lookup_or_add(PyInterpreterState *interp)
{
    LOCK();
    interp_entry *e = entry_find(PyInterpreterState_GetID(interp));
    if (e == NULL) {
        e = entry_new(interp, 0);
    }
    else if (e->interp == NULL) {
        /* a foreign entry made from outside: we are inside it now */
        e->interp = interp;
    }
    if (e != NULL) {
        e->refcount++;
        e->orphaned = 0;
    }
    UNLOCK();
    if (e == NULL) {
        PyErr_NoMemory();
    }
    return e;
}

interp_entry *
runtime_current(void)
{
    return lookup_or_add(PyInterpreterState_Get());
}

interp_entry *
runtime_main(void)
{
    return lookup_or_add(PyInterpreterState_Main());
}

/* ------------------------------------------------------------------ */
/* queries                                                             */

int
entry_is_foreign(const interp_entry *e)
{
    return entry_foreign(e);    /* immutable fields: no lock */
}

void
runtime_entry_ended(interp_entry *e)
{
    LOCK();
    if (entry_foreign(e)) {
        e->ended = 1;
    }
    UNLOCK();
}

const char *
runtime_entry_whence(interp_entry *e)
{
    LOCK();
    const char *res = e->whence;
    UNLOCK();
    return res;
}

void
runtime_entry_set_whence(interp_entry *e, const char *whence)
{
    LOCK();
    e->whence = whence;
    UNLOCK();
}

int
runtime_entry_state(interp_entry *e, int *running, int *owned)
{
    int err = 0;
    LOCK();
    if (!entry_live(e)) {
        err = ERR_INTERP_NOT_FOUND;
    }
    else {
        /* The main interpreter always runs its main thread. */
        *running = e->running != 0 || e->closing || e->is_main;
        *owned = e->owned;
    }
    UNLOCK();
    return err;
}

int
runtime_entry_alive(interp_entry *e)
{
    LOCK();
    int alive = entry_live(e) && !e->closing;
    UNLOCK();
    return alive;
}

/* New list of the ids of live interpreters subinterp knows about: the
 * main one, the current one, every one it created (the foreign ones come
 * from the standard library, see coremod_list_all). */
PyObject *
runtime_list_ids(void)
{
    PyObject *res = NULL;
    int64_t current = PyInterpreterState_GetID(PyInterpreterState_Get());
    interp_entry *tmp = runtime_main();
    if (tmp == NULL) {
        return NULL;
    }
    entry_decref(tmp);
    tmp = runtime_current();
    if (tmp == NULL) {
        return NULL;
    }
    entry_decref(tmp);

    res = PyList_New(0);
    if (res == NULL) {
        return NULL;
    }
    LOCK();
    size_t n = 0;
#define LISTED(e) (entry_live(e) && !(e)->closing && \
                   (!entry_foreign(e) || (e)->id == current))
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        if (LISTED(e)) {
            n++;
        }
    }
    int64_t *ids = PyMem_RawMalloc((n ? n : 1) * sizeof(int64_t));
    if (ids == NULL) {
        UNLOCK();
        Py_DECREF(res);
        return PyErr_NoMemory();
    }
    size_t i = 0;
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        if (LISTED(e)) {
            ids[i++] = e->id;
        }
    }
#undef LISTED
    UNLOCK();
    /* oldest first, like the stdlib's list_all() */
    for (size_t j = n; j > 0; j--) {
        PyObject *id = PyLong_FromLongLong(ids[j - 1]);
        if (id == NULL || PyList_Append(res, id) < 0) {
            Py_XDECREF(id);
            Py_CLEAR(res);
            break;
        }
        Py_DECREF(id);
    }
    PyMem_RawFree(ids);
    return res;
}

/* ------------------------------------------------------------------ */
/* hooks                                                               */

/* Append hook to a hook table (registration happens once per process,
 * from component inits). */
static int
add_hook(void **table, int *n, void *hook)
{
    int res = -1;
    LOCK();
    if (*n < MAX_HOOKS) {
        table[(*n)++] = hook;
        res = 0;
    }
    UNLOCK();
    if (res < 0) {
        PyErr_SetString(PyExc_SystemError, "subinterp: too many hooks");
    }
    return res;
}

int
runtime_add_closed_hook(interp_closed_hook hook)
{
    return add_hook(runtime.closed_hooks, &runtime.n_closed_hooks,
                    (void *)hook);
}

int
runtime_add_closing_hook(interp_closing_hook hook)
{
    return add_hook(runtime.closing_hooks, &runtime.n_closing_hooks,
                    (void *)hook);
}

/* ------------------------------------------------------------------ */
/* entering an interpreter                                             */

/* Claim e for running from this thread and find (or make) this thread's
 * thread state for it.  On success e->running is this thread. */
static int
claim(interp_entry *e, int for_close, PyThreadState **tstate_p,
      slot **dead_p)
{
    int err = 0;
    PyThreadState *tstate = NULL;
    unsigned long me = PyThread_get_thread_ident();
    thread_rec *rec = current_thread_rec();
    if (rec == NULL) {
        return ERR_NO_MEMORY;
    }

    LOCK();
    if (entry_foreign(e)) {
        /* entered only through the standard library (interp.c) */
        err = ERR_INTERP_NOT_OWNED;
        goto done;
    }
    if (e->interp == NULL || e->closing) {
        err = ERR_INTERP_NOT_FOUND;
        goto done;
    }
    if (e->interp == PyInterpreterState_Get()) {
        err = ERR_INTERP_CURRENT;
        goto done;
    }
    if (e->running != 0 || (e->is_main && !for_close)) {
        err = ERR_INTERP_RUNNING;
        goto done;
    }
    if (for_close && !e->owned) {
        err = ERR_INTERP_NOT_OWNED;
        goto done;
    }
    if (for_close && e->interrupting > 0) {
        /* the exit handler is inside it with a thread state that closing
           would delete under it; it closes the interpreter itself */
        err = ERR_INTERP_RUNNING;
        goto done;
    }
    tstate = slot_tstate(rec, e);
    if (tstate == NULL) {
        err = ERR_NO_MEMORY;
        goto done;
    }
    e->running = me;
    if (for_close) {
        e->closing = 1;
    }
    *dead_p = e->has_dead_slots ? take_dead_slots(e) : NULL;
    *tstate_p = tstate;
done:
    UNLOCK();
    return err;
}

/* was_close: the claim was for closing; a run leaves `closing` alone
 * (the exit handler may have set it meanwhile). */
static void
release_claim(interp_entry *e, int was_close)
{
    LOCK();
    e->running = 0;
    if (was_close) {
        e->closing = 0;
    }
    pthread_cond_broadcast(&runtime.idle);
    UNLOCK();
}

int
runtime_run_in(interp_entry *e, interp_fn fn, void *arg)
{
    PyThreadState *tstate = NULL;
    slot *dead = NULL;
    int err = claim(e, 0, &tstate, &dead);
    if (err < 0) {
        return err;
    }
    PyThreadState *save = PyEval_SaveThread();
    PyEval_RestoreThread(tstate);
    slots_delete(dead);
    fn(arg);
    (void)PyEval_SaveThread();
    /* Back home before letting go: until this thread binds another thread
       state, CPython's per-thread "gilstate" record still points at the
       one of e, and a closer that claimed e would delete it under us. */
    PyEval_RestoreThread(save);
    release_claim(e, 0);
    return 0;
}

/* ------------------------------------------------------------------ */
/* creating and closing                                                */

/* A runtime_create call is over (its init done, or nothing registered). */
static void
creation_done(void)
{
    LOCK();
    runtime.creating--;
    pthread_cond_broadcast(&runtime.idle);
    UNLOCK();
}

#if PY_VERSION_HEX < 0x030D0000
/* CPython 3.12 creates interpreters that start at the same moment badly:
 * now and then (about one run in 40 of a loop making 40 two-worker pools)
 * a new interpreter's first imports find a method of the wrong type
 * ("descriptor 'close' for '_io.BufferedReader' objects doesn't apply to
 * a '_io.FileIO' object") and its creation fails.  3.13 does not.  So on
 * 3.12 one interpreter is created at a time; whoever waits for its turn
 * waits with its GIL released (creating a legacy interpreter needs the
 * main GIL). */
static pthread_mutex_t create_mutex = PTHREAD_MUTEX_INITIALIZER;
#define CREATE_BEGIN()                          \
    do {                                        \
        Py_BEGIN_ALLOW_THREADS                  \
        pthread_mutex_lock(&create_mutex);      \
        Py_END_ALLOW_THREADS                    \
    } while (0)
#define CREATE_END() pthread_mutex_unlock(&create_mutex)
#else
#define CREATE_BEGIN() ((void)0)
#define CREATE_END() ((void)0)
#endif

static int
create_here(const PyInterpreterConfig *config, interp_fn init, void *arg,
            interp_entry **entry_p)
{
    int err = 0;
    PyThreadState *tstate = NULL;
    interp_entry *e = NULL;
    int late = 0;
    thread_rec *rec = current_thread_rec();
    if (rec == NULL) {
        return ERR_NO_MEMORY;
    }
    LOCK();
    late = runtime.shutting_down;
    if (!late) {
        /* the exit handler waits for creations under way */
        runtime.creating++;
    }
    UNLOCK();
    if (late) {
        return ERR_SHUT_DOWN;
    }

    PyThreadState *save = PyThreadState_Get();
    CREATE_BEGIN();
#if PY_VERSION_HEX >= 0x030D0000
    /* With no thread state attached, as the standard library creates
       them: with one, CPython 3.13+ runs the caller's audit hooks for
       "cpython.PyInterpreterState_New", and one that raises ends the
       process (a fatal error on 3.13, a broken thread state on 3.14). */
    (void)PyThreadState_Swap(NULL);
#endif
    PyStatus status = Py_NewInterpreterFromConfig(&tstate, config);
    CREATE_END();
    if (PyStatus_Exception(status) || tstate == NULL) {
#if PY_VERSION_HEX >= 0x030D0000
        (void)PyThreadState_Swap(save);
#endif
        /* CPython put the calling thread state back. */
        assert(PyThreadState_Get() == save);
        creation_done();
        if (!PyErr_Occurred()) {
            set_err(NULL, ERR_INTERP_CREATE,
                    status.err_msg ? status.err_msg : "unknown");
        }
        return ERR_PYEXC;
    }

    /* The new interpreter is current, with its GIL held, and marked
       running by this thread until init is done.  On 3.12 its first
       thread state becomes this thread's cached one (compat.h). */
    LOCK();
    /* Checked again under the mutex: the exit handler closes only the
       interpreters it finds registered. */
    late = runtime.shutting_down;
    if (!late) {
        e = entry_new(PyThreadState_GetInterpreter(tstate), 1);
    }
    if (e != NULL) {
        if (SUBINTERP_KEEP_FIRST_TSTATE) {
            err = slot_add(rec, e, tstate);
        }
        e->refcount = 1;
        e->running = PyThread_get_thread_ident();
    }
    UNLOCK();
    if (e == NULL || err < 0) {
        /* Out of memory (or exit began) with no entry to remember it by:
           end it now. */
        if (e != NULL) {
            LOCK();
            e->refcount = 0;
            e->interp = NULL;
            e->running = 0;
            entry_maybe_free(e);
            UNLOCK();
        }
        Py_EndInterpreter(tstate);
        PyEval_RestoreThread(save);
        creation_done();
        return late ? ERR_SHUT_DOWN : ERR_NO_MEMORY;
    }
    if (init != NULL) {
        init(arg);
    }
    if (SUBINTERP_KEEP_FIRST_TSTATE) {
        (void)PyEval_SaveThread();
    }
    else {
        /* The first thread state is not kept (nor is it by the standard
           library there): the stack memory it grew while it ran the
           interpreter's start-up (~4 KiB of RSS per idle interpreter on
           3.14) goes with it.  The first use makes and caches a thread
           state, as one from another thread does.  It is in no slot, so
           nobody else can delete it; PyThreadState_DeleteCurrent() unbinds
           it from this thread's gilstate record, and restoring save binds
           that again. */
        PyThreadState_Clear(tstate);
        PyThreadState_DeleteCurrent();
    }
    PyEval_RestoreThread(save);  /* first: see runtime_run_in */
    release_claim(e, 0);
    creation_done();  /* after init: the exit handler waits for it */
    *entry_p = e;
    return 0;
}

#if PY_VERSION_HEX >= 0x030E0000 && defined(__GLIBC__)
/* CPython 3.14+ finds the C stack bounds of a thread state with glibc's
 * pthread_getattr_np, which for the process's main thread (only) reads
 * and parses all of /proc/self/maps: creating an interpreter does that 13
 * times, ~1.5 ms of an 8 ms creation in a small process, 80 ms with 4000
 * more mappings (large extension modules, many arenas).  In any other
 * thread it reads the thread's descriptor.  So the main thread has a
 * helper thread create the interpreter and waits for it, its GIL
 * released; the helper has a thread state of the caller's interpreter
 * for as long as it runs, and hands an exception back. */
#define CREATE_OFF_MAIN 1

typedef struct {
    const PyInterpreterConfig *config;
    interp_fn init;
    void *arg;
    PyInterpreterState *caller;
    interp_entry *entry;
    int err;
    PyObject *exc;
} create_job;

static atomic_long created_off_main;

static void *
create_job_run(void *ptr)
{
    create_job *job = ptr;
    PyThreadState *ts = PyThreadState_New(job->caller);
    if (ts == NULL) {
        job->err = ERR_NO_MEMORY;
        return NULL;
    }
    PyEval_RestoreThread(ts);
    job->err = create_here(job->config, job->init, job->arg, &job->entry);
    if (job->err == ERR_PYEXC) {
        job->exc = PyErr_GetRaisedException();
    }
    PyThreadState_Clear(ts);
    PyThreadState_DeleteCurrent();
    return NULL;
}
#endif

int
runtime_create(const PyInterpreterConfig *config, interp_fn init,
               void *arg, interp_entry **entry_p)
{
#ifdef CREATE_OFF_MAIN
    if (wait_is_main_os_thread() == 1) {
        create_job job = {config, init, arg, PyInterpreterState_Get(),
                          NULL, 0, NULL};
        pthread_t helper;
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = pthread_create(&helper, NULL, create_job_run, &job);
        if (rc == 0) {
            (void)pthread_join(helper, NULL);
        }
        Py_END_ALLOW_THREADS
        if (rc == 0) {
            if (job.exc != NULL) {
                PyErr_SetRaisedException(job.exc);
            }
            if (job.err == 0) {
                atomic_fetch_add(&created_off_main, 1);
            }
            *entry_p = job.entry;
            return job.err;
        }
        /* no thread to spare: create here */
    }
#endif
    return create_here(config, init, arg, entry_p);
}

long
runtime_created_off_main(void)
{
#ifdef CREATE_OFF_MAIN
    return atomic_load(&created_off_main);
#else
    return 0;
#endif
}

/* Inside the interpreter being closed (its GIL held), just before
 * Py_EndInterpreter, which joins the threads the threading module started
 * there, for as long as they run, and aborts the process ("not the last
 * thread") when any other thread state is left:
 *
 * - the pools made inside it are shut down and joined first, as
 *   threading's exit hook does in Py_EndInterpreter: queued and running
 *   tasks finish and the workers close their interpreters (otherwise the
 *   pools' collector threads would be among the threads to stop, and their
 *   workers' interpreters would outlive it); then the callbacks of
 *   threading._register_atexit run, as threading._shutdown() runs them
 *   before it joins threads (a concurrent.futures executor made inside
 *   tells its workers to end there; without it they wait for work for
 *   ever and the close is refused);
 * - daemon threads (legacy config only) cannot be waited for: refused,
 *   except at exit (below);
 * - other threads are asked to stop: every wait of subinterp inside the
 *   interpreter raises SystemExit (a thread parked there would never see
 *   anything else), and at exit they also get SystemExit asynchronously,
 *   as code running in it does; then they are joined for at most
 *   `timeout` seconds.  ERR_INTERP_BUSY (ERR_INTERP_THREADS for daemon
 *   threads) if some still run: Py_EndInterpreter would wait for ever.
 *   *stopped tells that the interpreter's waits were stopped;
 * - drop the closing thread's _DummyThread now, while the threading module
 *   is intact: CPython 3.13.0 otherwise prints "Exception ignored in
 *   _DeleteDummyThreadOnDel.__del__" when the thread state is cleared
 *   after the module's globals are gone.
 */
static const char prepare_code[] =
    "def pools():\n"
    "    import sys\n"
    "    pool = sys.modules.get('subinterp._pool')\n"
    "    if pool is not None:\n"
    "        pool._python_exit()\n"
    "    threading = sys.modules.get('threading')\n"
    "    if threading is not None and not threading._SHUTTING_DOWN:\n"
    "        threading._SHUTTING_DOWN = True\n"
    "        for call in reversed(threading._threading_atexits):\n"
    "            call()\n"
    "def threads():\n"
    "    import sys\n"
    "    threading = sys.modules.get('threading')\n"
    "    if threading is None:\n"
    "        return []\n"
    "    me = threading.current_thread()\n"
    "    main = threading.main_thread()\n"
    "    return [t for t in threading.enumerate()\n"
    "            if t is not me and t is not main and t.is_alive()\n"
    "            and not isinstance(t, threading._DummyThread)]\n"
    "def join(threads, timeout):\n"
    "    import time\n"
    "    end = time.monotonic() + timeout\n"
    "    for t in threads:\n"
    "        t.join(max(0.0, end - time.monotonic()))\n"
    "    return any(t.is_alive() for t in threads)\n"
    "def join_then(threads, timeout, fire):\n"
    "    import threading\n"
    "    def joiner():\n"
    "        try:\n"
    "            join(threads, timeout)\n"
    "        finally:\n"
    "            fire()\n"
    "    t = threading.Thread(target=joiner, name='subinterp-close')\n"
    "    t._subinterp_joiner = True\n"
    "    t.start()\n"
    "def stop_targets(threads):\n"
    "    return [t.ident for t in threads\n"
    "            if not getattr(t, '_subinterp_joiner', False)]\n"
    "def alive(threads):\n"
    "    return any(t.is_alive() for t in threads)\n"
    "def done():\n"
    "    import sys\n"
    "    threading = sys.modules.get('threading')\n"
    "    info = getattr(threading, '_thread_local_info', None)\n"
    "    if info is not None:\n"
    "        info.__dict__.pop('_track_dummy_thread_ref', None)\n";

/* Run code (compiled once per process, through cache: code_cached) in a
 * new namespace of the current interpreter; the namespace, or NULL with
 * an exception set.  Not PyRun_String(): that resets the
 * runtime's "unhandled KeyboardInterrupt" flag, and this runs at exit,
 * after which a script that Ctrl-C ended must still end by SIGINT (status
 * 130 in a shell). */
static PyObject *
run_in_namespace(const char *code, code_cache *cache)
{
    PyObject *co = NULL;
    PyObject *res = NULL;
    PyObject *ns = PyDict_New();
    if (ns == NULL) {
        return NULL;
    }
    if (PyDict_SetItemString(ns, "__builtins__", PyEval_GetBuiltins()) < 0) {
        goto error;
    }
    co = code_cached(cache, code, "<subinterp>");
    if (co == NULL) {
        goto error;
    }
    res = PyEval_EvalCode(co, ns, ns);
    if (res == NULL) {
        goto error;
    }
    Py_DECREF(co);
    Py_DECREF(res);
    return ns;
error:
    Py_XDECREF(co);
    Py_DECREF(ns);
    return NULL;
}

/* Whether sys.modules of the current interpreter has `name` (when it is
 * not a dict, say so: the caller then looks the slow way). */
static int
module_loaded(const char *name)
{
    PyObject *modules = PyImport_GetModuleDict(); /* borrowed */
    if (!PyDict_Check(modules)) {
        return 1;
    }
    return PyDict_GetItemString(modules, name) != NULL;
}

/* A new namespace with prepare_code's functions, or NULL (exception). */
static PyObject *
prepare_namespace(void)
{
    static code_cache cache;
    return run_in_namespace(prepare_code, &cache);
}

/* A one-shot latch: the thread that joins a closing interpreter's
 * threads fires it, and close() waits for it in its own interpreter, where
 * a signal handler (Ctrl-C) runs as in any of our waits.  Shared by the
 * two (refs, atomic); raw memory, no GIL needed. */
typedef struct {
    pthread_mutex_t mutex;
    int fired;          /* mutex */
    waiter *w;          /* mutex: close()'s wait, while linked */
    _Atomic int refs;
} join_latch;

static join_latch *
latch_new(void)
{
    join_latch *l = PyMem_RawCalloc(1, sizeof(join_latch));
    if (l != NULL) {
        pthread_mutex_init(&l->mutex, NULL);
        atomic_store(&l->refs, 1);
    }
    return l;
}

static void
latch_decref(join_latch *l)
{
    if (atomic_fetch_sub(&l->refs, 1) == 1) {
        pthread_mutex_destroy(&l->mutex);
        PyMem_RawFree(l);
    }
}

static int
latch_poll(void *arg, waiter *w)
{
    join_latch *l = arg;
    pthread_mutex_lock(&l->mutex);
    int fired = l->fired;
    l->w = fired ? NULL : w;
    pthread_mutex_unlock(&l->mutex);
    return fired;
}

static int
latch_withdraw(void *arg, waiter *w)
{
    join_latch *l = arg;
    pthread_mutex_lock(&l->mutex);
    if (l->w == w) {
        l->w = NULL;
    }
    int withdrawn = waiter_withdraw(w);
    pthread_mutex_unlock(&l->mutex);
    return withdrawn;
}

static const wait_cond latch_cond = {latch_poll, latch_withdraw, 0};

static void
latch_capsule_free(PyObject *capsule)
{
    latch_decref(PyCapsule_GetPointer(capsule, "subinterp.join_latch"));
}

static PyObject *
latch_fire(PyObject *capsule, PyObject *Py_UNUSED(ignored))
{
    join_latch *l = PyCapsule_GetPointer(capsule, "subinterp.join_latch");
    if (l == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&l->mutex);
    l->fired = 1;
    waiter *w = l->w;
    l->w = NULL;
    if (w != NULL) {
        (void)waiter_notify(w);
    }
    pthread_mutex_unlock(&l->mutex);
    Py_RETURN_NONE;
}

static PyMethodDef latch_fire_def = {
    "fire", latch_fire, METH_NOARGS, "Fire the latch close() waits for."};

/* close()'s join of the interpreter's threads (this thread runs in it,
 * through its thread state; `caller` is the thread state to wait in): a
 * new thread there joins them for `timeout` seconds and fires a latch,
 * which this thread waits for in the caller's interpreter -- so that
 * Ctrl-C stops close() at once, not when the join ends.  0, with
 * *alive set to whether some thread still runs; -1 with an exception set
 * in `caller`'s thread state (a signal handler raised there); or -2 with
 * an exception set here. */
static int
join_from(PyThreadState *caller, PyObject *ns, PyObject *threads,
          double timeout, int *alive)
{
    join_latch *l = latch_new();
    if (l == NULL) {
        PyErr_NoMemory();
        return -2;
    }
    atomic_fetch_add(&l->refs, 1);
    PyObject *capsule = PyCapsule_New(l, "subinterp.join_latch",
                                      latch_capsule_free);
    if (capsule == NULL) {
        latch_decref(l);
        latch_decref(l);
        return -2;
    }
    PyObject *fire = PyCFunction_New(&latch_fire_def, capsule);
    Py_DECREF(capsule);
    PyObject *res = NULL;
    if (fire != NULL) {
        res = PyObject_CallFunction(PyDict_GetItemString(ns, "join_then"),
                                    "OdO", threads, timeout, fire);
        Py_DECREF(fire);
    }
    if (res == NULL) {
        latch_decref(l);
        return -2;
    }
    Py_DECREF(res);

    deadline dl;
    waiter w;
    deadline_from_seconds(timeout, &dl);
    waiter_init(&w);
    PyThreadState *me = PyEval_SaveThread();
    PyEval_RestoreThread(caller);
    int r = wait_until(&latch_cond, l, &w, &dl, 0);
    (void)PyEval_SaveThread();
    PyEval_RestoreThread(me);
    waiter_fini(&w);
    latch_decref(l);
    if (r < 0) {
        return -1;
    }
    res = PyObject_CallFunction(PyDict_GetItemString(ns, "alive"), "O",
                                threads);
    if (res == NULL) {
        return -2;
    }
    *alive = PyObject_IsTrue(res) == 1;
    Py_DECREF(res);
    return 0;
}

/* Whether one of threads (threading.Thread objects) is a daemon thread:
 * 1 or 0, or -1 with an exception set. */
static int
any_daemon(PyObject *threads)
{
    int daemon = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(threads); i++) {
        PyObject *flag = PyObject_GetAttrString(PyList_GET_ITEM(threads, i),
                                                "daemon");
        if (flag == NULL) {
            return -1;
        }
        daemon |= PyObject_IsTrue(flag) == 1;
        Py_DECREF(flag);
    }
    return daemon;
}

/* At exit: raise SystemExit asynchronously in the threads of threads, but
 * not in the thread of an interrupted close() that still joins them: an
 * exception there while Thread.join() gives up would release the joined
 * thread's lock and make it look ended (threading's bpo-45274 clean-up);
 * it ends with its deadline, before the exit's.  0, or -1 with an
 * exception set. */
static int
raise_exit_in_threads(PyObject *ns, PyObject *threads)
{
    PyObject *tids = PyObject_CallFunction(
        PyDict_GetItemString(ns, "stop_targets"), "O", threads);
    if (tids == NULL) {
        return -1;
    }
    if (!PyList_Check(tids)) {
        PyErr_SetString(PyExc_TypeError, "stop_targets() returned no list");
        Py_DECREF(tids);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(tids); i++) {
        unsigned long tid = PyLong_AsUnsignedLong(PyList_GET_ITEM(tids, i));
        if (tid == (unsigned long)-1 && PyErr_Occurred()) {
            Py_DECREF(tids);
            return -1;
        }
        (void)PyThreadState_SetAsyncExc(tid, PyExc_SystemExit);
    }
    Py_DECREF(tids);
    return 0;
}

/* Join threads for `timeout` seconds: from caller's thread state when it
 * is not NULL (join_from), else here (at exit: the exit handler gives
 * every interpreter one grace period and handles Ctrl-C itself; and for
 * closes that nothing may interrupt: orphans, pool workers).  *verdict:
 * 0 when they all ended; ERR_INTERP_BUSY (ERR_INTERP_THREADS when daemon)
 * when some still run; ERR_PYEXC with the exception set in caller's
 * thread state.  0, or -1 with an exception set here. */
static int
join_threads(PyObject *ns, PyObject *threads, double timeout, int daemon,
             PyThreadState *caller, int *verdict)
{
    int alive = 0;
    *verdict = 0;
    if (caller != NULL) {
        int r = join_from(caller, ns, threads, timeout, &alive);
        if (r == -2) {
            return -1;
        }
        *verdict = r == -1 ? ERR_PYEXC : alive ? ERR_INTERP_BUSY : 0;
        return 0;
    }
    PyObject *res = PyObject_CallFunction(PyDict_GetItemString(ns, "join"),
                                          "Od", threads, timeout);
    if (res == NULL) {
        return -1;
    }
    alive = PyObject_IsTrue(res) == 1;
    Py_DECREF(res);
    if (alive) {
        *verdict = daemon ? ERR_INTERP_THREADS : ERR_INTERP_BUSY;
    }
    return 0;
}

/* Ready e's interpreter (current, through this thread) to end: shut its
 * pools down, stop its waits and join its threads for `timeout` seconds.
 * caller: the thread state close() was called in, to join from there
 * (join_from: a signal handler that raises there stops the close, and
 * ERR_PYEXC is returned with the exception set in caller), or NULL to
 * join here. */
static int
prepare_close(int64_t id, double timeout, int at_exit, int *stopped,
              PyThreadState *caller)
{
    int err = 0;
    int daemon = 0;
    PyObject *threads = NULL;
    PyObject *res = NULL;
    PyObject *ns = NULL;
    if (!module_loaded("threading") && !module_loaded("subinterp._pool")) {
        /* Nothing to shut down, join or stop: no pool was made here and
           no thread started through threading (whose exit hooks and
           threads are all prepare_code looks at).  Even unmarshalled
           (code_cached), making its namespace is work a close of an
           interpreter that never started a thread does not need. */
        return 0;
    }
    ns = prepare_namespace();
    if (ns == NULL) {
        goto error;
    }
    /* borrowed: ns holds them */
    res = PyObject_CallNoArgs(PyDict_GetItemString(ns, "pools"));
    if (res == NULL) {
        goto error;
    }
    Py_CLEAR(res);
    threads = PyObject_CallNoArgs(PyDict_GetItemString(ns, "threads"));
    if (threads == NULL || !PyList_Check(threads) ||
        (daemon = any_daemon(threads)) < 0) {
        goto error;
    }
    if (daemon && !at_exit) {
        err = ERR_INTERP_THREADS;
        goto done;
    }
    if (PyList_GET_SIZE(threads) > 0) {
        wait_interrupt_interp(id);
        *stopped = 1;
        if (at_exit && raise_exit_in_threads(ns, threads) < 0) {
            goto error;
        }
        if (join_threads(ns, threads, timeout, daemon, caller, &err) < 0) {
            goto error;
        }
        if (err < 0) {
            goto done;
        }
    }
    res = PyObject_CallNoArgs(PyDict_GetItemString(ns, "done"));
    if (res == NULL) {
        goto error;
    }
done:
    Py_XDECREF(res);
    Py_XDECREF(threads);
    Py_XDECREF(ns);
    return err;
error:
    /* Could not look (or an exception landed in this thread while
       joining): Py_EndInterpreter would join what still runs, so refuse
       when threads were seen. */
    PyErr_Clear();
    if (threads != NULL && PyList_Check(threads) &&
        PyList_GET_SIZE(threads) > 0) {
        err = ERR_INTERP_BUSY;
    }
    goto done;
}

/* Whether a thread state other than tstate is left in tstate's
 * interpreter, after prepare_close joined the threading module's threads
 * and enter_to_close deleted subinterp's cached thread states: a thread
 * that threading does not know (started with _thread, by C code, or
 * after `threading` left sys.modules) still runs there, and
 * Py_EndInterpreter would abort the process ("not the last thread").
 * With the interpreter's GIL held, so no thread of it starts or ends. */
static int
other_threads_left(PyThreadState *tstate)
{
    PyInterpreterState *interp = PyThreadState_GetInterpreter(tstate);
    for (PyThreadState *ts = PyInterpreterState_ThreadHead(interp);
         ts != NULL; ts = PyThreadState_Next(ts)) {
        if (ts != tstate) {
            return 1;
        }
    }
    return 0;
}

/* Copy a hook table into out (MAX_HOOKS slots), to run the hooks without
 * the mutex; returns how many there are. */
static int
copy_hooks(void *const *table, const int *n, void **out)
{
    LOCK();
    int count = *n;
    memcpy(out, table, MAX_HOOKS * sizeof(void *));
    UNLOCK();
    return count;
}

static void
run_closed_hooks(int64_t id)
{
    void *hooks[MAX_HOOKS];
    int n = copy_hooks(runtime.closed_hooks, &runtime.n_closed_hooks, hooks);
    for (int i = 0; i < n; i++) {
        ((interp_closed_hook)hooks[i])(id);
    }
}

static void
run_closing_hooks(void)
{
    void *hooks[MAX_HOOKS];
    int n = copy_hooks(runtime.closing_hooks, &runtime.n_closing_hooks,
                       hooks);
    for (int i = 0; i < n; i++) {
        ((interp_closing_hook)hooks[i])();
    }
}

/* The end of every close (close_entry, force_close), in e's interpreter
 * with its GIL held through tstate, the last thread state left there
 * (mine, the slot that cached it, or NULL): the closing hooks, then
 * Py_EndInterpreter, then e is marked ended and the closed hooks run;
 * back in `save`.  e may be freed by then unless the caller holds a
 * reference. */
static void
end_interpreter(interp_entry *e, PyThreadState *tstate, slot *mine,
                PyThreadState *save)
{
    run_closing_hooks();
    LOCK();
    if (mine != NULL) {
        slot_unlink_thread(mine);
        slot_unlink_entry(mine);
        PyMem_RawFree(mine);
    }
    UNLOCK();
    int64_t id = e->id;
    Py_EndInterpreter(tstate);
    LOCK();
    e->interp = NULL;
    e->orphaned = 0;
    e->running = 0;
    e->closing = 0;
    e->deferred = 0;
    pthread_cond_broadcast(&runtime.idle);
    entry_maybe_free(e);
    UNLOCK();
    run_closed_hooks(id);
    PyEval_RestoreThread(save);
}

/* The start of every close (close_entry, force_close): switch this thread
 * to tstate, a thread state of e, taking e's GIL, and clear and delete
 * every other cached thread state of e (and the detached list dead):
 * Py_EndInterpreter insists on being the last thread.  Threads that still
 * hold a slot of e find it closing and never use it again.  *mine is the
 * slot that caches tstate, or NULL; returns the thread state to come back
 * to. */
static PyThreadState *
enter_to_close(interp_entry *e, PyThreadState *tstate, slot *dead,
               slot **mine)
{
    PyThreadState *save = PyEval_SaveThread();
    PyEval_RestoreThread(tstate);
    LOCK();
    *mine = NULL;
    for (slot *s = e->slots; s != NULL; s = s->next_in_entry) {
        if (s->tstate == tstate) {
            *mine = s;
        }
    }
    slot *others = take_all_slots(e, *mine);
    UNLOCK();
    slots_delete(dead);
    slots_delete(others);
    return save;
}

/* Close e from this thread; its threads get `timeout` seconds to stop
 * (prepare_close). */
static int
close_entry(interp_entry *e, double timeout, int at_exit, int interruptible)
{
    PyThreadState *tstate = NULL;
    slot *dead = NULL;
    int stopped = 0;
    int err = claim(e, 1, &tstate, &dead);
    if (err < 0) {
        return err;
    }
    slot *mine;
    PyThreadState *save = enter_to_close(e, tstate, dead, &mine);
    err = prepare_close(e->id, timeout, at_exit, &stopped,
                        interruptible ? save : NULL);
    if (err == 0 && other_threads_left(tstate)) {
        err = ERR_INTERP_THREADS;
    }
    if (err < 0) {
        (void)PyEval_SaveThread();
        if (stopped && !at_exit) {
            /* it lives on: its waits work again */
            wait_resume_interp(e->id);
        }
        PyEval_RestoreThread(save);  /* first: see runtime_run_in */
        release_claim(e, 1);
        return err;
    }
    end_interpreter(e, tstate, mine, save);  /* e may be gone after this */
    return 0;
}

int
runtime_close(interp_entry *e, int interruptible)
{
    return close_entry(e, CLOSE_GRACE, 0, interruptible);
}

void
runtime_close_orphans(void)
{
    PyInterpreterState *current = PyInterpreterState_Get();
    /* Not after the exit handler, nor from inside an interpreter that is
       itself being closed. */
    LOCK();
    if (runtime.shut_down) {
        UNLOCK();
        return;
    }
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        if (e->interp == current && e->closing) {
            UNLOCK();
            return;
        }
    }
    UNLOCK();
    for (;;) {
        interp_entry *e;
        LOCK();
        for (e = runtime.head; e != NULL; e = e->next) {
            if (e->orphaned && e->interp != NULL && e->interp != current &&
                !e->running && !e->closing) {
                break;
            }
        }
        if (e != NULL) {
            e->orphaned = 0;
            e->refcount++;
        }
        UNLOCK();
        if (e == NULL) {
            return;
        }
        /* on failure still alive (daemon threads, say): the exit handler
           tries again */
        (void)runtime_close(e, 0);
        entry_drop_close_ref(e);
    }
}

/* ------------------------------------------------------------------ */
/* exit                                                                */

/* Make the code running in e (in another thread) raise SystemExit, by
 * entering e beside it.  Waiting for e's GIL makes the running thread let
 * go of it at its next check (the switch interval).  While this thread
 * holds a thread state of e, e->interrupting keeps others from closing e
 * (which would delete that thread state under it).  still, when not NULL,
 * is asked with e's GIL held whether to go ahead (see
 * runtime_interrupt_running). */
static void
interrupt_running(interp_entry *e, int (*still)(void *), void *arg)
{
    thread_rec *rec = current_thread_rec();
    if (rec == NULL) {
        return;
    }
    PyThreadState *tstate = NULL;
    unsigned long target = 0;
    LOCK();
    if (e->interp != NULL && e->running != 0 && !e->closing) {
        target = e->running;
        tstate = slot_tstate(rec, e);
        if (tstate != NULL) {
            e->interrupting++;
        }
    }
    UNLOCK();
    if (tstate == NULL) {
        return;
    }
    PyThreadState *save = PyEval_SaveThread();
    PyEval_RestoreThread(tstate);
    if (still == NULL || still(arg)) {
        (void)PyThreadState_SetAsyncExc(target, PyExc_SystemExit);
    }
    (void)PyEval_SaveThread();
    PyEval_RestoreThread(save);  /* first: see runtime_run_in */
    LOCK();
    e->interrupting--;
    pthread_cond_broadcast(&runtime.idle);
    UNLOCK();
}

void
runtime_interrupt_running(interp_entry *e, int (*still)(void *), void *arg)
{
    LOCK();
    int alive = e->interp != NULL && !e->closing;
    UNLOCK();
    if (alive) {
        wait_interrupt_interp(e->id);
        interrupt_running(e, still, arg);
    }
}

/* Last resort at exit, for an interpreter where code still runs after the
 * grace period (blocked in C, or swallowing SystemExit), in a daemon
 * thread: take its GIL, delete every other thread state -- the cached
 * ones, the running one, those of threads started inside it -- and end
 * it.  Its threading._shutdown is made a no-op first: it would join the
 * threads that are still running for ever (3.13+), or complain that their
 * thread states are gone (3.12).  A thread whose thread state was deleted
 * must never come back into the interpreter: see stop_at_exit(). */
static void
force_close(interp_entry *e)
{
    static const char no_join[] =
        "import sys\n"
        "_t = sys.modules.get('threading')\n"
        "if _t is not None:\n"
        "    _t._shutdown = lambda: None\n";
    thread_rec *rec = current_thread_rec();
    slot *mine = NULL;
    LOCK();
    PyInterpreterState *interp = NULL;
    if (e->interp != NULL && (!e->closing || e->deferred)) {
        interp = e->interp;
        e->closing = 1;
        mine = rec != NULL ? slot_find(rec, e) : NULL;
    }
    UNLOCK();
    if (interp == NULL) {
        return;
    }
    /* This thread's own cached thread state is idle: use it (the thread
       that made the interpreter keeps it as its threading main thread). */
    PyThreadState *tstate = mine != NULL ? mine->tstate
                                         : PyThreadState_New(interp);
    if (tstate == NULL) {
        /* out of memory: left to the runtime */
        LOCK();
        e->closing = 0;
        e->deferred = 0;
        pthread_cond_broadcast(&runtime.idle);
        UNLOCK();
        return;
    }
    PyThreadState *save = enter_to_close(e, tstate, NULL, &mine);
    /* With its GIL held no thread of it can start or end: the list is
       stable. */
    PyThreadState *ts = PyInterpreterState_ThreadHead(interp);
    while (ts != NULL) {
        PyThreadState *next = PyThreadState_Next(ts);
        if (ts != tstate) {
            PyThreadState_Clear(ts);
            PyThreadState_Delete(ts);
        }
        ts = next;
    }
    static code_cache no_join_cache;
    Py_XDECREF(run_in_namespace(no_join, &no_join_cache));
    PyErr_Clear();
    end_interpreter(e, tstate, mine, save);
}

#if PY_VERSION_HEX < 0x030D0000
/* 3.12: end the deferred interpreters.  Runs while the main interpreter
 * clears its sys module's dict (below), after the runtime marked itself
 * finalizing: from then on a thread that comes back from C code into any
 * interpreter exits at once, without looking at its (deleted) thread
 * state, so ending their interpreters is safe. */
static void
exit_deferred(PyObject *capsule)
{
    (void)capsule;
    for (size_t i = 0; i < runtime.n_deferred; i++) {
        interp_entry *e = runtime.deferred[i];
        force_close(e);
        entry_drop_close_ref(e);
    }
    PyMem_RawFree(runtime.deferred);
    runtime.deferred = NULL;
    runtime.n_deferred = runtime.cap_deferred = 0;
}

/* Remember e for exit_deferred (taking a reference).  The first time, put
 * an object in the main interpreter's sys dict whose destructor calls it:
 * finalization clears that dict after it marked the runtime finalizing,
 * and before it checks that no subinterpreter is left.  0, or -1 (no
 * memory: the caller ends e now). */
static int
defer_to_finalization(interp_entry *e)
{
    if (runtime.n_deferred == runtime.cap_deferred) {
        size_t cap = runtime.cap_deferred ? 2 * runtime.cap_deferred : 4;
        interp_entry **p = PyMem_RawRealloc(runtime.deferred,
                                            cap * sizeof(interp_entry *));
        if (p == NULL) {
            return -1;
        }
        runtime.deferred = p;
        runtime.cap_deferred = cap;
    }
    if (runtime.n_deferred == 0) {
        PyObject *sysmod = PyImport_AddModule("sys");  /* borrowed */
        PyObject *guard = PyCapsule_New(&runtime, "subinterp._exit_deferred",
                                        exit_deferred);
        int res = -1;
        if (sysmod != NULL && guard != NULL) {
            res = PyDict_SetItemString(PyModule_GetDict(sysmod),
                                       "_subinterp_exit_deferred", guard);
        }
        if (guard != NULL) {
            /* on failure, destroyed before anything was deferred */
            Py_DECREF(guard);
        }
        if (res < 0) {
            PyErr_Clear();
            return -1;
        }
    }
    LOCK();
    e->refcount++;
    e->deferred = 1;
    e->closing = 1;   /* no new runs; the running one may finish */
    UNLOCK();
    runtime.deferred[runtime.n_deferred++] = e;
    return 0;
}
#endif

/* An interpreter still runs code (or has threads) after the grace
 * period.  Its threads are stopped abruptly, as daemon threads are at
 * exit; the danger is one of them coming back from C code into the
 * interpreter after it was freed.
 *
 * 3.12: a thread that comes back once the runtime is finalizing exits
 * before touching anything, so the interpreter is ended then
 * (exit_deferred), and nothing is freed under a thread before.
 *
 * 3.13+: the runtime ends every subinterpreter left at exit itself,
 * before it marks itself finalizing (deleting one thread state and
 * aborting with "not the last thread" if there are more), and a thread
 * coming back reads its thread state even after that; so it is ended now,
 * as CPython would a moment later, at the end of the single grace period.
 * A thread blocked in C for longer than the rest of the exit never comes
 * back (the process is gone); one that comes back in the few
 * milliseconds between is not protected: CPython offers no public way to
 * keep it from its freed interpreter. */
static void
stop_at_exit(interp_entry *e, int err)
{
    PySys_WriteStderr(
        "subinterp: interpreter %lld was stopped at exit with %s\n",
        (long long)e->id,
        err == ERR_INTERP_RUNNING ? "code still running in it"
        : err == ERR_INTERP_THREADS ? "daemon threads still running"
                                    : "threads still running");
#if PY_VERSION_HEX < 0x030D0000
    if (defer_to_finalization(e) == 0) {
        return;
    }
#endif
    force_close(e);
}

/* Wait (GIL released) until e stops running or the deadline passes. */
static void
wait_idle(interp_entry *e, const deadline *dl)
{
    int64_t left = deadline_remaining_ns(dl);
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    int64_t ns = (int64_t)at.tv_nsec + left % 1000000000;
    at.tv_sec += (time_t)(left / 1000000000 + ns / 1000000000);
    at.tv_nsec = (long)(ns % 1000000000);
    Py_BEGIN_ALLOW_THREADS
    LOCK();
    while (e->running != 0 && e->interp != NULL) {
        if (pthread_cond_timedwait(&runtime.idle, &runtime.mutex,
                                   &at) != 0) {
            break;
        }
    }
    UNLOCK();
    Py_END_ALLOW_THREADS
}

/* Wait (GIL released) until no interpreter is being created, or closed
 * by another thread (a pool worker closing its own, say): the runtime
 * must not finalize under them.  Both are bounded: a close joins the
 * interpreter's threads for CLOSE_GRACE seconds at most. */
static void
wait_for_others(void)
{
    Py_BEGIN_ALLOW_THREADS
    LOCK();
    for (;;) {
        int busy = runtime.creating > 0;
        for (interp_entry *e = runtime.head; e != NULL && !busy;
             e = e->next) {
            busy = e->interp != NULL && e->closing && !e->deferred;
        }
        if (!busy) {
            break;
        }
        pthread_cond_wait(&runtime.idle, &runtime.mutex);
    }
    UNLOCK();
    Py_END_ALLOW_THREADS
}

/* wait_interrupt_interps() for every live interpreter this package
 * created (at exit). */
static void
stop_all_waits(void)
{
    int64_t *ids = NULL;
    size_t n = 0;
    LOCK();
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        n += e->owned && e->interp != NULL;
    }
    ids = n ? PyMem_RawMalloc(n * sizeof(int64_t)) : NULL;
    n = 0;
    for (interp_entry *e = runtime.head; ids != NULL && e != NULL;
         e = e->next) {
        if (e->owned && e->interp != NULL) {
            ids[n++] = e->id;
        }
    }
    UNLOCK();
    /* out of memory: step 1 below stops them one by one */
    if (ids != NULL) {
        wait_interrupt_interps(ids, n);
        PyMem_RawFree(ids);
    }
}

/* A close failed because code or threads still run in the interpreter. */
static inline int
still_runs(int err)
{
    return err == ERR_INTERP_RUNNING || err == ERR_INTERP_THREADS ||
           err == ERR_INTERP_BUSY;
}

/* After the grace period (or at its end): close e, or stop it. */
static void
settle_at_exit(interp_entry *e, const deadline *dl)
{
    wait_idle(e, dl);
    double left = (double)deadline_remaining_ns(dl) / 1e9;
    int err = close_entry(e, left, 1, 0);
    if (still_runs(err)) {
        stop_at_exit(e, err);
    }
}

void
runtime_set_warn_at_exit(interp_entry *e)
{
    LOCK();
    e->warn_at_exit = 1;
    UNLOCK();
}

/* The standard library's finalization warns when subinterpreters are left
 * open (3.14+, "<sys>:0: RuntimeWarning: remaining subinterpreters; close
 * them with Interpreter.close()") and then ends them.  Ours are closed
 * before it looks, so the exit handler gives the same warning for the
 * interpreters made through subinterp.interpreters (code written for the
 * standard library's module): open, and not merely waiting to be closed
 * because no handle is left (the standard library ends those when the
 * last handle goes).  Warnings turned into errors (-W error) are reported
 * and do not stop the exit handler. */
static void
warn_open_at_exit(void)
{
    int n = 0;
    LOCK();
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        if (e->warn_at_exit && e->interp != NULL && !e->closing &&
            !e->orphaned) {
            n++;
        }
    }
    UNLOCK();
    /* Where the runtime's own warning points on 3.14 (from C, no frame);
       3.12 and 3.13 would say "sys:1" */
    if (n > 0 &&
        PyErr_WarnExplicit(PyExc_RuntimeWarning,
                           "remaining subinterpreters; close them with "
                           "Interpreter.close()", "<sys>", 0, "sys",
                           NULL) < 0) {
        PyErr_WriteUnraisable(NULL);
    }
}

/* The exit handler's next interpreter to close: one this package created
 * that is alive and not tried yet, held by a new reference and marked as
 * tried, so that it is taken once; *running tells whether code runs in
 * it.  NULL when none is left. */
static interp_entry *
next_to_close_at_exit(int *running)
{
    interp_entry *e;
    LOCK();
    for (e = runtime.head; e != NULL; e = e->next) {
        if (e->owned && e->interp != NULL && !e->closing &&
            !e->exit_tried) {
            break;
        }
    }
    if (e != NULL) {
        e->refcount++;
        e->exit_tried = 1;
    }
    *running = e != NULL && e->running != 0;
    UNLOCK();
    return e;
}

/* The exit handler's list of interpreters that still run after it asked
 * them to stop (each with the reference next_to_close_at_exit took). */
typedef struct {
    interp_entry **items;
    size_t n, cap;
} busy_list;

static int
busy_add(busy_list *b, interp_entry *e)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 8;
        interp_entry **p = PyMem_RawRealloc(b->items,
                                            cap * sizeof(interp_entry *));
        if (p == NULL) {
            return -1;
        }
        b->items = p;
        b->cap = cap;
    }
    b->items[b->n++] = e;
    return 0;
}

/* Step 1 of the exit handler for e: close it when idle, or ask what runs
 * in it to stop.  ERR_INTERP_RUNNING, ERR_INTERP_THREADS or
 * ERR_INTERP_BUSY when it still runs, else what close_entry said. */
static int
close_or_stop_at_exit(interp_entry *e, int running)
{
    if (running) {
        /* A thread parked in one of our waits (queue get, channel recv,
           lock acquire) has no GIL to receive SystemExit with: wake those
           first. */
        wait_interrupt_interp(e->id);
        interrupt_running(e, NULL, NULL);
        return ERR_INTERP_RUNNING;
    }
    /* stops its threads without waiting for them */
    return close_entry(e, 0.0, 1, 0);
}

/* The atexit callback of the main interpreter: close every interpreter
 * this package created, before the runtime finalizes.  Threads the
 * threading module started have been joined by then, so what still runs
 * code in one of ours is a daemon thread: it gets SystemExit, and so do
 * the threads started inside them; all of them share one grace period
 * (docs/design.md, "Exit"). */
PyObject *
runtime_shutdown(double grace)
{
    busy_list busy = {NULL, 0, 0};
    deadline dl;
    warn_open_at_exit();
    LOCK();
    runtime.shutting_down = 1;
    UNLOCK();
    wait_for_others();
    /* (orphans are taken below with the others: closing them apart
       could give each its own grace period) */
    deadline_from_seconds(grace, &dl);

    /* 0. Stop the waits of every one of them at once: a thread blocked in
       a Barrier with threads of other interpreters must get SystemExit,
       not BrokenBarrierError because another party was stopped first. */
    stop_all_waits();

    /* 1. Close what is idle; ask the rest to stop, all at once. */
    for (;;) {
        int running;
        interp_entry *e = next_to_close_at_exit(&running);
        if (e == NULL) {
            break;
        }
        int err = close_or_stop_at_exit(e, running);
        if (still_runs(err)) {
            if (busy_add(&busy, e) == 0) {
                continue;   /* busy keeps the reference */
            }
            /* out of memory: settle it now */
            settle_at_exit(e, &dl);
        }
        entry_drop_close_ref(e);
    }

    /* 2. One grace period for all of them. */
    for (size_t i = 0; i < busy.n; i++) {
        settle_at_exit(busy.items[i], &dl);
        entry_drop_close_ref(busy.items[i]);
    }
    PyMem_RawFree(busy.items);
    wait_for_others();
    LOCK();
    runtime.shut_down = 1;
    UNLOCK();
    Py_RETURN_NONE;
}

/* How many interpreters other than the main one are alive (for the
 * warning at fork). */
int
runtime_count_subinterpreters(void)
{
    int n = 0;
    LOCK();
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        if (!e->is_main && e->interp != NULL) {
            n++;
        }
    }
    UNLOCK();
    return n;
}

int
runtime_is_shutting_down(void)
{
    LOCK();
    int res = runtime.shutting_down;
    UNLOCK();
    return res;
}

/* Bumped whenever a module state is freed: every thread's state_cache
 * (below) from before is stale then. */
static atomic_long state_epoch;

/* The module of the current interpreter is being freed (m_free): forget
 * its state, and for an interpreter subinterp did not create, its address
 * (it is going away; the standard library says when it is gone). */
void
runtime_module_freed(module_state *st)
{
    PyThreadState *ts = PyThreadState_Get();
    PyInterpreterState *interp = PyThreadState_GetInterpreter(ts);
    int64_t id = PyInterpreterState_GetID(interp);
    atomic_fetch_add(&state_epoch, 1);
    LOCK();
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        if (e->interp != interp || e->id != id) {
            continue;
        }
        if (e->modstate != st) {
            /* an older copy of the module (imported again since) */
            break;
        }
        e->modstate = NULL;
        if (entry_foreign(e)) {
            /* (it has no cached thread states: see entry_foreign) */
            e->interp = NULL;
            entry_maybe_free(e);
        }
        break;
    }
    UNLOCK();
}

/* The module state of the current interpreter, remembered per thread for
 * the last interpreter asked about (the id guards against a new
 * interpreter at the address of a freed one). */
static _Thread_local struct {
    PyInterpreterState *interp;
    int64_t id;
    long epoch;                 /* state_epoch when filled */
    module_state *st;
} state_cache;

module_state *
get_current_state(void)
{
    PyInterpreterState *interp = PyInterpreterState_Get();
    int64_t id = PyInterpreterState_GetID(interp);
    long epoch = atomic_load_explicit(&state_epoch, memory_order_acquire);
    if (state_cache.interp == interp && state_cache.id == id &&
        state_cache.epoch == epoch && state_cache.st != NULL) {
        return state_cache.st;
    }
    module_state *st = NULL;
    LOCK();
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        if (e->interp == interp && e->id == id) {
            st = e->modstate;
            break;
        }
    }
    UNLOCK();
    if (st == NULL) {
        PyObject *mod = PyImport_ImportModule("subinterp._core");
        if (mod == NULL) {
            return NULL;
        }
        /* sys.modules keeps it, and its state, alive */
        st = get_mod_state(mod);
        Py_DECREF(mod);
    }
    state_cache.interp = interp;
    state_cache.id = id;
    state_cache.epoch = epoch;
    state_cache.st = st;
    return st;
}

/* Remember the module state of the current interpreter (module exec). */
static int
register_state(module_state *st)
{
    interp_entry *e = runtime_current();
    if (e == NULL) {
        return -1;
    }
    LOCK();
    e->modstate = st;
    UNLOCK();
    entry_decref(e);
    return 0;
}

/* ------------------------------------------------------------------ */
/* fork                                                                */

/* Entries of the fork table (fork.c). */
void
runtime_fork_prepare(void)
{
    LOCK();
}

void
runtime_fork_parent(void)
{
    UNLOCK();
}

/* In the child only this thread exists and CPython is about to delete
 * every interpreter but the main one; forget them.
 *
 * CPython cannot do that deletion (gh-101437): with a subinterpreter
 * alive, the child hangs (3.12), aborts (3.13) or crashes (3.14+) in
 * PyOS_AfterFork_Child, which runs right after this handler.  Pools close
 * their interpreters for a fork; when some other interpreter of ours is
 * still alive, or was being created by another thread when it forked (its
 * entry not registered yet, CPython's half made), the child cannot go on,
 * so it says why and exits now. */
void
runtime_fork_child(void)
{
    int alive = runtime.creating;
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        if (!e->is_main && e->interp != NULL) {
            alive++;
        }
    }
    if (alive > 0) {
        static const char msg[] =
            "subinterp: this process was forked while subinterpreters were "
            "alive; CPython cannot delete them in the child (gh-101437), "
            "so the child exits (close interpreters before forking)\n";
        ssize_t w = write(2, msg, sizeof(msg) - 1);
        (void)w;
        _exit(SUBINTERP_FORK_EXIT);
    }
    pthread_mutex_init(&runtime.mutex, NULL);
    pthread_cond_init(&runtime.idle, NULL);
#if PY_VERSION_HEX < 0x030D0000
    pthread_mutex_init(&create_mutex, NULL);
#endif
    thread_rec *rec = pthread_getspecific(thread_key);
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        slot *s = e->slots;
        while (s != NULL) {
            slot *next = s->next_in_entry;
            if (!e->is_main) {
                if (rec != NULL && s->thread == rec) {
                    slot_unlink_thread(s);
                }
                PyMem_RawFree(s);
            }
            s = next;
        }
        if (!e->is_main) {
            e->slots = NULL;
            e->interp = NULL;
            e->running = 0;
            e->closing = 0;
            e->orphaned = 0;
        }
    }
    /* The main interpreter's slots of the other threads: CPython deletes
       their thread states in the child (PyOS_AfterFork_Child), so only
       the slots go.  Then the records of the other threads, whose threads
       are gone. */
    for (interp_entry *e = runtime.head; e != NULL; e = e->next) {
        slot **pp = &e->slots;
        while (*pp != NULL) {
            slot *s = *pp;
            if (e->is_main && s->thread != rec) {
                *pp = s->next_in_entry;
                PyMem_RawFree(s);
            }
            else {
                pp = &s->next_in_entry;
            }
        }
    }
    thread_rec *t = runtime.threads;
    while (t != NULL) {
        thread_rec *next = t->next;
        if (t != rec) {
            PyMem_RawFree(t);
        }
        t = next;
    }
    runtime.threads = rec;
    if (rec != NULL) {
        rec->prev = rec->next = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* init                                                                */

static PyObject *
coremod_shutdown(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    (void)mod;
    return runtime_shutdown(CLOSE_GRACE);
}

static PyMethodDef runtime_methods[] = {
    {"_shutdown", coremod_shutdown, METH_NOARGS,
     "Close every interpreter subinterp created (run at exit)."},
    {NULL, NULL, 0, NULL},
};

int
runtime_init(PyObject *mod, module_state *st)
{
    (void)pthread_once(&thread_key_once, thread_key_create);
    if (PyModule_AddFunctions(mod, runtime_methods) < 0) {
        return -1;
    }
    if (register_state(st) < 0) {
        return -1;
    }
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        return 0;
    }
    /* Close our interpreters before the runtime finalizes: a Python
       atexit callback runs after threading's non-daemon threads were
       joined and before subinterpreters are torn down. */
    PyObject *shutdown = PyObject_GetAttrString(mod, "_shutdown");
    if (shutdown == NULL) {
        return -1;
    }
    PyObject *res = NULL;
    PyObject *atexit = PyImport_ImportModule("atexit");
    if (atexit != NULL) {
        res = PyObject_CallMethod(atexit, "register", "O", shutdown);
        Py_DECREF(atexit);
    }
    Py_DECREF(shutdown);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return 0;
}
