/* wait.h - waiting machinery and the FIFO shared by queue.c, channel.c,
 * select.c and sync.c.
 *
 * Three layers (docs/queues.md has the long version):
 *
 *   waiter    one blocked thread: an atomic state word that is also its
 *             futex, plus the result a "firer" leaves for it.  Spins a
 *             little, then parks; any thread may fire it, without a GIL.
 *   wnode     one registration of a waiter on one source (a queue, a
 *             channel, a lock...).  A select registers one waiter through
 *             several nodes; whoever claims the waiter first wins, so
 *             exactly one case fires.
 *   sobj      the common head of every process-wide object (queue,
 *             channel, lock, ...): id, C reference count, registry links
 *             (objects.h).
 *
 * Lock order: registry.mutex -> one object mutex -> (select only) several
 * object mutexes in address order.  Never the other way round: nothing
 * takes registry.mutex (sobj_decref, msg_free) while holding an object
 * mutex, and nothing calls into Python while holding any of them.
 */
#ifndef SUBINTERP_WAIT_H
#define SUBINTERP_WAIT_H

#include "subinterp.h"
#include "objects.h"

#include <stdatomic.h>
#include <time.h>

#if defined(__linux__)
#  define SUBINTERP_FUTEX 1
#else
#  define SUBINTERP_FUTEX 0
#endif

/* ------------------------------------------------------------------ */
/* deadlines                                                           */

typedef struct {
    int forever;            /* no deadline */
    struct timespec at;     /* CLOCK_MONOTONIC */
} deadline;

/* Parse a Python timeout (None, int or float; seconds).  neg_forever: a
 * value of -1 means "no timeout" (threading's convention for
 * Lock.acquire); any other negative value raises ValueError.  Returns 0,
 * or -1 with an exception set. */
int deadline_from_timeout(PyObject *timeout, int neg_forever, deadline *dl);
void deadline_from_seconds(double seconds, deadline *dl);
/* Nanoseconds left (0 when passed); INT64_MAX when forever. */
int64_t deadline_remaining_ns(const deadline *dl);
int64_t monotonic_ns(void);

/* Initialise an object mutex.  Critical sections under it are a few
 * pointer moves, so where glibc offers it the mutex spins briefly before
 * sleeping (PTHREAD_MUTEX_ADAPTIVE_NP) instead of going to the kernel at
 * the first collision: 4 threads on 2 cores contend often. */
void wait_mutex_init(sub_mutex *m);

/* ------------------------------------------------------------------ */
/* items: one message in a queue or channel, passed by value            */

enum {
    UNBOUND_KEEP = 0,     /* channels: the message outlives its sender */
    UNBOUND_REMOVE = 1,   /* values match the stdlib's flags */
    UNBOUND_ERROR = 2,
    UNBOUND_REPLACE = 3,  /* get() returns UNBOUND */
};

/* Whoever holds an item owns its message; "moving" an item copies the
 * struct and sets the source's m to NULL.  Items in a FIFO's buffer sit
 * in nodes the FIFO recycles (no malloc per item in steady state: with
 * producers and consumers on different threads, malloc's arena locks
 * were a tenth of the time of a 2x2 run). */
typedef struct item {
    msg *m;                 /* owned; NULL once unbound (or moved) */
    int64_t interp_id;      /* interpreter that put it */
    int unboundop;
    int unbound;            /* its interpreter was destroyed */
} item;

/* Free the message (if any).  Any thread, no lock of ours held. */
void item_clear(item *it);

/* ------------------------------------------------------------------ */
/* waiters                                                             */

typedef enum {
    W_WAITING = 0,   /* owner registered, spinning */
    W_PARKED = 1,    /* owner sleeps (or is about to) on the futex */
    W_CLAIMED = 2,   /* a firer won and is writing the result */
    W_FIRED = 3,     /* result ready */
    W_CANCELLED = 4, /* owner gave up (timeout, signal) */
} waiter_state;

