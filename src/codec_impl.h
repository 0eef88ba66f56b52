/* codec_impl.h - private declarations shared by the files of the codec
 * (codec.c, codec_types.c, codec_enc.c, codec_dec.c, codec_ref.c,
 * codec_buf.c).  Nothing outside the
 * codec includes this; the codec's contract with the rest of the core is
 * in subinterp.h.  The design essay is at the top of codec.c.
 */
#ifndef SUBINTERP_CODEC_IMPL_H
#define SUBINTERP_CODEC_IMPL_H

#include "subinterp.h"

#include <stdatomic.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Limits                                                              */

/* Containers nested deeper than this raise ValueError, on both sides.
 * Each level costs one C stack frame of the (recursive) encoder or
 * decoder; 1000 levels stay far below the smallest thread stack CPython
 * runs on (256 KiB on some platforms for non-main threads), and equal
 * the default recursion limit pickle would hit anyway. */
#define CODEC_MAX_DEPTH 1000

/* Registered handle types per interpreter. */
#define CODEC_MAX_HANDLE_TYPES 16

/* bytes and str objects at least this long cross by pinning the sender's
 * object and copying once, in the receiver, instead of being copied into
 * the message and then again out of it.  Below this a pin costs more
 * than the copy it saves. */
#define CODEC_PIN_THRESHOLD (64 * 1024)

/* Out-of-band pickle buffers at least this long are copied into their own
 * raw block, which the receiver views without a second copy. */
#define CODEC_OOB_THRESHOLD (64 * 1024)

/* Recent dict shapes both sides remember (codec_enc.c). */
#define SHAPE_SLOTS 8

/* Shape (ndim) a zero-copy view can keep; deeper arrays arrive flat. */
#define CODEC_MAX_NDIM 8

/* ------------------------------------------------------------------ */
/* Message layout                                                      */
/*
 *   offset  size  field
 *   0       4     magic "SIc" + format version
 *   4       1     flags (MSGF_*)
 *   5       3     zero
 *   8       8     body length, little endian
 *   16      8     pickle stream length, little endian
 *   24      24    (MSGF_LOCAL only) process nonce, pid, token
 *   then    body, then the pickle stream
 *
 * A struct msg always carries the short header (24 bytes); dumps() adds
 * the 24 bytes of process identity when the message holds references.
 */
#define MSG_MAGIC0 'S'
#define MSG_MAGIC1 'I'
#define MSG_MAGIC2 'c'
#define MSG_VERSION 1
#define MSG_HEADER 24
#define MSG_LOCAL_HEADER 48

#define MSGF_LOCAL 0x01      /* holds process-local references */

/* Opcodes of the body.  One byte each; 0x80-0xFF are small ints. */
enum {
    OP_NONE = 0x00,
    OP_FALSE = 0x01,
    OP_TRUE = 0x02,
    OP_ELLIPSIS = 0x03,
    OP_INT = 0x04,          /* zigzag varint */
    OP_BIGINT = 0x05,       /* varint n, n bytes little-endian 2's compl */
    OP_FLOAT = 0x06,        /* 8 bytes IEEE 754 little endian */
    OP_COMPLEX = 0x07,      /* 16 bytes */
    OP_REF = 0x08,          /* varint memo index */
    OP_STR_ASCII = 0x09,    /* varint n, n bytes */
    OP_STR_1 = 0x0A,        /* latin-1: varint n, n bytes */
    OP_STR_2 = 0x0B,        /* UCS-2: varint n, pad, 2n bytes */
    OP_STR_4 = 0x0C,        /* UCS-4: varint n, pad, 4n bytes */
    OP_BYTES = 0x0D,        /* varint n, n bytes */
    OP_BYTEARRAY = 0x0E,
    OP_TUPLE = 0x0F,        /* varint n, n items */
    OP_LIST = 0x10,
    OP_DICT = 0x11,         /* varint n, n key/value pairs */
    OP_DICT_SHAPE = 0x12,   /* byte slot, varint n, n values: keys of a
                               recent dict (see codec_enc.c) */
    OP_SET = 0x13,
    OP_FROZENSET = 0x14,
    OP_RANGE = 0x15,        /* start, stop, step items */
    OP_SLICE = 0x16,        /* start, stop, step items */
    OP_HANDLE = 0x17,       /* byte tag, varint ref */
    OP_BUFFER = 0x18,       /* varint ref, offset, nbytes, byte flags,
                               byte fmtlen, fmt, byte ndim, ndim shape */
    OP_BYTES_PIN = 0x19,    /* varint ref */
    OP_STR_PIN = 0x1A,      /* varint ref */
    OP_GLOBAL = 0x1B,       /* item: str "module:qualname" */
    OP_MAIN_GLOBAL = 0x1C,  /* items: path, spec name, qualname */
    OP_CODE_FUNC = 0x1D,    /* items: module name, marshalled code,
                               defaults, kwdefaults */
    OP_MODULE = 0x1E,       /* item: str name */
    OP_DATETIME = 0x1F,     /* byte kind, kind-specific */
    OP_DECIMAL = 0x20,      /* item: str */
    OP_UUID = 0x21,         /* 16 bytes, byte is_safe */
    OP_PICKLE = 0x22,       /* varint n, n buffer items, next pickle */
    OP_NOTIMPLEMENTED = 0x23,
    OP_LAST = OP_NOTIMPLEMENTED,

