/* codec_buf.c - zero-copy buffers of the codec: blobs, their owners, the
 * SharedBuffer type, and the tokens that keep dumps() output loadable.
 *
 * A blob is one process-wide C object that stands for a range of memory
 * some message or view refers to:
 *
 *   pinned   memory of an object of one interpreter (its "owner"): a
 *            Py_buffer held on an exporter (memoryview, share()) or a
 *            strong reference to an immutable bytes/str.  The pin may only
 *            be released in the owner, with its GIL held.
 *   raw      memory the blob owns (PyMem_RawMalloc): out-of-band pickle
 *            buffers, and pinned data copied out when the owner closed.
 *   leaked   the owner closed while views elsewhere still pointed into
 *            the pinned memory (see below); the exporter is kept forever.
 *
 * Lifetimes.  A blob has an atomic reference count: one per message
 * reference and one per SharedBuffer object in any interpreter.  When
 * it drops to zero in a thread that is not the owner (or holds no GIL at
 * all - msg_free may run anywhere), a pinned blob goes on its owner's
 * pending list, and the owner releases the pin the next time it runs
 * codec code (every encode and decode checks one atomic counter first),
 * in its closing hook, or - for the main interpreter - from a pending
 * call (Py_AddPendingCall reaches the main thread of the main
 * interpreter).  PyBuffer_Release never runs in a foreign interpreter.
 *
 * Closing an owner.  codec_interp_closing() runs inside the interpreter
 * before it is destroyed (runtime.c's closing hook, and codec_clear for
 * interpreters subinterp did not create).  For each blob it still pins:
 *
 *   - no view of it exists in another interpreter (only messages refer
 *     to it, e.g. ones waiting in a queue): the data is copied out to raw
 *     memory, the pin is released, and later receivers view the copy;
 *   - views exist elsewhere: their memoryviews hold raw pointers into
 *     the exporter's memory, which cannot be redirected.  The pin is then
 *     deliberately never released: the exporter stays alive (a bounded
 *     leak of exactly what was shared), and since the interpreter's
 *     allocator does not free arenas that still hold blocks, the views
 *     stay valid.  codec_debug() counts these.
 *
 * Readers.  Decoding a pinned bytes/str copies out of the owner's memory
 * without holding our mutex; `readers` makes a closing owner wait for
 * such copies to finish before it swaps the memory.
 *
 * Locking: one process-wide mutex (registry.mu) protects owners, the pending
 * lists, blob->buf/owner/state/nviews/readers and the token table.  No
 * Python code ever runs with it held.
 */
#include "codec_impl.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

typedef enum {
    BLOB_PIN_BUFFER,    /* view holds a Py_buffer in the owner */
    BLOB_PIN_OBJECT,    /* obj holds a strong reference in the owner */
    BLOB_RAW,           /* raw owns the memory */
    BLOB_LEAKED,        /* owner gone, pin kept forever */
} blob_state;

typedef struct owner owner;

struct blob {
    atomic_long refcnt;
    Py_ssize_t len;             /* immutable */
    int writable;               /* immutable */
    atomic_int claimed;         /* BLOB_RAW handed out writable */

    /* registry.mu */
    char *buf;
    owner *owner;               /* set while pinned in a live interpreter */
    blob_state state;
    Py_ssize_t nviews;          /* SharedBuffer objects outside the owner */
    int readers;                /* blob_read() copies in progress */
    blob *prev, *next;          /* owner->live */
    blob *next_pending;         /* owner->pending */

    /* touched only in the owner interpreter (or after it is gone) */
    Py_buffer view;
    PyObject *obj;
    char *raw;                  /* BLOB_RAW: PyMem_RawMalloc */
};

struct owner {
    int64_t id;
    blob *live;                 /* pinned blobs with references */
    blob *pending;              /* pinned blobs without references */
    owner *next;
};

typedef struct token_entry {
    uint64_t token;
    msg *m;
    int users;                  /* loads() in progress */
    int dead;                   /* the dumps() bytes is gone */
    struct token_entry *next;
} token_entry;

/* Pending counts are kept per slot (interpreter id mod 64) so that an
 * interpreter can check its own with one atomic load and no lock. */
#define PENDING_SLOTS 64

