/* codec_dec.c - the decoder: message -> object graph.
 *
 * The mirror of codec_enc.c, written for hostile input: every read is
 * bounds-checked against the end of the body, every count is capped by
 * the bytes that remain (each item takes at least one byte, so a
 * container can never pre-allocate more than the message could fill),
 * nesting is limited to CODEC_MAX_DEPTH, and every failure is a
 * CorruptMessageError (a ValueError) rather than a crash.  Objects that
 * are only half built when an error happens are plain containers: tuples
 * with NULL slots, which their deallocator accepts, and lists, dicts and
 * sets that hold the items decoded so far.
 *
 * The memo holds strong references: a dict that drops a duplicate key,
 * for instance, must not free an object a later OP_REF hands out.
 * Slots are reserved in pre-order (see codec_enc.c) and hold NULL until
 * the object is complete - except for list, dict and set, which are
 * entered as soon as they exist so that cycles through them work; an
 * OP_REF to a NULL slot is corrupt, which keeps half-built tuples and
 * frozensets (whose hash would read NULL items) out of reach.
 *
 * "Untrusted" decoding (loads(data, trusted=False), the fuzzer) also
 * refuses everything that can run code chosen by the message: pickle
 * sections, marshalled functions, importing modules or scripts by name.
 */
#include "codec_impl.h"

typedef struct {
    PyObject **keys;            /* its keys in order (strong) */
    Py_ssize_t n;               /* 0: no shape */
    Py_ssize_t cap;
    PyObject *blank;            /* once reused: see dec_dict_shape */
} dshape;

struct decoder {
    module_state *st;
    codec_state *cs;
    const unsigned char *body;  /* first byte of the body */
    const unsigned char *p;     /* cursor */
    const unsigned char *end;   /* end of the body */
    const msg_ref *refs;
    Py_ssize_t nrefs;
    int trusted;
    int depth;

    PyObject **memo;            /* strong, NULL while reserved */
    Py_ssize_t nmemo;
    Py_ssize_t memo_cap;

    dshape shapes[SHAPE_SLOTS]; /* see codec_enc.c, "Dict shapes" */
    int shape_next;
    PyObject **kstack;          /* keys of the dicts being decoded */
    Py_ssize_t nkstack;
    Py_ssize_t kstack_cap;

    const char *pickle_data;    /* the pickle stream after the body */
    Py_ssize_t pickle_len;
    PyObject *unpickler;
    PyObject *pickle_bufs;      /* list the unpickler takes buffers from */

    struct decoder *prev;
};

/* The decoder running in this thread, for the pickle reconstructors
 * (_handle_ref, _buffer_ref) that refer to this message's references. */
static _Thread_local decoder *tls_dec;

/* ------------------------------------------------------------------ */
/* errors and reading                                                  */

static PyObject *
corrupt(decoder *d, const char *what)
{
    return codec_corrupt(d->cs, "%s (at body offset %zd)", what,
                         (Py_ssize_t)(d->p - d->body));
}

static inline int
need(decoder *d, Py_ssize_t n)
{
    if (n < 0 || d->end - d->p < n) {
        corrupt(d, "truncated");
        return -1;
    }
    return 0;
}

static inline int
rd_varint(decoder *d, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (d->p >= d->end) {
            corrupt(d, "truncated varint");
            return -1;
        }
        unsigned int b = *d->p++;
        if (shift == 63 && b > 1) {
            break;
        }
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    corrupt(d, "varint too long");
    return -1;
}

/* A count: items of at least 1 << shift bytes each must fit in what
 * remains (no division: this is on every container and string). */
static inline int
rd_count(decoder *d, Py_ssize_t *out, int shift)
{
    uint64_t v;
    if (d->p < d->end && *d->p < 0x80) {
        v = *d->p++;    /* one-byte varint: most counts */
    }
    else if (rd_varint(d, &v) < 0) {
        return -1;
    }
    if (v > ((uint64_t)(d->end - d->p) >> shift)) {
        corrupt(d, "count larger than the message");
        return -1;
    }
    *out = (Py_ssize_t)v;
    return 0;
}

/* A varint that must fit a Py_ssize_t (offsets, sizes, refs). */
static inline int
rd_ssize(decoder *d, Py_ssize_t *out)
{
    uint64_t v;
    if (rd_varint(d, &v) < 0) {
        return -1;
    }
    if (v > (uint64_t)PY_SSIZE_T_MAX) {
        corrupt(d, "size out of range");
        return -1;
    }
    *out = (Py_ssize_t)v;
    return 0;
}

static inline double
rd_double(decoder *d)
{
    double x;
#if PY_LITTLE_ENDIAN
    memcpy(&x, d->p, 8);
#else
    x = PyFloat_Unpack8((const char *)d->p, 1);
#endif
    d->p += 8;
    return x;
}

/* Turn the exception being raised by a constructor fed from the message
 * into CorruptMessageError (its cause).  MemoryError passes. */
static void
as_corrupt(decoder *d, const char *what)
{
    if (PyErr_ExceptionMatches(PyExc_MemoryError) ||
        PyErr_ExceptionMatches(d->cs->CorruptMessageError)) {
        return;
    }
    PyObject *exc = PyErr_GetRaisedException();
    corrupt(d, what);
    raise_from(exc);
}

/* ------------------------------------------------------------------ */
/* memo                                                                */

static Py_ssize_t
memo_reserve(decoder *d)
{
    if (codec_grow_ptrs(&d->memo, &d->memo_cap, d->nmemo + 1) < 0) {
        return -1;
    }
    d->memo[d->nmemo] = NULL;
    return d->nmemo++;
}

static inline void
memo_fill(decoder *d, Py_ssize_t i, PyObject *obj)
{
    if (i >= 0) {
        d->memo[i] = Py_NewRef(obj);
    }
}

/* ------------------------------------------------------------------ */
/* str                                                                 */

static int
all_ascii(const unsigned char *p, Py_ssize_t n)
{
    uint64_t acc = 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        acc |= w;
    }
    for (; i < n; i++) {
        acc |= p[i];
    }
    return (acc & 0x8080808080808080ULL) == 0;
}

/* Is data (n code units of kind) the canonical form of its string: the
 * widest unit needs this kind, and no code point is out of range? */
static int
canonical_units(int kind, const void *data, Py_ssize_t n)
{
    Py_UCS4 max = 0;
    if (kind == 1) {
        const Py_UCS1 *u = data;
        for (Py_ssize_t i = 0; i < n; i++) {
            max |= u[i];
        }
        return max >= 0x80;
    }
    if (kind == 2) {
        const Py_UCS2 *u = data;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (u[i] > max) {
                max = u[i];
            }
        }
        return max >= 0x100;
    }
    const Py_UCS4 *u = data;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (u[i] > max) {
            max = u[i];
        }
    }
    return max >= 0x10000 && max <= 0x10FFFF;
}