/* Result codes a firer leaves in waiter.status. */
enum {
    WS_OK = 0,
    WS_CLOSED = 1,     /* channel closed while waiting */
    WS_ABANDONED = 2,  /* lock handed over after its holder's interpreter
                          was destroyed */
    WS_BROKEN = 3,     /* barrier broken or reset */
    WS_STOPPED = 4,    /* wait_interrupt_interp(): the wait ends as
                          interrupted, fired_case is -1 and nothing was
                          handed over */
};

/* How a firer makes the owner of a waiter notice that it fired: the
 * dispatch of waiter_publish().  Sources never look at it: they claim,
 * fill in the result and publish, whatever the kind.
 *
 *   WAKE_THREAD  the owner is a thread blocked in wait_until(): it spins
 *                on the state word, then parks on it (a futex on Linux,
 *                a condition variable elsewhere); publish wakes it when
 *                the claim found it W_PARKED.
 *
 *   WAKE_FD      the owner is a task of an event loop (aio_wait below):
 *                publish appends the waiter to its hub's list of fired
 *                waiters and writes the hub's eventfd when the list was
 *                empty; the loop's reader callback does what wait_until()
 *                does after waiter_wait() (aio_wait_fired: read the
 *                result, or poll again for a source whose fire only says
 *                "changed"); a cancelled task or a timeout withdraws
 *                (aio_wait_withdraw), with the same "fired meanwhile"
 *                outcome.  Such a waiter is on the parking list while it
 *                is registered, so that wait_interrupt_interp() fires it.
 *
 * No source (queue, channel, select, lock, pool) changes for it: they
 * only ever call waiter_claim()/waiter_fire()/waiter_notify(). */
typedef enum {
    WAKE_THREAD = 0,
    WAKE_FD = 1,        /* an event loop's wait: see wait_hub below */
} wake_kind;

typedef struct wait_hub wait_hub;

typedef struct waiter {
    /* The owner moves it WAITING <-> PARKED and to CANCELLED; a firer
       moves it WAITING/PARKED -> CLAIMED -> FIRED.  CLAIMED, FIRED and
       CANCELLED are final for everybody but the claimer. */
    _Atomic uint32_t state;
    /* Written by the claimer before the release-store of W_FIRED, read by
       the owner after an acquire-load sees it. */
    int fired_case;
    int status;
    item got;               /* receive cases: the item, now the owner's */
    Py_ssize_t value;       /* barrier index, ... */
    /* Identity of the owner: the interpreter (set before waiting; locks
       handed over on release and wait_interrupt_interp use it) and the
       OS thread (RLock ownership). */
    int64_t interp_id;
    unsigned long thread_id;
    wake_kind wake;         /* immutable while registered */
    /* WAKE_FD: the hub of the owner's event loop (immutable while
       registered), and the links of its list of fired waiters
       (hub->mutex; in_ready tells whether w is on it). */
    wait_hub *hub;
    struct waiter *hprev, *hnext;
    int in_ready;
    /* While parked: on the list of parked waiters (parking.mutex). */
    struct waiter *pprev, *pnext;
    /* wait_interrupt_interps(), between its claim and its publish
       (parking.mutex held throughout). */
    uint32_t stop_prev;
#if !SUBINTERP_FUTEX
    pthread_mutex_t mu;
    pthread_cond_t cv;
#endif
} waiter;

typedef enum {
    WAIT_FIRED = 0,
    WAIT_TIMEOUT = 1,
    WAIT_INTERRUPTED = 2,  /* a signal, or the interpreter is being
                              stopped: run wait_after_interrupt() */
} wait_result;

/* A WAKE_THREAD waiter with no result and no owner yet. */
void waiter_init(waiter *w);
#if SUBINTERP_FUTEX
static inline void
waiter_fini(waiter *Py_UNUSED(w))
{
}
#else
void waiter_fini(waiter *w);
#endif