/* The process-wide registry of blobs (by owner) and dumps() tokens. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t readers_done;
    owner *owners;
    token_entry *tokens;
    uint64_t nonce;             /* this process's, for dumps() headers */
    uint64_t next_token;
    Py_ssize_t nlive;           /* blobs not yet freed or drained */
    Py_ssize_t nleaked;         /* BLOB_LEAKED blobs (codec_debug) */
    blob *kept;                 /* leaked blobs without references: the
                                   pins they keep, never released */
    Py_ssize_t ntokens;
    /* atomic, read without the mutex: */
    atomic_long pending[PENDING_SLOTS];   /* blobs on pending lists */
    atomic_int main_call_scheduled;       /* main_drain_call queued */
} registry = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .readers_done = PTHREAD_COND_INITIALIZER,
};

#define LOCK() pthread_mutex_lock(&registry.mu)
#define UNLOCK() pthread_mutex_unlock(&registry.mu)

static int64_t
current_interp_id(void)
{
    return PyInterpreterState_GetID(PyInterpreterState_Get());
}

/* ------------------------------------------------------------------ */
/* process init (once)                                                 */

/* Entries of the fork table (fork.c). */
void
codec_buf_fork_prepare(void)
{
    LOCK();
}

void
codec_buf_fork_parent(void)
{
    UNLOCK();
}