static PyObject *
dec_str(decoder *d, int op)
{
    Py_ssize_t n;
    int kind = op == OP_STR_2 ? 2 : op == OP_STR_4 ? 4 : 1;
    if (rd_count(d, &n, kind >> 1) < 0) {
        return NULL;
    }
    if (op == OP_STR_ASCII) {
        if (!all_ascii(d->p, n)) {
            return corrupt(d, "non-ASCII byte in an ASCII string");
        }
        PyObject *s = PyUnicode_New(n, 127);
        if (s != NULL) {
            codec_hint_huge(PyUnicode_DATA(s), n);
            memcpy(PyUnicode_DATA(s), d->p, (size_t)n);
            d->p += n;
        }
        return s;
    }
    if (kind > 1) {
        /* skip the padding the encoder put in (see enc_str) */
        Py_ssize_t off = (d->p - d->body) + MSG_HEADER;
        while (off & (kind - 1)) {
            if (need(d, 1) < 0) {
                return NULL;
            }
            d->p++;
            off++;
        }
    }
    if (need(d, n * kind) < 0) {
        return NULL;
    }
    PyObject *s = NULL;
    if (((uintptr_t)d->p & (uintptr_t)(kind - 1)) == 0) {
        if (kind == 4) {
            const Py_UCS4 *u = (const Py_UCS4 *)d->p;
            for (Py_ssize_t i = 0; i < n; i++) {
                if (u[i] > 0x10FFFF) {
                    return corrupt(d, "code point out of range");
                }
            }
        }
        s = PyUnicode_FromKindAndData(kind, d->p, n);
    }
    else {
        /* the caller's buffer is not aligned: copy first */
        void *tmp = PyMem_Malloc(n > 0 ? (size_t)(n * kind) : 1);
        if (tmp == NULL) {
            return PyErr_NoMemory();
        }
        memcpy(tmp, d->p, (size_t)(n * kind));
        int bad = 0;
        if (kind == 4) {
            for (Py_ssize_t i = 0; i < n; i++) {
                bad |= ((Py_UCS4 *)tmp)[i] > 0x10FFFF;
            }
        }
        s = bad ? corrupt(d, "code point out of range")
                : PyUnicode_FromKindAndData(kind, tmp, n);
        PyMem_Free(tmp);
    }
    if (s != NULL) {
        d->p += n * kind;
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* references: handles and blobs                                       */

static const msg_ref *
dec_ref(decoder *d, ref_what what)
{
    Py_ssize_t i;
    if (rd_ssize(d, &i) < 0) {
        return NULL;
    }
    if (i >= d->nrefs || d->refs[i].what != what) {
        corrupt(d, "bad reference");
        return NULL;
    }
    return &d->refs[i];
}

/* Do the range, format and shape of a buffer of blob b fit together and
 * in b?  1 yes, 0 no (CorruptMessageError). */
static int
buffer_layout_ok(decoder *d, blob *b, Py_ssize_t offset, Py_ssize_t nbytes,
                 const char *fmt, Py_ssize_t fmtlen, int ndim,
                 const Py_ssize_t *shape)
{
    if (offset > blob_len(b) || nbytes > blob_len(b) - offset) {
        corrupt(d, "buffer range outside the shared memory");
        return 0;
    }
    if (fmtlen == 0) {
        return 1;
    }
    Py_ssize_t itemsize = buf_fmt_itemsize(fmt, fmtlen);
    if (itemsize < 0 || ndim < 1 || ndim > CODEC_MAX_NDIM) {
        corrupt(d, "bad buffer format");
        return 0;
    }
    Py_ssize_t total = itemsize;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 ||
            (shape[i] > 0 && total > PY_SSIZE_T_MAX / shape[i])) {
            corrupt(d, "bad buffer shape");
            return 0;
        }
        total *= shape[i];
    }
    if (total != nbytes) {
        corrupt(d, "buffer shape does not match its size");
        return 0;
    }
    return 1;
}

/* A memoryview on bytes [offset, offset+nbytes) of blob b, cast to fmt
 * and shape when fmt is not empty.  Validates everything. */
static PyObject *
make_buffer(decoder *d, blob *b, Py_ssize_t offset, Py_ssize_t nbytes,
            int readonly, const char *fmt, Py_ssize_t fmtlen, int ndim,
            const Py_ssize_t *shape)
{
    PyObject *view = NULL, *mv = NULL, *res = NULL;
    PyObject *fmtobj = NULL, *shapeobj = NULL;
    if (!buffer_layout_ok(d, b, offset, nbytes, fmt, fmtlen, ndim, shape)) {
        return NULL;
    }
    if (!readonly && !blob_writable(b)) {
        readonly = 1;
    }
    if (!readonly && !blob_claim(b)) {
        /* a private copy already handed out writable: copy again */
        char *dst;
        PyObject *ba = codec_new_bytes(NULL, nbytes, 1, &dst);
        if (ba == NULL) {
            return NULL;
        }
        blob_read(b, offset, nbytes, dst);
        view = ba;
    }
    else {
        view = sharedbuf_new(d->cs, b, offset, nbytes, readonly, NULL);
        if (view == NULL) {
            return NULL;
        }
    }
    mv = PyMemoryView_FromObject(view);
    if (mv == NULL) {
        goto done;
    }
    if (fmtlen == 0) {
        res = Py_NewRef(mv);
        goto done;
    }
    fmtobj = PyUnicode_FromStringAndSize(fmt, fmtlen);
    if (fmtobj == NULL) {
        goto done;
    }
    if (ndim == 1) {
        /* the shape follows from the size (checked above); cast() refuses
           an explicit shape with a zero in it, so an empty view of a
           format needs this form */
        res = PyObject_CallMethodOneArg(mv, d->cs->s_cast, fmtobj);
        goto cast_done;
    }
    shapeobj = PyTuple_New(ndim);
    if (shapeobj == NULL) {
        goto done;
    }
    for (int i = 0; i < ndim; i++) {
        PyObject *x = PyLong_FromSsize_t(shape[i]);
        if (x == NULL) {
            goto done;
        }
        PyTuple_SET_ITEM(shapeobj, i, x);
    }
    res = PyObject_CallMethodObjArgs(mv, d->cs->s_cast, fmtobj, shapeobj,
                                     NULL);
cast_done:
    if (res == NULL) {
        as_corrupt(d, "buffer cannot take its format");
    }
done:
    Py_XDECREF(view);
    Py_XDECREF(mv);
    Py_XDECREF(fmtobj);
    Py_XDECREF(shapeobj);
    return res;
}

