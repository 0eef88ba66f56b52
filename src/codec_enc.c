/* codec_enc.c - the encoder: object graph -> message.
 *
 * One recursive pass over the graph writes opcodes into a growable raw
 * buffer (doubling, so appends are amortized O(1)).  str, int, float,
 * None and bool are tested inline first, with pointer compares
 * (enc_obj_held); every other type is found in the type table
 * (codec_types.c: containers first, then the rest, pickle last), whose
 * entry says how it is memoized and which function writes it
 * (enc_other).
 *
 * Memo.  An object whose reference count is 1 can be reached only once
 * in the graph, so it never needs a memo entry; every other object that
 * is not an int/float/bool/None gets one (a pointer-keyed open-addressing
 * table holding strong references, so that a recycled address can never
 * alias).  The first occurrence is written with OP_MEMO set on its
 * opcode, later ones as OP_REF <index>.  Interned dict keys therefore
 * cost one table probe and two bytes after their first use.
 *
 * Indices are handed out in pre-order: the decoder reserves a slot when
 * it reads a memo-flagged opcode and fills it once the object exists -
 * immediately for list/dict/set (MEMO_AT_ONCE in the type table: a cycle
 * through them round-trips), only after the children for tuple/frozenset/
 * slice and the rest (MEMO_AFTER).  A reference to one of those while it is still being
 * written is a cycle through an immutable object; the encoder then
 * starts again and sends the whole graph through pickle, which knows how
 * to rebuild such cycles.
 *
 * Dict shapes.  Lists of records (dicts with the same keys in the same
 * order) are common.  Both sides keep the key lists of the last
 * SHAPE_SLOTS distinct shapes of dicts written with OP_DICT, replaced
 * first in, first out; a dict whose keys are exactly one of them (same
 * order; the same objects, or exact str of equal value) is written as
 * OP_DICT_SHAPE <slot> and its values only.  The decoder copies the dict that defined the slot (a memcpy of
 * its hash table: no hashing, no resizes) and replaces the values.
 *
 * Pins.  With ENC_CROSS, bytes and str of CODEC_PIN_THRESHOLD bytes or
 * more are not copied into the message: the message pins the object in
 * this interpreter and the receiver copies it once (codec_buf.c).
 * dumps() (ENC_DUMPS) copies them, so that its output is portable, but
 * only once: such a large bytes/str becomes a segment (a strong reference
 * and where in the body its data goes) instead of being copied into the
 * buffer, and dumps() gathers the buffer and the segments straight into
 * the bytes object it returns (enc_gather): one copy of the data where
 * there were two (into the buffer, then into the bytes).
 *
 * Fallback.  Every other object goes through one pickle.Pickler per
 * message (protocol 5), so pickled objects share one pickle memo; the
 * pickle stream is appended after the body and each OP_PICKLE reads the
 * next pickle from it.  Out-of-band buffers are written right after the
 * opcode (copied once into raw memory when large).  The pickler's
 * reducer_override sends functions of the main script, stateless
 * functions, handles and zero-copy buffers inside pickled objects the
 * way the native encoder does (codec_reducer_override).
 */
#include "codec_impl.h"

typedef struct {
    PyObject *obj;      /* strong, NULL = empty slot */
    uint32_t index;
    uint32_t ready;
} memo_slot;

/* A large bytes/str that dumps() copies straight into its result: its
 * data goes into the body before buf[at]. */
typedef struct {
    Py_ssize_t at;
    PyObject *obj;      /* strong: keeps data alive */
    const char *data;
    Py_ssize_t len;
} enc_seg;

typedef struct {
    PyObject **keys;    /* strong */
    Py_ssize_t n;
    Py_ssize_t cap;
} shape_slot;

struct encoder {
    module_state *st;
    codec_state *cs;
    enc_mode mode;

    char *buf;          /* `small`, then PyMem_RawMalloc once it grows;
                           with ENC_DUMPS, the data of out */
    char *small;        /* the caller's stack buffer of ENC_SMALL bytes */
    PyObject *out;      /* ENC_DUMPS, once buf outgrows small: the bytes
                           object dumps() returns, written in place */
    Py_ssize_t len;
    Py_ssize_t cap;

    enc_seg *segs;      /* PyMem_Malloc, ENC_DUMPS only */
    Py_ssize_t nsegs;
    Py_ssize_t segcap;
    Py_ssize_t seg_bytes;   /* sum of their len: the message is this much
                               longer than buf */

    msg_ref *refs;      /* PyMem_RawMalloc, one C reference each */
    Py_ssize_t nrefs;
    Py_ssize_t refcap;

    memo_slot *memo;    /* PyMem_Malloc */
    size_t memo_mask;
    size_t memo_used;
    uint32_t next_index;

    shape_slot shapes[SHAPE_SLOTS];   /* see "Dict shapes" above */
    int shape_next;                   /* slot the next new shape takes */

    PyObject **kstack;  /* keys of the dicts being written (strong) */
    Py_ssize_t nkstack;
    Py_ssize_t kstack_cap;

    int depth;

    PyObject *pickler;  /* lazily, see enc_pickle */
    PyObject *pickle_file;
    PyObject *pickle_bufs;
    PyObject *by_value; /* lazily: subinterp._codec.ByValue, the
                           reductions of functions sent by value */

    PyObject *path;     /* on error: where in the graph, innermost first */

    struct encoder *prev;   /* the encoder this one interrupted */
};

/* The encoder running in this thread: the pickler's reducer_override
 * needs it.  Encoders nest (pickle may run code that encodes), so each
 * remembers the one it interrupted. */
static _Thread_local encoder *tls_enc;

/* An encoder starts in a stack buffer of this size; a message that fits
 * is one allocation (enc_take_msg). */
#define ENC_SMALL 256

/* ------------------------------------------------------------------ */
/* output buffer                                                       */