    /* Not a type, and valid only among the items of a list or tuple
       (dec_seq_items): varint k >= 1, byte w (1, 2 or 4), then k ints of
       w bytes each, little-endian two's complement: k items in a row.
       Elsewhere it is an unknown opcode.  It takes the top of the free
       range so that the next type keeps the next free opcode. */
    OP_INT_RUN = 0x3F,

    OP_MEMO = 0x40,         /* flag: the object gets the next memo index */
    OP_SMALLINT = 0x80,     /* 0x80 + (v + 64) for -64 <= v < 64 */
};

#define SMALLINT_MIN (-64)
#define SMALLINT_MAX 63

/* OP_BUFFER flags */
#define BUFF_READONLY 0x01

/* OP_DATETIME kinds */
enum {
    DT_DATE = 0,
    DT_TIME = 1,
    DT_DATETIME = 2,
    DT_TIMEDELTA = 3,
    DT_TIMEZONE = 4,
    DT_NKINDS = 5,
};

/* Classes the codec knows by value: the datetime kinds above, then */
enum {
    RT_DECIMAL = DT_NKINDS,
    RT_UUID,
    RT_SAFEUUID,
    RT_N,
};

/* ... in groups, one per module that defines them */
enum {
    RT_GROUP_DATETIME = 0,
    RT_GROUP_DECIMAL = 1,
    RT_GROUP_UUID = 2,
    RT_NGROUPS = 3,
};

/* ------------------------------------------------------------------ */
/* Process-wide references a message holds                            */

typedef enum {
    REF_HANDLE = 1,
    REF_BLOB = 2,
} ref_what;

typedef struct blob blob;

typedef struct {
    ref_what what;
    const handle_kind *kind;    /* REF_HANDLE */
    void *ptr;                  /* the handle's ref, or a blob */
} msg_ref;

struct msg {
    Py_ssize_t size;            /* bytes in data, header included */
    char *data;                 /* PyMem_RawMalloc */
    Py_ssize_t nrefs;
    msg_ref *refs;              /* PyMem_RawMalloc, one C reference each */
};

/* Free the bytes of m (not its references), which then has none. */
void msg_free_data(msg *m);

/* Release the references of refs[0..n) (any thread, no GIL needed). */
void refs_release(msg_ref *refs, Py_ssize_t n);

/* ------------------------------------------------------------------ */
/* Per-interpreter state (module_state->codec)                         */

typedef struct codec_state {
    PyObject *CorruptMessageError;
    PyTypeObject *SharedBufferType;
    PyTypeObject *MessageType;          /* bytes subclass of dumps() */

    PyTypeObject *handle_types[CODEC_MAX_HANDLE_TYPES]; /* strong */
    int nhandle_types;

    /* module functions used as pickle reconstructors */
    PyObject *fn_main_ref;
    PyObject *fn_code_func;
    PyObject *fn_handle_ref;
    PyObject *fn_buffer_ref;

    /* interned names */
    PyObject *s_module;      /* "__module__" */
    PyObject *s_qualname;    /* "__qualname__" */
    PyObject *s_file;        /* "__file__" */
    PyObject *s_spec;        /* "__spec__" */
    PyObject *s_name;        /* "name" */
    PyObject *s_reduce;      /* "__reduce__" */
    PyObject *s_getinitargs; /* "__getinitargs__" */
    PyObject *s_dump;        /* "dump" */
    PyObject *s_load;        /* "load" */
    PyObject *s_getvalue;    /* "getvalue" */
    PyObject *s_clear;       /* "clear" */
    PyObject *s_cast;        /* "cast" */
    PyObject *s_raw;         /* "raw" */
    PyObject *s_main;        /* "__main__" */
    PyObject *s_mp_main;     /* "__mp_main__" */
    PyObject *s_builtins;    /* "__builtins__" */
    PyObject *s___name__;    /* "__name__" */
    PyObject *s_bytes;       /* "bytes" */
    PyObject *s_is_safe;     /* "is_safe" */
    PyObject *s_value;       /* "value" */

    /* lazily imported (NULL until first use) */
    PyObject *helpers;       /* subinterp._codec */
    PyObject *builtins_mod;
    /* This interpreter's datetime, Decimal and UUID classes (RT_*): the
       sender compares types with them, the receiver calls them.  Filled
       per module, when that module is imported. */
    PyObject *types[RT_N];
    int types_loaded;        /* bit per module group */

    /* function / class references */
    PyObject *ref_cache;     /* receiver: key -> resolved object */
    PyObject *send_cache;    /* sender: object -> encoded key */
    int by_value_ok;         /* cloudpickle was imported here once */
} codec_state;