PyObject *
dec_buffer(decoder *d, int Py_UNUSED(op), Py_ssize_t Py_UNUSED(mi))
{
    const msg_ref *r = dec_ref(d, REF_BLOB);
    Py_ssize_t offset, nbytes, shape[CODEC_MAX_NDIM];
    char fmt[4];
    if (r == NULL || rd_ssize(d, &offset) < 0 || rd_ssize(d, &nbytes) < 0 ||
        need(d, 2) < 0) {
        return NULL;
    }
    int flags = *d->p++;
    Py_ssize_t fmtlen = *d->p++;
    if (fmtlen > 3 || (flags & ~BUFF_READONLY)) {
        return corrupt(d, "bad buffer header");
    }
    if (need(d, fmtlen + 1) < 0) {
        return NULL;
    }
    memcpy(fmt, d->p, (size_t)fmtlen);
    fmt[fmtlen] = 0;
    d->p += fmtlen;
    int ndim = *d->p++;
    if (ndim > CODEC_MAX_NDIM || (fmtlen == 0 && ndim != 0)) {
        return corrupt(d, "bad buffer shape");
    }
    for (int i = 0; i < ndim; i++) {
        if (rd_ssize(d, &shape[i]) < 0) {
            return NULL;
        }
    }
    return make_buffer(d, (blob *)r->ptr, offset, nbytes,
                       flags & BUFF_READONLY, fmt, fmtlen, ndim, shape);
}

/* OP_BYTES, OP_BYTEARRAY: copied in the message; OP_BYTES_PIN: in a
 * pinned blob. */
PyObject *
dec_bytes(decoder *d, int op, Py_ssize_t Py_UNUSED(mi))
{
    if (op != OP_BYTES_PIN) {
        Py_ssize_t n;
        if (rd_count(d, &n, 0) < 0) {
            return NULL;
        }
        PyObject *res = codec_new_bytes(d->p, n, op != OP_BYTES, NULL);
        if (res != NULL) {
            d->p += n;
        }
        return res;
    }
    const msg_ref *r = dec_ref(d, REF_BLOB);
    if (r == NULL) {
        return NULL;
    }
    blob *b = r->ptr;
    char *dst;
    PyObject *res = codec_new_bytes(NULL, blob_len(b), 0, &dst);
    if (res != NULL) {
        blob_read(b, 0, blob_len(b), dst);
    }
    return res;
}

static PyObject *
dec_str_pin(decoder *d)
{
    Py_ssize_t n;
    if (need(d, 1) < 0) {
        return NULL;
    }
    int kind = *d->p++;
    if (kind != 0 && kind != 1 && kind != 2 && kind != 4) {
        return corrupt(d, "bad string kind");
    }
    if (rd_ssize(d, &n) < 0) {
        return NULL;
    }
    const msg_ref *r = dec_ref(d, REF_BLOB);
    if (r == NULL) {
        return NULL;
    }
    blob *b = r->ptr;
    int width = kind ? kind : 1;
    if (n > PY_SSIZE_T_MAX / 4 || n * width != blob_len(b)) {
        return corrupt(d, "string size does not match its data");
    }
    Py_UCS4 maxchar = kind == 0 ? 127 : kind == 1 ? 255
                      : kind == 2 ? 0xFFFF : 0x10FFFF;
    PyObject *s = PyUnicode_New(n, maxchar);
    if (s == NULL) {
        return NULL;
    }
    void *data = PyUnicode_DATA(s);
    codec_hint_huge(data, n * width);
    blob_read(b, 0, n * width, data);
    int ok = kind == 0 ? all_ascii(data, n)
                       : canonical_units(kind, data, n);
    if (!ok) {
        Py_DECREF(s);
        return corrupt(d, "string data does not match its kind");
    }
    return s;
}

PyObject *
dec_handle(decoder *d, int Py_UNUSED(op), Py_ssize_t Py_UNUSED(mi))
{
    if (need(d, 1) < 0) {
        return NULL;
    }
    int tag = *d->p++;
    const msg_ref *r = dec_ref(d, REF_HANDLE);
    if (r == NULL) {
        return NULL;
    }
    if (r->kind->tag != tag) {
        return corrupt(d, "handle kind mismatch");
    }
    return r->kind->wrap(d->st, r->ptr);
}

/* ------------------------------------------------------------------ */
/* the rest                                                            */

static PyObject *dec_obj(decoder *d);

static PyObject *
dec_bigint(decoder *d)
{
    Py_ssize_t n;
    if (rd_count(d, &n, 0) < 0) {
        return NULL;
    }
    PyObject *res;
#if PY_VERSION_HEX >= 0x030D0000
    res = PyLong_FromNativeBytes(d->p, (size_t)n,
                                 Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)d->p, n);
    if (bytes == NULL) {
        return NULL;
    }
    PyObject *args[4] = {(PyObject *)&PyLong_Type, bytes, NULL, Py_True};
    PyObject *kwnames = Py_BuildValue("(s)", "signed");
    args[2] = PyUnicode_FromString("little");
    PyObject *name = PyUnicode_FromString("from_bytes");
    res = NULL;
    if (kwnames != NULL && args[2] != NULL && name != NULL) {
        res = PyObject_VectorcallMethod(
            name, args, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, kwnames);
    }
    Py_DECREF(bytes);
    Py_XDECREF(kwnames);
    Py_XDECREF(args[2]);
    Py_XDECREF(name);
#endif
    if (res != NULL) {
        d->p += n;
    }
    return res;
}

/* The items of containers: the opcodes that make most items of most
 * payloads (small ints, short ASCII strings, references to earlier
 * strings, floats, None/True/False), without the call, the memo-flag
 * handling and the big switch of dec_obj. */
static inline PyObject *
dec_item(decoder *d)
{
    const unsigned char *p = d->p;
    if (p >= d->end) {
        return dec_obj(d);
    }
    unsigned int op = *p;
    if (op >= OP_SMALLINT) {
        d->p++;
        return PyLong_FromLong((long)op - OP_SMALLINT + SMALLINT_MIN);
    }
    switch (op) {
    case OP_STR_ASCII:
        if (d->end - p >= 2 && p[1] < 0x80 && p[1] <= d->end - p - 2) {
            Py_ssize_t n = p[1];
            if (all_ascii(p + 2, n)) {
                PyObject *u = PyUnicode_New(n, 127);
                if (u != NULL) {
                    memcpy(PyUnicode_DATA(u), p + 2, (size_t)n);
                    d->p = p + 2 + n;
                }
                return u;
            }
        }
        break;
    case OP_REF:
        if (d->end - p >= 3) {
            Py_ssize_t i;
            const unsigned char *next;
            if (p[1] < 0x80) {
                i = p[1];
                next = p + 2;
            }
            else if (p[2] < 0x80) {
                i = (p[1] & 0x7f) | ((Py_ssize_t)p[2] << 7);
                next = p + 3;
            }
            else {
                break;
            }
            if (i < d->nmemo && d->memo[i] != NULL) {
                d->p = next;
                return Py_NewRef(d->memo[i]);
            }
        }
        break;
    case OP_INT:
        /* one- and two-byte varints: |value| below 8192 */
        if (d->end - p >= 3) {
            uint64_t v;
            if (p[1] < 0x80) {
                v = p[1];
                d->p = p + 2;
            }
            else if (p[2] < 0x80) {
                v = (p[1] & 0x7f) | ((uint64_t)p[2] << 7);
                d->p = p + 3;
            }
            else {
                break;
            }
            return PyLong_FromLong((long)(v >> 1) ^ -(long)(v & 1));
        }
        break;
    case OP_FLOAT:
        if (d->end - p >= 9) {
            d->p++;
            return PyFloat_FromDouble(rd_double(d));
        }
        break;
    case OP_NONE:
        d->p++;
        return Py_NewRef(Py_None);
    case OP_TRUE:
        d->p++;
        return Py_NewRef(Py_True);
    case OP_FALSE:
        d->p++;
        return Py_NewRef(Py_False);
    default:
        break;
    }
    return dec_obj(d);
}

