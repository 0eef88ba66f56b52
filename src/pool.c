/* pool.c - worker threads that each own an interpreter; the task and
 * result transport of subinterp.Pool.
 *
 * Design
 * ------
 * A pool is a plain C struct shared by the interpreter that created it
 * (the *owner*) and N native worker threads.  Each worker makes its own
 * interpreter and stays inside it, waiting for tasks with that
 * interpreter's GIL released.
 *
 *    owner interpreter                      worker threads (own GILs)
 *    -----------------                      -------------------------
 *    submit: encode (fn, args, kwargs)
 *            -> task, queue, wake a worker -> take task, decode, call,
 *                                             encode result -> task
 *    Future.result(): spin, then park  <---- fire the task's waiter
 *       on the task's waiter; decode,         (or, when nobody waits,
 *       complete the Future                    put it on the done list)
 *    collector thread: parks on the     <---- wake the collector
 *       done list; completes Futures in
 *       batches with the owner's GIL
 *
 * Workers never take the owner's GIL on the task path: a worker that had
 * to would wait for the owner's switch interval whenever the owner runs
 * Python.  Results are handed over in one of two ways, chosen per task by
 * one atomic word (task.notify):
 *
 *   - a thread waiting in Future.result() registers on the task first
 *     (NOTIFY_WAITER); the worker fires its waiter directly and that thread
 *     completes the Future itself: one hand-off, no extra thread woken;
 *   - otherwise the task goes on the pool's done list and the collector (a
 *     thread of the owner interpreter) completes the Futures of everything
 *     on the list at once, so callbacks, wait() and as_completed() work.
 *
 * Exactly one thread finalizes a task (task.state DONE or CANCELLED ->
 * DELIVERED): the one in Future.result(), or the collector.  Debug
 * builds check the tasks' states and the pool's counts where they change
 * (task_check, pool_check).
 *
 * Waiting uses the waiters of wait.c: a short adaptive spin, then a futex.
 *
 * Fork: CPython cannot fork while subinterpreters exist (the child
 * crashes deleting them).  An os.register_at_fork "before" hook of the
 * main interpreter pauses every pool: each worker finishes its running
 * task, closes its interpreter and parks; the fork happens with no worker
 * interpreter alive; after it, the workers make new ones (running the
 * initializer again) when there are tasks (worker_park).  Ctrl-C stops
 * the wait for running tasks (pools_fork_before).  In the child, where no
 * worker thread exists, a pthread_atfork handler marks every pool broken,
 * so its Futures and submit() fail instead of waiting for ever, and
 * subinterp.Pool() makes new pools there.
 *
 * Terminate (multiprocessing's Pool.terminate): shutdown with the queue
 * cancelled, and the tasks running now stopped the way the exit handler
 * stops an interpreter (runtime_interrupt_running): subinterp's waits
 * there raise SystemExit, and the running thread gets SystemExit
 * asynchronously.  Which task that hits is settled under the worker's own
 * GIL (worker.current / worker.interrupted), so a SystemExit meant for a
 * task that has just ended is taken back instead of landing in whatever
 * Python code that thread runs next.
 *
 * Lifetimes: the pool struct is reference counted (the owner's PoolCore
 * object, each live worker, and a fork's "before" hook until "after").  A
 * task is reference counted: the owner's token (a capsule), one the queue
 * takes, dropped by whoever finalizes the task, and one while it is on the
 * done list.  task.future is a strong
 * reference to an object of the owner interpreter: only touched with the
 * owner's GIL, cleared when the task is finalized.
 */
#include "subinterp.h"
#include "wait.h"

#include <signal.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* tasks                                                               */

enum {
    T_PENDING = 0,
    T_RUNNING = 1,
    T_DONE = 2,       /* outcome written */
    T_DELIVERED = 3,  /* finalized in the owner */
    T_CANCELLED = 4,  /* cancelled before it ran */
};

enum {
    OUTCOME_RESULT = 0,
    OUTCOME_EXCEPTION = 1,
    OUTCOME_BROKEN = 2,
    OUTCOME_CANCELLED = 3,
};

typedef struct task {
    _Atomic int refcnt;
    _Atomic int state;
    msg *in;             /* owned: (fn, args, kwargs) */
    msg *out;            /* owned, written before T_DONE: the result, or
                            an exception description when failed */
    msg *out_exc;        /* owned, written before T_DONE: when failed, the
                            exception itself if it could be encoded */
    int failed;          /* written before T_DONE */
    int broken;          /* written before T_DONE: never ran */
    int coro;            /* immutable: a coroutine task (the worker may
                            run it beside others on its event loop) */
    PyObject *future;    /* owner's object; owner's GIL only */
    /* pool.mutex: a thread blocked in result() (its waiter, on its
       stack), fired by the worker instead of the collector; and whether
       the worker is through with the task (handed on). */
    waiter *waiting;
    int handed;
    struct task *next;   /* pool.mutex: queue or done list; while a
                            worker's event loop runs it, that worker's
                            list of them (worker.aio, its thread only) */
} task;

/* The states a task may be in, by where it is (see task_check). */
enum {
    IN_QUEUE,       /* on the pool's queue: not taken by a worker yet */
    IN_DONE_LIST,   /* handed on to the collector */
};

/* A task's state machine:
 *
 *   PENDING -> RUNNING -> DONE -> DELIVERED
 *   PENDING -> CANCELLED -> DELIVERED
 *
 * RUNNING belongs to the worker (or to whoever fails a task that never
 * ran), which writes the outcome fields before DONE; DELIVERED is set by
 * the one thread that finalizes the task.  where: IN_QUEUE or
 * IN_DONE_LIST; the pool's mutex is held.  (The state itself may move on
 * meanwhile: cancel() needs no lock.) */
static void
task_check(const task *t, int where)
{
    if (!SUBINTERP_CHECKS) {
        return;
    }
    int state = atomic_load(&t->state);
    INVARIANT(state >= T_PENDING && state <= T_CANCELLED,
              "a task's state is one of T_*");
    INVARIANT(atomic_load(&t->refcnt) >= 1,
              "a task on a list holds a reference");
    INVARIANT(t->in != NULL, "a queued task has its input");
    if (where == IN_QUEUE) {
        INVARIANT(state != T_RUNNING && state != T_DONE,
                  "a queued task has not been taken by a worker");
        INVARIANT(!t->handed, "a queued task has not been handed on");
    }
    else {
        INVARIANT(state != T_PENDING && state != T_RUNNING,
                  "a task on the done list ran, or will not run");
        INVARIANT(t->handed, "a task on the done list was handed on");
        INVARIANT(t->waiting == NULL,
                  "nobody waits on a task that was handed on");
    }
    if (state == T_DONE || state == T_DELIVERED) {
        /* written before T_DONE */
        INVARIANT(!(t->broken && t->failed),
                  "a task that never ran did not fail either");
        INVARIANT(!t->broken || t->out == NULL,
                  "a task that never ran has no outcome");
    }
}

/* Append t to a task list (the queue, or the done list).  mutex held. */
static void
task_list_append(task **head, task **tail, task *t)
{
    t->next = NULL;
    if (*tail != NULL) {
        (*tail)->next = t;
    }
    else {
        *head = t;
    }
    *tail = t;
}

/* t never ran and never will (its pool broke): PENDING -> RUNNING ->
 * DONE with t->broken set, unless it was cancelled (or taken) first. */
static void
task_fail_unrun(task *t)
{
    int expect = T_PENDING;
    if (atomic_compare_exchange_strong(&t->state, &expect, T_RUNNING)) {
        t->broken = 1;
        atomic_store(&t->state, T_DONE);
    }
}

static void
task_decref(task *t)
{
    if (atomic_fetch_sub(&t->refcnt, 1) == 1) {
        assert(t->future == NULL);
        if (t->in != NULL) {
            msg_free(t->in);
        }
        if (t->out_exc != NULL) {
            msg_free(t->out_exc);
        }
        if (t->out != NULL) {
            msg_free(t->out);
        }
        PyMem_RawFree(t);
    }
}

/* ------------------------------------------------------------------ */
/* pools                                                               */

typedef struct pool pool;

typedef struct {
    pool *pool;
    int index;
    waiter w;            /* idle wait, and parked for a fork */
    int replace;         /* leave the loop to get a new interpreter */
    int pause;           /* left the loop because a fork is coming */
    /* For terminate() (poolobj_terminate): */
    interp_entry *entry;          /* pool.mutex: its interpreter, while
                                     it has one (the worker's reference) */
    _Atomic(task *) current;      /* the task it runs; set and cleared by
                                     the worker with its interpreter's GIL
                                     held */
    _Atomic int interrupted;      /* SystemExit was raised in it for
                                     current (under that GIL too) */
    long n_taken;        /* tasks taken by its interpreter (its thread) */
    /* Concurrent coroutine tasks (max_concurrency > 1; worker_serve): */
    task *aio;           /* its thread only: the tasks its loop runs */
    PyThreadState *serving;   /* its thread only: its thread state while
                                 worker_serve runs, else NULL */
} worker;

struct pool {
    pthread_mutex_t mutex;
    /* All below: mutex, unless said otherwise. */
    int refcnt;
    task *head, *tail;          /* queued tasks */
    task *done_head, *done_tail;
    waiter **idle;              /* parked workers, n_workers slots */
    int n_idle;
    waiter **cold;              /* workers parked without an interpreter
                                   after a fork, waiting for a task */
    int n_cold;
    waiter *collector;          /* parked collector, or NULL */
    waiter *joiner;             /* a thread waiting for workers to exit */
    int shutdown;
    int broken;
    char *broken_msg;           /* PyMem_RawMalloc, UTF-8 */
    int n_alive;                /* workers not exited */
    int n_ready;                /* interpreters the workers made (one
                                   more each time a worker replaces its
                                   own) */
    int64_t outstanding;        /* submitted, not finalized */
    int started;                /* start() was called */
    int pausing;                /* forks coming (one per forking thread):
                                   workers park while above 0 */
    int n_parked;               /* workers parked without interpreter */
    _Atomic int terminating;    /* terminate(): workers run no more tasks
                                   (atomic: read without the mutex) */
    struct forker *forkers;     /* threads waiting for the workers to park */

    pool *all_prev, *all_next;  /* all_pools; pools_mutex */