static inline codec_state *
codec_get(module_state *st)
{
    return st->codec;
}

/* ------------------------------------------------------------------ */
/* codec.c                                                             */

/* Make room for need pointers in *arr (PyMem_Realloc, doubling from 64;
 * *cap counts them).  0, or -1 with MemoryError (*arr unchanged). */
int codec_grow_ptrs_to(PyObject ***arr, Py_ssize_t *cap, Py_ssize_t need);

static inline int
codec_grow_ptrs(PyObject ***arr, Py_ssize_t *cap, Py_ssize_t need)
{
    return *cap >= need ? 0 : codec_grow_ptrs_to(arr, cap, need);
}
/* Raise CorruptMessageError (a ValueError) "corrupt message: ..." */
PyObject *codec_corrupt(codec_state *cs, const char *fmt, ...);
/* May the pickle fallback call _pickle with keyword arguments here?
 * (Not on 3.12.0-3.12.3 before the main interpreter imported us:
 * gh-119213, see codec.c.) */
int codec_pickle_kw_ok(void);
/* Import (once) the Python helpers of the pickle fallback. */
PyObject *codec_helpers(codec_state *cs);
/* The class RT_* of this interpreter, importing its module if needed;
 * borrowed, or NULL with an exception. */
PyObject *codec_recv_type(codec_state *cs, int which);

/* ------------------------------------------------------------------ */
/* codec_ref.c: functions and classes by reference                     */

/* The module called name: imported when trusted, else only one this
 * interpreter has already (CorruptMessageError otherwise). */
PyObject *codec_import_module(codec_state *cs, PyObject *name, int trusted);
/* Resolve a reference made by the encoder (receiver side, cached). */
PyObject *codec_resolve_global(codec_state *cs, PyObject *key, int trusted);
PyObject *codec_resolve_main(codec_state *cs, PyObject *path,
                             PyObject *spec, PyObject *qualname);
PyObject *codec_make_code_func(codec_state *cs, PyObject *modname,
                               PyObject *code_bytes, PyObject *defaults,
                               PyObject *kwdefaults);

/* How a function or class crosses (codec_function_ref). */
typedef enum {
    FREF_GLOBAL,        /* *a = key "module:qualname" */
    FREF_MAIN,          /* *a = (path or None, spec or None, qualname) */
    FREF_CODE,          /* a stateless function: *a = its marshalled
                           code, *b = its module name or None */
    FREF_VALUE,         /* by value, through cloudpickle (pickle only) */
    FREF_NONE,          /* a builtin not found by name: pickle it */
} fref_kind;

/* How obj (a function, builtin function or class) crosses: fills *how
 * and *a, *b (new references; NULL for FREF_VALUE and FREF_NONE) and
 * returns 0, or -1 with an exception (NotShareableError when it cannot
 * cross at all). */
int codec_function_ref(codec_state *cs, module_state *st, PyObject *obj,
                       fref_kind *how, PyObject **a, PyObject **b);

/* Are functions and classes that cannot cross by reference or as code
 * sent by value (through cloudpickle)?  Process-wide; on unless the
 * environment variable SUBINTERP_FUNCTIONS_BY_VALUE is "0". */
int codec_by_value_enabled(void);
/* Switch it; returns the previous setting. */
int codec_set_by_value(int enabled);