/* Firer side, under the lock of the source the waiter is linked on.
 * Returns 1 when this caller won the waiter (it is now W_CLAIMED and the
 * caller must call waiter_fire), 0 when the waiter is gone (fired by
 * another source, or cancelled): then its registration is dead for good
 * and may be unlinked. */
int waiter_claim(waiter *w, uint32_t *prev);
/* Fire a waiter this thread claimed (prev: what waiter_claim said):
 * leave the result -- the case that fired, a WS_* status and, for a
 * receive, the item (moved out of *got; got may be NULL) -- and wake the
 * owner the way its wake kind says.  The one way a waiter fires. */
void waiter_fire(waiter *w, uint32_t prev, int fired_case, int status,
                 item *got);

/* Claim w unless it is gone, and fire it with no result: for sources
 * whose fire only says "the condition may have changed, poll again" (the
 * pool's).  1 if fired. */
static inline int
waiter_notify(waiter *w)
{
    uint32_t prev;
    if (waiter_claim(w, &prev)) {
        waiter_fire(w, prev, -1, WS_OK, NULL);
        return 1;
    }
    return 0;
}

/* Owner: give up unless already claimed.  1 if cancelled, 0 if fired
 * (or being fired). */
int waiter_cancel(waiter *w);

/* The withdraw step of a source (below), after its registrations of w
 * are unlinked or under the source's lock: 1 when the wait is withdrawn
 * (cancelled now: nobody fired w, nobody will; or fired by
 * wait_interrupt_interp(), which hands nothing over), 0 when a source
 * fired w meanwhile: the result is there and counts. */
int waiter_withdraw(waiter *w);

/* Whether the current thread is the main thread of the main interpreter
 * (the one that runs Python signal handlers).  GIL held. */
int wait_is_signal_thread(void);
/* Whether this is the process's main (initial) thread: 1 or 0, or -1 where
 * the platform does not tell (not Linux). */
int wait_is_main_os_thread(void);

/* Wake every thread blocked in one of our waits inside interpreter
 * `interp_id`, and make every later wait there return at once, until the
 * interpreter is destroyed: the operations raise SystemExit.  For whoever
 * must stop an interpreter that runs code in another thread (at exit,
 * pool shutdown): a thread parked on a futex with its GIL released never
 * sees an asynchronous exception.  Any thread, no GIL needed. */
void wait_interrupt_interp(int64_t interp_id);
/* The same for n interpreters at once: every waiter of theirs is claimed
 * before any is woken, so none of them can see a source changed by
 * another one's stop (a Barrier broken by a party that was stopped first
 * would give the others BrokenBarrierError instead of SystemExit). */
void wait_interrupt_interps(const int64_t *ids, size_t n);
/* Undo wait_interrupt_interp() for an interpreter that stays alive (a
 * close that was refused): waits there block again. */
void wait_resume_interp(int64_t interp_id);

/* After WAIT_INTERRUPTED (GIL held): -1 with SystemExit set when the
 * current interpreter is being stopped, -1 when a signal handler raised,
 * 0 to wait again. */
int wait_after_interrupt(void);
/* 1 with SystemExit set when the current interpreter is being stopped
 * (wait_interrupt_interp), else 0.  GIL held.  For an outcome that the
 * stop itself caused elsewhere: a Barrier broken by another party's
 * stopped wait is SystemExit for a party of a stopped interpreter too. */
int wait_stopping(void);

