/* codec_types.c - the codec's type table: which types it writes with its
 * own opcodes, how it tests for them, and what encodes, decodes and
 * reduces each (codec_impl.h describes the fields).
 *
 * Adding a type is one entry here plus its encode function (codec_enc.c)
 * and its decode function (codec_dec.c); docs/codec.md, "Adding a type",
 * says how.
 *
 * Order.  The encoder tries the entries from the top, so the types most
 * common in payloads come first, and the exact-type entries (one pointer
 * compare each) before the per-interpreter tests.  The entries' types
 * are disjoint, except for the last one, the pickle fallback, which
 * matches everything the others do not.
 */
#include "codec_impl.h"

#include <pthread.h>

static int
match_buffer(codec_state *cs, PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    return tp == &PyMemoryView_Type || tp == cs->SharedBufferType;
}

/* Functions and classes cross by reference (or as code, or by value). */
static int
match_function(codec_state *Py_UNUSED(cs), PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    return tp == &PyFunction_Type || tp == &PyCFunction_Type ||
           PyType_Check(obj);
}

static int
match_module(codec_state *Py_UNUSED(cs), PyObject *obj)
{
    return PyModule_CheckExact(obj);
}

static int
match_notimplemented(codec_state *Py_UNUSED(cs), PyObject *obj)
{
    return obj == Py_NotImplemented;
}

static int
match_datetime(codec_state *cs, PyObject *obj)
{
    return sender_type_kind(cs, Py_TYPE(obj), RT_GROUP_DATETIME) >= 0;
}

static int
match_decimal(codec_state *cs, PyObject *obj)
{
    return sender_type_kind(cs, Py_TYPE(obj), RT_GROUP_DECIMAL) ==
           RT_DECIMAL;
}

/* uuid.SafeUUID (an enum) is pickled. */
static int
match_uuid(codec_state *cs, PyObject *obj)
{
    return sender_type_kind(cs, Py_TYPE(obj), RT_GROUP_UUID) == RT_UUID;
}

static int
match_any(codec_state *Py_UNUSED(cs), PyObject *Py_UNUSED(obj))
{
    return 1;
}

const codec_type codec_types[] = {
    {"dict", &PyDict_Type, NULL, OP_DICT, {OP_DICT_SHAPE}, MEMO_AT_ONCE,
     enc_dict, dec_dict, NULL},
    {"list", &PyList_Type, NULL, OP_LIST, {0}, MEMO_AT_ONCE,
     enc_list, dec_list, NULL},
    {"tuple", &PyTuple_Type, NULL, OP_TUPLE, {0}, MEMO_AFTER,
     enc_tuple, dec_tuple, NULL},
    /* 64 KiB and more: pinned (OP_BYTES_PIN) */
    {"bytes", &PyBytes_Type, NULL, OP_BYTES, {OP_BYTES_PIN}, MEMO_AFTER,
     enc_bytes, dec_bytes, NULL},
    {"set", &PySet_Type, NULL, OP_SET, {0}, MEMO_AT_ONCE,
     enc_set, dec_set, NULL},
    {"frozenset", &PyFrozenSet_Type, NULL, OP_FROZENSET, {0}, MEMO_AFTER,
     enc_set, dec_set, NULL},
    /* mutable, but holds no objects: nothing can refer back to it */
    {"bytearray", &PyByteArray_Type, NULL, OP_BYTEARRAY, {0}, MEMO_AFTER,
     enc_bytearray, dec_bytes, NULL},
    /* memoryview and SharedBuffer: zero-copy */
    {"buffer", NULL, match_buffer, OP_BUFFER, {0}, MEMO_AFTER,
     enc_buffer, dec_buffer, reduce_buffer},
    /* by reference, of the main script, or as code (else pickle, which
       may send it by value) */
    {"function", NULL, match_function, OP_GLOBAL,
     {OP_MAIN_GLOBAL, OP_CODE_FUNC}, MEMO_AFTER,
     enc_function, dec_function, reduce_function},
    {"range", &PyRange_Type, NULL, OP_RANGE, {0}, MEMO_AFTER,
     enc_range_slice, dec_range_slice, NULL},
    {"slice", &PySlice_Type, NULL, OP_SLICE, {0}, MEMO_AFTER,
     enc_range_slice, dec_range_slice, NULL},
    {"module", NULL, match_module, OP_MODULE, {0}, MEMO_AFTER,
     enc_module, dec_module, NULL},
    {"complex", &PyComplex_Type, NULL, OP_COMPLEX, {0}, MEMO_NEVER,
     enc_complex, dec_complex, NULL},
    {"Ellipsis", &PyEllipsis_Type, NULL, OP_ELLIPSIS, {0}, MEMO_NEVER,
     enc_singleton, dec_singleton, NULL},
    {"NotImplemented", NULL, match_notimplemented, OP_NOTIMPLEMENTED, {0},
     MEMO_NEVER, enc_singleton, dec_singleton, NULL},
    /* Interpreter, Queue, Lock, ... */
    {"handle", NULL, is_handle, OP_HANDLE, {0}, MEMO_AFTER,
     enc_handle, dec_handle, reduce_handle},
    /* by value, rebuilt with the receiver's own classes */
    {"datetime", NULL, match_datetime, OP_DATETIME, {0}, MEMO_AFTER,
     enc_datetime, dec_datetime, NULL},
    {"Decimal", NULL, match_decimal, OP_DECIMAL, {0}, MEMO_AFTER,
     enc_decimal, dec_decimal, NULL},
    {"UUID", NULL, match_uuid, OP_UUID, {0}, MEMO_AFTER,
     enc_uuid, dec_uuid, NULL},
    /* everything else; must stay last */
    {"pickle", NULL, match_any, OP_PICKLE, {0}, MEMO_AFTER,
     enc_pickle, dec_pickle, reduce_other},
};

#define NTYPES ((int)(sizeof(codec_types) / sizeof(codec_types[0])))

/* ------------------------------------------------------------------ */
/* opcode -> entry                                                     */

/* Written once (pthread_once), before any decode: read without a lock. */
const codec_type *codec_types_by_op[OP_LAST + 1];
static pthread_once_t by_op_once = PTHREAD_ONCE_INIT;

static void
by_op_add(int op, const codec_type *t)
{
    INVARIANT(op > 0 && op <= OP_LAST, "opcode out of range");
    INVARIANT(codec_types_by_op[op] == NULL, "two entries of the type "
              "table share an opcode");
    codec_types_by_op[op] = t;
}

static void
by_op_build(void)
{
    for (int i = 0; i < NTYPES; i++) {
        const codec_type *t = &codec_types[i];
        INVARIANT((t->exact != NULL) != (t->match != NULL),
                  "a type table entry has one type test");
        INVARIANT((i == NTYPES - 1) == (t->match == match_any),
                  "the pickle fallback is the last entry");
        by_op_add(t->op, t);
        for (size_t k = 0; k < sizeof(t->more_ops) && t->more_ops[k]; k++) {
            by_op_add(t->more_ops[k], t);
        }
    }
}

void
codec_types_init(void)
{
    pthread_once(&by_op_once, by_op_build);
}