/* ------------------------------------------------------------------ */
/* The type table (codec_types.c)                                      */
/*
 * Every type the codec writes with its own opcodes, except the scalars
 * that the encoder and decoder test inline on their hot paths (str, int,
 * float, None, bool: enc_obj_held and dec_obj), has one entry in
 * codec_types[].  The encoder (enc_other) takes the first entry whose
 * type test matches, the pickler's reducer_override (codec_reducer_
 * override) the first matching entry that has a reduce function, and the
 * decoder (dec_obj) finds the entry of each opcode.  The last entry, the
 * pickle fallback, matches every object.
 */

typedef struct encoder encoder;
typedef struct decoder decoder;

/* When an object gets a memo index (see codec_enc.c, "Memo"). */
typedef enum {
    /* Never memoized, and not a nesting level: singletons and plain
       values, written before the memo is looked at. */
    MEMO_NEVER,
    /* Immutable: memoized (when referenced more than once) but only
       usable once complete; a reference to it while it is being written
       is a cycle through an immutable object, which makes the encoder
       start over with pickle. */
    MEMO_AFTER,
    /* Mutable container: usable as soon as it exists (its decode
       function enters it in the memo before reading its items), so
       cycles through it round-trip. */
    MEMO_AT_ONCE,
} codec_memo;

typedef struct codec_type {
    const char *name;
    /* The type test: obj's type is exactly `exact` (a pointer compare),
       or, when exact is NULL, match(cs, obj) is true. */
    PyTypeObject *exact;
    int (*match)(codec_state *cs, PyObject *obj);
    /* The opcode it is written with, and any others its encode function
       may write instead (0 ends the list; OP_NONE is never one). */
    unsigned char op;
    unsigned char more_ops[3];
    codec_memo memo;
    /* Write obj; op is `op` above, with OP_MEMO set when obj gets the
       next memo index (functions that write another opcode keep that
       bit).  0, -1 with an exception, or ENC_RESTART. */
    int (*encode)(encoder *e, PyObject *obj, int op);
    /* Read the object of opcode op (the memo bit cleared); mi is its
       memo index or -1.  MEMO_AT_ONCE types fill d's memo slot mi as soon
       as the object exists; for the others the decoder does it after.
       New reference, or NULL with an exception. */
    PyObject *(*decode)(decoder *d, int op, Py_ssize_t mi);
    /* Inside an object the pickle fallback pickles: the reduction the
       pickler's reducer_override returns, or NULL when the entry has none
       (that type is pickled as the last entry's reduce says). */
    PyObject *(*reduce)(encoder *e, PyObject *obj);
} codec_type;

/* The table, most frequent types first; the last entry matches all. */
extern const codec_type codec_types[];

/* Does obj pass the type test of entry t? */
static inline int
codec_type_matches(const codec_type *t, codec_state *cs, PyObject *obj)
{
    return t->exact != NULL ? Py_IS_TYPE(obj, t->exact) : t->match(cs, obj);
}

/* The entry of obj (never NULL: the pickle fallback matches all). */
static inline const codec_type *
codec_type_of(codec_state *cs, PyObject *obj)
{
    const codec_type *t = codec_types;
    while (!codec_type_matches(t, cs, obj)) {
        t++;
    }
    return t;
}

/* The entry that writes each opcode (memo bit cleared), or NULL: built
 * once by codec_types_init, read without a lock. */
extern const codec_type *codec_types_by_op[OP_LAST + 1];

static inline const codec_type *
codec_type_of_op(unsigned int op)
{
    return op <= OP_LAST ? codec_types_by_op[op] : NULL;
}
/* Build the opcode index (once per process; codec_init). */
void codec_types_init(void);

/* The encode and decode functions of the entries (codec_enc.c and
 * codec_dec.c). */
#define ENC_RESTART (-3)     /* cycle through an immutable: use pickle */

int enc_dict(encoder *e, PyObject *obj, int op);
int enc_list(encoder *e, PyObject *obj, int op);
int enc_tuple(encoder *e, PyObject *obj, int op);
int enc_set(encoder *e, PyObject *obj, int op);
int enc_bytes(encoder *e, PyObject *obj, int op);
int enc_bytearray(encoder *e, PyObject *obj, int op);
int enc_buffer(encoder *e, PyObject *obj, int op);
int enc_function(encoder *e, PyObject *obj, int op);
int enc_range_slice(encoder *e, PyObject *obj, int op);
int enc_module(encoder *e, PyObject *obj, int op);
int enc_singleton(encoder *e, PyObject *obj, int op);
int enc_complex(encoder *e, PyObject *obj, int op);
int enc_handle(encoder *e, PyObject *obj, int op);
int enc_datetime(encoder *e, PyObject *obj, int op);
int enc_decimal(encoder *e, PyObject *obj, int op);
int enc_uuid(encoder *e, PyObject *obj, int op);
int enc_pickle(encoder *e, PyObject *obj, int op);