/* Release the keys kstack[base:] (strong references: see dec_dict) and
 * pop them. */
static void
kstack_pop(decoder *d, Py_ssize_t base)
{
    while (d->nkstack > base) {
        Py_DECREF(d->kstack[--d->nkstack]);
    }
}

/* Empty a shape slot (its keys are strong references). */
static void
shape_clear(dshape *sl)
{
    Py_CLEAR(sl->blank);
    while (sl->n > 0) {
        Py_DECREF(sl->keys[--sl->n]);
    }
}

/* A dict just decoded from OP_DICT, whose keys are kstack[base:],
 * defines the next shape slot, as it did in the encoder: the keys'
 * references move from the stack to the slot.  The slot owns its keys,
 * and never looks at the dict again: code that runs while later items
 * are decoded may change or empty it (see list_unchanged).  0 or -1 (the
 * keys released). */
static int
shape_define(decoder *d, Py_ssize_t base)
{
    Py_ssize_t n = d->nkstack - base;
    if (n == 0) {
        return 0;
    }
    dshape *sl = &d->shapes[d->shape_next];
    d->shape_next = (d->shape_next + 1) % SHAPE_SLOTS;
    shape_clear(sl);
    if (codec_grow_ptrs(&sl->keys, &sl->cap, n) < 0) {
        kstack_pop(d, base);
        return -1;
    }
    memcpy(sl->keys, d->kstack + base, (size_t)n * sizeof(PyObject *));
    d->nkstack = base;
    sl->n = n;
    return 0;
}

/* The int of w bytes at p, little-endian two's complement (w a constant
 * where it is inlined, so the loads merge into one). */
static inline long
get_int_le(const unsigned char *p, int w)
{
    uint32_t v = 0;
    for (int b = 0; b < w; b++) {
        v |= (uint32_t)p[b] << (8 * b);
    }
    return w == 1 ? (long)(int8_t)v
           : w == 2 ? (long)(int16_t)v : (long)(int32_t)v;
}

/* k ints of w bytes from p into the slots i.. of seq.  0 or -1.  A
 * list's size counts the items it holds (see list_with_room), also
 * when an int fails. */
static inline int
int_run_fill(PyObject *seq, Py_ssize_t i, const unsigned char *p,
             Py_ssize_t k, int w, int is_list)
{
    Py_ssize_t j = 0;
    for (; j < k; j++, p += w) {
        PyObject *item = PyLong_FromLong(get_int_le(p, w));
        if (item == NULL) {
            break;
        }
        if (is_list) {
            PyList_SET_ITEM(seq, i + j, item);
        }
        else {
            PyTuple_SET_ITEM(seq, i + j, item);
        }
    }
    if (is_list) {
        Py_SET_SIZE(seq, i + j);
    }
    return j == k ? 0 : -1;
}

/* An OP_INT_RUN (at d->p) into the slots i.. of seq, which has n.
 * Returns the slot after the run, or -1. */
static Py_ssize_t
dec_int_block(decoder *d, PyObject *seq, Py_ssize_t i, Py_ssize_t n,
              int is_list)
{
    Py_ssize_t k;
    d->p++;
    if (rd_count(d, &k, 0) < 0 || need(d, 1) < 0) {
        return -1;
    }
    int w = *d->p++;
    if (k < 1 || k > n - i) {
        corrupt(d, "run of ints empty or longer than its sequence");
        return -1;
    }
    if (w != 1 && w != 2 && w != 4) {
        corrupt(d, "run of ints of a bad width");
        return -1;
    }
    if (need(d, k * w) < 0) {
        return -1;
    }
    int rc = w == 1 ? int_run_fill(seq, i, d->p, k, 1, is_list)
             : w == 2 ? int_run_fill(seq, i, d->p, k, 2, is_list)
             : int_run_fill(seq, i, d->p, k, 4, is_list);
    if (rc < 0) {
        return -1;
    }
    d->p += k * w;
    return i + k;
}

/* Python code that runs while a list is decoded (a reconstructor, or a
 * garbage collection its bytecode starts, whose callbacks can find the
 * list with gc.get_objects()) may have changed it: then the decoder must
 * not write another slot.  0, or -1 with RuntimeError. */
static int
list_unchanged(PyObject *list, PyObject **items, Py_ssize_t size,
               Py_ssize_t room)
{
    PyListObject *l = (PyListObject *)list;
    if (l->ob_item == items && Py_SIZE(list) == size &&
        l->allocated == room) {
        return 0;
    }
    PyErr_SetString(PyExc_RuntimeError,
                    "list changed while it was being decoded");
    return -1;
}

/* Decode the n items of seq: a new tuple of n empty slots, or a new list
 * from list_with_room(n), whose size grows with every item.  0 or -1. */
static int
dec_seq_items(decoder *d, PyObject *seq, Py_ssize_t n, int is_list)
{
    /* for list_unchanged; int blocks run no Python code */
    PyObject **items = is_list ? ((PyListObject *)seq)->ob_item : NULL;
    Py_ssize_t room = is_list ? ((PyListObject *)seq)->allocated : 0;
    Py_ssize_t i = 0;
    while (i < n) {
        if (d->p < d->end && *d->p == OP_INT_RUN) {
            i = dec_int_block(d, seq, i, n, is_list);
            if (i < 0) {
                return -1;
            }
            continue;
        }
        PyObject *item = dec_item(d);
        if (item == NULL) {
            return -1;
        }
        if (is_list) {
            if (list_unchanged(seq, items, i, room) < 0) {
                Py_DECREF(item);
                return -1;
            }
            PyList_SET_ITEM(seq, i, item);
            Py_SET_SIZE(seq, i + 1);
        }
        else {
            PyTuple_SET_ITEM(seq, i, item);
        }
        i++;
    }
    return 0;
}