/* The blocking wait: every wait of a queue, a channel, select(), a lock
 * of any kind and the pool goes through it.  The source supplies two
 * steps, called with no lock of ours held (and with the GIL only under
 * WAIT_POLL_WITH_GIL):
 *
 *   poll(arg, w)      under the source's lock: try the operation; 1 when
 *                     the wait is over (done, or no waiting wanted: the
 *                     outcome is the source's, in arg), else 0 after
 *                     linking w where a change fires it (so that no
 *                     change is missed between the try and the link).
 *                     w is NULL for the first try of WAIT_POLL_WITH_GIL
 *                     (GIL held): try only, link nothing;
 *   withdraw(arg, w)  the wait ended unfired (deadline, signal, stop):
 *                     unlink w's registrations and return
 *                     waiter_withdraw(w) -- called under the source's
 *                     lock when a source must undo something for a
 *                     cancelled waiter only (a Barrier's arrival), so
 *                     that a firer there either fired w or never sees it.
 *
 * The engine does the rest: it registers the interpreter and thread on w
 * (re-initialised before every poll: w may be on the caller's stack or in
 * a shared struct), releases the GIL (held on entry and return), spins
 * then parks, withdraws, and after an interruption runs
 * wait_after_interrupt(): SystemExit when the interpreter is being
 * stopped, the signal handlers in the main thread; then it polls again
 * for the rest of the deadline.
 *
 * handoff: a fire completes the operation (the firer handed over an
 * item, the lock, a permit...: the result is in w, and any registration
 * the firer did not unlink is the source's to drop); otherwise a fire
 * only says that the condition may have changed, and poll runs again.
 *
 * Returns WAIT_FIRED (poll said the wait is over, or a handoff fired w),
 * WAIT_TIMEOUT, or -1 with an exception set.
 *
 * flags: WAIT_NO_STOP for the waits an interpreter's own clean-up needs
 * to finish (joining its pools' workers while it closes, completing
 * their Futures): stopping the interpreter does not end them.
 * WAIT_POLL_WITH_GIL: a first try, poll(arg, NULL), before anything else
 * and with the GIL held, so that an operation that can complete at once
 * costs neither a GIL hand-off nor any set-up of the wait (our mutexes
 * are never held by a thread that waits for anything, so taking one
 * with a GIL held is safe). */
typedef struct {
    int (*poll)(void *arg, waiter *w);
    int (*withdraw)(void *arg, waiter *w);
    int handoff;
} wait_cond;

enum { WAIT_NO_STOP = 1, WAIT_POLL_WITH_GIL = 2 };

/* The wait proper, after the first try of WAIT_POLL_WITH_GIL failed (or
 * without it). */
int wait_block(const wait_cond *c, void *arg, waiter *w, const deadline *dl,
               int flags);

/* Inline, so that the first try of an operation that completes at once
 * costs what the try itself costs. */
static inline int
wait_until(const wait_cond *c, void *arg, waiter *w, const deadline *dl,
           int flags)
{
    if ((flags & WAIT_POLL_WITH_GIL) && c->poll(arg, NULL)) {
        return WAIT_FIRED;
    }
    return wait_block(c, arg, w, dl, flags);
}

/* ------------------------------------------------------------------ */
/* event loops: the WAKE_FD kind                                       */

/* A hub: what an event loop watches for the waits of its tasks.  A
 * file descriptor (an eventfd; a pipe where there is none) and the list
 * of its waiters fired since the loop last looked.  A firer of a WAKE_FD
 * waiter appends it to that list and writes the descriptor when the list
 * was empty (one wake-up per burst), all under hub->mutex, a leaf lock;
 * it publishes W_FIRED under that mutex too, so that once the owner saw
 * the fire (through the list, or through waiter_withdraw's settle and
 * the mutex) no firer touches the hub or the waiter again.  The memory
 * is the C heap's (not an interpreter's): a registration may outlive
 * everything Python of its loop.  Reference counted: the Python object
 * of the hub holds one reference, every registered wait another. */
wait_hub *wait_hub_new(void);               /* NULL: errno */
void wait_hub_decref(wait_hub *h);
int wait_hub_fd(const wait_hub *h);         /* the descriptor to watch */
/* The owner: reset the descriptor and take the fired waiters (linked
 * through hnext; NULL if none). */
waiter *wait_hub_take(wait_hub *h);

/* One wait of an event loop: the same wait_cond as wait_until()'s, run
 * without blocking.  The memory of the struct (and of what arg points
 * to that a firer touches) must be the C heap's and stay valid while
 * `registered`.  Every call: GIL held, in the interpreter of the loop. */