static int
enc_grow(encoder *e, Py_ssize_t need)
{
    if (need > PY_SSIZE_T_MAX - e->len - 64) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t want = e->len + need;
    Py_ssize_t cap = e->cap;
    while (cap < want) {
        cap = cap < PY_SSIZE_T_MAX / 2 ? cap * 2 : want;
    }
    char *nb;
    if (e->mode == ENC_DUMPS) {
        /* the result itself, grown the way pickle grows its output:
           dumps() then returns it without a copy */
        if (e->out == NULL) {
            e->out = PyBytes_FromStringAndSize(NULL, cap);
            if (e->out == NULL) {
                return -1;
            }
            memcpy(PyBytes_AS_STRING(e->out), e->buf, (size_t)e->len);
        }
        else if (_PyBytes_Resize(&e->out, cap) < 0) {
            /* e->out is gone (NULL), and what was written with it: start
               over in small, as enc_reset leaves it */
            e->buf = e->small;
            e->cap = ENC_SMALL;
            e->len = MSG_HEADER;
            return -1;
        }
        e->buf = PyBytes_AS_STRING(e->out);
        e->cap = cap;
        return 0;
    }
    if (e->buf == e->small) {
        nb = PyMem_RawMalloc((size_t)cap);
        if (nb != NULL) {
            memcpy(nb, e->buf, (size_t)e->len);
        }
    }
    else {
        nb = PyMem_RawRealloc(e->buf, (size_t)cap);
    }
    if (nb == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    e->buf = nb;
    e->cap = cap;
    return 0;
}

static inline int
enc_reserve(encoder *e, Py_ssize_t n)
{
    if (e->cap - e->len >= n) {
        return 0;
    }
    return enc_grow(e, n);
}

/* Unchecked writers: call enc_reserve first. */
static inline void
w_byte(encoder *e, int b)
{
    e->buf[e->len++] = (char)b;
}

static inline void
w_varint(encoder *e, uint64_t v)
{
    char *p = e->buf + e->len;
    while (v >= 0x80) {
        *p++ = (char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (char)v;
    e->len = p - e->buf;
}

static inline void
w_raw(encoder *e, const void *data, Py_ssize_t n)
{
    memcpy(e->buf + e->len, data, (size_t)n);
    e->len += n;
}

static inline void
w_double(encoder *e, double d)
{
#if PY_LITTLE_ENDIAN
    memcpy(e->buf + e->len, &d, 8);
#else
    PyFloat_Pack8(d, e->buf + e->len, 1);
#endif
    e->len += 8;
}

static inline uint64_t
zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* op + varint, reserving room */
static inline int
w_op_varint(encoder *e, int op, uint64_t v)
{
    if (enc_reserve(e, 11) < 0) {
        return -1;
    }
    w_byte(e, op);
    w_varint(e, v);
    return 0;
}

/* The offset in the finished message of what is written next (the
 * segments before it included). */
static inline Py_ssize_t
enc_offset(encoder *e)
{
    return e->len + e->seg_bytes;
}

/* Enter data[0:len) of obj (an exact bytes or str: immutable) as a
 * segment at the current end of the buffer.  0 or -1. */
static int
enc_add_seg(encoder *e, PyObject *obj, const void *data, Py_ssize_t len)
{
    if (e->nsegs == e->segcap) {
        Py_ssize_t cap = e->segcap ? e->segcap * 2 : 4;
        enc_seg *ns = PyMem_Realloc(e->segs, (size_t)cap * sizeof(enc_seg));
        if (ns == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        e->segs = ns;
        e->segcap = cap;
    }
    enc_seg *sg = &e->segs[e->nsegs++];
    sg->at = e->len;
    sg->obj = Py_NewRef(obj);
    sg->data = data;
    sg->len = len;
    e->seg_bytes += len;
    return 0;
}

static void
seg_clear(encoder *e)
{
    for (Py_ssize_t i = 0; i < e->nsegs; i++) {
        Py_DECREF(e->segs[i].obj);
    }
    e->nsegs = 0;
    e->seg_bytes = 0;
}

/* Copy the message (buf with the segments in their places, len +
 * seg_bytes bytes) to dst. */
static void
enc_gather(encoder *e, char *dst)
{
    Py_ssize_t from = 0;
    for (Py_ssize_t i = 0; i < e->nsegs; i++) {
        const enc_seg *sg = &e->segs[i];
        memcpy(dst, e->buf + from, (size_t)(sg->at - from));
        dst += sg->at - from;
        memcpy(dst, sg->data, (size_t)sg->len);
        dst += sg->len;
        from = sg->at;
    }
    memcpy(dst, e->buf + from, (size_t)(e->len - from));
}

/* ------------------------------------------------------------------ */
/* references held by the message                                      */

static Py_ssize_t
enc_add_ref(encoder *e, ref_what what, const handle_kind *kind, void *ptr)
{
    if (e->nrefs == e->refcap) {
        Py_ssize_t cap = e->refcap ? e->refcap * 2 : 4;
        msg_ref *nr = PyMem_RawRealloc(e->refs, (size_t)cap * sizeof(msg_ref));
        if (nr == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        e->refs = nr;
        e->refcap = cap;
    }
    e->refs[e->nrefs].what = what;
    e->refs[e->nrefs].kind = kind;
    e->refs[e->nrefs].ptr = ptr;
    return e->nrefs++;
}

/* Takes the blob reference; returns the ref index or -1 (blob released). */
static Py_ssize_t
enc_add_blob(encoder *e, blob *b)
{
    Py_ssize_t i = enc_add_ref(e, REF_BLOB, NULL, b);
    if (i < 0) {
        blob_decref(b);
    }
    return i;
}

/* ------------------------------------------------------------------ */
/* memo                                                                */

static inline size_t
memo_hash(PyObject *obj)
{
    uint64_t h = (uint64_t)(uintptr_t)obj * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 32);
}

static int
memo_grow(encoder *e)
{
    size_t newcap = e->memo == NULL ? 64 : (e->memo_mask + 1) * 2;
    memo_slot *nm = PyMem_Calloc(newcap, sizeof(memo_slot));
    if (nm == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (e->memo != NULL) {
        for (size_t i = 0; i <= e->memo_mask; i++) {
            memo_slot *s = &e->memo[i];
            if (s->obj == NULL) {
                continue;
            }
            size_t j = memo_hash(s->obj) & (newcap - 1);
            while (nm[j].obj != NULL) {
                j = (j + 1) & (newcap - 1);
            }
            nm[j] = *s;
        }
        PyMem_Free(e->memo);
    }
    e->memo = nm;
    e->memo_mask = newcap - 1;
    return 0;
}

/* Look obj up in the memo.  Returns 1 if it was there (an OP_REF was
 * written), 0 if it was not (it is now, and *flag is OP_MEMO),
 * ENC_RESTART for a reference to an object still being written that the
 * decoder cannot hand out yet, -1 on error. */
static int
memo_check(encoder *e, PyObject *obj, int ready, int *flag)
{
    if (e->memo == NULL || (e->memo_used + 1) * 2 > e->memo_mask + 1) {
        if (memo_grow(e) < 0) {
            return -1;
        }
    }
    size_t i = memo_hash(obj) & e->memo_mask;
    for (;;) {
        memo_slot *s = &e->memo[i];
        if (s->obj == obj) {
            if (!s->ready) {
                return ENC_RESTART;
            }
            return w_op_varint(e, OP_REF, s->index) < 0 ? -1 : 1;
        }
        if (s->obj == NULL) {
            if (e->next_index == UINT32_MAX) {
                PyErr_SetString(PyExc_ValueError,
                                "too many objects in one message");
                return -1;
            }
            s->obj = Py_NewRef(obj);
            s->index = e->next_index++;
            s->ready = (uint32_t)ready;
            e->memo_used++;
            *flag = OP_MEMO;
            return 0;
        }
        i = (i + 1) & e->memo_mask;
    }
}

static void
memo_set_ready(encoder *e, PyObject *obj)
{
    size_t i = memo_hash(obj) & e->memo_mask;
    while (e->memo[i].obj != NULL) {
        if (e->memo[i].obj == obj) {
            e->memo[i].ready = 1;
            return;
        }
        i = (i + 1) & e->memo_mask;
    }
}

static void
memo_clear(encoder *e)
{
    if (e->memo != NULL) {
        for (size_t i = 0; i <= e->memo_mask; i++) {
            Py_XDECREF(e->memo[i].obj);
        }
        PyMem_Free(e->memo);
    }
    e->memo = NULL;
    e->memo_mask = 0;
    e->memo_used = 0;
    e->next_index = 0;
}

static void
shape_clear(encoder *e)
{
    for (int s = 0; s < SHAPE_SLOTS; s++) {
        shape_slot *sl = &e->shapes[s];
        for (Py_ssize_t i = 0; i < sl->n; i++) {
            Py_DECREF(sl->keys[i]);
        }
        sl->n = 0;
    }
    e->shape_next = 0;
}

static void
shape_free(encoder *e)
{
    shape_clear(e);
    for (int s = 0; s < SHAPE_SLOTS; s++) {
        PyMem_Free(e->shapes[s].keys);
        e->shapes[s].keys = NULL;
        e->shapes[s].cap = 0;
    }
}

/* Whether dict key k is the shape key sk: the same object, or two exact
 * str of equal value (records built with f-strings or read from files
 * have equal keys that are distinct objects).  Dict keys have their
 * hash cached, so unequal strings are told apart without reading them. */
static inline int
shape_key_eq(PyObject *sk, PyObject *k)
{
    if (sk == k) {
        return 1;
    }
    if (!PyUnicode_CheckExact(sk) || !PyUnicode_CheckExact(k)) {
        return 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(k);
    int kind = PyUnicode_KIND(k);
    if (PyUnicode_GET_LENGTH(sk) != n || PyUnicode_KIND(sk) != kind ||
        PyObject_Hash(sk) != PyObject_Hash(k)) {
        return 0;
    }
    return memcmp(PyUnicode_DATA(sk), PyUnicode_DATA(k),
                  (size_t)n * (size_t)kind) == 0;
}

/* The slot holding the keys of d (in order, see shape_key_eq), or -1. */
static int
shape_find(encoder *e, PyObject *d, Py_ssize_t n)
{
    Py_ssize_t pos = 0;
    PyObject *first;
    if (n == 0 || !PyDict_Next(d, &pos, &first, NULL)) {
        return -1;
    }
    for (int s = 0; s < SHAPE_SLOTS; s++) {
        shape_slot *sl = &e->shapes[s];
        if (sl->n != n || !shape_key_eq(sl->keys[0], first)) {
            continue;
        }
        Py_ssize_t i = 1;
        PyObject *k;
        while (PyDict_Next(d, &pos, &k, NULL)) {
            if (i >= n || !shape_key_eq(sl->keys[i], k)) {
                break;
            }
            i++;
        }
        if (i == n) {
            return s;
        }
        pos = 0;
        (void)PyDict_Next(d, &pos, &first, NULL);
    }
    return -1;
}

/* The keys kstack[base:] of a dict just written with OP_DICT become the
 * next shape (the decoder does the same); their references move. */
static int
shape_take(encoder *e, Py_ssize_t base)
{
    Py_ssize_t n = e->nkstack - base;
    shape_slot *sl = &e->shapes[e->shape_next];
    e->shape_next = (e->shape_next + 1) % SHAPE_SLOTS;
    for (Py_ssize_t i = 0; i < sl->n; i++) {
        Py_DECREF(sl->keys[i]);
    }
    sl->n = 0;
    if (codec_grow_ptrs(&sl->keys, &sl->cap, n) < 0) {
        return -1;
    }
    memcpy(sl->keys, e->kstack + base, (size_t)n * sizeof(PyObject *));
    sl->n = n;
    e->nkstack = base;
    return 0;
}

static void
kstack_pop(encoder *e, Py_ssize_t base)
{
    for (Py_ssize_t i = base; i < e->nkstack; i++) {
        Py_DECREF(e->kstack[i]);
    }
    e->nkstack = base;
}

static int
kstack_reserve(encoder *e, Py_ssize_t n)
{
    return codec_grow_ptrs(&e->kstack, &e->kstack_cap, e->nkstack + n);
}

/* ------------------------------------------------------------------ */
/* error paths                                                         */

/* Note where in the graph an object that cannot cross sits: each
 * container on the way up adds its part of the path. */
static void
enc_add_path(encoder *e, const char *fmt, PyObject *key, Py_ssize_t index)
{
    if (!PyErr_ExceptionMatches(e->st->NotShareableError)) {
        return;
    }
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *seg = NULL;
    if (e->path == NULL) {
        e->path = PyList_New(0);
    }
    if (e->path != NULL && PyList_GET_SIZE(e->path) < 64) {
        if (key != NULL) {
            seg = PyUnicode_FromFormat(fmt, key);
        }
        else {
            seg = PyUnicode_FromFormat(fmt, index);
        }
        if (seg != NULL) {
            (void)PyList_Append(e->path, seg);
            Py_DECREF(seg);
        }
    }
    PyErr_Clear();
    PyErr_SetRaisedException(exc);
}

/* Rewrite the NotShareableError being raised to say where it happened. */
static void
enc_finish_path(encoder *e)
{
    if (e->path == NULL || PyList_GET_SIZE(e->path) == 0 ||
        !PyErr_ExceptionMatches(e->st->NotShareableError)) {
        return;
    }
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *where = NULL, *text = NULL, *newexc = NULL;
    if (PyList_Reverse(e->path) < 0) {
        goto done;
    }
    PyObject *empty = PyUnicode_FromStringAndSize(NULL, 0);
    if (empty == NULL) {
        goto done;
    }
    where = PyUnicode_Join(empty, e->path);
    Py_DECREF(empty);
    if (where == NULL) {
        goto done;
    }
    text = PyUnicode_FromFormat("%S (at obj%U)", exc, where);
    if (text == NULL) {
        goto done;
    }
    newexc = PyObject_CallOneArg((PyObject *)Py_TYPE(exc), text);
    if (newexc == NULL) {
        goto done;
    }
    PyObject *cause = PyException_GetCause(exc);
    if (cause != NULL) {
        PyException_SetCause(newexc, cause);
    }
    PyObject *ctx = PyException_GetContext(exc);
    if (ctx != NULL) {
        PyException_SetContext(newexc, ctx);
    }
    Py_SETREF(exc, newexc);
done:
    PyErr_Clear();
    Py_XDECREF(where);
    Py_XDECREF(text);
    PyErr_SetRaisedException(exc);
}

static int
enc_too_deep(encoder *e)
{
    (void)e;
    PyErr_Format(PyExc_ValueError,
                 "object nesting too deep to send to another interpreter "
                 "(the limit is %d levels)", CODEC_MAX_DEPTH);
    return -1;
}

/* ------------------------------------------------------------------ */
/* scalars                                                             */

static int
enc_bigint(encoder *e, PyObject *v)
{
    int res = -1;
#if PY_VERSION_HEX >= 0x030D0000
    int flags = Py_ASNATIVEBYTES_LITTLE_ENDIAN;
    Py_ssize_t n = PyLong_AsNativeBytes(v, NULL, 0, flags);
    if (n < 0) {
        return -1;
    }
    if (enc_reserve(e, 11 + n) < 0) {
        return -1;
    }
    w_byte(e, OP_BIGINT);
    w_varint(e, (uint64_t)n);
    Py_ssize_t got = PyLong_AsNativeBytes(v, e->buf + e->len, n, flags);
    if (got < 0) {
        return -1;
    }
    if (got > n) {
        PyErr_SetString(PyExc_SystemError, "int size changed");
        return -1;
    }
    e->len += n;
    res = 0;
#else
    /* 3.12 has no public bytes conversion in C: use int.to_bytes(). */
    PyObject *bits = NULL, *bytes = NULL, *args[4] = {NULL};
    PyObject *kwnames = NULL;
    bits = PyObject_CallMethod(v, "bit_length", NULL);
    if (bits == NULL) {
        goto done;
    }
    Py_ssize_t nbits = PyLong_AsSsize_t(bits);
    if (nbits < 0) {
        goto done;
    }
    Py_ssize_t n = nbits / 8 + 1;   /* room for the sign bit */
    args[0] = v;
    args[1] = PyLong_FromSsize_t(n);
    args[2] = PyUnicode_FromString("little");
    args[3] = Py_True;
    kwnames = Py_BuildValue("(s)", "signed");
    if (args[1] == NULL || args[2] == NULL || kwnames == NULL) {
        goto done;
    }
    PyObject *name = PyUnicode_FromString("to_bytes");
    if (name == NULL) {
        goto done;
    }
    bytes = PyObject_VectorcallMethod(
        name, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
    Py_DECREF(name);
    if (bytes == NULL) {
        goto done;
    }
    if (enc_reserve(e, 11 + n) < 0) {
        goto done;
    }
    w_byte(e, OP_BIGINT);
    w_varint(e, (uint64_t)n);
    w_raw(e, PyBytes_AS_STRING(bytes), n);
    res = 0;
done:
    Py_XDECREF(bits);
    Py_XDECREF(bytes);
    Py_XDECREF(args[1]);
    Py_XDECREF(args[2]);
    Py_XDECREF(kwnames);
#endif
    return res;
}

static inline int
enc_int(encoder *e, PyObject *v)
{
    int64_t x;
    if (PyUnstable_Long_IsCompact((PyLongObject *)v)) {
        x = PyUnstable_Long_CompactValue((PyLongObject *)v);
    }
    else {
        int overflow = 0;
        long long ll = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow) {
            return enc_bigint(e, v);
        }
        if (ll == -1 && PyErr_Occurred()) {
            return -1;
        }
        x = ll;
    }
    if (enc_reserve(e, 11) < 0) {
        return -1;
    }
    if (x >= SMALLINT_MIN && x <= SMALLINT_MAX) {
        w_byte(e, OP_SMALLINT + (int)(x - SMALLINT_MIN));
    }
    else {
        w_byte(e, OP_INT);
        w_varint(e, zigzag(x));
    }
    return 0;
}

static inline int
enc_float(encoder *e, PyObject *v)
{
    if (enc_reserve(e, 9) < 0) {
        return -1;
    }
    w_byte(e, OP_FLOAT);
    w_double(e, PyFloat_AS_DOUBLE(v));
    return 0;
}

static int
enc_str_pinned(encoder *e, PyObject *s, int flag, int kind,
               const void *data, Py_ssize_t n)
{
    blob *b = blob_pin_object(s, data, n * kind);
    if (b == NULL) {
        return -1;
    }
    Py_ssize_t ref = enc_add_blob(e, b);
    if (ref < 0) {
        return -1;
    }
    if (enc_reserve(e, 22) < 0) {
        return -1;
    }
    w_byte(e, OP_STR_PIN | flag);
    w_byte(e, PyUnicode_IS_ASCII(s) ? 0 : kind);
    w_varint(e, (uint64_t)n);
    w_varint(e, (uint64_t)ref);
    return 0;
}

/* held: references to s the encoder itself holds (0 or 1), which do not
 * count when deciding whether s may appear twice in the graph. */
static int
enc_str(encoder *e, PyObject *s, int held)
{
    int flag = 0;
    if (Py_REFCNT(s) > 1 + held) {
        int r = memo_check(e, s, 1, &flag);
        if (r != 0) {
            return r > 0 ? 0 : r;
        }
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n < 0x80 && PyUnicode_IS_ASCII(s)) {
        /* the common short ASCII str (keys, words): the length is one
           varint byte and there is no padding */
        if (enc_reserve(e, 2 + n) < 0) {
            return -1;
        }
        w_byte(e, OP_STR_ASCII | flag);
        w_byte(e, (int)n);
        w_raw(e, PyUnicode_DATA(s), n);
        return 0;
    }
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    int op;
    if (PyUnicode_IS_ASCII(s)) {
        op = OP_STR_ASCII;
    }
    else if (kind == PyUnicode_1BYTE_KIND) {
        op = OP_STR_1;
    }
    else if (kind == PyUnicode_2BYTE_KIND) {
        op = OP_STR_2;
    }
    else {
        op = OP_STR_4;
    }
    Py_ssize_t nbytes = n * kind;
    int large = nbytes >= CODEC_PIN_THRESHOLD;
    if (large && e->mode == ENC_CROSS) {
        return enc_str_pinned(e, s, flag, kind, data, n);
    }
    if (enc_reserve(e, 11 + 3 + (large ? 0 : nbytes)) < 0) {
        return -1;
    }
    w_byte(e, op | flag);
    w_varint(e, (uint64_t)n);
    if (kind > 1) {
        /* align the code units (relative to the message start, which is
           malloc-aligned) so the decoder can read them in place */
        while (enc_offset(e) & (kind - 1)) {
            w_byte(e, 0);
        }
    }
    if (large) {
        return enc_add_seg(e, s, data, nbytes);
    }
    w_raw(e, data, nbytes);
    return 0;
}

/* ------------------------------------------------------------------ */
/* containers                                                          */

static int enc_obj_held(encoder *e, PyObject *obj, int held);

static inline int
enc_obj(encoder *e, PyObject *obj)
{
    return enc_obj_held(e, obj, 0);
}

/* The longest and the shortest run of ints enc_int_run writes as one
 * OP_INT_RUN: its header costs 3-4 bytes, and the decoder's general path
 * is as fast for a few ints. */
#define INT_RUN_BLOCK 1024
#define INT_RUN_MIN 8

/* w bytes of x, little-endian (w a constant where it is inlined, so the
 * stores merge into one). */
static inline char *
put_int_le(char *p, int32_t x, int w)
{
    uint32_t v = (uint32_t)x;
    for (int b = 0; b < w; b++) {
        p[b] = (char)(v >> (8 * b));
    }
    return p + w;
}

/* The int x as one item: OP_SMALLINT or OP_INT (at most 6 bytes). */
static inline char *
put_int_value(char *p, int32_t x)
{
    if ((uint32_t)(x - SMALLINT_MIN) <= SMALLINT_MAX - SMALLINT_MIN) {
        *p++ = (char)(OP_SMALLINT + (x - SMALLINT_MIN));
        return p;
    }
    uint64_t v = zigzag(x);
    *p++ = OP_INT;
    while (v >= 0x80) {
        *p++ = (char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (char)v;
    return p;
}

/* The compact int obj as one item. */
static inline char *
put_int_item(char *p, PyObject *obj)
{
    return put_int_value(
        p, (int32_t)PyUnstable_Long_CompactValue((PyLongObject *)obj));
}

static inline int
is_compact_int(PyObject *obj)
{
    return Py_IS_TYPE(obj, &PyLong_Type) &&
           PyUnstable_Long_IsCompact((PyLongObject *)obj);
}

/* A block of up to k_max (at most INT_RUN_BLOCK) compact ints at items,
 * starting with items[0], which is one: one reservation, no calls (so a
 * list cannot change meanwhile).  The
 * objects are read once, into an array of their values on the stack
 * (which stays in the L1 cache), and written from there: a million ints
 * are 32 MB of objects that only memory's bandwidth brings in.  A run of
 * INT_RUN_MIN or more with a value outside the one-byte range goes as
 * one OP_INT_RUN of fixed-width values, which the decoder reads without
 * a varint loop; other runs as OP_SMALLINT/OP_INT items.  Not inlined:
 * the array (4 KiB) is in this frame only while it runs, not in every
 * frame of the recursive enc_list and enc_tuple (a list nested 1000
 * deep would take 4 MB of stack).  Returns how many ints it wrote (at
 * least 1), or -1. */
static Py_NO_INLINE Py_ssize_t
enc_int_block(encoder *e, PyObject **items, Py_ssize_t k_max)
{
    int32_t vals[INT_RUN_BLOCK];
    /* the bits of all the values, each as x or, when negative, ~x: every
       x fits in n signed bits when this is below 2**(n-1) (one OR per
       int instead of a minimum and a maximum) */
    uint32_t bits = 0;
    Py_ssize_t k = 0;
    for (; k < k_max; k++) {
        PyObject *item = items[k];
        if (!is_compact_int(item)) {
            break;
        }
        int32_t x = (int32_t)
            PyUnstable_Long_CompactValue((PyLongObject *)item);
        vals[k] = x;
        bits |= (uint32_t)(x < 0 ? ~x : x);
    }
    /* header, or the longest per-item form (1 + 5 bytes) */
    if (enc_reserve(e, 12 + k * 6) < 0) {
        return -1;
    }
    /* SMALLINT_MIN..SMALLINT_MAX is -64..63: 7 signed bits */
    Py_BUILD_ASSERT(SMALLINT_MIN == -64 && SMALLINT_MAX == 63);
    if (k >= INT_RUN_MIN && bits >= 64) {
        int w = bits < 0x80 ? 1 : bits < 0x8000 ? 2 : 4;
        w_byte(e, OP_INT_RUN);
        w_varint(e, (uint64_t)k);
        w_byte(e, w);
        char *p = e->buf + e->len;
        if (w == 4 && PY_LITTLE_ENDIAN) {
            memcpy(p, vals, (size_t)k * 4);
            p += k * 4;
        }
        else {
            for (Py_ssize_t j = 0; j < k; j++) {
                p = w == 1 ? put_int_le(p, vals[j], 1)
                    : w == 2 ? put_int_le(p, vals[j], 2)
                    : put_int_le(p, vals[j], 4);
            }
        }
        e->len = p - e->buf;
        return k;
    }
    char *p = e->buf + e->len;
    for (Py_ssize_t j = 0; j < k; j++) {
        p = put_int_value(p, vals[j]);
    }
    e->len = p - e->buf;
    return k;
}

/* A run of CPython's "compact" ints (one digit: |value| below 2**30, so
 * an int32_t holds it) from the item i of seq (a list or tuple), up to
 * end, written in blocks (enc_int_block).  Returns where the run
 * stopped, or -1. */
static Py_ALWAYS_INLINE inline Py_ssize_t
enc_int_run(encoder *e, PyObject *seq, Py_ssize_t i, Py_ssize_t end)
{
    PyObject **items = PySequence_Fast_ITEMS(seq) + i;
    if (end - i == 1 || !is_compact_int(items[1])) {
        /* one int between other items: most ints of mixed lists */
        if (enc_reserve(e, 6) < 0) {
            return -1;
        }
        e->len = put_int_item(e->buf + e->len, items[0]) - e->buf;
        return i + 1;
    }
    Py_ssize_t k = enc_int_block(
        e, items, end - i > INT_RUN_BLOCK ? INT_RUN_BLOCK : end - i);
    return k < 0 ? -1 : i + k;
}

/* An item of a container failed: note where (see enc_add_path). */
static int
enc_item_failed(encoder *e, int rc, Py_ssize_t i)
{
    if (rc == -1) {
        enc_add_path(e, "[%zd]", NULL, i);
    }
    return rc;
}

/* A container changed size while its items were written (pickle may run
 * code that changes it). */
static int
enc_changed_size(const char *what)
{
    PyErr_Format(PyExc_RuntimeError,
                 "%s changed size while it was being encoded", what);
    return -1;
}

int
enc_list(encoder *e, PyObject *list, int op)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (w_op_varint(e, op, (uint64_t)n) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i >= PyList_GET_SIZE(list)) {
            return enc_changed_size("list");
        }
        PyObject *item = PyList_GET_ITEM(list, i);
        PyTypeObject *tp = Py_TYPE(item);
        int rc;
        /* these cannot run Python code, so the list cannot change under
           them: no need to hold the item */
        if (is_compact_int(item)) {
            /* the list's size now: code run for an earlier item (a
               __reduce__) may have shrunk it */
            Py_ssize_t next = enc_int_run(e, list, i,
                                          PyList_GET_SIZE(list));
            if (next < 0) {
                return -1;
            }
            i = next - 1;
            continue;
        }
        if (tp == &PyLong_Type) {
            rc = enc_int(e, item);
        }
        else if (tp == &PyFloat_Type) {
            rc = enc_float(e, item);
        }
        else if (tp == &PyUnicode_Type) {
            rc = enc_str(e, item, 0);
        }
        else {
            Py_INCREF(item);
            rc = enc_obj_held(e, item, 1);
            Py_DECREF(item);
        }
        if (rc < 0) {
            return enc_item_failed(e, rc, i);
        }
    }
    if (PyList_GET_SIZE(list) != n) {
        return enc_changed_size("list");
    }
    return 0;
}

int
enc_tuple(encoder *e, PyObject *tup, int op)
{
    Py_ssize_t n = PyTuple_GET_SIZE(tup);
    if (w_op_varint(e, op, (uint64_t)n) < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(tup, i);
        if (is_compact_int(item)) {
            Py_ssize_t next = enc_int_run(e, tup, i, n);
            if (next < 0) {
                return -1;
            }
            i = next - 1;
            continue;
        }
        int rc = enc_obj(e, item);
        if (rc < 0) {
            return enc_item_failed(e, rc, i);
        }
    }
    return 0;
}

static void kstack_pop(encoder *e, Py_ssize_t base);

/* Whether writing obj can run code (that may change the container it
 * was read from): it is not one of the scalars enc_obj_held writes
 * itself. */
static inline int
enc_runs_code(PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    return !(tp == &PyUnicode_Type || tp == &PyLong_Type ||
             tp == &PyFloat_Type || tp == &PyBool_Type || obj == Py_None);
}

/* Whether the dict d holds k: v at its entry `at` or at the first one
 * after it (PyDict_Next runs no code). */
static int
dict_holds(PyObject *d, Py_ssize_t at, PyObject *k, PyObject *v)
{
    PyObject *k2, *v2;
    return PyDict_Next(d, &at, &k2, &v2) && k2 == k && v2 == v;
}

int
enc_dict(encoder *e, PyObject *d, int op)
{
    Py_ssize_t n = PyDict_GET_SIZE(d);
    Py_ssize_t pos = 0, i = 0;
    PyObject *k, *v;
    int rc = 0;
    int slot = shape_find(e, d, n);
    if (slot >= 0) {
        if (enc_reserve(e, 12) < 0) {
            return -1;
        }
        w_byte(e, OP_DICT_SHAPE | (op & OP_MEMO));
        w_byte(e, slot);
        w_varint(e, (uint64_t)n);
    }
    else if (w_op_varint(e, op, (uint64_t)n) < 0) {
        return -1;
    }
    /* A new shape's keys go on kstack as they are written: they become
       the shape when the dict is complete, without another pass over
       it.  The keys of a known shape are not written, and not held. */
    Py_ssize_t base = e->nkstack;
    if (slot < 0 && kstack_reserve(e, n) < 0) {
        return -1;
    }
    Py_ssize_t at = pos;
    while (PyDict_Next(d, &pos, &k, &v)) {
        if (i >= n) {
            kstack_pop(e, base);
            return enc_changed_size("dict");
        }
        /* hold both: encoding may run code (pickle) that changes d */
        Py_INCREF(v);
        rc = 0;
        if (slot < 0) {
            e->kstack[e->nkstack++] = Py_NewRef(k);
            rc = enc_obj_held(e, k, 1);
        }
        else {
            Py_INCREF(k);
        }
        if (rc == 0) {
            /* The memo takes the reference held here for d's (held 1):
               once writing k ran code, d may no longer hold v, and v
               is then written with held 0, or another reference to it
               in the graph would be missed. */
            rc = slot >= 0 || !enc_runs_code(k) || dict_holds(d, at, k, v)
                     ? enc_obj_held(e, v, 1)
                     : enc_obj_held(e, v, 0);
        }
        at = pos;
        if (rc == -1) {
            enc_add_path(e, "[%R]", k, 0);
        }
        Py_DECREF(v);
        if (slot >= 0) {
            Py_DECREF(k);
        }
        if (rc < 0) {
            kstack_pop(e, base);
            return rc;
        }
        i++;
    }
    if (i != n || PyDict_GET_SIZE(d) != n) {
        kstack_pop(e, base);
        return enc_changed_size("dict");
    }
    if (slot >= 0 || n == 0) {
        kstack_pop(e, base);
        return 0;
    }
    return shape_take(e, base);
}

int
enc_set(encoder *e, PyObject *s, int op)
{
    Py_ssize_t n = PySet_GET_SIZE(s);
    Py_ssize_t i = 0;
    PyObject *it = NULL, *item;
    int rc = -1;
    if (w_op_varint(e, op, (uint64_t)n) < 0) {
        return -1;
    }
    it = PyObject_GetIter(s);
    if (it == NULL) {
        return -1;
    }
    while ((item = PyIter_Next(it)) != NULL) {
        if (i >= n) {
            Py_DECREF(item);
            rc = enc_changed_size("set");
            goto done;
        }
        rc = enc_obj_held(e, item, 1);
        Py_DECREF(item);
        if (rc < 0) {
            goto done;
        }
        i++;
    }
    if (PyErr_Occurred()) {
        rc = -1;
        goto done;
    }
    rc = i != n ? enc_changed_size("set") : 0;
done:
    Py_DECREF(it);
    return rc;
}

static int
enc_bytes_data(encoder *e, int op, const char *data, Py_ssize_t n)
{
    if (enc_reserve(e, 11 + n) < 0) {
        return -1;
    }
    w_byte(e, op);
    w_varint(e, (uint64_t)n);
    w_raw(e, data, n);
    return 0;
}

int
enc_bytes(encoder *e, PyObject *obj, int op)
{
    Py_ssize_t n = PyBytes_GET_SIZE(obj);
    if (n < CODEC_PIN_THRESHOLD) {
        return enc_bytes_data(e, op, PyBytes_AS_STRING(obj), n);
    }
    if (e->mode == ENC_DUMPS) {
        if (w_op_varint(e, op, (uint64_t)n) < 0) {
            return -1;
        }
        return enc_add_seg(e, obj, PyBytes_AS_STRING(obj), n);
    }
    blob *b = blob_pin_object(obj, PyBytes_AS_STRING(obj), n);
    if (b == NULL) {
        return -1;
    }
    Py_ssize_t ref = enc_add_blob(e, b);
    if (ref < 0) {
        return -1;
    }
    return w_op_varint(e, OP_BYTES_PIN | (op & OP_MEMO), (uint64_t)ref);
}

int
enc_bytearray(encoder *e, PyObject *obj, int op)
{
    return enc_bytes_data(e, op, PyByteArray_AS_STRING(obj),
                          PyByteArray_GET_SIZE(obj));
}

/* Where a memoryview or SharedBuffer points: a blob (one reference
 * added to the message), the range in it, and how receivers see it. */
typedef struct {
    Py_ssize_t ref;
    Py_ssize_t offset;
    Py_ssize_t nbytes;
    int readonly;
    buf_layout lay;
} bufref;

static int
enc_buffer_ref(encoder *e, PyObject *obj, bufref *r)
{
    codec_state *cs = e->cs;
    Py_buffer view = {0};
    blob *b = NULL;
    int rc = -1;

    memset(r, 0, sizeof(*r));
    if (Py_IS_TYPE(obj, cs->SharedBufferType)) {
        b = sharedbuf_blob(cs, obj, NULL, &r->offset, &r->readonly, &r->lay);
        r->nbytes = PyObject_Length(obj);
        blob_incref(b);
        r->ref = enc_add_blob(e, b);
        return r->ref < 0 ? -1 : 0;
    }
    /* a memoryview: receivers get it read-only */
    if (PyObject_GetBuffer(obj, &view, PyBUF_FULL_RO) < 0) {
        return -1;
    }
    r->nbytes = view.len;
    r->readonly = 1;
    /* The element format and shape describe the C-contiguous copy below
       as well as a contiguous view. */
    buf_layout_from_view(&view, &r->lay);
    if (PyBuffer_IsContiguous(&view, 'C')) {
        /* a view of a shared buffer travels as that buffer, not as a pin
           on a pin */
        PyObject *base = PyMemoryView_GET_BASE(obj);
        int ro;
        if (base != NULL) {
            b = sharedbuf_blob(cs, base, &view, &r->offset, &ro, NULL);
        }
        if (b != NULL) {
            blob_incref(b);
        }
        else {
            b = blob_pin_buffer(&view, 0);   /* takes the view */
        }
    }
    else {
        /* not contiguous: one copy, into raw memory */
        char *tmp = PyMem_Malloc(view.len > 0 ? (size_t)view.len : 1);
        if (tmp == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        if (PyBuffer_ToContiguous(tmp, &view, view.len, 'C') == 0) {
            b = blob_raw_copy(tmp, view.len, 0);
        }
        PyMem_Free(tmp);
    }
    if (b == NULL) {
        goto done;
    }
    r->ref = enc_add_blob(e, b);
    rc = r->ref < 0 ? -1 : 0;
done:
    if (view.obj != NULL) {
        PyBuffer_Release(&view);
    }
    return rc;
}

/* OP_BUFFER (op, with its memo bit) for bytes [offset, offset+nbytes)
 * of the blob at ref. */
static int
enc_buffer_op(encoder *e, int op, const bufref *r)
{
    const buf_layout *lay = &r->lay;
    Py_ssize_t fmtlen = (Py_ssize_t)strlen(lay->fmt);
    if (enc_reserve(e, 40 + fmtlen + 10 * CODEC_MAX_NDIM) < 0) {
        return -1;
    }
    w_byte(e, op);
    w_varint(e, (uint64_t)r->ref);
    w_varint(e, (uint64_t)r->offset);
    w_varint(e, (uint64_t)r->nbytes);
    w_byte(e, r->readonly ? BUFF_READONLY : 0);
    w_byte(e, (int)fmtlen);
    w_raw(e, lay->fmt, fmtlen);
    w_byte(e, fmtlen ? lay->ndim : 0);
    if (fmtlen) {
        for (int i = 0; i < lay->ndim; i++) {
            w_varint(e, (uint64_t)lay->shape[i]);
        }
    }
    return 0;
}

int
enc_buffer(encoder *e, PyObject *obj, int op)
{
    bufref r;
    if (enc_buffer_ref(e, obj, &r) < 0) {
        return -1;
    }
    return enc_buffer_op(e, op, &r);
}

int
is_handle(codec_state *cs, PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    for (int i = 0; i < cs->nhandle_types; i++) {
        if (tp == cs->handle_types[i]) {
            return 1;
        }
    }
    return 0;
}

/* Add the reference of handle h to the message: its index, or -1 with an
 * exception. */
static Py_ssize_t
enc_handle_ref(encoder *e, HandleObject *h)
{
    h->kind->incref(h->ref);
    Py_ssize_t ref = enc_add_ref(e, REF_HANDLE, h->kind, h->ref);
    if (ref < 0) {
        h->kind->decref(h->ref);
    }
    return ref;
}

int
enc_handle(encoder *e, PyObject *obj, int op)
{
    HandleObject *h = (HandleObject *)obj;
    const handle_kind *kind = h->kind;
    if (kind == NULL || h->ref == NULL) {
        PyErr_Format(e->st->NotShareableError,
                     "cannot share %.200s object: it is closed",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t ref = enc_handle_ref(e, h);
    if (ref < 0 || enc_reserve(e, 12) < 0) {
        return -1;
    }
    w_byte(e, op);
    w_byte(e, kind->tag);
    w_varint(e, (uint64_t)ref);
    return 0;
}

/* ------------------------------------------------------------------ */
/* functions and classes (codec_ref.c decides how they cross)           */

/* Write items[0:n) after the opcode op. */
static int
enc_op_items(encoder *e, int op, PyObject *const *items, int n)
{
    if (enc_reserve(e, 1) < 0) {
        return -1;
    }
    w_byte(e, op);
    for (int i = 0; i < n; i++) {
        int rc = enc_obj(e, items[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* A function's defaults and keyword defaults, None for missing ones. */
static void
function_defaults(PyObject *func, PyObject **defaults, PyObject **kwdefaults)
{
    *defaults = PyFunction_GetDefaults(func);
    *kwdefaults = PyFunction_GetKwDefaults(func);
    if (*defaults == NULL) {
        *defaults = Py_None;
    }
    if (*kwdefaults == NULL) {
        *kwdefaults = Py_None;
    }
}

int
enc_function(encoder *e, PyObject *obj, int op)
{
    fref_kind how;
    PyObject *a = NULL, *b = NULL;
    int memo = op & OP_MEMO;
    int rc = -1;
    if (codec_function_ref(e->cs, e->st, obj, &how, &a, &b) < 0) {
        return -1;
    }
    switch (how) {
    case FREF_GLOBAL:
        rc = enc_op_items(e, OP_GLOBAL | memo, &a, 1);
        break;
    case FREF_MAIN:
        rc = enc_op_items(e, OP_MAIN_GLOBAL | memo, &PyTuple_GET_ITEM(a, 0),
                          3);
        break;
    case FREF_CODE: {
        PyObject *items[4] = {b, a, NULL, NULL};
        function_defaults(obj, &items[2], &items[3]);
        rc = enc_op_items(e, OP_CODE_FUNC | memo, items, 4);
        break;
    }
    case FREF_VALUE:    /* the pickler's reducer_override sends it */
    case FREF_NONE:
        rc = enc_pickle(e, obj, OP_PICKLE | memo);
        break;
    }
    Py_XDECREF(a);
    Py_XDECREF(b);
    return rc;
}

int
enc_module(encoder *e, PyObject *obj, int op)
{
    PyObject *name = PyModule_GetNameObject(obj);
    PyObject *same = NULL;
    int rc = -1;
    if (name == NULL) {
        return -1;
    }
    same = PyImport_GetModule(name);
    if (same != obj || PyUnicode_Compare(name, e->cs->s_main) == 0 ||
        PyUnicode_Compare(name, e->cs->s_mp_main) == 0) {
        if (!PyErr_Occurred()) {
            PyErr_Format(e->st->NotShareableError,
                         "cannot share module %R: only modules that other "
                         "interpreters can import by name can be sent",
                         obj);
        }
        goto done;
    }
    rc = enc_op_items(e, op, &name, 1);
done:
    Py_XDECREF(same);
    Py_DECREF(name);
    return rc;
}

/* ------------------------------------------------------------------ */
/* datetime, Decimal, UUID                                             */

int
enc_datetime(encoder *e, PyObject *obj, int op)
{
    PyObject *red = NULL;
    int rc = -1;
    int kind = sender_type_kind(e->cs, Py_TYPE(obj), RT_GROUP_DATETIME);
    if (kind == DT_TIMEZONE) {
        red = PyObject_CallMethodNoArgs(obj, e->cs->s_getinitargs);
    }
    else {
        /* protocol 4 state: the plain __reduce__ drops `fold` */
        PyObject *r = PyObject_CallMethod(obj, "__reduce_ex__", "i", 4);
        if (r == NULL) {
            return -1;
        }
        if (PyTuple_Check(r) && PyTuple_GET_SIZE(r) >= 2) {
            red = Py_NewRef(PyTuple_GET_ITEM(r, 1));
        }
        Py_DECREF(r);
    }
    if (red == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError, "bad datetime reduce");
        }
        return -1;
    }
    if (!PyTuple_Check(red) || PyTuple_GET_SIZE(red) < 1 ||
        PyTuple_GET_SIZE(red) > 3) {
        PyErr_SetString(PyExc_SystemError, "bad datetime reduce");
        goto done;
    }
    if (enc_reserve(e, 3) < 0) {
        goto done;
    }
    w_byte(e, op);
    w_byte(e, kind);
    w_byte(e, (int)PyTuple_GET_SIZE(red));
    rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyTuple_GET_SIZE(red); i++) {
        rc = enc_obj(e, PyTuple_GET_ITEM(red, i));
    }
done:
    Py_DECREF(red);
    return rc;
}

int
enc_decimal(encoder *e, PyObject *obj, int op)
{
    PyObject *s = PyObject_Str(obj);
    if (s == NULL) {
        return -1;
    }
    int rc = enc_op_items(e, op, &s, 1);
    Py_DECREF(s);
    return rc;
}

int
enc_uuid(encoder *e, PyObject *obj, int op)
{
    PyObject *bytes = PyObject_GetAttr(obj, e->cs->s_bytes);
    PyObject *safe = NULL, *val = NULL;
    int rc = -1;
    if (bytes == NULL) {
        return -1;
    }
    if (!PyBytes_Check(bytes) || PyBytes_GET_SIZE(bytes) != 16) {
        PyErr_SetString(PyExc_SystemError, "bad UUID.bytes");
        goto done;
    }
    int is_safe = 0x7f;   /* unknown */
    safe = PyObject_GetAttr(obj, e->cs->s_is_safe);
    if (safe != NULL) {
        val = PyObject_GetAttr(safe, e->cs->s_value);
    }
    if (val != NULL && PyLong_Check(val)) {
        is_safe = (int)PyLong_AsLong(val) & 0xff;
    }
    PyErr_Clear();
    if (enc_reserve(e, 18) < 0) {
        goto done;
    }
    w_byte(e, op);
    w_raw(e, PyBytes_AS_STRING(bytes), 16);
    w_byte(e, is_safe);
    rc = 0;
done:
    Py_DECREF(bytes);
    Py_XDECREF(safe);
    Py_XDECREF(val);
    return rc;
}

/* ------------------------------------------------------------------ */
/* pickle fallback                                                     */

static int
enc_pickler_init(encoder *e)
{
    PyObject *helpers = codec_helpers(e->cs);
    if (helpers == NULL) {
        return -1;
    }
    PyObject *t = PyObject_CallMethod(helpers, "new_pickler", "O",
                                      codec_pickle_kw_ok() ? Py_True
                                                           : Py_False);
    if (t == NULL) {
        return -1;
    }
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 3 ||
        !PyList_Check(PyTuple_GET_ITEM(t, 2))) {
        Py_DECREF(t);
        PyErr_SetString(PyExc_SystemError, "bad new_pickler()");
        return -1;
    }
    e->pickler = Py_NewRef(PyTuple_GET_ITEM(t, 0));
    e->pickle_file = Py_NewRef(PyTuple_GET_ITEM(t, 1));
    e->pickle_bufs = Py_NewRef(PyTuple_GET_ITEM(t, 2));
    Py_DECREF(t);
    return 0;
}

/* The exception being raised while pickling obj becomes a
 * NotShareableError naming obj (MemoryError, interrupts and our own
 * NotShareableError pass unchanged). */
static void
enc_pickle_error(encoder *e, PyObject *obj)
{
    if (PyErr_ExceptionMatches(e->st->NotShareableError) ||
        PyErr_ExceptionMatches(PyExc_MemoryError) ||
        !PyErr_ExceptionMatches(PyExc_Exception)) {
        return;
    }
    PyObject *exc = PyErr_GetRaisedException();
    if (e->by_value != NULL &&
        (Py_IS_TYPE(obj, &PyFunction_Type) || PyType_Check(obj))) {
        PyErr_Format(e->st->NotShareableError,
                     "cannot share %R: it crosses by value (cloudpickle), "
                     "with the objects its closure and globals refer to, "
                     "and one of those cannot be pickled (%.200s: %S); "
                     "pass that object as an argument in a form that can "
                     "cross (subinterp's own Lock, Queue, ... do)",
                     obj, Py_TYPE(exc)->tp_name, exc);
    }
    else {
        PyErr_Format(e->st->NotShareableError,
                     "cannot share %.200s object: subinterp encodes it "
                     "with pickle, and pickling failed (%.200s: %S); make "
                     "it picklable (e.g. define __reduce__), or send the "
                     "data it holds instead", Py_TYPE(obj)->tp_name,
                     Py_TYPE(exc)->tp_name, exc);
    }
    raise_from(exc);
}

/* One out-of-band buffer of the pickle (a PickleBuffer). */
static int
enc_oob(encoder *e, PyObject *pb)
{
    const Py_buffer *view = PyPickleBuffer_GetBuffer(pb);
    if (view == NULL) {
        return -1;
    }
    if (view->len < CODEC_OOB_THRESHOLD || e->mode != ENC_CROSS) {
        return enc_bytes_data(e, view->readonly ? OP_BYTES : OP_BYTEARRAY,
                              view->buf, view->len);
    }
    blob *b = blob_raw_copy(view->buf, view->len, !view->readonly);
    if (b == NULL) {
        return -1;
    }
    Py_ssize_t ref = enc_add_blob(e, b);
    if (ref < 0) {
        return -1;
    }
    bufref r;
    memset(&r, 0, sizeof(r));
    r.ref = ref;
    r.nbytes = view->len;
    r.readonly = view->readonly;
    return enc_buffer_op(e, OP_BUFFER, &r);
}

int
enc_pickle(encoder *e, PyObject *obj, int op)
{
    int rc = -1;
    if (e->pickler == NULL && enc_pickler_init(e) < 0) {
        return -1;
    }
    PyObject *r = PyObject_CallMethodOneArg(e->pickler, e->cs->s_dump, obj);
    if (r == NULL) {
        enc_pickle_error(e, obj);
        goto done;
    }
    Py_DECREF(r);
    Py_ssize_t n = PyList_GET_SIZE(e->pickle_bufs);
    if (w_op_varint(e, op, (uint64_t)n) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (enc_oob(e, PyList_GET_ITEM(e->pickle_bufs, i)) < 0) {
            goto done;
        }
    }
    rc = 0;
done:
    /* let go of the PickleBuffers (they pin objects) */
    if (PyList_GET_SIZE(e->pickle_bufs) > 0 &&
        PyList_SetSlice(e->pickle_bufs, 0, PyList_GET_SIZE(e->pickle_bufs),
                        NULL) < 0) {
        rc = -1;
    }
    return rc;
}

/* Is tp the standard library's concurrent.interpreters Queue?  (Never
 * imports anything: without that module no instance exists.) */
static int
is_stdlib_queue_type(PyTypeObject *tp)
{
    if (strcmp(tp->tp_name, "Queue") != 0) {
        return 0;
    }
    int res = 0;
    PyObject *name = PyUnicode_FromString("concurrent.interpreters._queues");
    PyObject *mod = name == NULL ? NULL : PyImport_GetModule(name);
    PyObject *cls = mod == NULL ? NULL : PyObject_GetAttrString(mod, "Queue");
    res = cls == (PyObject *)tp;
    Py_XDECREF(cls);
    Py_XDECREF(mod);
    Py_XDECREF(name);
    PyErr_Clear();
    return res;
}

/* A queue of the standard library crosses by pickle, as Queue(id), and
 * lives while some Queue object of it does (its own count).  A message
 * that carries one pins the sender's object, so the queue is still there
 * when the item is taken, however late, as the standard library's own
 * queues keep a queue put on them; the pin goes with the message (or
 * with the sender's interpreter).  0, or -1 with an exception. */
static int
enc_keep_stdlib_queue(encoder *e, PyObject *obj)
{
    if (!is_stdlib_queue_type(Py_TYPE(obj))) {
        return 0;
    }
    blob *b = blob_pin_object(obj, "", 0);
    if (b == NULL) {
        return -1;
    }
    return enc_add_blob(e, b) < 0 ? -1 : 0;
}

/* The ByValue of this message (subinterp._codec), made on first use:
 * one per message, so that functions sharing globals share them in the
 * receiver too, as within one cloudpickle.dumps(). */
static PyObject *
enc_by_value(encoder *e)
{
    if (e->by_value == NULL) {
        PyObject *helpers = codec_helpers(e->cs);
        if (helpers == NULL) {
            return NULL;
        }
        e->by_value = PyObject_CallMethod(helpers, "ByValue", NULL);
    }
    return e->by_value;
}

/* The reductions of the types the pickler's reducer_override handles
 * (the `reduce` of their codec_types[] entries). */

PyObject *
reduce_function(encoder *e, PyObject *obj)
{
    codec_state *cs = e->cs;
    fref_kind how;
    PyObject *a = NULL, *b = NULL;
    PyObject *res = NULL;
    if (codec_function_ref(cs, e->st, obj, &how, &a, &b) < 0) {
        return NULL;
    }
    switch (how) {
    case FREF_MAIN:
        res = Py_BuildValue("(OO)", cs->fn_main_ref, a);
        break;
    case FREF_CODE: {
        PyObject *defaults, *kwdefaults;
        function_defaults(obj, &defaults, &kwdefaults);
        res = Py_BuildValue("(O(OOOO))", cs->fn_code_func, b, a, defaults,
                            kwdefaults);
        break;
    }
    case FREF_VALUE: {
        PyObject *bv = enc_by_value(e);
        res = bv ? PyObject_CallMethod(bv, "reduce", "O", obj) : NULL;
        break;
    }
    case FREF_GLOBAL:   /* pickle sends it by reference itself */
    case FREF_NONE:
        res = Py_NewRef(Py_NotImplemented);
        break;
    }
    Py_XDECREF(a);
    Py_XDECREF(b);
    return res;
}

PyObject *
reduce_handle(encoder *e, PyObject *obj)
{
    HandleObject *h = (HandleObject *)obj;
    if (h->kind == NULL || h->ref == NULL) {
        return reduce_other(e, obj);
    }
    Py_ssize_t ref = enc_handle_ref(e, h);
    if (ref < 0) {
        return NULL;
    }
    return Py_BuildValue("(O(n))", e->cs->fn_handle_ref, ref);
}

/* rebuilt by _buffer_ref(ref, offset, nbytes, readonly, fmt, shape) while
 * the receiver decodes this message */
PyObject *
reduce_buffer(encoder *e, PyObject *obj)
{
    bufref r;
    if (enc_buffer_ref(e, obj, &r) < 0) {
        return NULL;
    }
    PyObject *shape = PyTuple_New(r.lay.fmt[0] ? r.lay.ndim : 0);
    if (shape == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(shape); i++) {
        PyObject *d = PyLong_FromSsize_t(r.lay.shape[i]);
        if (d == NULL) {
            Py_DECREF(shape);
            return NULL;
        }
        PyTuple_SET_ITEM(shape, i, d);
    }
    return Py_BuildValue("(O(nnnisN))", e->cs->fn_buffer_ref, r.ref,
                         r.offset, r.nbytes, r.readonly, r.lay.fmt, shape);
}

/* Every other object: plain pickle, but a queue of the standard library
 * is kept alive by the message, and what a function sent by value holds
 * (code, cells, modules, ...) needs cloudpickle's reductions (messages
 * without such a function never call cloudpickle). */
PyObject *
reduce_other(encoder *e, PyObject *obj)
{
    if (enc_keep_stdlib_queue(e, obj) < 0) {
        return NULL;
    }
    if (e->by_value != NULL) {
        return PyObject_CallMethod(e->by_value, "reduce_other", "O", obj);
    }
    Py_RETURN_NOTIMPLEMENTED;
}

PyObject *
codec_reducer_override(module_state *st, PyObject *obj)
{
    encoder *e = tls_enc;
    if (e == NULL || e->st != st) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    /* the first entry with a reduction whose type test matches (the last
       entry, reduce_other, matches all) */
    const codec_type *t = codec_types;
    while (t->reduce == NULL || !codec_type_matches(t, e->cs, obj)) {
        t++;
    }
    return t->reduce(e, obj);
}

/* ------------------------------------------------------------------ */
/* dispatch                                                            */

int
enc_singleton(encoder *e, PyObject *Py_UNUSED(obj), int op)
{
    if (enc_reserve(e, 1) < 0) {
        return -1;
    }
    w_byte(e, op);
    return 0;
}

int
enc_complex(encoder *e, PyObject *obj, int op)
{
    if (enc_reserve(e, 17) < 0) {
        return -1;
    }
    w_byte(e, op);
    w_double(e, PyComplex_RealAsDouble(obj));
    w_double(e, PyComplex_ImagAsDouble(obj));
    return 0;
}

int
enc_range_slice(encoder *e, PyObject *obj, int op)
{
    PyObject *parts[3] = {NULL, NULL, NULL};
    int rc = -1;
    if (Py_IS_TYPE(obj, &PySlice_Type)) {
        PySliceObject *sl = (PySliceObject *)obj;
        parts[0] = Py_NewRef(sl->start);
        parts[1] = Py_NewRef(sl->stop);
        parts[2] = Py_NewRef(sl->step);
    }
    else {
        parts[0] = PyObject_GetAttrString(obj, "start");
        parts[1] = PyObject_GetAttrString(obj, "stop");
        parts[2] = PyObject_GetAttrString(obj, "step");
    }
    if (parts[0] && parts[1] && parts[2]) {
        rc = enc_op_items(e, op, parts, 3);
    }
    Py_XDECREF(parts[0]);
    Py_XDECREF(parts[1]);
    Py_XDECREF(parts[2]);
    return rc;
}

/* Every type but the inline scalars of enc_obj_held: its entry in the
 * type table says how it is memoized and what writes it. */
static int
enc_other(encoder *e, PyObject *obj, int held)
{
    const codec_type *t = codec_type_of(e->cs, obj);
    int flag = 0;
    if (t->memo == MEMO_NEVER) {
        return t->encode(e, obj, t->op);
    }
    if (Py_REFCNT(obj) > 1 + held) {
        int r = memo_check(e, obj, t->memo == MEMO_AT_ONCE, &flag);
        if (r != 0) {
            return r > 0 ? 0 : r;
        }
    }
    if (e->depth >= CODEC_MAX_DEPTH) {
        return enc_too_deep(e);
    }
    e->depth++;
    int rc = t->encode(e, obj, t->op | flag);
    e->depth--;
    if (rc == 0 && flag && t->memo == MEMO_AFTER) {
        memo_set_ready(e, obj);
    }
    return rc;
}

static int
enc_obj_held(encoder *e, PyObject *obj, int held)
{
    PyTypeObject *tp = Py_TYPE(obj);
    if (tp == &PyUnicode_Type) {
        return enc_str(e, obj, held);
    }
    if (tp == &PyLong_Type) {
        return enc_int(e, obj);
    }
    if (tp == &PyFloat_Type) {
        return enc_float(e, obj);
    }
    if (obj == Py_None || tp == &PyBool_Type) {
        if (enc_reserve(e, 1) < 0) {
            return -1;
        }
        w_byte(e, obj == Py_None ? OP_NONE
                  : obj == Py_True ? OP_TRUE : OP_FALSE);
        return 0;
    }
    return enc_other(e, obj, held);
}

/* ------------------------------------------------------------------ */
/* messages                                                            */

static void
enc_reset(encoder *e)
{
    refs_release(e->refs, e->nrefs);
    e->nrefs = 0;
    seg_clear(e);
    memo_clear(e);
    shape_clear(e);
    kstack_pop(e, 0);
    Py_CLEAR(e->pickler);
    Py_CLEAR(e->pickle_file);
    Py_CLEAR(e->pickle_bufs);
    Py_CLEAR(e->by_value);
    Py_CLEAR(e->path);
    e->len = MSG_HEADER;
    e->depth = 0;
}

/* Free the buffer once it is no longer small: raw memory, or with
 * ENC_DUMPS the bytes object it lies in. */
static void
enc_drop_buf(encoder *e)
{
    if (e->out != NULL) {
        Py_CLEAR(e->out);
    }
    else if (e->buf != e->small) {
        PyMem_RawFree(e->buf);
    }
}

static void
enc_free(encoder *e)
{
    enc_reset(e);
    PyMem_RawFree(e->refs);
    enc_drop_buf(e);
    PyMem_Free(e->segs);
    e->segs = NULL;
    shape_free(e);
    PyMem_Free(e->kstack);
    e->kstack = NULL;
    e->refs = NULL;
    e->buf = NULL;
}

/* Append the pickle stream and fill the header: the message is then
 * buf with the segments in their places.  0 or -1. */
static int
enc_complete(encoder *e)
{
    Py_ssize_t body_len = enc_offset(e) - MSG_HEADER;
    Py_ssize_t pickle_len = 0;
    if (e->pickle_file != NULL) {
        PyObject *view = PyObject_CallMethod(e->pickle_file, "getbuffer",
                                             NULL);
        if (view == NULL) {
            return -1;
        }
        Py_buffer pb;
        int rc = PyObject_GetBuffer(view, &pb, PyBUF_SIMPLE);
        if (rc == 0) {
            pickle_len = pb.len;
            rc = enc_reserve(e, pb.len);
            if (rc == 0) {
                w_raw(e, pb.buf, pb.len);
            }
            PyBuffer_Release(&pb);
        }
        /* release the export so the BytesIO can be freed */
        PyObject *r = PyObject_CallMethod(view, "release", NULL);
        Py_XDECREF(r);
        Py_DECREF(view);
        if (rc < 0 || r == NULL) {
            return -1;
        }
    }
    char *h = e->buf;
    h[0] = MSG_MAGIC0;
    h[1] = MSG_MAGIC1;
    h[2] = MSG_MAGIC2;
    h[3] = MSG_VERSION;
    h[4] = e->nrefs > 0 ? MSGF_LOCAL : 0;
    h[5] = h[6] = h[7] = 0;
    put_le64(h + 8, (uint64_t)body_len);
    put_le64(h + 16, (uint64_t)pickle_len);
    return 0;
}

/* Whether to give back what doubling over-allocated: when it is a lot.
 * A small slack stays, unused (and never faulted in). */
static inline int
enc_slack_is_large(const encoder *e)
{
    return e->cap - e->len > 4096 && e->cap - e->len > e->len / 2;
}

/* Move the complete message (buffer, segments and refs) into a new msg. */
static msg *
enc_take_msg(encoder *e)
{
    msg *m;
    if (e->nsegs > 0 || e->out != NULL) {
        /* dumps() of a message with references: one contiguous copy in
           raw memory, which a msg owns (the buffer may lie in a bytes
           object, and the segments are gathered into their places) */
        Py_ssize_t size = enc_offset(e);
        char *nb = PyMem_RawMalloc((size_t)size);
        if (nb == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        enc_gather(e, nb);
        enc_drop_buf(e);
        e->buf = nb;
        e->len = e->cap = size;
        seg_clear(e);
    }
    if (e->buf == e->small) {
        /* Small (most messages): one block, the data right after the
           struct.  A message is usually freed by another thread than the
           one that made it (the receiver of a queue): one block instead
           of two halves the frees that land in the sender's malloc arena
           and take its lock, and a block this small is freed through
           glibc's fastbins, without that lock. */
        m = PyMem_RawMalloc(sizeof(msg) + (size_t)e->len);
        if (m == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        m->data = (char *)(m + 1);
        memcpy(m->data, e->buf, (size_t)e->len);
        goto fill;
    }
    m = PyMem_RawMalloc(sizeof(msg));
    if (m == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if (enc_slack_is_large(e)) {
        char *nb = PyMem_RawRealloc(e->buf, (size_t)e->len);
        if (nb != NULL) {
            e->buf = nb;
            e->cap = e->len;
        }
    }
    m->data = e->buf;
    e->buf = NULL;
fill:
    m->size = e->len;
    m->refs = e->refs;
    m->nrefs = e->nrefs;
    e->refs = NULL;
    e->nrefs = 0;
    e->refcap = 0;
    return m;
}

/* Set up e, to start in small, the caller's stack buffer of ENC_SMALL
 * bytes.  0, or -1 (nothing to undo).  The caller then makes it this
 * thread's encoder (tls_enc), and enc_end undoes both. */
static int
enc_begin(encoder *e, char *small, module_state *st, enc_mode mode)
{
    codec_state *cs = codec_get(st);
    if (cs == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "subinterp codec used after module cleanup");
        return -1;
    }
    codec_drain_pending();
    memset(e, 0, sizeof(*e));
    e->st = st;
    e->cs = cs;
    e->mode = mode;
    e->cap = ENC_SMALL;
    e->buf = e->small = small;
    e->len = MSG_HEADER;
    e->prev = tls_enc;
    return 0;
}

/* Encode obj into the complete message.  0, or -1 with an exception
 * (which says where in the graph). */
static int
enc_run(encoder *e, PyObject *obj)
{
    int rc = enc_obj(e, obj);
    if (rc == ENC_RESTART) {
        /* a cycle through a tuple (or another immutable): pickle the
           whole graph, it can rebuild those */
        enc_reset(e);
        rc = enc_pickle(e, obj, OP_PICKLE);
        if (rc == ENC_RESTART) {
            PyErr_SetString(PyExc_SystemError, "codec restart loop");
            rc = -1;
        }
    }
    if (rc == 0) {
        return enc_complete(e);
    }
    enc_finish_path(e);
    return -1;
}

static void
enc_end(encoder *e)
{
    tls_enc = e->prev;
    enc_free(e);
    codec_drain_pending();
}

msg *
codec_encode_mode(module_state *st, PyObject *obj, enc_mode mode)
{
    encoder e;
    char small[ENC_SMALL];
    msg *m = NULL;
    if (enc_begin(&e, small, st, mode) < 0) {
        return NULL;
    }
    tls_enc = &e;
    if (enc_run(&e, obj) == 0) {
        m = enc_take_msg(&e);
    }
    enc_end(&e);
    return m;
}

PyObject *
codec_dumps(module_state *st, PyObject *obj, msg **local)
{
    encoder e;
    char small[ENC_SMALL];
    PyObject *res = NULL;
    *local = NULL;
    if (enc_begin(&e, small, st, ENC_DUMPS) < 0) {
        return NULL;
    }
    tls_enc = &e;
    if (enc_run(&e, obj) == 0) {
        if (e.nrefs > 0) {
            *local = enc_take_msg(&e);
        }
        else if (e.out != NULL && e.nsegs == 0) {
            /* the buffer is the result */
            if (enc_slack_is_large(&e)) {
                res = _PyBytes_Resize(&e.out, e.len) == 0 ? e.out : NULL;
            }
            else {
                /* keep the block: shrinking a block glibc mapped to
                   its own pages makes its next one of this size a new
                   mapping too, whose pages fault in again */
                res = e.out;
                Py_SET_SIZE(res, e.len);
                e.buf[e.len] = '\0';
            }
            e.out = NULL;       /* the result, or freed by the failure */
            e.buf = e.small;
        }
        else {
            /* the buffer and the segments, written once into the
               result */
            char *dst;
            res = codec_new_bytes(NULL, enc_offset(&e), 0, &dst);
            if (res != NULL) {
                enc_gather(&e, dst);
            }
        }
    }
    enc_end(&e);
    return res;
}

msg *
codec_encode(module_state *st, PyObject *obj)
{
    return codec_encode_mode(st, obj, ENC_CROSS);
}
