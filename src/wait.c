/* wait.c - how threads of any interpreter block and wake each other.
 *
 * Waiting
 * -------
 * A blocked operation owns one `waiter` (on its C stack) and links one
 * `wnode` per source it waits on (one for get/put/acquire, several for a
 * select).  Whoever makes the operation possible -- a put for a blocked
 * get, a release for a blocked acquire -- "fires" the waiter: under the
 * source's mutex it claims the waiter with a compare-and-swap, writes the
 * result (the item itself for a get: a direct hand-off, no second trip
 * through the queue), publishes it and wakes the owner.
 *
 *     owner:  WAITING --spin--> PARKED --futex--> ... ----> CANCELLED
 *                 \                 \
 *     firer:       `----------------`--> CLAIMED --> FIRED
 *
 * The compare-and-swap makes every race benign: a waiter is fired at most
 * once (so a select completes exactly one case), and a timeout or a
 * signal cancels it only if nobody fired it first.  When the owner loses
 * that race it takes the result: an item handed over is never dropped,
 * even when Ctrl-C arrives at the same moment (the KeyboardInterrupt is
 * raised a bytecode later, by the eval loop, with the item delivered).
 *
 * The owner first spins (a park/wake round trip costs ~45 us on these
 * machines, a spinning hand-off < 0.1 us), then sleeps on a futex (Linux)
 * or a condition variable.  The spin budget adapts per thread: it grows
 * when waits end soon after it ran out, and halves when they do not, so a
 * ping-pong spins and a idle consumer sleeps almost at once.
 *
 * Signals: Python runs signal handlers only in the main thread of the
 * main interpreter.  A process-directed signal such as SIGINT is
 * delivered by Linux to the main thread when it does not block it, and
 * interrupts its futex wait (EINTR: CPython installs its handlers without
 * SA_RESTART).  As a safety net for signals that land on another thread
 * (or platforms without futexes), the main thread of the main interpreter
 * -- and no other thread -- sleeps in slices of SIGNAL_SLICE_NS and
 * checks the handlers between slices.  Every other thread sleeps until it
 * is woken or its deadline passes; nobody polls.
 */
#include "wait.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if SUBINTERP_FUTEX
#  include <linux/futex.h>
#  include <sys/syscall.h>
#endif
#include <sched.h>
#include <fcntl.h>
#if defined(__linux__)
#  include <sys/eventfd.h>
#  define SUBINTERP_EVENTFD 1
#else
#  define SUBINTERP_EVENTFD 0
#endif

#define SPIN_MIN_NS 2000
#define SPIN_DEFAULT_NS 20000
#define SPIN_MAX_NS 50000
/* Main thread of the main interpreter only; see above. */
#define SIGNAL_SLICE_NS 50000000

/* ------------------------------------------------------------------ */
/* time                                                                */

int64_t
monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
deadline_from_seconds(double seconds, deadline *dl)
{
    /* Beyond ~30 years is "forever" (and avoids overflowing time_t). */
    if (seconds > 1e9) {
        dl->forever = 1;
        return;
    }
    dl->forever = 0;
    if (seconds < 0) {
        seconds = 0;
    }
    int64_t ns = monotonic_ns() + (int64_t)(seconds * 1e9);
    dl->at.tv_sec = (time_t)(ns / 1000000000);
    dl->at.tv_nsec = (long)(ns % 1000000000);
}