    /* Immutable after start. */
    int n_workers;
    worker *workers;
    PyInterpreterState *owner;
    PyInterpreterConfig cfg;
    path_copy path;
    msg *initializer;           /* (fn, args) or NULL */
    long max_tasks;             /* 0: no limit */
    int max_conc;               /* coroutine tasks a worker runs at once */
    char name[16];              /* OS thread name prefix */
};

/* The pool's counts and lists agree with each other; every task on them
 * passes task_check.  mutex held.  The lists are walked to a bounded
 * depth: a queue of many thousands of tasks would make every submit()
 * of a checking build walk all of them. */
static void
pool_check(const pool *p)
{
    enum { DEPTH = 64 };
    if (!SUBINTERP_CHECKS) {
        return;
    }
    INVARIANT(p->n_alive >= 0 && p->n_alive <= p->n_workers,
              "live workers are some of the pool's workers");
    INVARIANT(p->started || p->n_alive == 0,
              "no worker lives before start()");
    INVARIANT(p->refcnt >= p->n_alive,
              "each live worker holds a reference to the pool");
    INVARIANT(p->n_idle >= 0 && p->n_cold >= 0 && p->n_parked >= 0,
              "counts of workers are not negative");
    INVARIANT(p->n_parked <= p->n_alive, "parked workers are alive");
    INVARIANT(p->n_cold <= p->n_parked,
              "workers waiting without an interpreter are parked");
    INVARIANT(p->n_idle + p->n_cold <= p->n_alive,
              "each live worker waits on at most one list");
    INVARIANT(p->pausing >= 0, "every pause is resumed once");
    INVARIANT(p->outstanding >= 0,
              "no task is finalized twice or without being submitted");
    INVARIANT((p->head == NULL) == (p->tail == NULL),
              "the queue's head and tail are both set or both NULL");
    INVARIANT(p->tail == NULL || p->tail->next == NULL,
              "the queue ends at its tail");
    INVARIANT((p->done_head == NULL) == (p->done_tail == NULL),
              "the done list's head and tail are both set or both NULL");
    INVARIANT(p->done_tail == NULL || p->done_tail->next == NULL,
              "the done list ends at its tail");
    INVARIANT(p->head == NULL || !p->broken,
              "a broken pool queues nothing");
    int n = 0;
    for (const task *t = p->head; t != NULL && n < DEPTH; t = t->next) {
        task_check(t, IN_QUEUE);
        n++;
    }
    n = 0;
    for (const task *t = p->done_head; t != NULL && n < DEPTH;
         t = t->next) {
        task_check(t, IN_DONE_LIST);
        n++;
    }
}

/* Every pool of the process, for fork.  pools_mutex is taken before any
 * pool's mutex. */
static pthread_mutex_t pools_mutex = PTHREAD_MUTEX_INITIALIZER;
static pool *all_pools;

static void
pools_add(pool *p)
{
    pthread_mutex_lock(&pools_mutex);
    p->all_prev = NULL;
    p->all_next = all_pools;
    if (all_pools != NULL) {
        all_pools->all_prev = p;
    }
    all_pools = p;
    pthread_mutex_unlock(&pools_mutex);
}

static void
pools_remove(pool *p)
{
    pthread_mutex_lock(&pools_mutex);
    if (p->all_prev != NULL) {
        p->all_prev->all_next = p->all_next;
    }
    else if (all_pools == p) {
        all_pools = p->all_next;
    }
    if (p->all_next != NULL) {
        p->all_next->all_prev = p->all_prev;
    }
    p->all_prev = p->all_next = NULL;
    pthread_mutex_unlock(&pools_mutex);
}

static void
pool_free(pool *p)
{
    assert(p->head == NULL);
    /* Tasks are left on the done list only in a forked child, where no
       collector runs: drop the list's references.  A task whose Future
       was never completed keeps its own (it is leaked): its future may
       only be released with the owner's GIL. */
    task *t = p->done_head;
    while (t != NULL) {
        task *next = t->next;
        if (t->future == NULL) {
            task_decref(t);
        }
        t = next;
    }
    p->done_head = p->done_tail = NULL;
    for (int i = 0; i < p->n_workers; i++) {
        waiter_fini(&p->workers[i].w);
    }
    PyMem_RawFree(p->workers);
    PyMem_RawFree(p->idle);
    PyMem_RawFree(p->cold);
    PyMem_RawFree(p->broken_msg);
    if (p->initializer != NULL) {
        msg_free(p->initializer);
    }
    path_copy_free(&p->path);
    pthread_mutex_destroy(&p->mutex);
    PyMem_RawFree(p);
}

static void
pool_decref(pool *p)
{
    pthread_mutex_lock(&p->mutex);
    int last = --p->refcnt == 0;
    pthread_mutex_unlock(&p->mutex);
    if (last) {
        pools_remove(p);
        pool_free(p);
    }
}

/* The collector may have something to do.  mutex held. */
static void
kick_collector(pool *p)
{
    if (p->collector != NULL) {
        waiter_notify(p->collector);
        p->collector = NULL;
    }
}

static void
kick_joiner(pool *p)
{
    if (p->joiner != NULL) {
        waiter_notify(p->joiner);
        p->joiner = NULL;
    }
}

/* A thread waiting in a fork's "before" hook (on its stack; more than one
 * when threads fork at once). */
typedef struct forker {
    waiter w;
    struct forker *next;
} forker;

/* A worker parked or exited: once all are, wake the threads waiting to
 * fork.  mutex held. */
static void
kick_forker(pool *p)
{
    if (p->n_parked < p->n_alive) {
        return;
    }
    for (forker *f = p->forkers; f != NULL; f = f->next) {
        waiter_notify(&f->w);
    }
    p->forkers = NULL;
}

static void
wake_all_idle(pool *p)
{
    for (int i = 0; i < p->n_idle; i++) {
        waiter_notify(p->idle[i]);
    }
    p->n_idle = 0;
    for (int i = 0; i < p->n_cold; i++) {
        waiter_notify(p->cold[i]);
    }
    p->n_cold = 0;
}

/* The worker is through with t (ran it, or skipped it): fire the thread
 * waiting in result(), or else put t on the done list for the collector.
 * Under the mutex, so that a waiter that gives up (withdraws under it too)
 * is either fired here or not touched at all.  No lock held on entry. */
static void
task_finish(pool *p, task *t)
{
    pthread_mutex_lock(&p->mutex);
    t->handed = 1;
    waiter *w = t->waiting;
    t->waiting = NULL;
    if (w == NULL || !waiter_notify(w)) {
        /* Nobody waits: the collector finalizes it.  The done list holds
           a reference of its own. */
        atomic_fetch_add(&t->refcnt, 1);
        task_list_append(&p->done_head, &p->done_tail, t);
        kick_collector(p);
    }
    pool_check(p);
    pthread_mutex_unlock(&p->mutex);
}

/* The pool takes no more tasks (shutdown): idle and parked workers wake
 * up to leave once the queue is empty, and so does the collector, which
 * ends when every task is finalized.  With cancel, the queue is taken off
 * and returned, for cancel_tasks.  mutex held. */
static task *
stop_taking(pool *p, int cancel)
{
    task *list = NULL;
    p->shutdown = 1;
    if (cancel) {
        list = p->head;
        p->head = p->tail = NULL;
    }
    wake_all_idle(p);
    kick_collector(p);
    pool_check(p);
    return list;
}

/* Mark the pool broken and fail every queued task.  mutex held. */
static task *
break_pool(pool *p, const char *why)
{
    if (!p->broken) {
        p->broken = 1;
        size_t n = strlen(why);
        p->broken_msg = PyMem_RawMalloc(n + 1);
        if (p->broken_msg != NULL) {
            memcpy(p->broken_msg, why, n + 1);
        }
    }
    task *list = p->head;
    p->head = p->tail = NULL;
    wake_all_idle(p);
    pool_check(p);
    return list;
}

/* Fail the tasks of list (taken off the queue): they never ran.  No lock
 * held. */
static void
fail_tasks(pool *p, task *list)
{
    while (list != NULL) {
        task *next = list->next;
        task_fail_unrun(list);
        task_finish(p, list);
        list = next;
    }
}

/* Break the pool because of the exception being raised (cleared here):
 * its text becomes the BrokenInterpreterPool message. */
static void
break_with_exception(pool *p, const char *what)
{
    interp_explain_import_error();
    PyObject *text = interp_describe_error();
    const char *s = text ? PyUnicode_AsUTF8(text) : NULL;
    char why[2048];
    PyOS_snprintf(why, sizeof(why), "%s: %s", what,
                  s ? s : "(unknown error)");
    PyErr_Clear();
    Py_XDECREF(text);
    pthread_mutex_lock(&p->mutex);
    task *list = break_pool(p, why);
    pthread_mutex_unlock(&p->mutex);
    fail_tasks(p, list);
}

/* ------------------------------------------------------------------ */
/* workers                                                             */

/* Remove w from a list of parked waiters (idle, cold), if there: a wait
 * that ends unfired (its interpreter is being stopped).  mutex held. */
static void
parked_remove(waiter **list, int *n, waiter *w)
{
    for (int i = 0; i < *n; i++) {
        if (list[i] == w) {
            list[i] = list[--*n];
            return;
        }
    }
}

typedef struct {
    pool *p;
    worker *wk;
    task *t;        /* out */
} take_wait;

static int
take_poll(void *arg, waiter *w)
{
    take_wait *a = (take_wait *)arg;
    pool *p = a->p;
    int done = 1;
    pthread_mutex_lock(&p->mutex);
    if (p->pausing) {
        a->wk->pause = 1;
    }
    else if (p->head != NULL) {
        a->t = p->head;
        p->head = a->t->next;
        if (p->head == NULL) {
            p->tail = NULL;
        }
    }
    else if (!p->shutdown && !p->broken) {
        p->idle[p->n_idle++] = w;
        done = 0;
    }
    pool_check(p);
    pthread_mutex_unlock(&p->mutex);
    return done;
}

static int
take_withdraw(void *arg, waiter *w)
{
    pool *p = ((take_wait *)arg)->p;
    pthread_mutex_lock(&p->mutex);
    parked_remove(p->idle, &p->n_idle, w);
    int withdrawn = waiter_withdraw(w);
    pthread_mutex_unlock(&p->mutex);
    return withdrawn;
}

/* Take the next task, waiting with this interpreter's GIL released.  NULL
 * when the pool shuts down (and the queue is empty) or broke, when the
 * worker's interpreter is being stopped, or (with wk->pause set) when a
 * fork is coming. */