PyObject *
dec_tuple(decoder *d, int Py_UNUSED(op), Py_ssize_t Py_UNUSED(mi))
{
    Py_ssize_t n;
    if (rd_count(d, &n, 0) < 0) {
        return NULL;
    }
    PyObject *t = PyTuple_New(n);
    if (t == NULL || n == 0) {
        return t;
    }
    /* out of the garbage collector's sight while it has empty slots:
       gc.get_objects() in code that runs meanwhile would hand them out
       (nothing else refers to it: see the memo, above) */
    PyObject_GC_UnTrack(t);
    if (dec_seq_items(d, t, n, 0) < 0) {
        Py_DECREF(t);
        return NULL;
    }
    PyObject_GC_Track(t);
    return t;
}

/* A new empty list with room for n items: PyList_New(0) given an item
 * array of n slots (PyListObject's documented fields), which is not
 * zeroed, since the decoder writes every slot.  For a million items,
 * zeroing the 8 MB would add 2% to the round trip.  The decoder
 * raises the list's size with each item it stores, so the list is
 * whole at every moment: an error or a reference back to it (a cycle)
 * sees the items decoded so far, never an empty slot.  The free-threaded
 * build, whose lists keep their items in an array of its own kind, gets
 * zeroed slots from PyList_New and the same growing size. */
static PyObject *
list_with_room(Py_ssize_t n)
{
#ifdef Py_GIL_DISABLED
    PyObject *l = PyList_New(n);
    if (l != NULL) {
        Py_SET_SIZE(l, 0);
    }
    return l;
#else
    PyObject *l = PyList_New(0);
    if (l == NULL || n == 0) {
        return l;
    }
    PyObject **items = PyMem_New(PyObject *, n);
    if (items == NULL) {
        Py_DECREF(l);
        return PyErr_NoMemory();
    }
    ((PyListObject *)l)->ob_item = items;
    ((PyListObject *)l)->allocated = n;
    return l;
#endif
}

PyObject *
dec_list(decoder *d, int Py_UNUSED(op), Py_ssize_t mi)
{
    Py_ssize_t n;
    if (rd_count(d, &n, 0) < 0) {
        return NULL;
    }
    PyObject *l = list_with_room(n);
    if (l == NULL) {
        return NULL;
    }
    memo_fill(d, mi, l);
    if (dec_seq_items(d, l, n, 1) < 0) {
        Py_CLEAR(l);
    }
    return l;
}

static int
dict_set(decoder *d, PyObject *dict, PyObject *k, PyObject *v)
{
    if (PyDict_SetItem(dict, k, v) < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            as_corrupt(d, "unhashable dict key");
        }
        return -1;
    }
    return 0;
}

static PyObject *dec_dict_shape(decoder *d, Py_ssize_t mi);

/* OP_DICT: keys and values; OP_DICT_SHAPE: the values of a recent
 * shape. */
PyObject *
dec_dict(decoder *d, int op, Py_ssize_t mi)
{
    Py_ssize_t n;
    if (op == OP_DICT_SHAPE) {
        return dec_dict_shape(d, mi);
    }
    if (rd_count(d, &n, 1) < 0) {
        return NULL;
    }
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    memo_fill(d, mi, dict);
    Py_ssize_t base = d->nkstack;
    if (codec_grow_ptrs(&d->kstack, &d->kstack_cap, base + n) < 0) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = dec_item(d);
        if (k == NULL) {
            goto error;
        }
        PyObject *v = dec_item(d);
        if (v == NULL) {
            Py_DECREF(k);
            goto error;
        }
        int rc = dict_set(d, dict, k, v);
        /* kstack stays below its reservation: nested dicts above us
           reserve from nkstack, which is at most base + i here.  It
           keeps the reference to k, for the shape. */
        d->kstack[base + i] = k;
        d->nkstack = base + i + 1;
        Py_DECREF(v);
        if (rc < 0) {
            goto error;
        }
    }
    if (shape_define(d, base) < 0) {
        Py_DECREF(dict);
        return NULL;
    }
    return dict;
error:
    kstack_pop(d, base);
    Py_DECREF(dict);
    return NULL;
}

static PyObject *
dec_dict_shape(decoder *d, Py_ssize_t mi)
{
    Py_ssize_t n;
    if (need(d, 1) < 0) {
        return NULL;
    }
    int slot = *d->p++;
    if (rd_count(d, &n, 0) < 0) {
        return NULL;
    }
    if (slot >= SHAPE_SLOTS || d->shapes[slot].n == 0 ||
        d->shapes[slot].n != n) {
        return corrupt(d, "dict refers to keys of a dict that is not there");
    }
    dshape *sh = &d->shapes[slot];
    if (sh->blank == NULL) {
        /* Reused for the first time: from now on copy a blank, the keys
           with the value None.  Copying the dict that defined the shape
           would take a reference to each of its values (objects all over
           memory) only for the values to be replaced at once; None is
           immortal, so copying the blank and replacing its values touches
           no object but the keys.  Records repeat a shape many times, so
           the blank costs one dict per shape.  It holds the slot's own
           key objects, and it is private: nothing refers to it, and it
           is kept out of the garbage collector's sight (where code that
           runs during the decode could find and change it). */
        PyObject *blank = PyDict_New();
        if (blank == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            if (PyDict_SetItem(blank, sh->keys[i], Py_None) < 0) {
                Py_DECREF(blank);
                return NULL;
            }
        }
        /* Keys the GC tracks make PyDict_SetItem track the blank, and a
           key's __hash__ or __eq__ (Python code, in a trusted message)
           may then have found it and changed it: it must hold exactly
           the slot's key objects, in order, for the dicts of the shape
           to borrow them from it.  Untracked from here on, nothing can
           reach it (it cannot be part of a cycle). */
        PyObject_GC_UnTrack(blank);
        Py_ssize_t pos = 0, i = 0;
        PyObject *key, *value;
        while (i < n && PyDict_Next(blank, &pos, &key, &value) &&
               key == sh->keys[i]) {
            i++;
        }
        if (i < n || PyDict_GET_SIZE(blank) != n) {
            Py_DECREF(blank);
            return corrupt(d, "dict shape with a repeated or changed key");
        }
        sh->blank = blank;
    }
    PyObject *blank = sh->blank;
    /* Nested dicts may take over the slot while the values are decoded:
       hold the blank, which holds the keys, and work on a copy of its
       keys - borrowed, unlike the keys dec_dict pushes: this region of
       kstack is dropped, not popped with kstack_pop. */
    Py_ssize_t base = d->nkstack;
    if (codec_grow_ptrs(&d->kstack, &d->kstack_cap, base + n) < 0) {
        return NULL;
    }
    memcpy(d->kstack + base, d->shapes[slot].keys,
           (size_t)n * sizeof(PyObject *));
    d->nkstack = base + n;
    Py_INCREF(blank);
    PyObject *dict = PyDict_Copy(blank);
    if (dict == NULL) {
        goto error;
    }
    memo_fill(d, mi, dict);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = dec_item(d);
        if (v == NULL) {
            goto error;
        }
        int rc = PyDict_SetItem(dict, d->kstack[base + i], v);
        Py_DECREF(v);
        if (rc < 0) {
            goto error;
        }
    }
    d->nkstack = base;
    Py_DECREF(blank);
    return dict;