void
codec_buf_fork_child(void)
{
    /* The child has one thread: whatever other threads were doing with
       blobs is gone with them.  Pins of other interpreters can never be
       released there; they stay (a leak in the child only). */
    pthread_mutex_init(&registry.mu, NULL);
    pthread_cond_init(&registry.readers_done, NULL);
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

/* SUBINTERP_HUGEPAGES=0 turns codec_mark_huge off; read once. */
static int huge_pages_on = 1;

static void
global_init_once(void)
{
    uint64_t nonce = 0;
    if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) !=
        (ssize_t)sizeof(nonce)) {
        /* Only needs to differ between processes, not be secret. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        nonce = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^
                ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&nonce;
    }
    registry.nonce = nonce | 1;
    registry.next_token = nonce ^ 0x9E3779B97F4A7C15ULL;
    const char *env = getenv("SUBINTERP_HUGEPAGES");
    huge_pages_on = !(env != NULL && strcmp(env, "0") == 0);
}

int
codec_buf_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return 0;
}

uint64_t
codec_process_nonce(void)
{
    return registry.nonce;
}

/* ------------------------------------------------------------------ */
/* large destinations                                                  */
/*
 * A fresh block of many MiB is first touched by the copy that fills it.
 * With 4 KiB pages that is a page fault per 4 KiB, 16,384 for 64 MiB, and
 * the faults cost more than twice the copy itself: a fresh 64 MiB copy
 * takes 22 ms, against 6 ms when the block is marked for transparent
 * huge pages first (32 faults of 2 MiB).  numpy marks its arrays of
 * 4 MiB or more the same way.  Only the 2 MiB-aligned part inside the
 * block is marked, so no memory outside it is ever faulted in; where the
 * kernel has THP off ("never") nothing changes, and where it lacks THP
 * the call fails, ignored.  SUBINTERP_HUGEPAGES=0 turns it off.
 */

#define HUGE_PAGE ((uintptr_t)2 << 20)

void
codec_mark_huge(void *p, Py_ssize_t n)
{
#ifdef MADV_HUGEPAGE
    if (!huge_pages_on) {
        return;
    }
    uintptr_t a = ((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    uintptr_t e = ((uintptr_t)p + (size_t)n) & ~(HUGE_PAGE - 1);
    if (e > a) {
        int saved = errno;
        (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
        errno = saved;
    }
#else
    (void)p;
    (void)n;
#endif
}

/* ------------------------------------------------------------------ */
/* owners                                                              */

static owner *
owner_find(int64_t id)
{
    for (owner *o = registry.owners; o != NULL; o = o->next) {
        if (o->id == id) {
            return o;
        }
    }
    return NULL;
}

/* registry.mu held. */
static owner *
owner_get(int64_t id)
{
    owner *o = owner_find(id);
    if (o == NULL) {
        o = PyMem_RawCalloc(1, sizeof(owner));
        if (o != NULL) {
            o->id = id;
            o->next = registry.owners;
            registry.owners = o;
        }
    }
    return o;
}

static void
live_unlink(owner *o, blob *b)
{
    if (b->prev != NULL) {
        b->prev->next = b->next;
    }
    else {
        o->live = b->next;
    }
    if (b->next != NULL) {
        b->next->prev = b->prev;
    }
    b->prev = b->next = NULL;
}

/* ------------------------------------------------------------------ */
/* blobs                                                               */

/* The invariants of a blob and its counts (registry.mu held), checked
 * where they change.  The reference count changes without the mutex, but
 * never from 0 back up (a blob at 0 has no holder left), and a view's
 * reference is dropped only after its nviews count. */
static void
blob_check(const blob *b)
{
    long refcnt = atomic_load(&b->refcnt);
    INVARIANT(refcnt >= 0, "blob reference count below zero");
    INVARIANT(b->nviews >= 0 && b->nviews <= refcnt,
              "blob views not covered by its references");
    INVARIANT(b->readers >= 0, "blob readers below zero");
    INVARIANT(registry.nlive >= 0 && registry.nleaked >= 0,
              "blob counters below zero");
    switch (b->state) {
    case BLOB_PIN_BUFFER:
    case BLOB_PIN_OBJECT:
        INVARIANT(b->owner != NULL, "pinned blob without an owner");
        INVARIANT((b->state == BLOB_PIN_OBJECT) == (b->obj != NULL),
                  "pinned blob without its pin");
        if (refcnt > 0 && b->owner != NULL) {
            /* referenced, so on its owner's live list (a pending blob
               reached 0 first) */
            INVARIANT(b->prev != NULL ? b->prev->next == b
                                      : b->owner->live == b,
                      "blob not on its owner's live list");
            INVARIANT(b->next == NULL || b->next->prev == b,
                      "blob live list broken");
        }
        break;
    case BLOB_RAW:
        INVARIANT(b->owner == NULL && b->raw != NULL && b->buf == b->raw,
                  "raw blob with an owner or without its memory");
        break;
    case BLOB_LEAKED:
        INVARIANT(b->owner == NULL, "leaked blob with an owner");
        break;
    }
}

static blob *
blob_alloc(Py_ssize_t len, int writable)
{
    blob *b = PyMem_RawCalloc(1, sizeof(blob));
    if (b == NULL) {
        return NULL;
    }
    atomic_init(&b->refcnt, 1);
    atomic_init(&b->claimed, 0);
    b->len = len;
    b->writable = writable;
    return b;
}

/* Link a new pinned blob to the current interpreter.  0 or -1 (no
 * memory; nothing set). */
static int
blob_attach(blob *b)
{
    int64_t id = current_interp_id();
    int res = -1;
    LOCK();
    owner *o = owner_get(id);
    if (o != NULL) {
        b->owner = o;
        b->next = o->live;
        if (o->live != NULL) {
            o->live->prev = b;
        }
        o->live = b;
        registry.nlive++;
        blob_check(b);
        res = 0;
    }
    UNLOCK();
    return res;
}

blob *
blob_pin_buffer(Py_buffer *view, int writable)
{
    blob *b = blob_alloc(view->len, writable);
    if (b == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    b->state = BLOB_PIN_BUFFER;
    b->buf = view->buf;
    b->view = *view;
    if (blob_attach(b) < 0) {
        PyMem_RawFree(b);
        PyErr_NoMemory();
        return NULL;
    }
    /* the blob owns the view now */
    memset(view, 0, sizeof(*view));
    return b;
}

blob *
blob_pin_object(PyObject *obj, const void *data, Py_ssize_t len)
{
    blob *b = blob_alloc(len, 0);
    if (b == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    b->state = BLOB_PIN_OBJECT;
    b->buf = (char *)data;
    b->obj = Py_NewRef(obj);
    if (blob_attach(b) < 0) {
        Py_DECREF(obj);
        PyMem_RawFree(b);
        PyErr_NoMemory();
        return NULL;
    }
    return b;
}

blob *
blob_raw_copy(const void *data, Py_ssize_t len, int writable)
{
    blob *b = blob_alloc(len, writable);
    if (b == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    b->raw = PyMem_RawMalloc(len > 0 ? (size_t)len : 1);
    if (b->raw == NULL) {
        PyMem_RawFree(b);
        PyErr_NoMemory();
        return NULL;
    }
    codec_hint_huge(b->raw, len);
    memcpy(b->raw, data, (size_t)len);
    b->buf = b->raw;
    b->state = BLOB_RAW;
    LOCK();
    registry.nlive++;
    blob_check(b);
    UNLOCK();
    return b;
}

void
blob_incref(blob *b)
{
    long old = atomic_fetch_add_explicit(&b->refcnt, 1,
                                         memory_order_relaxed);
    INVARIANT(old > 0, "blob referenced again after its last reference");
    (void)old;
}

Py_ssize_t
blob_len(const blob *b)
{
    return b->len;
}

int
blob_writable(const blob *b)
{
    return b->writable;
}

int
blob_claim(blob *b)
{
    LOCK();
    int raw = b->state == BLOB_RAW;
    UNLOCK();
    if (!raw) {
        return 1;
    }
    int expected = 0;
    return atomic_compare_exchange_strong(&b->claimed, &expected, 1);
}

/* Release what a pinned blob holds.  In the owner, GIL held. */
static void
pin_release(Py_buffer *view, PyObject *obj)
{
    if (view->obj != NULL) {
        PyBuffer_Release(view);
    }
    Py_XDECREF(obj);
}

static int
main_drain_call(void *Py_UNUSED(arg))
{
    atomic_store(&registry.main_call_scheduled, 0);
    codec_drain_pending();
    return 0;
}

static void
blob_last_ref(blob *b)
{
    int schedule_main = 0;
    LOCK();
    owner *o = b->owner;
    if (o != NULL) {
        /* Pinned: the owner releases it. */
        live_unlink(o, b);
        b->next_pending = o->pending;
        o->pending = b;
        atomic_fetch_add(&registry.pending[o->id % PENDING_SLOTS], 1);
        schedule_main = (o->id == 0);
        blob_check(b);
        UNLOCK();
        if (schedule_main && !atomic_exchange(&registry.main_call_scheduled, 1)) {
            if (Py_AddPendingCall(main_drain_call, NULL) < 0) {
                /* queue full: the next codec call in main drains it */
                atomic_store(&registry.main_call_scheduled, 0);
            }
        }
        return;
    }
    /* Raw, or leaked: nothing to do in any interpreter. */
    registry.nlive--;
    blob_check(b);
    if (b->state == BLOB_LEAKED) {
        /* The exporter stays alive on purpose (see top).  The blob that
           holds it is kept on a list rather than freed, so that the
           pinned object stays reachable: a leak checker sees a deliberate
           keep, not a lost pointer. */
        b->next = registry.kept;
        registry.kept = b;
        UNLOCK();
        return;
    }
    UNLOCK();
    PyMem_RawFree(b->raw);
    PyMem_RawFree(b);
}

void
blob_decref(blob *b)
{
    long old = atomic_fetch_sub_explicit(&b->refcnt, 1,
                                         memory_order_acq_rel);
    INVARIANT(old > 0, "blob released more often than referenced");
    if (old == 1) {
        blob_last_ref(b);
    }
}

void
blob_read(blob *b, Py_ssize_t offset, Py_ssize_t len, void *dst)
{
    LOCK();
    b->readers++;
    blob_check(b);
    const char *src = b->buf;
    UNLOCK();
    memcpy(dst, src + offset, (size_t)len);
    LOCK();
    if (--b->readers == 0) {
        pthread_cond_broadcast(&registry.readers_done);
    }
    blob_check(b);
    UNLOCK();
}

/* Take a view of b for a SharedBuffer in the current interpreter: the
 * address to use, and whether the view counts as foreign. */
static char *
blob_open_view(blob *b, int64_t cur, int *counted)
{
    LOCK();
    char *buf = b->buf;
    if (b->owner != NULL && b->owner->id == cur) {
        *counted = 0;
    }
    else {
        *counted = 1;
        b->nviews++;
    }
    blob_check(b);
    UNLOCK();
    return buf;
}

static void
blob_close_view(blob *b, int counted)
{
    if (counted) {
        LOCK();
        b->nviews--;
        blob_check(b);
        UNLOCK();
    }
    blob_decref(b);
}

/* Take the pending list of o (registry.mu held): its blobs no longer
 * count as live.  *n: how many. */
static blob *
pending_take(owner *o, long *n)
{
    blob *list = o->pending;
    o->pending = NULL;
    *n = 0;
    for (blob *b = list; b != NULL; b = b->next_pending) {
        blob_check(b);
        (*n)++;
        registry.nlive--;
    }
    return list;
}

/* A pin taken from a blob whose data was copied out (codec_interp_
 * closing), to be released after the mutex. */
typedef struct {
    Py_buffer view;
    PyObject *obj;
} pin;

/* Release, in the interpreter `id` that owns them and with its GIL, the
 * pins of npending blobs on the list `pending` (pending_take: the blobs
 * are freed) and of pins[0:npins).  PyBuffer_Release may run Python code
 * (an exporter's __release_buffer__): errors are reported as
 * unraisable, and an exception being raised stays raised. */
static void
pins_release(int64_t id, blob *pending, long npending, pin *pins,
             Py_ssize_t npins)
{
    if (npending > 0) {
        atomic_fetch_sub(&registry.pending[id % PENDING_SLOTS], npending);
    }
    PyObject *exc = PyErr_GetRaisedException();
    for (Py_ssize_t i = 0; i < npins; i++) {
        pin_release(&pins[i].view, pins[i].obj);
    }
    while (pending != NULL) {
        blob *b = pending;
        pending = b->next_pending;
        pin_release(&b->view, b->obj);
        PyMem_RawFree(b);
    }
    if (PyErr_Occurred()) {
        PyErr_WriteUnraisable(NULL);
    }
    PyErr_SetRaisedException(exc);
}

void
codec_drain_pending(void)
{
    int64_t id = current_interp_id();
    if (atomic_load_explicit(&registry.pending[id % PENDING_SLOTS],
                             memory_order_acquire) == 0) {
        return;
    }
    blob *list = NULL;
    long n = 0;
    LOCK();
    owner *o = owner_find(id);
    if (o != NULL) {
        list = pending_take(o, &n);
    }
    UNLOCK();
    if (n > 0) {
        pins_release(id, list, n, NULL, 0);
    }
}

/* The owner is closing (registry.mu held): each blob it still pins with
 * references either gets a raw copy of its data (no view elsewhere; its
 * pin goes to *pins) or is leaked on purpose (see the top).  Returns how
 * many pins; *pins is NULL when there are none, or when there was no
 * memory for the array (every blob is then leaked). */
static Py_ssize_t
owner_detach_live(owner *o, pin **pins)
{
    Py_ssize_t nlive = 0, npins = 0;
    for (blob *b = o->live; b != NULL; b = b->next) {
        nlive++;
    }
    *pins = nlive > 0 ? PyMem_RawCalloc((size_t)nlive, sizeof(pin)) : NULL;
    blob *b = o->live;
    while (b != NULL) {
        blob *next = b->next;
        while (b->readers > 0) {
            pthread_cond_wait(&registry.readers_done, &registry.mu);
        }
        char *copy = NULL;
        if (b->nviews == 0 && *pins != NULL) {
            copy = PyMem_RawMalloc(b->len > 0 ? (size_t)b->len : 1);
        }
        if (copy != NULL) {
            /* Only messages refer to it: they get a copy. */
            memcpy(copy, b->buf, (size_t)b->len);
            (*pins)[npins].view = b->view;
            (*pins)[npins].obj = b->obj;
            npins++;
            memset(&b->view, 0, sizeof(b->view));
            b->obj = NULL;
            b->raw = copy;
            b->buf = copy;
            b->state = BLOB_RAW;
        }
        else {
            /* Views elsewhere point into this memory: keep it. */
            b->state = BLOB_LEAKED;
            registry.nleaked++;
        }
        b->owner = NULL;
        b->prev = b->next = NULL;
        blob_check(b);
        b = next;
    }
    o->live = NULL;
    return npins;
}

void
codec_interp_closing(void)
{
    int64_t id = current_interp_id();
    pin *pins = NULL;
    Py_ssize_t npins = 0;
    blob *pending = NULL;
    long npending = 0;

    LOCK();
    owner *o = owner_find(id);
    if (o == NULL) {
        UNLOCK();
        return;
    }
    /* unlink the owner: nothing can be pinned here any more */
    for (owner **pp = &registry.owners; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            break;
        }
    }
    pending = pending_take(o, &npending);
    npins = owner_detach_live(o, &pins);
    UNLOCK();
    PyMem_RawFree(o);
    pins_release(id, pending, npending, pins, npins);
    PyMem_RawFree(pins);
}

/* ------------------------------------------------------------------ */
/* tokens of dumps()                                                   */

int
token_register(msg *m, uint64_t *token)
{
    token_entry *e = PyMem_RawCalloc(1, sizeof(token_entry));
    if (e == NULL) {
        msg_free(m);
        PyErr_NoMemory();
        return -1;
    }
    e->m = m;
    LOCK();
    /* A counter scrambled with the nonce: unique in the process. */
    uint64_t t = (registry.next_token += 0x9E3779B97F4A7C15ULL);
    t ^= t >> 31;
    e->token = t;
    e->next = registry.tokens;
    registry.tokens = e;
    registry.ntokens++;
    UNLOCK();
    *token = e->token;
    return 0;
}

/* registry.mu held. */
static msg *
token_unlink_if_done(token_entry *e)
{
    if (!e->dead || e->users > 0) {
        return NULL;
    }
    for (token_entry **pp = &registry.tokens; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == e) {
            *pp = e->next;
            break;
        }
    }
    registry.ntokens--;
    msg *m = e->m;
    PyMem_RawFree(e);
    return m;
}

void
token_unregister(uint64_t token)
{
    msg *m = NULL;
    LOCK();
    for (token_entry *e = registry.tokens; e != NULL; e = e->next) {
        if (e->token == token && !e->dead) {
            e->dead = 1;
            m = token_unlink_if_done(e);
            break;
        }
    }
    UNLOCK();
    if (m != NULL) {
        msg_free(m);
    }
}

msg *
token_pin(uint64_t token)
{
    msg *m = NULL;
    LOCK();
    for (token_entry *e = registry.tokens; e != NULL; e = e->next) {
        if (e->token == token && !e->dead) {
            e->users++;
            m = e->m;
            break;
        }
    }
    UNLOCK();
    return m;
}

void
token_unpin(msg *m)
{
    msg *gone = NULL;
    LOCK();
    for (token_entry *e = registry.tokens; e != NULL; e = e->next) {
        if (e->m == m) {
            e->users--;
            gone = token_unlink_if_done(e);
            break;
        }
    }
    UNLOCK();
    if (gone != NULL) {
        msg_free(gone);
    }
}

void
codec_get_counters(codec_counters *c)
{
    memset(c, 0, sizeof(*c));
    LOCK();
    c->live_blobs = registry.nlive;
    c->leaked = registry.nleaked;
    c->tokens = registry.ntokens;
    for (owner *o = registry.owners; o != NULL; o = o->next) {
        c->owners++;
        for (blob *b = o->pending; b != NULL; b = b->next_pending) {
            c->pending++;
        }
    }
    UNLOCK();
}

/* ------------------------------------------------------------------ */
/* SharedBuffer                                                        */

typedef struct {
    PyObject_HEAD
    blob *b;                    /* one reference */
    char *buf;                  /* first byte of this view */
    Py_ssize_t offset;          /* of buf in the blob */
    Py_ssize_t len;
    int readonly;
    int counted;                /* counted in b->nviews */
    Py_ssize_t exports;
    buf_layout lay;             /* what receivers' memoryviews look like */
} SharedBufferObject;

Py_ssize_t
buf_fmt_itemsize(const char *fmt, Py_ssize_t n)
{
    if (n == 2 && fmt[0] == '@') {
        fmt++;
        n--;
    }
    if (n != 1) {
        return -1;
    }
    switch (fmt[0]) {
    case 'c': case 'b': case 'B': case '?':
        return 1;
    case 'h': case 'H':
        return sizeof(short);
    case 'i': case 'I':
        return sizeof(int);
    case 'l': case 'L':
        return sizeof(long);
    case 'q': case 'Q':
        return sizeof(long long);
    case 'n': case 'N':
        return sizeof(Py_ssize_t);
    case 'f':
        return sizeof(float);
    case 'd':
        return sizeof(double);
    case 'P':
        return sizeof(void *);
    default:
        return -1;
    }
}

void
buf_layout_from_view(const Py_buffer *view, buf_layout *lay)
{
    memset(lay, 0, sizeof(*lay));
    const char *fmt = view->format != NULL ? view->format : "B";
    Py_ssize_t n = (Py_ssize_t)strlen(fmt);
    Py_ssize_t itemsize = buf_fmt_itemsize(fmt, n);
    if (itemsize < 0 || itemsize != view->itemsize || view->ndim < 1 ||
        view->ndim > CODEC_MAX_NDIM || view->shape == NULL ||
        (view->ndim == 1 && (strcmp(fmt, "B") == 0 ||
                             strcmp(fmt, "@B") == 0))) {
        return;   /* flat bytes */
    }
    for (int i = 0; i < view->ndim; i++) {
        if (view->shape[i] == 0 && view->ndim > 1) {
            return;   /* cast() cannot make an empty multi-dimensional view */
        }
        lay->shape[i] = view->shape[i];
    }
    memcpy(lay->fmt, fmt, (size_t)n);
    lay->ndim = view->ndim;
}

PyObject *
sharedbuf_new(codec_state *cs, blob *b, Py_ssize_t offset, Py_ssize_t len,
              int readonly, const buf_layout *lay)
{
    SharedBufferObject *self = PyObject_New(SharedBufferObject,
                                            cs->SharedBufferType);
    if (self == NULL) {
        return NULL;
    }
    blob_incref(b);
    self->b = b;
    self->buf = blob_open_view(b, current_interp_id(), &self->counted) +
                offset;
    self->offset = offset;
    self->len = len;
    self->readonly = readonly || !b->writable;
    self->exports = 0;
    if (lay != NULL) {
        self->lay = *lay;
    }
    else {
        memset(&self->lay, 0, sizeof(self->lay));
    }
    return (PyObject *)self;
}

static void
sharedbuf_dealloc(PyObject *op)
{
    SharedBufferObject *self = (SharedBufferObject *)op;
    PyTypeObject *tp = Py_TYPE(op);
    if (self->b != NULL) {
        blob_close_view(self->b, self->counted);
        self->b = NULL;
    }
    tp->tp_free(op);
    Py_DECREF(tp);
}

static int
sharedbuf_getbuffer(PyObject *op, Py_buffer *view, int flags)
{
    SharedBufferObject *self = (SharedBufferObject *)op;
    if ((flags & PyBUF_WRITABLE) && self->readonly) {
        PyErr_SetString(PyExc_BufferError,
                        "this shared buffer is read-only (share it with "
                        "share(obj, writable=True) from a writable "
                        "object to allow writes)");
        return -1;
    }
    if (PyBuffer_FillInfo(view, op, self->buf, self->len, self->readonly,
                          flags) < 0) {
        return -1;
    }
    self->exports++;
    return 0;
}

static void
sharedbuf_releasebuffer(PyObject *op, Py_buffer *Py_UNUSED(view))
{
    ((SharedBufferObject *)op)->exports--;
}

static PyObject *
sharedbuf_repr(PyObject *op)
{
    SharedBufferObject *self = (SharedBufferObject *)op;
    return PyUnicode_FromFormat("<subinterp.SharedBuffer %zd bytes%s>",
                                self->len,
                                self->readonly ? " read-only" : "");
}

static PyObject *
sharedbuf_get_nbytes(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromSsize_t(((SharedBufferObject *)op)->len);
}

static PyObject *
sharedbuf_get_readonly(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((SharedBufferObject *)op)->readonly);
}

static Py_ssize_t
sharedbuf_length(PyObject *op)
{
    return ((SharedBufferObject *)op)->len;
}

static PyGetSetDef sharedbuf_getset[] = {
    {"nbytes", sharedbuf_get_nbytes, NULL,
     "Size of the shared memory in bytes.", NULL},
    {"readonly", sharedbuf_get_readonly, NULL,
     "True if receivers (and this object) may not write to it.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot sharedbuf_slots[] = {
    {Py_tp_dealloc, sharedbuf_dealloc},
    {Py_tp_repr, sharedbuf_repr},
    {Py_tp_getset, sharedbuf_getset},
    {Py_bf_getbuffer, sharedbuf_getbuffer},
    {Py_bf_releasebuffer, sharedbuf_releasebuffer},
    {Py_sq_length, sharedbuf_length},
    {Py_tp_doc,
     "A buffer that crosses to other interpreters without being copied.\n\n"
     "Made by subinterp.share(obj).  The object stays pinned in this "
     "interpreter until every view of it, here and elsewhere, is gone; "
     "receivers get a memoryview on the same memory."},
    {0, NULL},
};

static PyType_Spec sharedbuf_spec = {
    .name = "subinterp.SharedBuffer",
    .basicsize = sizeof(SharedBufferObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = sharedbuf_slots,
};

int
codec_buf_types_init(PyObject *mod, codec_state *cs)
{
    cs->SharedBufferType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &sharedbuf_spec, NULL);
    if (cs->SharedBufferType == NULL) {
        return -1;
    }
    return PyModule_AddType(mod, cs->SharedBufferType);
}

blob *
sharedbuf_blob(codec_state *cs, PyObject *obj, const Py_buffer *mv,
               Py_ssize_t *offset, int *readonly, buf_layout *lay)
{
    if (!Py_IS_TYPE(obj, cs->SharedBufferType)) {
        return NULL;
    }
    SharedBufferObject *self = (SharedBufferObject *)obj;
    if (mv == NULL) {
        *offset = self->offset;
        *readonly = self->readonly;
        *lay = self->lay;
        return self->b;
    }
    /* a memoryview over a SharedBuffer: where in the blob it starts */
    const char *p = mv->buf;
    if (p < self->buf || p + mv->len > self->buf + self->len) {
        return NULL;
    }
    *offset = self->offset + (p - self->buf);
    *readonly = 1;
    return self->b;
}

/* The arguments of share(obj, *, writable=False).  0 or -1. */
static int
share_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
           int *writable)
{
    *writable = 0;
    if (nargs != 1) {
        PyErr_SetString(PyExc_TypeError,
                        "share(obj, *, writable=False) takes one buffer "
                        "object");
        return -1;
    }
    for (Py_ssize_t i = 0; kwnames && i < PyTuple_GET_SIZE(kwnames); i++) {
        PyObject *k = PyTuple_GET_ITEM(kwnames, i);
        if (PyUnicode_CompareWithASCIIString(k, "writable") != 0) {
            PyErr_Format(PyExc_TypeError,
                         "share() got an unexpected keyword argument %R", k);
            return -1;
        }
        *writable = PyObject_IsTrue(args[nargs + i]);
        if (*writable < 0) {
            return -1;
        }
    }
    return 0;
}

/* share(obj, *, writable=False) */
PyObject *
coremod_share(PyObject *mod, PyObject *const *args, Py_ssize_t nargs,
              PyObject *kwnames)
{
    codec_state *cs = codec_get(get_mod_state(mod));
    int writable;
    Py_buffer view = {0};
    PyObject *res = NULL;

    if (share_args(args, nargs, kwnames, &writable) < 0) {
        return NULL;
    }
    PyObject *obj = args[0];
    if (Py_IS_TYPE(obj, cs->SharedBufferType)) {
        SharedBufferObject *sb = (SharedBufferObject *)obj;
        if (writable && sb->readonly) {
            PyErr_SetString(PyExc_ValueError,
                            "share(writable=True) of a read-only shared "
                            "buffer");
            return NULL;
        }
        if (!writable && !sb->readonly) {
            return sharedbuf_new(cs, sb->b, sb->offset, sb->len, 1,
                                 &sb->lay);
        }
        return Py_NewRef(obj);
    }
    if (!PyObject_CheckBuffer(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "share() needs an object supporting the buffer "
                     "protocol (bytes, bytearray, memoryview, array, "
                     "mmap, ...), not %.200s", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    if (PyObject_GetBuffer(obj, &view,
                           writable ? PyBUF_FULL : PyBUF_FULL_RO) < 0) {
        if (writable && PyErr_ExceptionMatches(PyExc_BufferError)) {
            PyErr_Format(PyExc_ValueError,
                         "share(writable=True) needs a writable buffer; "
                         "%.200s object is read-only",
                         Py_TYPE(obj)->tp_name);
        }
        return NULL;
    }
    if (!PyBuffer_IsContiguous(&view, 'C')) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError,
                        "share() needs a C-contiguous buffer; share a "
                        "contiguous copy instead (e.g. bytes(view))");
        return NULL;
    }
    Py_ssize_t len = view.len;
    buf_layout lay;
    buf_layout_from_view(&view, &lay);
    blob *b = blob_pin_buffer(&view, writable);
    if (b == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    res = sharedbuf_new(cs, b, 0, len, !writable, &lay);
    blob_decref(b);   /* the SharedBuffer holds its own reference */
    return res;
}