static task *
worker_take(pool *p, worker *wk)
{
    static const wait_cond cond = {take_poll, take_withdraw, 0};
    static const deadline forever = {.forever = 1};
    take_wait a = {.p = p, .wk = wk, .t = NULL};
    if (wait_until(&cond, &a, &wk->w, &forever, 0) < 0) {
        PyErr_Clear();  /* SystemExit: stopped; the worker leaves */
    }
    return a.t;
}

/* The task wk ran (current) is over: no SystemExit of terminate() is for
 * it any more, and one raised already is taken back while it is still
 * pending, so that it neither interrupts the capture of the task's
 * outcome (which runs Python code and may let the GIL go) nor reaches
 * what runs next.  Its interpreter's GIL held throughout: terminate()
 * decides whether to raise while holding it (worker_still_running). */
static void
worker_task_over(worker *wk)
{
    atomic_store(&wk->current, NULL);
    if (atomic_exchange(&wk->interrupted, 0)) {
        (void)PyThreadState_SetAsyncExc(PyThread_get_thread_ident(), NULL);
    }
}

/* Run one task inside the worker's interpreter; wk: it is the worker's
 * current task (NULL: a plain task taken by a serving loop, which stays
 * current for the loop's coroutine tasks). */
static void
worker_run(module_state *st, worker *wk, task *t)
{
    PyObject *in = NULL;
    PyObject *res = NULL;
    in = codec_decode(st, t->in);
    if (in == NULL) {
        goto error;
    }
    if (!PyTuple_Check(in) || PyTuple_GET_SIZE(in) != 3) {
        PyErr_SetString(PyExc_SystemError, "bad pool task");
        goto error;
    }
    PyObject *kwargs = PyTuple_GET_ITEM(in, 2);
    res = interp_call_in_main(st, PyTuple_GET_ITEM(in, 0),
                              PyTuple_GET_ITEM(in, 1),
                              kwargs == Py_None ? NULL : kwargs);
    if (res == NULL) {
        goto error;
    }
    t->out = codec_encode(st, res);
    if (t->out == NULL) {
        goto error;
    }
    goto done;
error:
    if (wk != NULL) {
        worker_task_over(wk);
    }
    t->failed = 1;
    t->out = interp_capture_exception(st, &t->out_exc);
done:
    Py_XDECREF(in);
    Py_XDECREF(res);
}

/* Run the initializer; on failure the pool is broken. */
static int
worker_initialize(module_state *st, pool *p)
{
    PyObject *init = NULL;
    PyObject *res = NULL;
    if (p->initializer == NULL) {
        return 0;
    }
    init = codec_decode(st, p->initializer);
    if (init == NULL || !PyTuple_Check(init) || PyTuple_GET_SIZE(init) != 2 ||
        !PyTuple_Check(PyTuple_GET_ITEM(init, 1))) {
        goto error;
    }
    res = interp_call_in_main(st, PyTuple_GET_ITEM(init, 0),
                              PyTuple_GET_ITEM(init, 1), NULL);
    if (res == NULL) {
        goto error;
    }
    Py_DECREF(res);
    Py_DECREF(init);
    return 0;
error:
    Py_XDECREF(init);
    break_with_exception(p, "the pool's initializer failed");
    return -1;
}

/* ------------------------------------------------------------------ */
/* coroutine tasks side by side (max_concurrency > 1)                  */

/* A worker that takes a coroutine task while max_concurrency > 1 serves
 * on its interpreter's event loop (subinterp._coroutines.serve, driven by
 * this thread) until it has nothing left to run:
 *
 *   - while its loop has room, it takes further tasks without blocking
 *     (_pool_worker_take): a coroutine task starts as an asyncio task, a
 *     plain one runs right there (blocking the loop meanwhile);
 *   - when its loop has room and nothing is queued, it awaits
 *     _pool_worker_wait(handle, True): an event-loop wait (WAKE_FD, the
 *     loop's hub) on pool.idle beside the idle workers' threads, fired
 *     like theirs by pool_enqueue and by everything that makes the
 *     workers stop taking (wake_all_idle);
 *   - for as long as it serves, it also awaits
 *     _pool_worker_wait(handle, False), which nothing but the stop of its
 *     interpreter fires (terminate: wait_interrupt_interp), so that a
 *     loop waiting for its coroutines' IO gets its SystemExit at once;
 *   - each coroutine's end writes its outcome (_pool_worker_finish);
 *   - once the pool stops taking (shutdown, fork, terminate,
 *     max_tasks_per_worker), the loop runs the started coroutines to
 *     their end and serve returns; so it does when no coroutine runs and
 *     nothing is queued, and the worker goes back to its futex wait
 *     (worker_take).
 *
 * No polling and no thread besides the worker: one wait, the selector's,
 * through the loop's hub like every awaitable operation (aio.c).
 * The tasks the loop runs are on worker.aio (linked through task.next);
 * whatever is left there when serve returns (it raised: terminate's
 * SystemExit, or a bug) is failed with that exception. */

static void
aio_add(worker *wk, task *t)
{
    t->next = wk->aio;
    wk->aio = t;
}

/* Take t off wk->aio: 1, or 0 when it is not there. */
static int
aio_remove(worker *wk, task *t)
{
    for (task **link = &wk->aio; *link != NULL; link = &(*link)->next) {
        if (*link == t) {
            *link = t->next;
            t->next = NULL;
            return 1;
        }
    }
    return 0;
}

/* (token, (fn, args, kwargs)) for the coroutine task t (RUNNING), now on
 * wk->aio: what serve starts.  NULL with an exception set, t failed. */
static PyObject *
aio_start(module_state *st, pool *p, worker *wk, task *t)
{
    PyObject *in = codec_decode(st, t->in);
    PyObject *token = NULL;
    PyObject *res = NULL;
    if (in == NULL) {
        goto error;
    }
    token = PyCapsule_New(t, "subinterp.running", NULL);
    if (token == NULL) {
        goto error;
    }
    res = PyTuple_Pack(2, token, in);
    if (res == NULL) {
        goto error;
    }
    aio_add(wk, t);
    Py_DECREF(token);
    Py_DECREF(in);
    return res;
error:
    Py_XDECREF(token);
    Py_XDECREF(in);
    /* the task's exception: why it could not start */
    t->failed = 1;
    t->out = interp_capture_exception(st, &t->out_exc);
    atomic_store(&t->state, T_DONE);
    task_finish(p, t);
    return NULL;
}

/* Write the outcome of t (RUNNING): exc, or else the encoded result. */
static void
task_write_outcome(module_state *st, task *t, PyObject *exc,
                   PyObject *result)
{
    if (exc == NULL) {
        t->out = codec_encode(st, result);
        if (t->out != NULL) {
            return;
        }
    }
    else {
        PyErr_SetRaisedException(Py_NewRef(exc));
    }
    t->failed = 1;
    t->out = interp_capture_exception(st, &t->out_exc);
}

/* The worker behind a serve's handle, when called by its own thread
 * during worker_serve; NULL with RuntimeError otherwise. */
static worker *
serving_worker(PyObject *handle)
{
    worker *wk = PyCapsule_GetPointer(handle, "subinterp.worker");
    if (wk == NULL) {
        return NULL;
    }
    if (wk->serving != PyThreadState_Get()) {
        PyErr_SetString(PyExc_RuntimeError,
                        "only a pool worker serving coroutine tasks "
                        "takes tasks");
        return NULL;
    }
    return wk;
}

/* _pool_worker_take(handle) -> (token, (fn, args, kwargs)) | True | None
 *                              | False
 * The next task, without blocking: a coroutine task to start; True when
 * it ran a plain task (or skipped a cancelled one): call again; None when
 * nothing is queued (await _pool_worker_wait(handle, True));
 * False when the worker takes no more tasks (the pool stops taking,
 * pauses for a fork, or this interpreter did max_tasks_per_worker). */
static PyObject *
pool_worker_take(PyObject *mod, PyObject *handle)
{
    (void)mod;
    worker *wk = serving_worker(handle);
    module_state *st = get_current_state();
    if (wk == NULL || st == NULL) {
        return NULL;
    }
    pool *p = wk->pool;
    task *t = NULL;
    pthread_mutex_lock(&p->mutex);
    int stop = 0;
    if (p->pausing) {
        wk->pause = 1;
        stop = 1;
    }
    else if (atomic_load(&p->terminating) ||
             (p->max_tasks > 0 && wk->n_taken >= p->max_tasks)) {
        stop = 1;
    }
    else if (p->head != NULL) {
        t = p->head;
        p->head = t->next;
        if (p->head == NULL) {
            p->tail = NULL;
        }
    }
    else if (p->shutdown || p->broken) {
        stop = 1;
    }
    pool_check(p);
    pthread_mutex_unlock(&p->mutex);
    if (stop) {
        Py_RETURN_FALSE;
    }
    if (t == NULL) {
        Py_RETURN_NONE;
    }
    wk->n_taken++;
    int expect = T_PENDING;
    if (!atomic_compare_exchange_strong(&t->state, &expect, T_RUNNING)) {
        task_finish(p, t);      /* cancelled while queued */
        Py_RETURN_TRUE;
    }
    if (t->coro) {
        PyObject *res = aio_start(st, p, wk, t);
        if (res == NULL) {
            PyErr_Clear();      /* t's exception now */
            Py_RETURN_TRUE;
        }
        return res;
    }
    worker_run(st, NULL, t);
    atomic_store(&t->state, T_DONE);
    task_finish(p, t);
    Py_RETURN_TRUE;
}

/* _pool_worker_finish(handle, token, exc, result): the coroutine task of
 * token ended, with exc (an exception) or else result. */
static PyObject *
pool_worker_finish(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    (void)mod;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError,
                        "_pool_worker_finish(handle, token, exc, result)");
        return NULL;
    }
    worker *wk = serving_worker(args[0]);
    module_state *st = get_current_state();
    if (wk == NULL || st == NULL) {
        return NULL;
    }
    task *t = PyCapsule_GetPointer(args[1], "subinterp.running");
    if (t == NULL) {
        return NULL;
    }
    if (!aio_remove(wk, t)) {
        PyErr_SetString(PyExc_RuntimeError, "the task was finished already");
        return NULL;
    }
    PyObject *exc = args[2] == Py_None ? NULL : args[2];
    if (exc != NULL && !PyExceptionInstance_Check(exc)) {
        aio_add(wk, t);
        PyErr_SetString(PyExc_TypeError, "exc must be an exception or None");
        return NULL;
    }
    task_write_outcome(st, t, exc, args[3]);
    atomic_store(&t->state, T_DONE);
    task_finish(wk->pool, t);
    Py_RETURN_NONE;
}