error:
    d->nkstack = base;
    Py_DECREF(blank);
    Py_XDECREF(dict);
    return NULL;
}

/* An unhashable element (TypeError) is a corrupt message. */
static void
set_add_failed(decoder *d)
{
    if (PyErr_ExceptionMatches(PyExc_TypeError)) {
        as_corrupt(d, "unhashable set element");
    }
}

/* OP_SET, entered in the memo at once; OP_FROZENSET, entered by dec_obj
 * when complete.  A frozenset's elements are decoded into a tuple first,
 * which stays out of the garbage collector's sight (as in dec_tuple):
 * a frozenset that code running meanwhile could find while it grows
 * would keep the hash of a part of it, if that code hashed it. */
PyObject *
dec_set(decoder *d, int op, Py_ssize_t mi)
{
    Py_ssize_t n;
    if (rd_count(d, &n, 0) < 0) {
        return NULL;
    }
    if (op == OP_FROZENSET) {
        PyObject *t = PyTuple_New(n);
        if (t == NULL) {
            return NULL;
        }
        if (n > 0) {
            PyObject_GC_UnTrack(t);
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = dec_obj(d);
            if (item == NULL) {
                Py_DECREF(t);
                return NULL;
            }
            PyTuple_SET_ITEM(t, i, item);
        }
        if (n > 0) {
            PyObject_GC_Track(t);
        }
        PyObject *fs = PyFrozenSet_New(t);
        Py_DECREF(t);
        if (fs == NULL) {
            set_add_failed(d);
        }
        return fs;
    }
    PyObject *s = PySet_New(NULL);
    if (s == NULL) {
        return NULL;
    }
    memo_fill(d, mi, s);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = dec_obj(d);
        if (item == NULL) {
            goto error;
        }
        int rc = PySet_Add(s, item);
        Py_DECREF(item);
        if (rc < 0) {
            set_add_failed(d);
            goto error;
        }
    }
    return s;
error:
    Py_DECREF(s);
    return NULL;
}

/* n objects into items[]; 0 or -1 (items released) */
static int
dec_items(decoder *d, PyObject **items, int n)
{
    for (int i = 0; i < n; i++) {
        items[i] = dec_obj(d);
        if (items[i] == NULL) {
            for (int j = 0; j < i; j++) {
                Py_CLEAR(items[j]);
            }
            return -1;
        }
    }
    return 0;
}

static void
items_clear(PyObject **items, int n)
{
    for (int i = 0; i < n; i++) {
        Py_CLEAR(items[i]);
    }
}

/* Does item have the type that spec letter c asks for?
 *   U str    u str or None    S bytes    t tuple or None    d dict or None */
static int
arg_ok(PyObject *item, char c)
{
    switch (c) {
    case 'U':
        return PyUnicode_Check(item);
    case 'u':
        return item == Py_None || PyUnicode_Check(item);
    case 'S':
        return PyBytes_Check(item);
    case 't':
        return item == Py_None || PyTuple_Check(item);
    case 'd':
        return item == Py_None || PyDict_Check(item);
    default:
        return 0;
    }
}

/* The arguments of an opcode: one object per letter of spec (arg_ok),
 * into items[].  0, or -1 (items released; CorruptMessageError `what`
 * when one has the wrong type). */
static int
dec_args(decoder *d, PyObject **items, const char *spec, const char *what)
{
    int n = (int)strlen(spec);
    if (dec_items(d, items, n) < 0) {
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!arg_ok(items[i], spec[i])) {
            items_clear(items, n);
            corrupt(d, what);
            return -1;
        }
    }
    return 0;
}

PyObject *
dec_range_slice(decoder *d, int op, Py_ssize_t Py_UNUSED(mi))
{
    PyObject *it[3];
    PyObject *res;
    if (dec_items(d, it, 3) < 0) {
        return NULL;
    }
    if (op == OP_SLICE) {
        res = PySlice_New(it[0], it[1], it[2]);
    }
    else {
        res = PyObject_CallFunctionObjArgs((PyObject *)&PyRange_Type, it[0],
                                           it[1], it[2], NULL);
        if (res == NULL) {
            as_corrupt(d, "bad range");
        }
    }
    items_clear(it, 3);
    return res;
}

static int
require_trusted(decoder *d, const char *what)
{
    if (!d->trusted) {
        codec_corrupt(d->cs, "refusing %s in an untrusted message", what);
        return -1;
    }
    return 0;
}

/* OP_GLOBAL "module:qualname"; OP_MAIN_GLOBAL path, spec, qualname;
 * OP_CODE_FUNC module name, marshalled code, defaults, kwdefaults
 * (codec_ref.c resolves and rebuilds them). */
PyObject *
dec_function(decoder *d, int op, Py_ssize_t Py_UNUSED(mi))
{
    PyObject *it[4] = {NULL, NULL, NULL, NULL};
    PyObject *res = NULL;
    switch (op) {
    case OP_GLOBAL:
        if (dec_args(d, it, "U", "bad global reference") == 0) {
            res = codec_resolve_global(d->cs, it[0], d->trusted);
        }
        break;
    case OP_MAIN_GLOBAL:
        if (require_trusted(d, "a function of the main script") == 0 &&
            dec_args(d, it, "uuU", "bad main-script reference") == 0) {
            res = codec_resolve_main(d->cs, it[0], it[1], it[2]);
        }
        break;
    default:    /* OP_CODE_FUNC */
        if (require_trusted(d, "a function sent as code") == 0 &&
            dec_args(d, it, "uStd", "bad function") == 0) {
            res = codec_make_code_func(d->cs, it[0], it[1], it[2], it[3]);
        }
        break;
    }
    items_clear(it, 4);
    return res;
}

PyObject *
dec_module(decoder *d, int Py_UNUSED(op), Py_ssize_t Py_UNUSED(mi))
{
    PyObject *name;
    if (dec_args(d, &name, "U", "bad module name") < 0) {
        return NULL;
    }
    PyObject *res = codec_import_module(d->cs, name, d->trusted);
    Py_DECREF(name);
    return res;
}

PyObject *
dec_singleton(decoder *Py_UNUSED(d), int op, Py_ssize_t Py_UNUSED(mi))
{
    return Py_NewRef(op == OP_ELLIPSIS ? Py_Ellipsis : Py_NotImplemented);
}

PyObject *
dec_complex(decoder *d, int Py_UNUSED(op), Py_ssize_t Py_UNUSED(mi))
{
    if (need(d, 16) < 0) {
        return NULL;
    }
    double re = rd_double(d);
    double im = rd_double(d);
    return PyComplex_FromDoubles(re, im);
}