typedef struct aio_wait {
    waiter w;               /* WAKE_FD */
    const wait_cond *c;     /* immutable */
    void *arg;              /* immutable */
    wait_hub *hub;          /* a reference while registered */
    int registered;         /* w linked on sources and the parking list */
    void *owner;            /* the Python object of the wait (aio.c) */
} aio_wait;

/* Try the operation (poll(arg, NULL)); unless that completes it, link w
 * (poll(arg, w)) and stay registered.  1 done (the source's outcome is
 * in arg), 0 registered, -1 with SystemExit set when the interpreter is
 * being stopped. */
int aio_wait_start(aio_wait *a, wait_hub *h);
/* a's waiter came out of wait_hub_take(): 1 done (a hand-off: the
 * result is in a->w), 0 registered again (a source whose fire only says
 * "changed": polled again), -1 with an exception set (SystemExit: the
 * interpreter is being stopped; the wait is withdrawn). */
int aio_wait_fired(aio_wait *a);
/* Give up a registered wait (the task was cancelled, or its timeout
 * passed): 1 withdrawn, nothing happened; 0 a source fired it meanwhile
 * and the result in a->w counts (the operation completed). */
int aio_wait_withdraw(aio_wait *a);
/* Registered event-loop waits in the process (a debugging aid). */
Py_ssize_t aio_wait_count(void);

/* The Python side (aio.c): an _AioOp is one awaitable operation, made
 * by a source (select.c, sync.c) around a payload that starts with an
 * aio_wait (C heap memory, the source's arg after it); the Python layer
 * (subinterp/_aiowait.py) starts it, awaits its Future, and takes its
 * result.  The source says how to turn the completed operation into a
 * result, and how to undo it when the awaiting task was cancelled after
 * it completed (a received item goes back to the head of its FIFO; a
 * send or an acquire that completed counts). */
typedef struct aio_op_kind {
    /* Completed: the result (new reference) or NULL with an exception. */
    PyObject *(*result)(module_state *st, aio_wait *a);
    /* Withdrawn by the timeout: the same. */
    PyObject *(*timeout)(module_state *st, aio_wait *a);
    /* Completed, and nobody will take the result. */
    void (*undo)(aio_wait *a);
    /* Free the payload (and what it owns). */
    void (*free)(aio_wait *a);
} aio_op_kind;

/* A new _AioOp owning payload a (freed through kind->free, also on
 * failure), keeping `keep` alive (the sources a's arg borrows from).
 * NULL with an exception set. */
PyObject *aio_op_new(module_state *st, const aio_op_kind *kind, aio_wait *a,
                     PyObject *keep);

/* ------------------------------------------------------------------ */
/* registrations                                                       */

typedef struct wnode {
    struct wnode *prev, *next;  /* the source's mutex */
    int linked;                 /* the source's mutex */
    waiter *w;                  /* immutable while linked */
    int case_index;             /* immutable */
    item send_item;             /* send nodes: the item to deliver, on
                                   loan from the owner; the claimer moves
                                   it out */
} wnode;

/* A circular list with a sentinel; protected by its owner's mutex. */
typedef struct {
    wnode head;
} wlist;

static inline void
wlist_init(wlist *l)
{
    l->head.prev = l->head.next = &l->head;
    l->head.linked = 1;
}

static inline int
wlist_empty(const wlist *l)
{
    return l->head.next == &l->head;
}

/* Debug builds: the links of l agree both ways and every node on it is
 * marked linked.  The list's mutex held. */
static inline void
wlist_check(const wlist *l)
{
    INVARIANT(l->head.linked, "a list's sentinel is always linked");
    for (const wnode *n = l->head.next;; n = n->next) {
        INVARIANT(n != NULL, "a linked node has neighbours");
        INVARIANT(n->next->prev == n && n->prev->next == n,
                  "a node's neighbours point back at it");
        if (n == &l->head) {
            break;
        }
        INVARIANT(n->linked, "a node on a list is marked linked");
        INVARIANT(n->w != NULL, "a linked node has a waiter");
    }
}