/* The serving loop's two waits, _AioOps (aio.c) woken through its hub:
 * "news" (something for the worker to look at: a queued task, or a
 * reason to stop taking; pool_worker_take says which), linked on
 * pool.idle like an idle worker's thread; and "stop", linked on no
 * source: only the stop of the worker's interpreter fires it (every
 * event-loop wait is on the parking list), and the op then fails with
 * SystemExit. */
typedef struct {
    aio_wait aw;        /* first: aio.c finds the payload from it */
    take_wait tw;       /* p (a reference) and wk; tw.t unused */
} serve_wait;

static int
news_poll(void *arg, waiter *w)
{
    take_wait *a = (take_wait *)arg;
    pool *p = a->p;
    worker *wk = a->wk;
    pthread_mutex_lock(&p->mutex);
    int news = p->head != NULL || p->pausing || p->shutdown || p->broken ||
               atomic_load(&p->terminating) ||
               (p->max_tasks > 0 && wk->n_taken >= p->max_tasks);
    if (!news && w != NULL) {
        p->idle[p->n_idle++] = w;
    }
    pool_check(p);
    pthread_mutex_unlock(&p->mutex);
    return news;
}

static int
stop_poll(void *Py_UNUSED(arg), waiter *Py_UNUSED(w))
{
    return 0;
}

static int
stop_withdraw(void *Py_UNUSED(arg), waiter *w)
{
    return waiter_withdraw(w);
}

static PyObject *
serve_wait_result(module_state *Py_UNUSED(st), aio_wait *Py_UNUSED(a))
{
    Py_RETURN_NONE;
}

/* A news wait fired, and the serving loop gave it up before it looked
 * (it stopped serving): the wake-up goes to another idle worker, as an
 * enqueue would have given it, so that no queued task is left waiting. */
static void
serve_wait_undo(aio_wait *a)
{
    pool *p = ((serve_wait *)a)->tw.p;
    pthread_mutex_lock(&p->mutex);
    if (p->head != NULL && p->n_idle > 0) {
        waiter_notify(p->idle[--p->n_idle]);
    }
    pool_check(p);
    pthread_mutex_unlock(&p->mutex);
}

static void
serve_wait_free(aio_wait *a)
{
    pool_decref(((serve_wait *)a)->tw.p);
    PyMem_RawFree(a);
}

static const aio_op_kind serve_wait_kind = {
    serve_wait_result, serve_wait_result, serve_wait_undo, serve_wait_free,
};

/* _pool_worker_wait(handle, news) -> _AioOp: the serving loop's news
 * wait (news true) or stop wait (see above). */
static PyObject *
pool_worker_wait(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
    static const wait_cond news_cond = {news_poll, take_withdraw, 0};
    static const wait_cond stop_cond = {stop_poll, stop_withdraw, 0};
    (void)mod;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "_pool_worker_wait(handle, news)");
        return NULL;
    }
    worker *wk = serving_worker(args[0]);
    module_state *st = get_current_state();
    int news = PyObject_IsTrue(args[1]);
    if (wk == NULL || st == NULL || news < 0) {
        return NULL;
    }
    serve_wait *sw = PyMem_RawCalloc(1, sizeof(*sw));
    if (sw == NULL) {
        return PyErr_NoMemory();
    }
    pool *p = wk->pool;
    pthread_mutex_lock(&p->mutex);
    p->refcnt++;        /* serve_wait_free drops it */
    pthread_mutex_unlock(&p->mutex);
    sw->tw.p = p;
    sw->tw.wk = wk;
    sw->aw.c = news ? &news_cond : &stop_cond;
    sw->aw.arg = &sw->tw;
    return aio_op_new(st, &serve_wait_kind, &sw->aw, args[0]);
}

/* Run the coroutine task t (RUNNING) and whatever else the worker takes
 * meanwhile on its event loop, until none is left (see above). */
static void
worker_serve(module_state *st, pool *p, worker *wk, task *t)
{
    PyObject *serve = NULL;
    PyObject *handle = NULL;
    PyObject *first = NULL;
    PyObject *args = NULL;
    PyObject *res = NULL;
    PyObject *mod = PyImport_ImportModule("subinterp._coroutines");
    if (mod == NULL) {
        goto error;
    }
    serve = PyObject_GetAttrString(mod, "serve");
    Py_DECREF(mod);
    if (serve == NULL) {
        goto error;
    }
    handle = PyCapsule_New(wk, "subinterp.worker", NULL);
    if (handle == NULL) {
        goto error;
    }
    first = aio_start(st, p, wk, t);
    t = NULL;   /* on wk->aio, or finished */
    if (first == NULL) {
        PyErr_Clear();  /* the task's exception */
        goto done;
    }
    args = Py_BuildValue("(OOi)", handle, first, p->max_conc);
    if (args == NULL) {
        goto error;
    }
    wk->serving = PyThreadState_Get();
    res = interp_call_in_main(st, serve, args, NULL);
    wk->serving = NULL;
    if (res == NULL) {
        goto error;
    }
    goto done;
error:
    if (t != NULL) {
        aio_add(wk, t);
    }
    /* the tasks left unfinished end with this exception */
    PyObject *exc = PyErr_GetRaisedException();
    worker_task_over(wk);
    while (wk->aio != NULL) {
        task *left = wk->aio;
        wk->aio = left->next;
        left->next = NULL;
        task_write_outcome(st, left, exc, NULL);
        atomic_store(&left->state, T_DONE);
        task_finish(p, left);
    }
    Py_XDECREF(exc);
done:
    Py_XDECREF(serve);
    Py_XDECREF(handle);
    Py_XDECREF(first);
    Py_XDECREF(args);
    Py_XDECREF(res);
}

/* Inside the worker's interpreter (interp_fn): serve tasks until the pool
 * shuts down, breaks, or this interpreter did max_tasks. */
static void
worker_loop(void *arg)
{
    worker *wk = (worker *)arg;
    pool *p = wk->pool;
    module_state *st = get_current_state();
    wk->n_taken = 0;
    if (st == NULL) {
        break_with_exception(p, "subinterp could not be imported in a "
                                "worker interpreter");
        return;
    }
    if (worker_initialize(st, p) < 0) {
        return;
    }
    for (;;) {
        if (p->max_tasks > 0 && wk->n_taken >= p->max_tasks) {
            /* with every coroutine it started ended (worker_serve) */
            wk->replace = 1;
            return;
        }
        task *t = worker_take(p, wk);
        if (t == NULL) {
            return;
        }
        wk->n_taken++;
        int expect = T_PENDING;
        /* current, then terminating; terminate() stores terminating, then
           reads current (both sequentially consistent): a task taken
           while the pool terminates is either seen running and stopped
           there, or not run.  While the loop serves coroutine tasks,
           current is the first one: terminate() stops the loop. */
        atomic_store(&wk->current, t);
        if (atomic_load(&p->terminating)) {
            (void)atomic_compare_exchange_strong(&t->state, &expect,
                                                 T_CANCELLED);
        }
        else if (atomic_compare_exchange_strong(&t->state, &expect,
                                                T_RUNNING)) {
            if (t->coro && p->max_conc > 1) {
                worker_serve(st, p, wk, t);
                t = NULL;   /* finished there */
            }
            else {
                worker_run(st, wk, t);
                atomic_store(&t->state, T_DONE);
            }
        }
        worker_task_over(wk);
        if (t != NULL) {
            task_finish(p, t);
        }
    }
}

/* Parked for a fork, without an interpreter, holding no GIL, until the
 * fork is over (in the parent: in the child this thread does not exist)
 * and there is a task to run: a new interpreter is made on demand, so
 * that forks in a row (multiprocessing starting its processes) find the
 * workers parked already, and idle workers cost nothing meanwhile.
 * 0: go on, with a new interpreter; -1: the pool has nothing more to do. */
static int
park_poll(void *arg, waiter *w)
{
    pool *p = (pool *)arg;
    int done = 1;
    pthread_mutex_lock(&p->mutex);
    if (p->pausing || (p->head == NULL && !p->shutdown && !p->broken)) {
        p->cold[p->n_cold++] = w;
        done = 0;
    }
    pool_check(p);
    pthread_mutex_unlock(&p->mutex);
    return done;
}

static int
park_withdraw(void *arg, waiter *w)
{
    pool *p = (pool *)arg;
    pthread_mutex_lock(&p->mutex);
    parked_remove(p->cold, &p->n_cold, w);
    int withdrawn = waiter_withdraw(w);
    pthread_mutex_unlock(&p->mutex);
    return withdrawn;
}

static int
worker_park(pool *p, worker *wk)
{
    static const wait_cond cond = {park_poll, park_withdraw, 0};
    static const deadline forever = {.forever = 1};
    int go_on;
    pthread_mutex_lock(&p->mutex);
    p->n_parked++;
    kick_forker(p);
    pool_check(p);
    pthread_mutex_unlock(&p->mutex);
    /* in the owner's interpreter: stopping it stops the worker */
    int r = wait_until(&cond, p, &wk->w, &forever, 0);
    if (r < 0) {
        PyErr_Clear();
    }
    pthread_mutex_lock(&p->mutex);
    p->n_parked--;
    go_on = r == WAIT_FIRED && !p->broken &&
            !(p->shutdown && p->head == NULL);
    pool_check(p);
    pthread_mutex_unlock(&p->mutex);
    return go_on ? 0 : -1;
}

/* A worker thread ends: the last one fails what is still queued, since
 * nobody is left to run it.  Drops the worker's reference to p.  No lock
 * held. */
static void
worker_exit(pool *p)
{
    task *list = NULL;
    pthread_mutex_lock(&p->mutex);
    p->n_alive--;
    kick_forker(p);
    if (p->n_alive == 0) {
        list = p->head;
        p->head = p->tail = NULL;
        kick_joiner(p);
        kick_collector(p);
    }
    pool_check(p);
    pthread_mutex_unlock(&p->mutex);
    fail_tasks(p, list);
    pool_decref(p);
}