PyObject *
dec_datetime(decoder *d, int Py_UNUSED(op), Py_ssize_t Py_UNUSED(mi))
{
    PyObject *it[3] = {NULL, NULL, NULL};
    PyObject *res = NULL;
    if (need(d, 2) < 0) {
        return NULL;
    }
    int kind = *d->p++;
    int nargs = *d->p++;
    if (kind >= DT_NKINDS || nargs < 1 || nargs > 3) {
        return corrupt(d, "bad datetime");
    }
    if (dec_items(d, it, nargs) < 0) {
        return NULL;
    }
    PyObject *cls = codec_recv_type(d->cs, kind);
    if (cls != NULL) {
        res = PyObject_Vectorcall(cls, it, (size_t)nargs, NULL);
        if (res == NULL) {
            as_corrupt(d, "bad datetime value");
        }
    }
    items_clear(it, nargs);
    return res;
}

PyObject *
dec_decimal(decoder *d, int Py_UNUSED(op), Py_ssize_t Py_UNUSED(mi))
{
    PyObject *s;
    PyObject *res = NULL;
    if (dec_args(d, &s, "U", "bad Decimal") < 0) {
        return NULL;
    }
    PyObject *cls = codec_recv_type(d->cs, RT_DECIMAL);
    if (cls != NULL) {
        res = PyObject_CallOneArg(cls, s);
        if (res == NULL) {
            as_corrupt(d, "bad Decimal value");
        }
    }
    Py_DECREF(s);
    return res;
}

PyObject *
dec_uuid(decoder *d, int Py_UNUSED(op), Py_ssize_t Py_UNUSED(mi))
{
    PyObject *bytes = NULL, *safe = NULL, *kwnames = NULL, *res = NULL;
    if (need(d, 17) < 0) {
        return NULL;
    }
    PyObject *cls = codec_recv_type(d->cs, RT_UUID);
    PyObject *safecls = cls ? codec_recv_type(d->cs, RT_SAFEUUID) : NULL;
    if (safecls == NULL) {
        return NULL;
    }
    bytes = PyBytes_FromStringAndSize((const char *)d->p, 16);
    int is_safe = (signed char)d->p[16];
    d->p += 17;
    if (bytes == NULL) {
        goto done;
    }
    PyObject *args[3] = {NULL, bytes, NULL};
    size_t nargs = 0;
    if (is_safe == 0x7f) {
        kwnames = Py_BuildValue("(s)", "bytes");
    }
    else {
        PyObject *v = PyLong_FromLong(is_safe);
        if (v == NULL) {
            goto done;
        }
        safe = PyObject_CallOneArg(safecls, v);
        Py_DECREF(v);
        if (safe == NULL) {
            as_corrupt(d, "bad UUID safety");
            goto done;
        }
        args[2] = safe;
        kwnames = Py_BuildValue("(ss)", "bytes", "is_safe");
    }
    if (kwnames == NULL) {
        goto done;
    }
    res = PyObject_Vectorcall(cls, args + 1,
                              nargs | PY_VECTORCALL_ARGUMENTS_OFFSET,
                              kwnames);
    if (res == NULL) {
        as_corrupt(d, "bad UUID");
    }
done:
    Py_XDECREF(bytes);
    Py_XDECREF(safe);
    Py_XDECREF(kwnames);
    return res;
}

/* An out-of-band buffer of a pickle (enc_oob): bytes or bytearray
 * copied in the message, or a raw blob.  Part of the pickle's opcode, not
 * an object of the graph: no memo, no nesting level. */
static PyObject *
dec_oob(decoder *d)
{
    if (need(d, 1) < 0) {
        return NULL;
    }
    int op = *d->p++;
    if (op == OP_BYTES || op == OP_BYTEARRAY) {
        return dec_bytes(d, op, -1);
    }
    if (op == OP_BUFFER) {
        return dec_buffer(d, op, -1);
    }
    d->p--;
    return corrupt(d, "bad out-of-band buffer");
}