static inline void
wlist_append(wlist *l, wnode *n)
{
    INVARIANT(!n->linked, "a node is on one list at a time");
    n->prev = l->head.prev;
    n->next = &l->head;
    l->head.prev->next = n;
    l->head.prev = n;
    n->linked = 1;
    wlist_check(l);
}

/* The mutex of the list n is on held. */
static inline void
wnode_unlink(wnode *n)
{
    if (n->linked) {
        INVARIANT(n->next->prev == n && n->prev->next == n,
                  "an unlinked node's neighbours point back at it");
        n->prev->next = n->next;
        n->next->prev = n->prev;
        n->prev = n->next = NULL;
        n->linked = 0;
    }
}

/* Claim the first live waiter of l, unlinking dead nodes on the way and
 * the claimed one.  Returns its node (still valid until the caller
 * publishes) or NULL.  The list's mutex held. */
wnode *wlist_claim_first(wlist *l, uint32_t *prev);

/* Fire the waiter of a node claimed by wlist_claim_first (waiter_fire,
 * with the node's case). */
static inline void
wnode_fire(wnode *n, uint32_t prev, int status, item *got)
{
    waiter_fire(n->w, prev, n->case_index, status, got);
}

/* Forget every node (after fork: their threads do not exist). */
static inline void
wlist_reset(wlist *l)
{
    wlist_init(l);
}

/* ------------------------------------------------------------------ */
/* Per-interpreter state of queues (st->queue) and channels            */
/* (st->channel); locks keep theirs in sync.c.                         */

struct queue_state {
    PyObject *module;  /* borrowed: the module owns this state */
    /* heap types */
    PyTypeObject *QueueType;
    PyTypeObject *UnboundType;
    PyTypeObject *TakenType;
    PyTypeObject *StoreOpType;  /* _StoreOp: see store_op_new */
    PyTypeObject *AioOpType;    /* _AioOp, _AioHub (aio.c) */
    PyTypeObject *AioHubType;
    /* subinterp.interpreters.Queue: the standard library's face of the
       same C queue (Queue(id) looks a queue up; queue.c) */
    PyTypeObject *InterpQueueType;
    /* live Queue / interpreters.Queue objects by id (handle_cache_get) */
    PyObject *queue_handles;
    PyObject *interp_queue_handles;
    /* sentinels for unbound items */
    PyObject *UNBOUND;
    PyObject *UNBOUND_ERROR;
    PyObject *UNBOUND_REMOVE;
    /* Exceptions, made on first use (queue.Full lives in queue.py, which
       imports threading: ~3 ms that every new interpreter would pay). */
    int have_exceptions;
    PyObject *QueueError;
    PyObject *QueueNotFoundError;
    PyObject *QueueEmpty;
    PyObject *QueueFull;
    PyObject *ItemInterpreterDestroyed;
    PyObject *UnboundItemsError;
};

struct channel_state {
    PyTypeObject *RecvChannelType;
    PyTypeObject *SendChannelType;
    /* exceptions, made on first use (as the queue's) */
    int have_exceptions;
    PyObject *ChannelError;
    PyObject *ChannelNotFoundError;
    PyObject *ChannelClosedError;
    PyObject *ChannelEmptyError;
    PyObject *ChannelFullError;
};

/* Functions written in Python around C parts (the receive and put
 * wrappers, select.c; the awaitable methods of the locks, aio.c): the
 * source text (compiled once per process, through `cache`: code_cached)
 * runs in a namespace of the module that has `globals` (a dict, or NULL)
 * too, then a copy of each function a place names is put
 * on its owner -- in the dict of one of our heap types (qualname
 * Type.name), or on the module -- with its doc.  0, or -1 with an
 * exception set. */
typedef struct {
    const char *name;
    PyObject *owner;        /* borrowed */
    const char *doc;
} wrapper_place;
int wrappers_install(PyObject *mod, const char *source, code_cache *cache,
                     PyObject *globals, const wrapper_place *places,
                     size_t n);