static void
worker_main(void *arg)
{
    worker *wk = (worker *)arg;
    pool *p = wk->pool;
    char name[16];
    PyOS_snprintf(name, sizeof(name), "%s%d", p->name, wk->index);
    (void)pthread_setname_np(pthread_self(), name);

    /* A thread state of the owner: Py_NewInterpreterFromConfig needs a
       current one, and closing needs one to come back to. */
    PyThreadState *tstate = PyThreadState_New(p->owner);
    if (tstate == NULL) {
        goto exit;
    }
    PyEval_RestoreThread(tstate);
    for (;;) {
        interp_entry *e = NULL;
        path_copy path = p->path;  /* shared strings, own flag */
        path.failed = 0;
        wk->replace = 0;
        if (set_err(NULL, runtime_create(&p->cfg, interp_init_new, &path,
                                         &e)) < 0) {
            break_with_exception(p, "a worker could not create its "
                                    "interpreter");
            break;
        }
        pthread_mutex_lock(&p->mutex);
        p->n_ready++;
        wk->entry = e;
        pthread_mutex_unlock(&p->mutex);
        int err = runtime_run_in(e, worker_loop, wk);
        (void)err;
        pthread_mutex_lock(&p->mutex);
        wk->entry = NULL;
        pthread_mutex_unlock(&p->mutex);
        /* Its own threads are joined there; daemon threads (legacy
           config) would keep it alive until exit. */
        (void)runtime_close(e, 0);
        entry_decref(e);
        if (wk->pause) {
            wk->pause = 0;
            if (worker_park(p, wk) < 0) {
                break;
            }
            continue;
        }
        if (!wk->replace) {
            break;
        }
    }
    PyThreadState_Clear(tstate);
    PyThreadState_DeleteCurrent();
exit:
    worker_exit(p);
}

/* ------------------------------------------------------------------ */
/* the PoolCore type (one per Pool, in the owner interpreter)           */

typedef struct {
    PyObject_HEAD
    pool *pool;
    PyObject *broken_cls;   /* raised by submit() once the pool broke */
    exc_rebuild exc_how;    /* immutable: how a task's exception is
                               raised here (its __cause__) */
} PoolObject;

static module_state *
pool_state(PyObject *self)
{
    return get_mod_state_by_type(Py_TYPE(self));
}

static void
task_capsule_free(PyObject *capsule)
{
    task *t = PyCapsule_GetPointer(capsule, "subinterp.task");
    if (t != NULL) {
        task_decref(t);
    }
}

static task *
task_from_capsule(PyObject *capsule)
{
    return PyCapsule_GetPointer(capsule, "subinterp.task");
}

static int register_pool_fork_hooks(PyObject *mod);

/* max_tasks_per_worker: None (0, no limit) or a positive int.  0, or -1
 * with an exception set. */
static int
max_tasks_from_object(PyObject *obj, long *max_tasks)
{
    *max_tasks = 0;
    if (obj == Py_None) {
        return 0;
    }
    *max_tasks = PyLong_AsLong(obj);
    if (*max_tasks == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (*max_tasks <= 0) {
        PyErr_SetString(PyExc_ValueError,
                        "max_tasks_per_worker must be a positive int");
        return -1;
    }
    return 0;
}

/* The __cause__ of a task's exception, by name: the traceback text (as
 * ProcessPoolExecutor), or an ExecutionFailed (as the standard library's
 * InterpreterPoolExecutor).  0, or -1 with ValueError. */
static int
remote_cause_from_name(const char *name, exc_rebuild *how)
{
    int traceback = strcmp(name, "traceback") == 0;
    if (!traceback && strcmp(name, "execution_failed") != 0) {
        PyErr_Format(PyExc_ValueError,
                     "remote_cause must be 'traceback' or "
                     "'execution_failed', not %.100s", name);
        return -1;
    }
    *how = traceback ? EXC_ITSELF_TRACEBACK : EXC_ITSELF_EXCINFO;
    return 0;
}

/* A new pool of n_workers (not started), with one reference: the
 * owner's.  NULL with MemoryError. */
static pool *
pool_alloc(int n_workers, long max_tasks, const char *prefix)
{
    pool *p = PyMem_RawCalloc(1, sizeof(pool));
    if (p == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    pthread_mutex_init(&p->mutex, NULL);
    p->refcnt = 1;
    p->max_tasks = max_tasks;
    p->owner = PyInterpreterState_Get();
    PyOS_snprintf(p->name, sizeof(p->name), "%.10s",
                  prefix[0] ? prefix : "subinterp-");
    p->workers = PyMem_RawCalloc(n_workers, sizeof(worker));
    p->idle = PyMem_RawCalloc(n_workers, sizeof(waiter *));
    p->cold = PyMem_RawCalloc(n_workers, sizeof(waiter *));
    if (p->workers == NULL || p->idle == NULL || p->cold == NULL) {
        pool_decref(p);     /* n_workers is 0: no worker to finalize */
        PyErr_NoMemory();
        return NULL;
    }
    p->n_workers = n_workers;
    for (int i = 0; i < n_workers; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        waiter_init(&p->workers[i].w);
    }
    return p;
}

/* The pool's initializer as a message: (initializer, initargs or ()).
 * 0 (*out NULL when there is none), or -1 with an exception set. */
static int
initializer_encode(module_state *st, PyObject *initializer,
                   PyObject *initargs, msg **out)
{
    *out = NULL;
    if (initializer == Py_None) {
        return 0;
    }
    if (!PyCallable_Check(initializer)) {
        PyErr_SetString(PyExc_TypeError, "initializer must be callable");
        return -1;
    }
    PyObject *args = initargs != NULL ? Py_NewRef(initargs)
                                      : PyTuple_New(0);
    if (args == NULL) {
        return -1;
    }
    PyObject *pair = PyTuple_Pack(2, initializer, args);
    Py_DECREF(args);
    if (pair == NULL) {
        return -1;
    }
    *out = codec_encode(st, pair);
    Py_DECREF(pair);
    return *out == NULL ? -1 : 0;
}

/* PoolCore(max_workers, broken_cls, config=None, initializer=None,
 *          initargs=(), max_tasks_per_worker=None, thread_name_prefix='',
 *          remote_cause='traceback', max_concurrency=1) */
static PyObject *
poolobj_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"max_workers", "broken_cls", "config",
                             "initializer", "initargs",
                             "max_tasks_per_worker", "thread_name_prefix",
                             "remote_cause", "max_concurrency", NULL};
    PyObject *broken_cls;
    int n_workers;
    PyObject *config = Py_None;
    PyObject *initializer = Py_None;
    PyObject *initargs = NULL;
    PyObject *max_tasks_obj = Py_None;
    const char *prefix = "";
    const char *remote_cause = "traceback";
    int max_conc = 1;
    exc_rebuild exc_how;
    long max_tasks;
    PoolObject *self = NULL;
    pool *p = NULL;
    module_state *st = get_mod_state_by_type(type);
    if (st == NULL) {
        return NULL;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iO|OOO!Ossi:PoolCore",
                                     kwlist, &n_workers, &broken_cls,
                                     &config,
                                     &initializer, &PyTuple_Type, &initargs,
                                     &max_tasks_obj, &prefix,
                                     &remote_cause, &max_conc)) {
        return NULL;
    }
    if (remote_cause_from_name(remote_cause, &exc_how) < 0) {
        return NULL;
    }
    if (runtime_is_shutting_down()) {
        /* its workers could not make interpreters any more */
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot schedule new futures after interpreter "
                        "shutdown");
        return NULL;
    }
    if (n_workers <= 0 || n_workers > 4096) {
        PyErr_SetString(PyExc_ValueError,
                        "max_workers must be between 1 and 4096");
        return NULL;
    }
    if (max_tasks_from_object(max_tasks_obj, &max_tasks) < 0) {
        return NULL;
    }
    if (max_conc <= 0) {
        PyErr_SetString(PyExc_ValueError,
                        "max_concurrency must be a positive int");
        return NULL;
    }
    p = pool_alloc(n_workers, max_tasks, prefix);
    if (p == NULL) {
        return NULL;
    }
    p->max_conc = max_conc;
    if (interp_config_from_args(config, NULL, &p->cfg) < 0 ||
        path_copy_take(&p->path) < 0 ||
        initializer_encode(st, initializer, initargs,
                           &p->initializer) < 0 ||
        register_pool_fork_hooks(PyType_GetModule(type)) < 0) {
        goto error;
    }
    self = (PoolObject *)type->tp_alloc(type, 0);
    if (self == NULL) {
        goto error;
    }
    self->pool = p;
    self->broken_cls = Py_NewRef(broken_cls);
    self->exc_how = exc_how;
    pools_add(p);
    return (PyObject *)self;
error:
    pool_decref(p);
    return NULL;
}

/* start(): start every worker; they make their interpreters in parallel.
 * Separate from the constructor so that the owner can start its own
 * threads first, while no worker competes for its GIL. */
static PyObject *
poolobj_start(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    PoolObject *self = (PoolObject *)op;
    pool *p = self->pool;
    pthread_mutex_lock(&p->mutex);
    int started = p->started;
    p->started = 1;
    pthread_mutex_unlock(&p->mutex);
    if (started) {
        PyErr_SetString(PyExc_RuntimeError, "the pool was already started");
        return NULL;
    }
    for (int i = 0; i < p->n_workers; i++) {
        worker *wk = &p->workers[i];
        pthread_mutex_lock(&p->mutex);
        p->refcnt++;
        p->n_alive++;
        pool_check(p);
        pthread_mutex_unlock(&p->mutex);
        if (PyThread_start_new_thread(worker_main, wk) ==
            PYTHREAD_INVALID_THREAD_ID) {
            pthread_mutex_lock(&p->mutex);
            p->refcnt--;
            p->n_alive--;
            (void)stop_taking(p, 0);
            pthread_mutex_unlock(&p->mutex);
            PyErr_SetString(PyExc_RuntimeError,
                            "could not start a worker thread");
            return NULL;
        }
    }
    Py_RETURN_NONE;
}