PyObject *
dec_pickle(decoder *d, int Py_UNUSED(op), Py_ssize_t Py_UNUSED(mi))
{
    Py_ssize_t n;
    if (require_trusted(d, "pickled data") < 0 ||
        rd_count(d, &n, 0) < 0) {
        return NULL;
    }
    if (d->pickle_bufs == NULL) {
        d->pickle_bufs = PyList_New(0);
        if (d->pickle_bufs == NULL) {
            return NULL;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *buf = dec_oob(d);
        if (buf == NULL) {
            return NULL;
        }
        int rc = PyList_Append(d->pickle_bufs, buf);
        Py_DECREF(buf);
        if (rc < 0) {
            return NULL;
        }
    }
    if (d->unpickler == NULL) {
        PyObject *helpers = codec_helpers(d->cs);
        if (helpers == NULL) {
            return NULL;
        }
        PyObject *data = PyBytes_FromStringAndSize(d->pickle_data,
                                                   d->pickle_len);
        if (data == NULL) {
            return NULL;
        }
        d->unpickler = PyObject_CallMethod(
            helpers, "new_unpickler", "OO", data,
            codec_pickle_kw_ok() ? d->pickle_bufs : Py_None);
        Py_DECREF(data);
        if (d->unpickler == NULL) {
            return NULL;
        }
    }
    return PyObject_CallMethodNoArgs(d->unpickler, d->cs->s_load);
}

/* The object of opcode op (memo bit cleared; memo index mi or -1) of a
 * type of the type table. */
static inline PyObject *
dec_typed(decoder *d, unsigned int op, Py_ssize_t mi)
{
    const codec_type *t = codec_type_of_op(op);
    PyObject *res;
    if (t == NULL) {
        d->p--;
        return corrupt(d, "unknown opcode");
    }
    if (t->memo == MEMO_NEVER) {
        res = t->decode(d, (int)op, mi);
    }
    else {
        if (d->depth >= CODEC_MAX_DEPTH) {
            return codec_corrupt(d->cs, "nesting deeper than %d levels",
                                 CODEC_MAX_DEPTH);
        }
        d->depth++;
        res = t->decode(d, (int)op, mi);
        d->depth--;
        if (t->memo == MEMO_AT_ONCE) {
            return res;     /* entered in the memo when it was made */
        }
    }
    if (res != NULL) {
        memo_fill(d, mi, res);
    }
    return res;
}

static PyObject *
dec_obj(decoder *d)
{
    if (d->p >= d->end) {
        return corrupt(d, "truncated");
    }
    unsigned int op = *d->p++;
    if (op >= OP_SMALLINT) {
        return PyLong_FromLong((long)op - OP_SMALLINT + SMALLINT_MIN);
    }
    Py_ssize_t mi = -1;
    if (op & OP_MEMO) {
        op &= ~(unsigned int)OP_MEMO;
        if (op == OP_REF || op > OP_LAST) {
            d->p--;
            return corrupt(d, "bad memo flag");
        }
        mi = memo_reserve(d);
        if (mi < 0) {
            return NULL;
        }
    }
    PyObject *res = NULL;
    switch (op) {
    case OP_STR_ASCII:
    case OP_STR_1:
    case OP_STR_2:
    case OP_STR_4:
        res = dec_str(d, (int)op);
        break;
    case OP_NONE:
        res = Py_NewRef(Py_None);
        break;
    case OP_TRUE:
        res = Py_NewRef(Py_True);
        break;
    case OP_FALSE:
        res = Py_NewRef(Py_False);
        break;
    case OP_INT: {
        uint64_t v;
        if (rd_varint(d, &v) < 0) {
            return NULL;
        }
        int64_t x = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
        res = PyLong_FromLongLong(x);
        break;
    }
    case OP_FLOAT:
        if (need(d, 8) < 0) {
            return NULL;
        }
        res = PyFloat_FromDouble(rd_double(d));
        break;
    case OP_REF: {
        Py_ssize_t i;
        if (rd_ssize(d, &i) < 0) {
            return NULL;
        }
        if (i >= d->nmemo || d->memo[i] == NULL) {
            return corrupt(d, "reference to a missing or unfinished "
                              "object");
        }
        return Py_NewRef(d->memo[i]);
    }
    case OP_BIGINT:
        res = dec_bigint(d);
        break;
    case OP_STR_PIN:
        res = dec_str_pin(d);
        break;
    default:
        return dec_typed(d, op, mi);
    }
    if (res != NULL) {
        memo_fill(d, mi, res);
    }
    return res;
}

/* ------------------------------------------------------------------ */
/* messages                                                            */

PyObject *
codec_decode_data(module_state *st, const char *data, Py_ssize_t size,
                  Py_ssize_t hdr_len, const msg_ref *refs, Py_ssize_t nrefs,
                  int trusted)
{
    codec_state *cs = codec_get(st);
    decoder d;
    PyObject *res = NULL;

    if (size < MSG_HEADER || hdr_len > size || data[0] != MSG_MAGIC0 ||
        data[1] != MSG_MAGIC1 || data[2] != MSG_MAGIC2) {
        return codec_corrupt(cs, "not a subinterp message");
    }
    if (data[3] != MSG_VERSION) {
        return codec_corrupt(cs, "message format version %d, this is %d",
                             (int)(unsigned char)data[3], MSG_VERSION);
    }
    uint64_t body_len = get_le64(data + 8);
    uint64_t pickle_len = get_le64(data + 16);
    uint64_t avail = (uint64_t)(size - hdr_len);
    if (body_len > avail || pickle_len != avail - body_len) {
        return codec_corrupt(cs, "message length does not match its "
                             "header (truncated?)");
    }
    memset(&d, 0, sizeof(d));
    d.st = st;
    d.cs = cs;
    d.body = (const unsigned char *)data + hdr_len;
    d.p = d.body;
    d.end = d.body + body_len;
    d.refs = refs;
    d.nrefs = nrefs;
    d.trusted = trusted;
    d.pickle_data = (const char *)d.end;
    d.pickle_len = (Py_ssize_t)pickle_len;
    d.prev = tls_dec;
    tls_dec = &d;

    /* A big message makes many containers: without this, the cyclic GC
       runs over and over during the decode (a fifth of the time for a
       1 MB document), and finds nothing - a decoded graph only refers to
       itself.  It runs (once) after we give it back. */
    int gc_was_enabled = body_len > 65536 ? PyGC_Disable() : 0;
    res = dec_obj(&d);
    if (gc_was_enabled) {
        PyGC_Enable();
    }
    if (res != NULL && d.p != d.end) {
        Py_CLEAR(res);
        corrupt(&d, "trailing bytes after the object");
    }

    tls_dec = d.prev;
    for (Py_ssize_t i = 0; i < d.nmemo; i++) {
        Py_XDECREF(d.memo[i]);
    }
    PyMem_Free(d.memo);
    for (int s = 0; s < SHAPE_SLOTS; s++) {
        shape_clear(&d.shapes[s]);
        PyMem_Free(d.shapes[s].keys);
    }
    PyMem_Free(d.kstack);
    Py_XDECREF(d.unpickler);
    Py_XDECREF(d.pickle_bufs);
    if (res == NULL && !trusted &&
        !PyErr_ExceptionMatches(PyExc_ValueError) &&
        !PyErr_ExceptionMatches(PyExc_MemoryError)) {
        /* untrusted callers are promised ValueError for bad input */
        as_corrupt(&d, "invalid message");
    }
    return res;
}

PyObject *
codec_decode(module_state *st, const msg *m)
{
    if (codec_get(st) == NULL) {
        PyErr_SetString(PyExc_RuntimeError,
                        "subinterp codec used after module cleanup");
        return NULL;
    }
    codec_drain_pending();
    PyObject *res = codec_decode_data(st, m->data, m->size, MSG_HEADER,
                                      m->refs, m->nrefs, 1);
    codec_drain_pending();
    return res;
}

PyObject *
codec_decode_ref(module_state *st, Py_ssize_t i, int want, PyObject *args)
{
    decoder *d = tls_dec;
    if (d == NULL || d->st != st) {
        PyErr_SetString(PyExc_ValueError,
                        "this function only works while subinterp decodes "
                        "a message");
        return NULL;
    }
    if (i < 0 || i >= d->nrefs || d->refs[i].what != (ref_what)want) {
        return codec_corrupt(d->cs, "bad reference in pickled data");
    }
    const msg_ref *r = &d->refs[i];
    if (want == REF_HANDLE) {
        return r->kind->wrap(st, r->ptr);
    }
    /* args: (offset, nbytes, readonly, fmt, shape) */
    Py_ssize_t offset, nbytes, shape[CODEC_MAX_NDIM];
    int readonly;
    PyObject *fmt, *shapeobj;
    if (!PyArg_ParseTuple(args, "nnpUO!", &offset, &nbytes, &readonly, &fmt,
                          &PyTuple_Type, &shapeobj)) {
        return NULL;
    }
    Py_ssize_t fmtlen;
    const char *f = PyUnicode_AsUTF8AndSize(fmt, &fmtlen);
    if (f == NULL) {
        return NULL;
    }
    Py_ssize_t ndim = PyTuple_GET_SIZE(shapeobj);
    if (fmtlen > 3 || ndim > CODEC_MAX_NDIM || offset < 0 || nbytes < 0) {
        return codec_corrupt(d->cs, "bad buffer in pickled data");
    }
    for (Py_ssize_t k = 0; k < ndim; k++) {
        shape[k] = PyLong_AsSsize_t(PyTuple_GET_ITEM(shapeobj, k));
        if (shape[k] == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    return make_buffer(d, (blob *)r->ptr, offset, nbytes, readonly, f,
                       fmtlen, (int)ndim, shape);
}