/* An operation run by an attribute store, `op.obj = value` (queue.c):
 * run(target, value, block, timeout, extra) returns a new reference or
 * NULL with an exception; timeout is NULL when block is false.  The
 * Python wrappers of put, send and select (select.c) use it so that no
 * signal handler runs between the operation and their return. */
typedef PyObject *(*store_fn)(PyObject *target, PyObject *value, int block,
                              PyObject *timeout, PyObject *extra);
PyObject *store_op_new(module_state *st, store_fn run, PyObject *target,
                       int block, PyObject *timeout, PyObject *extra);

/* ------------------------------------------------------------------ */
/* queues and channels: the FIFO core (queue.c)                        */

enum {
    FIFO_OPEN = 0,
    FIFO_CLOSING = 1,   /* no more sends; receivers drain the buffer */
    FIFO_CLOSED = 2,    /* force-closed: no sends, buffer dropped */
};

struct inode;

typedef struct fifo {
    sub_mutex mutex;
    struct inode *head;     /* mutex */
    struct inode *tail;     /* mutex */
    Py_ssize_t count;       /* mutex: items in the buffer */
    struct inode *spare;    /* mutex: recycled nodes */
    int nspare;             /* mutex */
    Py_ssize_t capacity;    /* immutable: -1 unbounded, 0 rendezvous */
    int closed;             /* mutex: FIFO_* */
    wlist receivers;        /* mutex: blocked receivers (buffer empty) */
    wlist senders;          /* mutex: blocked senders (buffer full) */
    sobj *owner;            /* immutable: the object around the FIFO, whose
                               `inner` counts the references buffered
                               items hold to it */
} fifo;

void fifo_init(fifo *f, Py_ssize_t capacity, sobj *owner);
/* Free the buffer (no waiters may be left). */
void fifo_fini(fifo *f);

/* Results of one attempt, made under f->mutex. */
typedef enum {
    FIFO_DONE = 0,      /* sent, or received into *got */
    FIFO_NOT_READY = 1,
    FIFO_IS_CLOSED = 2,
    FIFO_NO_MEMORY = 3,
} fifo_status;

/* f->mutex held.  A send moves *it to a waiting receiver or into the
 * buffer (FIFO_DONE). */
fifo_status fifo_try_send(fifo *f, item *it);
/* f->mutex held.  A receive moves the buffer's head or a blocked
 * sender's item into *got; it may also let a blocked sender refill the
 * buffer. */
fifo_status fifo_try_recv(fifo *f, item *got);
/* Give back an item a receiver took (it must not be lost to a signal):
 * to a waiting receiver, else at the head of the buffer.  Takes
 * f->mutex; moves *it. */
void fifo_unget(fifo *f, item *it);
/* The same for n items taken in this order (a get_many()): they go back
 * in the same order, the first to waiting receivers.  Moves its[0..n). */
void fifo_unget_many(fifo *f, item *its, Py_ssize_t n);
/* f->mutex held.  Send its[0], its[1], ... (fifo_try_send) while they
 * complete; returns how many did, *st the status of the first that did
 * not (FIFO_DONE when all did). */
Py_ssize_t fifo_send_many(fifo *f, item *its, Py_ssize_t n,
                          fifo_status *st);
/* f->mutex held.  Receive up to n items into out[] (fifo_try_recv, which
 * lets blocked senders refill the slots) while one can be had without
 * waiting; returns how many. */
Py_ssize_t fifo_recv_many(fifo *f, item *out, Py_ssize_t n);
/* Close: force drops the buffer; every waiter is woken with WS_CLOSED.
 * Takes f->mutex. */
void fifo_close(fifo *f, int force);
/* Free every buffered item (sobj_type.drop_buffer).  Takes f->mutex. */
void fifo_drop_buffer(fifo *f);