static void
poolobj_dealloc(PyObject *op)
{
    PoolObject *self = (PoolObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (self->pool != NULL) {
        /* Workers finish what is queued, then leave; nobody waits. */
        pthread_mutex_lock(&self->pool->mutex);
        (void)stop_taking(self->pool, 0);
        pthread_mutex_unlock(&self->pool->mutex);
        pool_decref(self->pool);
        self->pool = NULL;
    }
    Py_CLEAR(self->broken_cls);
    tp->tp_free(op);
    Py_DECREF(tp);
}

/* A new task for fn(*args, **kwargs), with one reference: the caller's
 * (it becomes the token's).  Encoded here: an unshareable callable or
 * argument fails at the call site, and nothing half-enters the queue.
 * NULL with an exception set. */
static task *
task_new(module_state *st, PyObject *fn, PyObject *args, PyObject *kwargs)
{
    PyObject *packed = PyTuple_Pack(3, fn, args, kwargs);
    if (packed == NULL) {
        return NULL;
    }
    task *t = PyMem_RawCalloc(1, sizeof(task));
    if (t == NULL) {
        Py_DECREF(packed);
        PyErr_NoMemory();
        return NULL;
    }
    atomic_init(&t->refcnt, 1);
    atomic_init(&t->state, T_PENDING);
    t->in = codec_encode(st, packed);
    Py_DECREF(packed);
    if (t->in == NULL) {
        task_decref(t);
        return NULL;
    }
    return t;
}

/* Queue t for the workers, with its Future, and wake one.  The queue
 * takes the reference the finalizer drops (task_outcome).  0, or -1 with
 * an exception set when the pool takes no more tasks. */
static int
pool_enqueue(PoolObject *self, task *t, PyObject *future)
{
    pool *p = self->pool;
    pthread_mutex_lock(&p->mutex);
    int shutdown = p->shutdown;
    int broken = p->broken;
    if (!shutdown && !broken) {
        atomic_fetch_add(&t->refcnt, 1);
        t->future = Py_NewRef(future);
        task_list_append(&p->head, &p->tail, t);
        p->outstanding++;
        if (p->n_idle > 0) {
            waiter_notify(p->idle[--p->n_idle]);
        }
        else if (p->n_cold > 0 && !p->pausing) {
            /* no warm worker free: one without an interpreter makes one */
            waiter_notify(p->cold[--p->n_cold]);
        }
        pool_check(p);
    }
    pthread_mutex_unlock(&p->mutex);
    if (broken) {
        /* broken_msg does not change once broken is set (break_pool
           sets both in one critical section) */
        PyErr_SetString(self->broken_cls, p->broken_msg
                                              ? p->broken_msg
                                              : "the pool is broken");
        return -1;
    }
    if (shutdown) {
        PyErr_SetString(PyExc_RuntimeError,
                        "cannot schedule new futures after shutdown");
        return -1;
    }
    return 0;
}

/* submit(future, fn, args, kwargs or None, coro=False) -> token: the
 * token (a capsule) holds a reference to the task.  coro: fn runs a
 * coroutine (subinterp._coroutines.run_coroutine), which a worker may run
 * beside others when max_concurrency > 1. */
static PyObject *
poolobj_submit(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    PoolObject *self = (PoolObject *)op;
    module_state *st = pool_state(op);
    if (st == NULL) {
        return NULL;
    }
    int coro = 0;
    if (nargs == 5 && (coro = PyObject_IsTrue(args[4])) < 0) {
        return NULL;
    }
    if (nargs < 4 || nargs > 5 || !PyTuple_Check(args[2]) ||
        (args[3] != Py_None && !PyDict_Check(args[3]))) {
        PyErr_SetString(PyExc_TypeError,
                        "submit(future, fn, args, kwargs or None, "
                        "coro=False)");
        return NULL;
    }
    if (!PyCallable_Check(args[1])) {
        PyErr_Format(PyExc_TypeError, "submit() expected a callable, got "
                     "%.200s", Py_TYPE(args[1])->tp_name);
        return NULL;
    }
    task *t = task_new(st, args[1], args[2], args[3]);
    if (t == NULL) {
        return NULL;
    }
    t->coro = coro;
    PyObject *token = PyCapsule_New(t, "subinterp.task", task_capsule_free);
    if (token == NULL) {
        task_decref(t);
        return NULL;
    }
    if (pool_enqueue(self, t, args[0]) < 0) {
        Py_CLEAR(token);    /* frees t: the token held its only reference */
    }
    return token;
}

/* Finalize a task in the owner: the outcome as (kind, value), and the
 * Future in *future_p (a new reference).  Exactly one caller gets it
 * (state DONE or CANCELLED -> DELIVERED); the others get NULL without an
 * exception. */
static PyObject *
task_outcome(module_state *st, pool *p, exc_rebuild how, task *t,
             PyObject **future_p)
{
    PyObject *value = NULL;
    int kind;
    int state = atomic_load(&t->state);
    if (state != T_DONE && state != T_CANCELLED) {
        return NULL;
    }
    if (!atomic_compare_exchange_strong(&t->state, &state, T_DELIVERED)) {
        return NULL;
    }
    if (state == T_CANCELLED) {
        kind = OUTCOME_CANCELLED;
        value = Py_NewRef(Py_None);
    }
    else if (t->broken) {
        kind = OUTCOME_BROKEN;
        pthread_mutex_lock(&p->mutex);
        value = PyUnicode_FromString(p->broken_msg ? p->broken_msg
                                                   : "pool is broken");
        pthread_mutex_unlock(&p->mutex);
    }
    else if (t->failed) {
        kind = OUTCOME_EXCEPTION;
        value = interp_exception_from_info(st, t->out, t->out_exc, how);
    }
    else {
        kind = OUTCOME_RESULT;
        value = codec_decode(st, t->out);
    }
    if (value == NULL) {
        /* what went wrong while decoding is the task's exception */
        kind = OUTCOME_EXCEPTION;
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError,
                            "decoding the task's outcome failed without "
                            "an exception");
        }
        value = PyErr_GetRaisedException();
    }
    *future_p = t->future;
    t->future = NULL;
    pthread_mutex_lock(&p->mutex);
    p->outstanding--;
    if (p->shutdown) {
        kick_collector(p);
    }
    pool_check(p);
    pthread_mutex_unlock(&p->mutex);
    task_decref(t); /* the finalizer's reference; the caller has another */
    return Py_BuildValue("(iN)", kind, value);
}

typedef struct {
    pool *p;
    task *t;
} result_wait;

static int
result_poll(void *arg, waiter *w)
{
    result_wait *a = (result_wait *)arg;
    int done = 1;
    pthread_mutex_lock(&a->p->mutex);
    /* handed on: finalize it (or somebody did); another thread waits:
       the Future's condition will tell */
    if (!a->t->handed && a->t->waiting == NULL) {
        a->t->waiting = w;
        done = 0;
    }
    pthread_mutex_unlock(&a->p->mutex);
    return done;
}

static int
result_withdraw(void *arg, waiter *w)
{
    result_wait *a = (result_wait *)arg;
    pthread_mutex_lock(&a->p->mutex);
    if (a->t->waiting == w) {
        a->t->waiting = NULL;
    }
    /* else the worker took it (and finding it cancelled, put the task on
       the done list) */
    int withdrawn = waiter_withdraw(w);
    pthread_mutex_unlock(&a->p->mutex);
    return withdrawn;
}

/* wait(token, timeout) -> (kind, value) | None
 * Waits for the task with the GIL released; returns its outcome when this
 * thread finalizes it, None when another thread does (then the Future is
 * completed through its condition), raises TimeoutError. */
static PyObject *
poolobj_wait(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    static const wait_cond cond = {result_poll, result_withdraw, 0};
    PoolObject *self = (PoolObject *)op;
    module_state *st = pool_state(op);
    deadline dl;
    waiter w;
    if (st == NULL) {
        return NULL;
    }
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "wait(token, timeout)");
        return NULL;
    }
    task *t = task_from_capsule(args[0]);
    if (t == NULL || deadline_from_timeout(args[1], 0, &dl) < 0) {
        return NULL;
    }
    result_wait a = {.p = self->pool, .t = t};
    int r = wait_until(&cond, &a, &w, &dl, 0);
    waiter_fini(&w);
    if (r < 0) {
        /* the collector completes the Future later */
        return NULL;
    }
    PyObject *fut = NULL;
    PyObject *res = task_outcome(st, self->pool, self->exc_how, t, &fut);
    if (res == NULL) {
        if (PyErr_Occurred()) {
            return NULL;
        }
        if (r == WAIT_TIMEOUT) {
            PyErr_SetNone(PyExc_TimeoutError);
            return NULL;
        }
        Py_RETURN_NONE;
    }
    Py_XDECREF(fut); /* the caller holds the Future */
    return res;
}

typedef struct {
    pool *p;
    task *list;     /* out */
    int finished;   /* out */
} collect_wait;

static int
collect_poll(void *arg, waiter *w)
{
    collect_wait *a = (collect_wait *)arg;
    pool *p = a->p;
    int done = 1;
    pthread_mutex_lock(&p->mutex);
    if (p->done_head != NULL) {
        a->list = p->done_head;
        p->done_head = p->done_tail = NULL;
    }
    else if (p->shutdown && p->n_alive == 0 && p->outstanding == 0) {
        a->finished = 1;
    }
    else {
        p->collector = w;
        done = 0;
    }
    pool_check(p);
    pthread_mutex_unlock(&p->mutex);
    return done;
}

static int
collect_withdraw(void *arg, waiter *w)
{
    pool *p = ((collect_wait *)arg)->p;
    pthread_mutex_lock(&p->mutex);
    if (p->collector == w) {
        p->collector = NULL;
    }
    int withdrawn = waiter_withdraw(w);
    pthread_mutex_unlock(&p->mutex);
    return withdrawn;
}

/* collect() -> [(future, (kind, value)), ...] | None
 * The collector thread's wait: blocks with the GIL released until tasks
 * are done that nobody waits for; None when the pool is shut down and
 * every task is finalized. */