PyObject *dec_dict(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_list(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_tuple(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_set(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_bytes(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_buffer(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_function(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_range_slice(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_module(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_singleton(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_complex(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_handle(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_datetime(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_decimal(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_uuid(decoder *d, int op, Py_ssize_t mi);
PyObject *dec_pickle(decoder *d, int op, Py_ssize_t mi);

PyObject *reduce_function(encoder *e, PyObject *obj);
PyObject *reduce_handle(encoder *e, PyObject *obj);
PyObject *reduce_buffer(encoder *e, PyObject *obj);
PyObject *reduce_other(encoder *e, PyObject *obj);

/* The type tests that are not one exact type (codec_types.c uses them;
 * cs->types and the handle types are per interpreter). */
int is_handle(codec_state *cs, PyObject *obj);
/* RT_* of obj's type when it is exactly one of this interpreter's
 * classes of group RT_GROUP_* (importing nothing), else -1. */
int sender_type_kind(codec_state *cs, PyTypeObject *tp, int group);

/* ------------------------------------------------------------------ */
/* codec_enc.c                                                         */

typedef enum {
    ENC_CROSS = 0,           /* a message for codec_encode: may pin */
    ENC_DUMPS = 1,           /* dumps(): copy everything it can */
} enc_mode;

msg *codec_encode_mode(module_state *st, PyObject *obj, enc_mode mode);
/* dumps(obj): a new bytes object holding the message when it has no
 * references (written once, see "Pins" in codec_enc.c); when it has some,
 * NULL without an exception and *local gets the message.  NULL with an
 * exception on error. */
PyObject *codec_dumps(module_state *st, PyObject *obj, msg **local);

/* The encoder running in this thread (for the pickler's
 * reducer_override), or NULL. */
PyObject *codec_reducer_override(module_state *st, PyObject *obj);

/* ------------------------------------------------------------------ */
/* codec_dec.c                                                         */

/* Decode data[0:size) (a whole message, header included) with refs. */
PyObject *codec_decode_data(module_state *st, const char *data,
                            Py_ssize_t size, Py_ssize_t hdr_len,
                            const msg_ref *refs, Py_ssize_t nrefs,
                            int trusted);

/* The reference i of the message being decoded in this thread. */
PyObject *codec_decode_ref(module_state *st, Py_ssize_t i, int want,
                           PyObject *args);

/* ------------------------------------------------------------------ */
/* codec_buf.c: shared blobs, SharedBuffer, dumps tokens               */

struct blob;

int codec_buf_global_init(void);

/* Large destinations: a block of CODEC_HUGE_MIN bytes or more that a copy
 * is about to fill first asks for transparent huge pages (codec_mark_huge,
 * codec_buf.c).  Inline, so that the many small copies of a decode pay
 * one comparison. */
#define CODEC_HUGE_MIN ((Py_ssize_t)4 << 20)
void codec_mark_huge(void *p, Py_ssize_t n);

static inline void
codec_hint_huge(void *p, Py_ssize_t n)
{
    if (n >= CODEC_HUGE_MIN) {
        codec_mark_huge(p, n);
    }
}

/* A new bytes object (bytearray if array) holding a copy of src[0:n), or
 * with uninitialized data if src is NULL; *data (if not NULL) is set to
 * its data.  The same as PyBytes_FromStringAndSize otherwise. */
static inline PyObject *
codec_new_bytes(const void *src, Py_ssize_t n, int array, char **data)
{
    int whole = src != NULL && n < CODEC_HUGE_MIN;
    PyObject *res = array
        ? PyByteArray_FromStringAndSize(whole ? src : NULL, n)
        : PyBytes_FromStringAndSize(whole ? src : NULL, n);
    if (res == NULL) {
        return NULL;
    }
    char *dst = array ? PyByteArray_AS_STRING(res) : PyBytes_AS_STRING(res);
    if (!whole) {
        codec_hint_huge(dst, n);
        if (src != NULL) {
            memcpy(dst, src, (size_t)n);
        }
    }
    if (data != NULL) {
        *data = dst;
    }
    return res;
}

/* Pin an exported buffer of the current interpreter (view is moved into
 * the blob, which releases it in this interpreter).  New blob with one
 * reference, or NULL with MemoryError. */
blob *blob_pin_buffer(Py_buffer *view, int writable);
/* Pin obj (bytes or str, immutable) whose data is data[0:len). */
blob *blob_pin_object(PyObject *obj, const void *data, Py_ssize_t len);
/* A blob owning a raw copy of data[0:len). */
blob *blob_raw_copy(const void *data, Py_ssize_t len, int writable);
void blob_incref(blob *b);
void blob_decref(blob *b);   /* any thread, no GIL needed */
Py_ssize_t blob_len(const blob *b);
int blob_writable(const blob *b);
/* Copy len bytes at offset of b into dst, safely against the owner
 * closing meanwhile.  GIL of the current interpreter held. */
void blob_read(blob *b, Py_ssize_t offset, Py_ssize_t len, void *dst);
/* May the caller hand out b's memory writable?  Always for pinned
 * memory (share(writable=True)); for a raw private copy (out-of-band
 * pickle buffers) only the first caller: 1 yes, 0 copy instead. */
int blob_claim(blob *b);

/* Release pins whose last reference went while this interpreter was not
 * running codec code.  Cheap when nothing is pending. */
void codec_drain_pending(void);
/* Runs inside an interpreter about to be destroyed. */
void codec_interp_closing(void);

/* The SharedBuffer type (share() result; also the exporter behind the
 * memoryviews a receiver gets). */
int codec_buf_types_init(PyObject *mod, codec_state *cs);

/* Element format and shape a zero-copy view keeps ("" = flat bytes). */
typedef struct {
    char fmt[4];
    int ndim;
    Py_ssize_t shape[CODEC_MAX_NDIM];
} buf_layout;

/* The layout of a view, or of its C-contiguous copy when it is not
 * contiguous; formats memoryview.cast() cannot restore, deeper shapes and
 * empty multi-dimensional shapes become flat bytes. */
void buf_layout_from_view(const Py_buffer *view, buf_layout *lay);
/* Item size of a format a view may carry (a native single-character
 * format, optionally after '@'), or -1. */
Py_ssize_t buf_fmt_itemsize(const char *fmt, Py_ssize_t n);

PyObject *sharedbuf_new(codec_state *cs, blob *b, Py_ssize_t offset,
                        Py_ssize_t len, int readonly,
                        const buf_layout *lay);
/* The blob behind obj when obj is a SharedBuffer (mv NULL: its offset,
 * flags and layout), or when mv is the buffer of a memoryview over one
 * (its offset in the blob); NULL otherwise. */
blob *sharedbuf_blob(codec_state *cs, PyObject *obj, const Py_buffer *mv,
                     Py_ssize_t *offset, int *readonly, buf_layout *lay);
PyObject *coremod_share(PyObject *mod, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames);

/* dumps() tokens: a message with references stays loadable while the
 * bytes object dumps() returned is alive. */
uint64_t codec_process_nonce(void);
int token_register(msg *m, uint64_t *token);   /* takes m */
void token_unregister(uint64_t token);
/* Find the message of a token (NULL if gone); pins it until unpin. */
msg *token_pin(uint64_t token);
void token_unpin(msg *m);

/* Counters for tests (codec_debug). */
typedef struct {
    Py_ssize_t live_blobs;
    Py_ssize_t pending;
    Py_ssize_t leaked;
    Py_ssize_t tokens;
    Py_ssize_t owners;
} codec_counters;
void codec_get_counters(codec_counters *c);

/* ------------------------------------------------------------------ */
/* little helpers                                                      */

/* getattr that reports a missing attribute as 0 without an exception
 * (PyObject_GetOptionalAttr is new in 3.13). */
static inline int
codec_getattr_opt(PyObject *obj, PyObject *name, PyObject **res)
{
#if PY_VERSION_HEX >= 0x030D0000
    return PyObject_GetOptionalAttr(obj, name, res);
#else
    *res = PyObject_GetAttr(obj, name);
    if (*res != NULL) {
        return 1;
    }
    if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        return 0;
    }
    return -1;
#endif
}

static inline void
put_le64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (char)(v >> (8 * i));
    }
}

static inline uint64_t
get_le64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)(unsigned char)p[i] << (8 * i);
    }
    return v;
}

#endif /* SUBINTERP_CODEC_IMPL_H */