/* ------------------------------------------------------------------ */
/* select engine (select.c), used by every blocking queue and channel   */
/* operation: one case is a plain get/put, several a select.           */

typedef enum { CASE_RECV = 0, CASE_SEND = 1 } case_kind;

typedef struct sel_case {
    fifo *f;              /* borrowed: the caller holds a reference */
    case_kind kind;
    item send_item;       /* CASE_SEND: the caller's until sent (then
                             its m is NULL) */
    wnode node;           /* engine private */
} sel_case;

typedef enum {
    SEL_DONE = 0,         /* case *index done (recv: *got set) */
    SEL_CLOSED = 1,       /* case *index is a closed channel */
    SEL_TIMEOUT = 2,
    SEL_NO_MEMORY = 4,
} sel_status;

/* Run the cases (GIL held): poll them, starting at `start`, and unless
 * dl is NULL (no waiting) or has passed, wait for the first to become
 * possible, through the wait engine (wait_until): the GIL released, the
 * signal handlers run when a signal interrupts the wait, SystemExit when
 * the interpreter is being stopped.  Exactly one case completes on
 * SEL_DONE (*index; receive cases set *got); send items of the other
 * cases stay the caller's.  Returns a sel_status, or -1 with an
 * exception set (KeyboardInterrupt...). */
int select_blocking(sel_case *cases, int n, int start, const deadline *dl,
                    int *index, item *got);

/* A cheap per-thread random number (fair starts). */
uint32_t wait_random(void);

/* ------------------------------------------------------------------ */
/* items of queues and channels (queue.c)                              */

/* Turn an item received from f (the FIFO of the Queue or RecvChannel
 * handle `source`) into an object (handles unbound items); consumes the
 * item.  New reference or NULL.  Delivery is exactly-once: when a signal
 * handler raises before the object is returned, the item goes back to
 * the head of f and the exception propagates.  With taken, the item is
 * not freed but moved into a new _Taken object (*taken), which puts it
 * back when it is dropped before being marked done: the receive
 * functions' Python wrappers (select.c) mark it only once the object is
 * theirs, so an exception the eval loop raises as the C call returns
 * cannot drop the item either. */
PyObject *queue_item_to_object(module_state *st, PyObject *source, fifo *f,
                               item *it, PyObject **taken);
/* (obj, taken) for the receive wrappers; steals obj and taken (taken may
 * be NULL: None).  NULL when obj is NULL. */
PyObject *taken_pair(PyObject *obj, PyObject *taken);
/* Encode obj into *out for a queue or channel (interpreter id and
 * unbound op filled in).  0, or -1 with an exception set. */
int item_encode(module_state *st, PyObject *obj, int unboundop, item *out);
/* The unbound op a put's unbounditems names (UNBOUND, UNBOUND_ERROR,
 * UNBOUND_REMOVE; None or NULL gives dflt), or -1 with an exception. */
int unboundop_from_object(module_state *st, PyObject *obj, int dflt);

/* An object around a FIFO (queues, channels): the sobj head, then the
 * FIFO, so that both kinds share their sobj_type hooks and creation. */
typedef struct {
    sobj base;
    fifo f;
} fifo_obj;

/* A new zeroed object of `size` bytes (a struct starting with fifo_obj)
 * with its FIFO made; NULL with MemoryError.  The caller fills in its own
 * fields, then registers it (sobj_register: one reference). */
fifo_obj *fifo_obj_new(size_t size, Py_ssize_t capacity);
/* sobj_type hooks of every fifo_obj */
sub_mutex *fifo_obj_mutex(sobj *o);
void fifo_obj_after_fork(sobj *o);
void fifo_obj_drop_buffer(sobj *o);

/* maxsize argument of create_queue / create_channel: an int >= 0
 * (negative allowed with allow_negative); absent (NULL) is 0.  0 or -1
 * with an exception. */
int maxsize_from_object(PyObject *obj, int allow_negative, const char *hint,
                        Py_ssize_t *out);

#endif /* SUBINTERP_WAIT_H */