static PyObject *
poolobj_collect(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    static const wait_cond cond = {collect_poll, collect_withdraw, 0};
    static const deadline forever = {.forever = 1};
    PoolObject *self = (PoolObject *)op;
    pool *p = self->pool;
    module_state *st = pool_state(op);
    collect_wait a = {.p = p, .list = NULL, .finished = 0};
    waiter w;
    if (st == NULL) {
        return NULL;
    }
    /* Not ended by stopping the owner's waits: the owner's close shuts
       its pools down and joins this thread, which completes Futures
       until the pool is drained. */
    int r = wait_until(&cond, &a, &w, &forever, WAIT_NO_STOP);
    waiter_fini(&w);
    if (r < 0) {
        return NULL;
    }
    if (a.finished) {
        Py_RETURN_NONE;
    }
    task *list = a.list;
    PyObject *res = PyList_New(0);
    while (list != NULL) {
        task *t = list;
        list = t->next;
        PyObject *fut = NULL;
        PyObject *out = task_outcome(st, p, self->exc_how, t, &fut);
        if (out != NULL && res != NULL) {
            PyObject *pair = PyTuple_Pack(2, fut, out);
            if (pair == NULL || PyList_Append(res, pair) < 0) {
                Py_CLEAR(res);
            }
            Py_XDECREF(pair);
        }
        if (out == NULL) {
            PyErr_Clear();
        }
        Py_XDECREF(out);
        Py_XDECREF(fut);
        task_decref(t);
    }
    return res;
}

/* cancel(token) -> bool: True when the task will not run. */
static PyObject *
poolobj_cancel(PyObject *op, PyObject *token)
{
    (void)op;
    task *t = task_from_capsule(token);
    if (t == NULL) {
        return NULL;
    }
    int expect = T_PENDING;
    if (atomic_compare_exchange_strong(&t->state, &expect, T_CANCELLED)) {
        Py_RETURN_TRUE;
    }
    return PyBool_FromLong(expect == T_CANCELLED);
}

/* Cancel the tasks of list (taken off the queue); they go through the
 * collector like the rest.  No lock held. */
static void
cancel_tasks(pool *p, task *list)
{
    while (list != NULL) {
        task *next = list->next;
        int expect = T_PENDING;
        (void)atomic_compare_exchange_strong(&list->state, &expect,
                                             T_CANCELLED);
        task_finish(p, list);
        list = next;
    }
}

/* shutdown(cancel_futures): no new tasks; workers leave once the queue is
 * empty.  Returns the Futures of the tasks it cancelled. */
static PyObject *
poolobj_shutdown(PyObject *op, PyObject *cancel)
{
    PoolObject *self = (PoolObject *)op;
    pool *p = self->pool;
    int do_cancel = PyObject_IsTrue(cancel);
    if (do_cancel < 0) {
        return NULL;
    }
    pthread_mutex_lock(&p->mutex);
    task *list = stop_taking(p, do_cancel);
    pthread_mutex_unlock(&p->mutex);
    cancel_tasks(p, list);
    Py_RETURN_NONE;
}

/* terminate(): is the worker still running a task?  Asked by
 * runtime_interrupt_running with the worker's interpreter's GIL held; a
 * yes is marked, so that the worker takes the SystemExit back if its task
 * ends before it is raised. */
static int
worker_still_running(void *arg)
{
    worker *wk = (worker *)arg;
    if (atomic_load(&wk->current) == NULL) {
        return 0;
    }
    atomic_store(&wk->interrupted, 1);
    return 1;
}

/* terminate(): multiprocessing's Pool.terminate().  Like shutdown(True),
 * and the tasks running now are stopped: subinterp's waits in their
 * interpreters raise SystemExit, and so does their Python code (raised
 * asynchronously: code blocked in C sees it when it comes back).  A task
 * a worker takes meanwhile is not run (cancelled).  The workers then
 * leave and close their interpreters; join() waits for that. */
static PyObject *
poolobj_terminate(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    PoolObject *self = (PoolObject *)op;
    pool *p = self->pool;
    int n = 0;
    worker **stop = PyMem_RawCalloc(p->n_workers, sizeof(worker *));
    interp_entry **entries = PyMem_RawCalloc(p->n_workers,
                                             sizeof(interp_entry *));
    if (stop == NULL || entries == NULL) {
        PyMem_RawFree(stop);
        PyMem_RawFree(entries);
        return PyErr_NoMemory();
    }
    pthread_mutex_lock(&p->mutex);
    atomic_store(&p->terminating, 1);
    task *list = stop_taking(p, 1);
    for (int i = 0; i < p->n_workers; i++) {
        worker *wk = &p->workers[i];
        if (wk->entry != NULL && atomic_load(&wk->current) != NULL) {
            entry_incref(wk->entry);
            entries[n] = wk->entry;
            stop[n++] = wk;
        }
    }
    pthread_mutex_unlock(&p->mutex);
    cancel_tasks(p, list);
    for (int i = 0; i < n; i++) {
        runtime_interrupt_running(entries[i], worker_still_running, stop[i]);
        entry_decref(entries[i]);
    }
    PyMem_RawFree(stop);
    PyMem_RawFree(entries);
    Py_RETURN_NONE;
}

static int
join_poll(void *arg, waiter *w)
{
    pool *p = (pool *)arg;
    int done = 1;
    pthread_mutex_lock(&p->mutex);
    if (p->n_alive > 0) {
        if (p->joiner != NULL) {
            /* one joiner at a time: take over (it polls again) */
            waiter_notify(p->joiner);
        }
        p->joiner = w;
        done = 0;
    }
    pthread_mutex_unlock(&p->mutex);
    return done;
}

static int
join_withdraw(void *arg, waiter *w)
{
    pool *p = (pool *)arg;
    pthread_mutex_lock(&p->mutex);
    if (p->joiner == w) {
        p->joiner = NULL;
    }
    int withdrawn = waiter_withdraw(w);
    pthread_mutex_unlock(&p->mutex);
    return withdrawn;
}

/* join(timeout=None, closing=False) -> bool: wait (GIL released) for
 * every worker to exit.  closing: the owner interpreter is closing (or
 * the process exits): the workers hold thread states of the owner, which
 * must be gone before it ends, so stopping the owner's waits does not
 * end this one. */
static PyObject *
poolobj_join(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    static const wait_cond cond = {join_poll, join_withdraw, 0};
    PoolObject *self = (PoolObject *)op;
    deadline dl;
    waiter w;
    int closing = 0;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "join(timeout, closing=False)");
        return NULL;
    }
    if (nargs == 2 && (closing = PyObject_IsTrue(args[1])) < 0) {
        return NULL;
    }
    if (deadline_from_timeout(args[0], 0, &dl) < 0) {
        return NULL;
    }
    int r = wait_until(&cond, self->pool, &w, &dl,
                       closing ? WAIT_NO_STOP : 0);
    waiter_fini(&w);
    if (r < 0) {
        return NULL;
    }
    return PyBool_FromLong(r == WAIT_FIRED);
}

static PyObject *
poolobj_stats(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    PoolObject *self = (PoolObject *)op;
    pool *p = self->pool;
    pthread_mutex_lock(&p->mutex);
    PyObject *res = Py_BuildValue(
        "{sisisisisLsisisisi}", "workers", p->n_workers, "alive",
        p->n_alive, "ready", p->n_ready, "idle", p->n_idle, "outstanding",
        (long long)p->outstanding, "shutdown", p->shutdown, "broken",
        p->broken, "parked", p->n_parked, "pausing", p->pausing);
    pthread_mutex_unlock(&p->mutex);
    return res;
}