int
deadline_from_timeout(PyObject *timeout, int neg_forever, deadline *dl)
{
    if (timeout == NULL || timeout == Py_None) {
        dl->forever = 1;
        return 0;
    }
    if (!PyLong_Check(timeout) && !PyFloat_Check(timeout)) {
        PyErr_Format(PyExc_TypeError,
                     "timeout must be None or a number of seconds, not %.100s",
                     Py_TYPE(timeout)->tp_name);
        return -1;
    }
    double seconds = PyFloat_AsDouble(timeout);
    if (seconds == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (seconds != seconds) {
        PyErr_SetString(PyExc_ValueError, "timeout must not be NaN");
        return -1;
    }
    if (seconds < 0) {
        if (neg_forever && seconds == -1.0) {
            dl->forever = 1;
            return 0;
        }
        PyErr_SetString(PyExc_ValueError,
                        "timeout must be a non-negative number");
        return -1;
    }
    deadline_from_seconds(seconds, dl);
    return 0;
}

int64_t
deadline_remaining_ns(const deadline *dl)
{
    if (dl->forever) {
        return INT64_MAX;
    }
    int64_t at = (int64_t)dl->at.tv_sec * 1000000000 + dl->at.tv_nsec;
    int64_t left = at - monotonic_ns();
    return left > 0 ? left : 0;
}

void
wait_mutex_init(sub_mutex *m)
{
#if defined(__GLIBC__) && defined(PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP)
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
#else
    sub_mutex_init(m);
#endif
}

/* ------------------------------------------------------------------ */
/* waiters                                                             */

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Spin budget of this thread (see the top of the file). */
static _Thread_local int64_t spin_hint_ns = SPIN_DEFAULT_NS;
static int ncpus = 0;

static int64_t
spin_budget(void)
{
    int n = __atomic_load_n(&ncpus, __ATOMIC_RELAXED);
    if (n == 0) {
        long v = sysconf(_SC_NPROCESSORS_ONLN);
        n = v > 0 ? (int)v : 1;
        __atomic_store_n(&ncpus, n, __ATOMIC_RELAXED);
    }
    /* On one CPU the thread we wait for cannot run while we spin. */
    return n > 1 ? spin_hint_ns : 0;
}

void
waiter_init(waiter *w)
{
    atomic_init(&w->state, W_WAITING);
    w->fired_case = -1;
    w->status = WS_OK;
    w->got.m = NULL;
    w->value = 0;
    w->interp_id = -1;
    w->thread_id = 0;
    w->wake = WAKE_THREAD;
    w->hub = NULL;
    w->hprev = w->hnext = NULL;
    w->in_ready = 0;
    w->pprev = w->pnext = NULL;
#if !SUBINTERP_FUTEX
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
#endif
}

#if !SUBINTERP_FUTEX
void
waiter_fini(waiter *w)
{
    /* The firer signals under mu: wait until it let go before freeing. */
    pthread_mutex_lock(&w->mu);
    pthread_mutex_unlock(&w->mu);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}
#endif

/* Move w from a live state (W_WAITING, W_PARKED) to `to`: the one
 * compare-and-swap that settles who ends a wait.  1 and *prev set when
 * this caller did, 0 when w was no longer live. */
static int
waiter_take(waiter *w, uint32_t to, uint32_t *prev)
{
    uint32_t s = atomic_load_explicit(&w->state, memory_order_acquire);
    while (s == W_WAITING || s == W_PARKED) {
        if (atomic_compare_exchange_weak_explicit(
                &w->state, &s, to, memory_order_acq_rel,
                memory_order_acquire)) {
            *prev = s;
            return 1;
        }
    }
    return 0;
}

int
waiter_claim(waiter *w, uint32_t *prev)
{
    return waiter_take(w, W_CLAIMED, prev);
}

/* WAKE_THREAD: the owner spins or parks in waiter_wait(). */
static void
wake_thread(waiter *w, uint32_t prev)
{
#if SUBINTERP_FUTEX
    atomic_store_explicit(&w->state, W_FIRED, memory_order_release);
    if (prev == W_PARKED) {
        /* The owner may already have seen W_FIRED and returned: waking
           a stale address is harmless (waits tolerate spurious wakes). */
        syscall(SYS_futex, &w->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
#else
    if (prev == W_PARKED) {
        pthread_mutex_lock(&w->mu);
        atomic_store_explicit(&w->state, W_FIRED, memory_order_release);
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    else {
        atomic_store_explicit(&w->state, W_FIRED, memory_order_release);
    }
#endif
}

struct wait_hub {
    pthread_mutex_t mutex;
    int rfd, wfd;               /* immutable; the same eventfd, or a pipe */
    waiter *head, *tail;        /* mutex: fired, not taken yet */
    _Atomic Py_ssize_t refcount;
};

/* Registered event-loop waits (aio_wait_count). */
static _Atomic Py_ssize_t aio_registered = 0;

/* Wake the loop: one 8-byte 1 (eventfd) or byte (pipe).  EAGAIN: the
 * counter or the pipe is full, so the loop is woken anyway. */
static void
hub_signal(wait_hub *h)
{
    uint64_t one = 1;
    size_t len = h->rfd == h->wfd ? sizeof(one) : 1;
    ssize_t r;
    do {
        r = write(h->wfd, &one, len);
    } while (r < 0 && errno == EINTR);
}

/* WAKE_FD: append w to its hub's fired list, wake the loop if the list
 * was empty, and publish, all under the hub's mutex (wait.h says why). */
static void
wake_fd(waiter *w)
{
    wait_hub *h = w->hub;
    pthread_mutex_lock(&h->mutex);
    int was_empty = h->head == NULL;
    w->hnext = NULL;
    w->hprev = h->tail;
    if (h->tail != NULL) {
        h->tail->hnext = w;
    }
    else {
        h->head = w;
    }
    h->tail = w;
    w->in_ready = 1;
    atomic_store_explicit(&w->state, W_FIRED, memory_order_release);
    if (was_empty) {
        hub_signal(h);
    }
    pthread_mutex_unlock(&h->mutex);
}

/* Make the result visible and wake the owner, the way its kind says. */
static void
waiter_publish(waiter *w, uint32_t prev)
{
    switch (w->wake) {
    case WAKE_FD:
        wake_fd(w);
        break;
    case WAKE_THREAD:
    default:
        wake_thread(w, prev);
        break;
    }
}

void
waiter_fire(waiter *w, uint32_t prev, int fired_case, int status,
            item *got)
{
    INVARIANT(atomic_load_explicit(&w->state, memory_order_relaxed) ==
                  W_CLAIMED,
              "only the thread that claimed a waiter fires it");
    w->fired_case = fired_case;
    w->status = status;
    if (got != NULL) {
        w->got = *got;
        got->m = NULL;
    }
    waiter_publish(w, prev);
}

int
waiter_cancel(waiter *w)
{
    uint32_t prev;
    return waiter_take(w, W_CANCELLED, &prev);
}

/* The owner, once a firer claimed w: wait for its result, a few stores
 * under the source's mutex (or wait_interrupt_interps' under
 * parking.mutex).  The firer may be descheduled in between, so yield. */
static void
waiter_settle(waiter *w)
{
    for (unsigned i = 1;
         atomic_load_explicit(&w->state, memory_order_acquire) != W_FIRED;
         i++) {
        if (i < 1000) {
            cpu_relax();
        }
        else {
            sched_yield();
        }
    }
}

int
waiter_withdraw(waiter *w)
{
    if (waiter_cancel(w)) {
        return 1;
    }
    waiter_settle(w);
    return w->status == WS_STOPPED;
}

/* Sleep while the state is W_PARKED, at most ns nanoseconds.  Returns 0,
 * EINTR or ETIMEDOUT (or another errno: treated as a spurious wake). */
static int
park(waiter *w, int64_t ns)
{
#if SUBINTERP_FUTEX
    struct timespec rel;
    rel.tv_sec = (time_t)(ns / 1000000000);
    rel.tv_nsec = (long)(ns % 1000000000);
    long r = syscall(SYS_futex, &w->state, FUTEX_WAIT_PRIVATE, W_PARKED,
                     ns == INT64_MAX ? NULL : &rel, NULL, 0);
    return r == 0 ? 0 : errno;
#else
    int r = 0;
    pthread_mutex_lock(&w->mu);
    if (ns == INT64_MAX) {
        while (atomic_load(&w->state) == W_PARKED && r == 0) {
            r = pthread_cond_wait(&w->cv, &w->mu);
        }
    }
    else {
        struct timespec abs;
        clock_gettime(CLOCK_REALTIME, &abs);
        int64_t t = (int64_t)abs.tv_nsec + ns % 1000000000;
        abs.tv_sec += (time_t)(ns / 1000000000 + t / 1000000000);
        abs.tv_nsec = (long)(t % 1000000000);
        while (atomic_load(&w->state) == W_PARKED && r == 0) {
            r = pthread_cond_timedwait(&w->cv, &w->mu, &abs);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return r;
#endif
}

/* Parked waiters, for wait_interrupt_interp().  Registering costs two
 * uncontended lock operations, only when a wait really sleeps (next to a
 * ~45 us park/wake that is noise); spinning waits stay off the list. */
static struct {
    pthread_mutex_t mutex;
    waiter *head;             /* mutex: parked waiters */
    int64_t *stopped;         /* mutex: interpreters being stopped */
    size_t nstopped, capstopped;
} parking = {.mutex = PTHREAD_MUTEX_INITIALIZER};

/* parking.mutex held */
static int
interp_stopped(int64_t id)
{
    for (size_t i = 0; i < parking.nstopped; i++) {
        if (parking.stopped[i] == id) {
            return 1;
        }
    }
    return 0;
}

/* Link w into the parked list; 0 if its interpreter is being stopped. */
static int
parking_enter(waiter *w)
{
    int ok = 1;
    pthread_mutex_lock(&parking.mutex);
    if (interp_stopped(w->interp_id)) {
        ok = 0;
    }
    else {
        w->pprev = NULL;
        w->pnext = parking.head;
        if (parking.head != NULL) {
            parking.head->pprev = w;
        }
        parking.head = w;
    }
    pthread_mutex_unlock(&parking.mutex);
    return ok;
}

static void
parking_leave(waiter *w)
{
    pthread_mutex_lock(&parking.mutex);
    if (w->pprev != NULL) {
        w->pprev->pnext = w->pnext;
    }
    else {
        parking.head = w->pnext;
    }
    if (w->pnext != NULL) {
        w->pnext->pprev = w->pprev;
    }
    pthread_mutex_unlock(&parking.mutex);
}

static int
id_in(int64_t id, const int64_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return 1;
        }
    }
    return 0;
}

void
wait_interrupt_interps(const int64_t *ids, size_t n)
{
    pthread_mutex_lock(&parking.mutex);
    for (size_t i = 0; i < n; i++) {
        if (interp_stopped(ids[i])) {
            continue;
        }
        if (parking.nstopped == parking.capstopped) {
            size_t cap = parking.capstopped ? 2 * parking.capstopped : 8;
            int64_t *p = PyMem_RawRealloc(parking.stopped,
                                          cap * sizeof(int64_t));
            if (p != NULL) {
                parking.stopped = p;
                parking.capstopped = cap;
            }
        }
        if (parking.nstopped < parking.capstopped) {
            parking.stopped[parking.nstopped++] = ids[i];
        }
        /* XXX else out of memory: only the waiters parked now wake */
    }
    /* Claim every waiter first, then wake them: a woken one cannot fire
       (or break) a source another one still waits on before that one is
       claimed too. */
    for (waiter *w = parking.head; w != NULL; w = w->pnext) {
        w->stop_prev = UINT32_MAX;
        /* Claimed like by a source (so a real firer cannot fire it too);
           fired below with nothing in it: the owner withdraws its
           registrations itself. */
        if (id_in(w->interp_id, ids, n)) {
            (void)waiter_claim(w, &w->stop_prev);
        }
    }
    /* A woken owner leaves the list through parking_leave(), which needs
       parking.mutex: every w stays valid while this holds it. */
    for (waiter *w = parking.head; w != NULL; w = w->pnext) {
        if (w->stop_prev != UINT32_MAX) {
            waiter_fire(w, w->stop_prev, -1, WS_STOPPED, NULL);
        }
    }
    pthread_mutex_unlock(&parking.mutex);
}

void
wait_interrupt_interp(int64_t interp_id)
{
    wait_interrupt_interps(&interp_id, 1);
}

/* The interpreter was destroyed (nothing waits in it any more), or its
 * close was refused and it lives on. */
void
wait_resume_interp(int64_t interp_id)
{
    pthread_mutex_lock(&parking.mutex);
    for (size_t i = 0; i < parking.nstopped; i++) {
        if (parking.stopped[i] == interp_id) {
            parking.stopped[i] = parking.stopped[--parking.nstopped];
            break;
        }
    }
    pthread_mutex_unlock(&parking.mutex);
}

int
wait_stopping(void)
{
    int stopped;
    int64_t id = PyInterpreterState_GetID(PyInterpreterState_Get());
    pthread_mutex_lock(&parking.mutex);
    stopped = interp_stopped(id);
    pthread_mutex_unlock(&parking.mutex);
    if (stopped) {
        PyErr_SetString(PyExc_SystemExit,
                        "subinterp: the interpreter is being shut down");
    }
    return stopped;
}

int
wait_after_interrupt(void)
{
    if (wait_stopping()) {
        return -1;
    }
    return PyErr_CheckSignals();
}

/* After a fired wait of `waited` ns (parked or not), move this thread's
 * spin budget toward what would have caught the fire without parking. */
static void
adapt_spin_budget(int64_t waited, int parked)
{
    if (!parked) {
        spin_hint_ns += spin_hint_ns / 8;
    }
    else if (waited < SPIN_MAX_NS) {
        /* spinning a little longer would have caught it */
        int64_t want = waited + waited / 2;
        if (want > spin_hint_ns) {
            spin_hint_ns = want;
        }
    }
    else {
        spin_hint_ns /= 2;
    }
    if (spin_hint_ns > SPIN_MAX_NS) {
        spin_hint_ns = SPIN_MAX_NS;
    }
    if (spin_hint_ns < SPIN_MIN_NS) {
        spin_hint_ns = SPIN_MIN_NS;
    }
}

/* The owner's side of one wait: spin, then park, until w fires, the
 * deadline passes or (check_signals: the main thread of the main
 * interpreter) a signal arrives; WAIT_INTERRUPTED also when the
 * interpreter is being stopped.  Nothing is cancelled here: the caller
 * withdraws under the source's lock (wait_until).  No GIL, no lock of
 * ours held. */
static wait_result
waiter_wait(waiter *w, const deadline *dl, int check_signals)
{
    wait_result res = WAIT_FIRED;
    int64_t t0 = monotonic_ns();
    int64_t budget = spin_budget();
    int parked = 0, entered = 0;
    uint32_t s = W_WAITING;

    /* 1. spin */
    if (budget > 0) {
        for (unsigned i = 1;; i++) {
            s = atomic_load_explicit(&w->state, memory_order_acquire);
            if (s != W_WAITING) {
                break;
            }
            cpu_relax();
            if ((i & 31) == 0) {
                int64_t now = monotonic_ns();
                if (now - t0 >= budget || deadline_remaining_ns(dl) == 0) {
                    break;
                }
            }
        }
        if (s >= W_CLAIMED) {
            goto fired;
        }
    }

    /* 2. park */
    if (!parking_enter(w)) {
        /* its interpreter is being stopped */
        res = WAIT_INTERRUPTED;
        goto done;
    }
    entered = 1;
    for (;;) {
        int64_t left = deadline_remaining_ns(dl);
        if (left == 0) {
            res = WAIT_TIMEOUT;
            goto done;
        }
        if (check_signals && left > SIGNAL_SLICE_NS) {
            left = SIGNAL_SLICE_NS;
        }
        uint32_t expect = W_WAITING;
        if (!atomic_compare_exchange_strong_explicit(
                &w->state, &expect, W_PARKED, memory_order_acq_rel,
                memory_order_acquire) &&
            expect != W_PARKED) {
            goto fired;
        }
        parked = 1;
        int r = park(w, left);
        s = atomic_load_explicit(&w->state, memory_order_acquire);
        if (s >= W_CLAIMED) {
            goto fired;
        }
        if (check_signals &&
            (r == EINTR ||
             (r == ETIMEDOUT && deadline_remaining_ns(dl) > 0))) {
            /* a signal, or the end of a safety-net slice */
            res = WAIT_INTERRUPTED;
            goto done;
        }
        /* woken spuriously, EINTR in a thread that ignores signals, or
           the deadline: the loop's top decides */
    }

fired:
    waiter_settle(w);
    if (w->status == WS_STOPPED) {
        /* wait_interrupt_interp() */
        res = WAIT_INTERRUPTED;
        goto done;
    }
    res = WAIT_FIRED;
    adapt_spin_budget(monotonic_ns() - t0, parked);
done:
    if (entered) {
        parking_leave(w);
    }
    return res;
}

/* One round of wait_until() without the GIL: poll (unless the caller
 * did, with its GIL), wait, withdraw.  *done: poll said the wait is
 * over. */
static wait_result
wait_round(const wait_cond *c, void *arg, waiter *w, const deadline *dl,
           int check_signals, int *done)
{
    wait_result r = WAIT_FIRED;
    if (*done < 0) {
        *done = c->poll(arg, w);
    }
    if (!*done) {
        r = waiter_wait(w, dl, check_signals);
        if (r != WAIT_FIRED && !c->withdraw(arg, w)) {
            /* fired meanwhile, by a source: the result counts */
            r = WAIT_FIRED;
        }
    }
    return r;
}

int
wait_block(const wait_cond *c, void *arg, waiter *w, const deadline *dl,
           int flags)
{
    /* -1 is no interpreter: wait_interrupt_interp() never matches it */
    int64_t interp_id =
        (flags & WAIT_NO_STOP)
            ? -1
            : PyInterpreterState_GetID(PyInterpreterState_Get());
    unsigned long thread_id = PyThread_get_thread_ident();
    int check_signals = wait_is_signal_thread();
    for (;;) {
        int done = -1;  /* not polled yet */
        wait_result r;
        waiter_init(w);
        w->interp_id = interp_id;
        w->thread_id = thread_id;
        Py_BEGIN_ALLOW_THREADS
        r = wait_round(c, arg, w, dl, check_signals, &done);
        Py_END_ALLOW_THREADS
        if (done) {
            return WAIT_FIRED;
        }
        if (r == WAIT_FIRED) {
            if (c->handoff) {
                return WAIT_FIRED;
            }
            continue;  /* something changed: poll again */
        }
        if (r == WAIT_TIMEOUT) {
            return WAIT_TIMEOUT;
        }
        if (((flags & WAIT_NO_STOP) ? PyErr_CheckSignals()
                                    : wait_after_interrupt()) < 0) {
            return -1;
        }
        /* handlers ran: wait again for what is left of the deadline */
    }
}

/* ------------------------------------------------------------------ */
/* event loops: hubs and aio_wait                                      */

wait_hub *
wait_hub_new(void)
{
    wait_hub *h = PyMem_RawCalloc(1, sizeof(*h));
    if (h == NULL) {
        errno = ENOMEM;
        return NULL;
    }
#if SUBINTERP_EVENTFD
    h->rfd = h->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->rfd < 0) {
        PyMem_RawFree(h);
        return NULL;
    }
#else
    int fds[2];
    if (pipe(fds) < 0) {
        PyMem_RawFree(h);
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);
    }
    h->rfd = fds[0];
    h->wfd = fds[1];
#endif
    pthread_mutex_init(&h->mutex, NULL);
    atomic_init(&h->refcount, 1);
    return h;
}

static void
wait_hub_incref(wait_hub *h)
{
    atomic_fetch_add(&h->refcount, 1);
}

void
wait_hub_decref(wait_hub *h)
{
    if (atomic_fetch_sub(&h->refcount, 1) == 1) {
        /* No registration is left, so no firer can reach h: the last
           one let go of the mutex before its owner saw the fire. */
        close(h->rfd);
        if (h->wfd != h->rfd) {
            close(h->wfd);
        }
        pthread_mutex_destroy(&h->mutex);
        PyMem_RawFree(h);
    }
}

int
wait_hub_fd(const wait_hub *h)
{
    return h->rfd;
}

waiter *
wait_hub_take(wait_hub *h)
{
    char buf[64];
    pthread_mutex_lock(&h->mutex);
    /* Reset under the mutex: a firer that appends after this sees an
       empty list and writes again. */
    while (read(h->rfd, buf, h->rfd == h->wfd ? 8 : sizeof(buf)) > 0 &&
           h->rfd != h->wfd) {
    }
    waiter *list = h->head;
    for (waiter *w = list; w != NULL; w = w->hnext) {
        w->in_ready = 0;
    }
    h->head = h->tail = NULL;
    pthread_mutex_unlock(&h->mutex);
    return list;
}

/* Link a's waiter and poll; see aio_wait_start. */
static int
aio_register(aio_wait *a)
{
    waiter *w = &a->w;
    waiter_init(w);
    w->wake = WAKE_FD;
    w->hub = a->hub;
    w->interp_id = PyInterpreterState_GetID(PyInterpreterState_Get());
    w->thread_id = PyThread_get_thread_ident();
    /* On the parking list for as long as it is registered, so that
       wait_interrupt_interp() fires it too. */
    while (!parking_enter(w)) {
        if (wait_after_interrupt() < 0) {
            return -1;  /* SystemExit */
        }
    }
    if (a->c->poll(a->arg, w)) {
        parking_leave(w);
        return 1;
    }
    a->registered = 1;
    wait_hub_incref(a->hub);
    atomic_fetch_add(&aio_registered, 1);
    return 0;
}

/* The wait is over for the engine: off the parking list, the hub's
 * reference dropped. */
static void
aio_unregister(aio_wait *a)
{
    parking_leave(&a->w);
    a->registered = 0;
    atomic_fetch_sub(&aio_registered, 1);
    wait_hub_decref(a->hub);
}

int
aio_wait_start(aio_wait *a, wait_hub *h)
{
    a->registered = 0;
    a->hub = h;
    if (a->c->poll(a->arg, NULL)) {
        return 1;
    }
    return aio_register(a);
}

int
aio_wait_fired(aio_wait *a)
{
    waiter *w = &a->w;
    INVARIANT(a->registered, "only a registered wait fires");
    waiter_settle(w);
    if (w->status == WS_STOPPED) {
        /* wait_interrupt_interp(): the owner unlinks its registrations */
        (void)a->c->withdraw(a->arg, w);
        aio_unregister(a);
        if (wait_after_interrupt() < 0) {
            return -1;
        }
        return aio_register(a);  /* resumed meanwhile */
    }
    aio_unregister(a);
    if (a->c->handoff) {
        return 1;
    }
    return aio_register(a);     /* something changed: poll again */
}

int
aio_wait_withdraw(aio_wait *a)
{
    waiter *w = &a->w;
    INVARIANT(a->registered, "only a registered wait is withdrawn");
    int withdrawn = a->c->withdraw(a->arg, w);
    if (atomic_load_explicit(&w->state, memory_order_acquire) == W_FIRED) {
        /* fired (by a source or a stop): on the hub's list until the
           loop takes it; off it now, the owner is done with it */
        wait_hub *h = a->hub;
        pthread_mutex_lock(&h->mutex);
        if (w->in_ready) {
            if (w->hprev != NULL) {
                w->hprev->hnext = w->hnext;
            }
            else {
                h->head = w->hnext;
            }
            if (w->hnext != NULL) {
                w->hnext->hprev = w->hprev;
            }
            else {
                h->tail = w->hprev;
            }
            w->in_ready = 0;
        }
        pthread_mutex_unlock(&h->mutex);
    }
    aio_unregister(a);
    return withdrawn;
}

Py_ssize_t
aio_wait_count(void)
{
    return atomic_load(&aio_registered);
}

int
wait_is_main_os_thread(void)
{
#if defined(__linux__)
    /* The main thread's kernel thread id is the process id (cached per
       thread, with the pid: a forked child's only thread is its main) */
    static _Thread_local pid_t cached_pid = 0;
    static _Thread_local int cached_main = 0;
    pid_t pid = getpid();
    if (cached_pid != pid) {
        cached_pid = pid;
        cached_main = (pid_t)syscall(SYS_gettid) == pid;
    }
    return cached_main;
#else
    return -1;
#endif
}

int
wait_is_signal_thread(void)
{
    if (PyInterpreterState_Get() != PyInterpreterState_Main()) {
        return 0;
    }
    /* unknown (-1): every thread of the main interpreter slices */
    return wait_is_main_os_thread() != 0;
}

wnode *
wlist_claim_first(wlist *l, uint32_t *prev)
{
    wlist_check(l);
    wnode *n = l->head.next;
    while (n != &l->head) {
        wnode *next = n->next;
        wnode_unlink(n);
        if (waiter_claim(n->w, prev)) {
            return n;
        }
        n = next;
    }
    return NULL;
}

uint32_t
wait_random(void)
{
    static _Thread_local uint32_t x = 0;
    if (x == 0) {
        x = (uint32_t)(monotonic_ns() ^ (uintptr_t)&x) | 1;
    }
    /* xorshift32 */
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

/* ------------------------------------------------------------------ */
/* items                                                               */

void
item_clear(item *it)
{
    if (it->m != NULL) {
        msg_free(it->m);
        it->m = NULL;
    }
}

/* ------------------------------------------------------------------ */
/* fork (an entry of the table in fork.c)                              */

/* parking.mutex is a leaf: nothing else of ours is taken under it (only
 * the condition-variable mutexes of waiters, without futexes). */
void
wait_fork_prepare(void)
{
    pthread_mutex_lock(&parking.mutex);
}

void
wait_fork_parent(void)
{
    pthread_mutex_unlock(&parking.mutex);
}

/* In the child only the forking thread exists: every parked waiter is
 * gone with its thread, and so is every interpreter being stopped. */
void
wait_fork_child(void)
{
    pthread_mutex_init(&parking.mutex, NULL);
    parking.head = NULL;
    parking.nstopped = 0;
}