static PyMethodDef poolobj_methods[] = {
    {"start", poolobj_start, METH_NOARGS, "start() the workers"},
    {"submit", _PyCFunction_CAST(poolobj_submit), METH_FASTCALL,
     "submit(future, fn, args, kwargs) -> token"},
    {"wait", _PyCFunction_CAST(poolobj_wait), METH_FASTCALL,
     "wait(token, timeout) -> (kind, value) or None"},
    {"collect", poolobj_collect, METH_NOARGS,
     "collect() -> [(future, (kind, value))] or None when finished"},
    {"cancel", poolobj_cancel, METH_O, "cancel(token) -> bool"},
    {"shutdown", poolobj_shutdown, METH_O, "shutdown(cancel_futures)"},
    {"terminate", poolobj_terminate, METH_NOARGS,
     "terminate(): shutdown(True), and the running tasks are stopped"},
    {"join", _PyCFunction_CAST(poolobj_join), METH_FASTCALL,
     "join(timeout, closing=False) -> bool"},
    {"stats", poolobj_stats, METH_NOARGS, "counters, for tests"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot poolobj_slots[] = {
    {Py_tp_doc, "The C side of a subinterp.Pool (internal)."},
    {Py_tp_new, poolobj_new},
    {Py_tp_dealloc, poolobj_dealloc},
    {Py_tp_methods, poolobj_methods},
    {0, NULL},
};

static PyType_Spec poolobj_spec = {
    .name = "subinterp._core.PoolCore",
    .basicsize = sizeof(PoolObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = poolobj_slots,
};

/* ------------------------------------------------------------------ */
/* fork (see the top of this file)                                      */

/* The pools paused by the "before" hook, each with a reference, until
 * "after in parent" resumes them: per thread, since two threads may fork
 * at once (each pauses every pool; the workers go on when both are
 * through). */
static _Thread_local pool **paused;
static _Thread_local int n_paused;
static _Thread_local int fork_interrupted;   /* see pools_fork_before */

static void
resume_paused(void)
{
    for (int i = 0; i < n_paused; i++) {
        pool *p = paused[i];
        pthread_mutex_lock(&p->mutex);
        if (--p->pausing == 0) {
            wake_all_idle(p);
        }
        pool_check(p);
        pthread_mutex_unlock(&p->mutex);
        pool_decref(p);
    }
    PyMem_RawFree(paused);
    paused = NULL;
    n_paused = 0;
}

/* os.register_at_fork(before=...), run after the pools' hook: interpreters
 * that are not pool workers cannot be closed for a fork, and the child
 * cannot delete them (CPython gh-101437; runtime.c makes it exit). */
static PyObject *
fork_warn_subinterpreters(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    (void)mod;
    int n = runtime_count_subinterpreters();
    if (n > 0 &&
        PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                         "os.fork() with %d subinterpreter(s) alive: CPython "
                         "cannot delete them in the child process, which "
                         "exits at once with status %d; close them before "
                         "forking (subinterp pools are paused for a fork "
                         "and need nothing)", n, SUBINTERP_FORK_EXIT) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

typedef struct {
    pool *p;
    forker *me;
} parked_wait;

static int
parked_poll(void *arg, waiter *w)
{
    parked_wait *a = (parked_wait *)arg;
    pool *p = a->p;
    int done = 1;
    (void)w;    /* a->me->w */
    pthread_mutex_lock(&p->mutex);
    if (p->n_parked < p->n_alive) {
        a->me->next = p->forkers;
        p->forkers = a->me;
        done = 0;
    }
    pthread_mutex_unlock(&p->mutex);
    return done;
}

static int
parked_withdraw(void *arg, waiter *w)
{
    parked_wait *a = (parked_wait *)arg;
    pool *p = a->p;
    pthread_mutex_lock(&p->mutex);
    for (forker **link = &p->forkers; *link != NULL; link = &(*link)->next) {
        if (*link == a->me) {
            *link = a->me->next;
            break;
        }
    }
    int withdrawn = waiter_withdraw(w);
    pthread_mutex_unlock(&p->mutex);
    return withdrawn;
}

/* Wait until every worker of p is parked, with the GIL released (a worker
 * comes back to its owner's thread state, maybe this interpreter's, when it
 * closes its interpreter).  In the main thread a signal interrupts the
 * wait: -1 with the exception of its handler set. */
static int
wait_parked(pool *p)
{
    static const wait_cond cond = {parked_poll, parked_withdraw, 0};
    static const deadline forever = {.forever = 1};
    forker me;
    parked_wait a = {.p = p, .me = &me};
    int r = wait_until(&cond, &a, &me.w, &forever, 0);
    waiter_fini(&me.w);
    return r < 0 ? -1 : 0;
}

/* os.register_at_fork(before=...): every worker of every pool finishes its
 * task, closes its interpreter and parks.  The pools stay paused until
 * "after in parent", even when the warning below raises (os.fork() reports
 * a hook's exception and forks anyway). */
static PyObject *
pools_fork_before(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    (void)mod;
    if (paused != NULL) {
        resume_paused();    /* a fork that failed before its after hooks */
    }
    pthread_mutex_lock(&pools_mutex);
    int n = 0;
    for (pool *p = all_pools; p != NULL; p = p->all_next) {
        n++;
    }
    if (n > 0) {
        paused = PyMem_RawMalloc((size_t)n * sizeof(pool *));
        if (paused == NULL) {
            pthread_mutex_unlock(&pools_mutex);
            return PyErr_NoMemory();
        }
    }
    for (pool *p = all_pools; p != NULL; p = p->all_next) {
        pthread_mutex_lock(&p->mutex);
        if (p->refcnt > 0) {    /* 0: being freed, gone in a moment */
            p->refcnt++;
            p->pausing++;
            wake_all_idle(p);
            paused[n_paused++] = p;
        }
        pool_check(p);
        pthread_mutex_unlock(&p->mutex);
    }
    pthread_mutex_unlock(&pools_mutex);
    if (n_paused == 0) {
        Py_RETURN_NONE;
    }
    for (int i = 0; i < n_paused; i++) {
        if (wait_parked(paused[i]) < 0) {
            if (!PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
                return NULL;
            }
            /* Ctrl-C while a task runs.  A hook cannot stop os.fork():
               the fork goes ahead with that worker's interpreter alive,
               so the child exits at once (runtime.c), and the parent gets
               its KeyboardInterrupt back right after the fork (an
               exception of a hook would only be printed). */
            PyErr_Clear();
            fork_interrupted = 1;
            Py_RETURN_NONE;
        }
    }
    Py_RETURN_NONE;
}

/* os.register_at_fork(after_in_parent=...): the workers make new
 * interpreters and go on. */
static PyObject *
pools_fork_after_parent(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    (void)mod;
    resume_paused();
    if (fork_interrupted) {
        fork_interrupted = 0;
        (void)PyErr_SetInterruptEx(SIGINT);
    }
    Py_RETURN_NONE;
}

static const char forked_msg[] =
    "the pool's workers do not exist in this process: it was forked from "
    "the process that made the pool (make a new pool here)";

/* Entries of the fork table (fork.c): the pool mutexes are consistent in
 * the child. */
void
pools_fork_prepare(void)
{
    pthread_mutex_lock(&pools_mutex);
    for (pool *p = all_pools; p != NULL; p = p->all_next) {
        pthread_mutex_lock(&p->mutex);
    }
}

void
pools_fork_parent(void)
{
    for (pool *p = all_pools; p != NULL; p = p->all_next) {
        pthread_mutex_unlock(&p->mutex);
    }
    pthread_mutex_unlock(&pools_mutex);
}

/* In the child only the forking thread exists: no worker, no collector,
 * nobody parked.  Every pool is broken; its queued tasks are failed and
 * left on the done list, where Future.result() finds them. */
void
pools_fork_child(void)
{
    pthread_mutex_init(&pools_mutex, NULL);
    for (pool *p = all_pools; p != NULL; p = p->all_next) {
        pthread_mutex_init(&p->mutex, NULL);
        if (!p->broken) {
            p->broken = 1;
            PyMem_RawFree(p->broken_msg);
            p->broken_msg = PyMem_RawMalloc(sizeof(forked_msg));
            if (p->broken_msg != NULL) {
                memcpy(p->broken_msg, forked_msg, sizeof(forked_msg));
            }
        }
        p->refcnt -= p->n_alive;   /* the workers' references */
        p->n_alive = 0;
        p->n_idle = 0;
        p->n_cold = 0;
        p->n_parked = 0;
        p->pausing = 0;
        p->collector = p->joiner = NULL;
        p->forkers = NULL;
        task *t = p->head;
        p->head = p->tail = NULL;
        while (t != NULL) {
            task *next = t->next;
            task_fail_unrun(t);
            t->handed = 1;
            t->waiting = NULL;  /* a thread of the parent, not here */
            /* as task_finish: the done list holds a reference */
            atomic_fetch_add(&t->refcnt, 1);
            task_list_append(&p->done_head, &p->done_tail, t);
            t = next;
        }
        pool_check(p);
    }
    /* the forking thread's "before" references: nobody resumes them
       here (other threads' pauses are lost with those threads) */
    for (int i = 0; i < n_paused; i++) {
        paused[i]->refcnt--;
    }
    PyMem_RawFree(paused);
    paused = NULL;
    n_paused = 0;
    pool *p = all_pools;
    while (p != NULL) {
        pool *next = p->all_next;
        if (p->refcnt == 0) {
            pools_remove(p);
            pool_free(p);
        }
        p = next;
    }
}


static PyMethodDef pool_functions[] = {
    {"_fork_warn", fork_warn_subinterpreters, METH_NOARGS,
     "os.register_at_fork(before=...) hook: warn of live interpreters."},
    {"_pools_fork_before", pools_fork_before, METH_NOARGS,
     "os.register_at_fork(before=...) hook: pause every pool."},
    {"_pools_fork_after_parent", pools_fork_after_parent, METH_NOARGS,
     "os.register_at_fork(after_in_parent=...) hook: resume them."},
    {"_pool_worker_take", pool_worker_take, METH_O,
     "_pool_worker_take(handle): a pool worker's event loop takes a task "
     "(subinterp._coroutines.serve)."},
    {"_pool_worker_wait", _PyCFunction_CAST(pool_worker_wait),
     METH_FASTCALL,
     "_pool_worker_wait(handle, news): an awaitable wait of a pool "
     "worker's event loop (subinterp._coroutines.serve)."},
    {"_pool_worker_finish", _PyCFunction_CAST(pool_worker_finish),
     METH_FASTCALL,
     "_pool_worker_finish(handle, token, exc, result): a coroutine task "
     "ended (subinterp._coroutines.serve)."},
    {NULL, NULL, 0, NULL},
};

/* os.register_at_fork(**{kw1: mod.name1, kw2: mod.name2}); kw2 may be
 * NULL.  Only in the main interpreter (the only one that may fork with
 * subinterpreters around); once per *done. */
static int
register_fork_hooks(PyObject *mod, int *done, const char *kw1,
                    const char *name1, const char *kw2, const char *name2)
{
    if (*done || PyInterpreterState_Get() != PyInterpreterState_Main()) {
        return 0;
    }
    PyObject *os = PyImport_ImportModule("os");
    if (os == NULL) {
        return -1;
    }
    PyObject *reg = PyObject_GetAttrString(os, "register_at_fork");
    Py_DECREF(os);
    if (reg == NULL) {
        PyErr_Clear();      /* no fork here */
        return 0;
    }
    PyObject *kw = PyDict_New();
    PyObject *args = PyTuple_New(0);
    PyObject *res = NULL;
    int ok = kw != NULL && args != NULL;
    const char *kws[2] = {kw1, kw2};
    const char *names[2] = {name1, name2};
    for (int i = 0; ok && i < 2 && kws[i] != NULL; i++) {
        PyObject *fn = PyObject_GetAttrString(mod, names[i]);
        ok = fn != NULL && PyDict_SetItemString(kw, kws[i], fn) == 0;
        Py_XDECREF(fn);
    }
    if (ok) {
        res = PyObject_Call(reg, args, kw);
    }
    Py_XDECREF(kw);
    Py_XDECREF(args);
    Py_DECREF(reg);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    *done = 1;
    return 0;
}

/* The pools' hooks are registered with the first pool: after the hooks of
 * modules a pool needs (logging's, through concurrent.futures), so that
 * the KeyboardInterrupt "after in parent" re-raises is not raised inside
 * one of theirs, which runs after ours otherwise, and lost there. */
static int
register_pool_fork_hooks(PyObject *mod)
{
    static int done = 0;
    return register_fork_hooks(mod, &done, "before", "_pools_fork_before",
                               "after_in_parent", "_pools_fork_after_parent");
}

int
pool_init(PyObject *mod, module_state *st)
{
    st->PoolType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &poolobj_spec, NULL);
    if (st->PoolType == NULL) {
        return -1;
    }
    if (PyModule_AddType(mod, st->PoolType) < 0) {
        return -1;
    }
    static int warn_done = 0;
    if (PyModule_AddFunctions(mod, pool_functions) < 0 ||
        register_fork_hooks(mod, &warn_done, "before", "_fork_warn", NULL,
                            NULL) < 0) {
        return -1;
    }
    return PyModule_AddIntConstant(mod, "OUTCOME_RESULT", OUTCOME_RESULT) ||
           PyModule_AddIntConstant(mod, "OUTCOME_EXCEPTION",
                                   OUTCOME_EXCEPTION) ||
           PyModule_AddIntConstant(mod, "OUTCOME_BROKEN", OUTCOME_BROKEN) ||
           PyModule_AddIntConstant(mod, "OUTCOME_CANCELLED",
                                   OUTCOME_CANCELLED);
}
