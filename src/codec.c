/* codec.c - cross-interpreter data: object graph <-> message.
 *
 * Design
 * ======
 *
 * A Python object belongs to one interpreter and never crosses.  What
 * crosses is a message (struct msg): bytes in raw memory that any
 * interpreter can read, plus counted references to the few process-wide
 * C objects a message may carry (handles of queues, interpreters, locks;
 * blobs of zero-copy buffers).  The sender encodes its objects into a
 * message while holding its own GIL; the receiver decodes the message
 * into new objects while holding its own.  msg_free() works in any
 * thread, with or without a GIL, because a message holds no PyObject.
 *
 *     sender interpreter            process                receiver
 *     ------------------            -------                --------
 *     objects --codec_encode--> [ header | body | pickle ] --codec_decode-->
 *                                 refs[]: handles, blobs      new objects
 *                                    |
 *                                    +--> blob: pinned memory of the sender
 *                                         (memoryview, share(), big bytes)
 *
 * The body is a pre-order stream of one-byte opcodes (codec_impl.h has
 * the table) with varint lengths.  Exact built-in types are encoded
 * natively: ints as zigzag varints (one byte for -64..63), floats as 8
 * bytes, str as its own internal representation (kind + code units, no
 * UTF-8 round trip), containers as a count followed by their items.
 * Subclasses and every other type go through pickle protocol 5 (see
 * codec_enc.c), so anything picklable can cross; functions and classes
 * cross by reference, like pickle does, with two additions: functions of
 * the main script (receivers import the script as __mp_main__, like
 * multiprocessing's spawn start method, so the `if __name__ ==
 * "__main__":` guard holds), and functions that need no state (no
 * closure, no globals but builtins) cross as marshalled code.
 *
 * Why it is faster than pickle (bench/bench_codec.py has the numbers):
 * one pass with pointer-compare type dispatch; no memo work for objects
 * that have one reference (most values); no UTF-8 encoding or decoding
 * of str; dicts that repeat the previous dict's keys are rebuilt by
 * copying it (no hashing, no resizes); bytes of 64 KiB and more are not
 * copied into the message at all (the receiver makes the only copy).
 *
 * Which types have opcodes, and what writes and reads each: the type
 * table, codec_types.c.  Memo and cycles: codec_enc.c.  Hostile input:
 * codec_dec.c.  Functions and classes by reference, both sides:
 * codec_ref.c.  Zero-copy buffers, their lifetimes and what happens when
 * an owner closes: codec_buf.c.
 *
 * Process-local messages.  A message with references (handles, blobs)
 * only means something in the process that made it.  dumps() of such a
 * message returns a bytes subclass (Message) whose header carries this
 * process's nonce and pid and a token; the references stay in a
 * process-wide table for as long as that Message object lives, and
 * loads() finds them by token - or raises ValueError when the bytes came
 * from another process or the Message is gone.  Messages without
 * references are plain, portable bytes (between processes running the
 * same Python version).
 *
 * datetime, Decimal, UUID.  Exact instances of the classes the sending
 * interpreter's own `datetime`, `decimal` and `uuid` modules define are
 * encoded by value (their compact pickle state), and rebuilt with the
 * classes of the receiver's modules.  On 3.12 `_datetime` and `_decimal`
 * cannot be imported in an isolated interpreter; there `import datetime`
 * gives the pure-Python implementation, and that is what such a
 * receiver gets: equal values, of the receiver's own classes.
 *
 * Limits: nesting deeper than CODEC_MAX_DEPTH (1000) raises ValueError
 * at either end; a message holds at most 2**32 memoized objects.
 */
#include "codec_impl.h"

#include <stdarg.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* messages                                                            */

void
refs_release(msg_ref *refs, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (refs[i].what == REF_HANDLE) {
            refs[i].kind->decref(refs[i].ptr);
        }
        else {
            blob_decref((blob *)refs[i].ptr);
        }
    }
}

void
msg_free(msg *m)
{
    if (m == NULL) {
        return;
    }
    refs_release(m->refs, m->nrefs);
    PyMem_RawFree(m->refs);
    msg_free_data(m);
    PyMem_RawFree(m);
}

void
msg_free_data(msg *m)
{
    /* a small message's data is in the struct's block (enc_take_msg) */
    if (m->data != (char *)(m + 1)) {
        PyMem_RawFree(m->data);
    }
    m->data = NULL;
    m->size = 0;
}

Py_ssize_t
msg_count_refs(const msg *m, const void *ref)
{
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < m->nrefs; i++) {
        n += m->refs[i].what == REF_HANDLE && m->refs[i].ptr == ref;
    }
    return n;
}

Py_ssize_t
msg_size(const msg *m)
{
    return m->size;
}

int
codec_grow_ptrs_to(PyObject ***arr, Py_ssize_t *cap, Py_ssize_t need)
{
    Py_ssize_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > PY_SSIZE_T_MAX / 2 / (Py_ssize_t)sizeof(PyObject *)) {
            PyErr_NoMemory();
            return -1;
        }
        ncap *= 2;
    }
    PyObject **na = PyMem_Realloc(*arr, (size_t)ncap * sizeof(PyObject *));
    if (na == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *arr = na;
    *cap = ncap;
    return 0;
}

PyObject *
codec_corrupt(codec_state *cs, const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    PyObject *text = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    if (text != NULL) {
        PyErr_Format(cs->CorruptMessageError, "corrupt message: %U", text);
        Py_DECREF(text);
    }
    return NULL;
}

PyObject *
codec_helpers(codec_state *cs)
{
    if (cs->helpers == NULL) {
        cs->helpers = PyImport_ImportModule("subinterp._codec");
    }
    return cs->helpers;
}

/* ------------------------------------------------------------------ */
/* datetime, Decimal, UUID classes                                     */

static const struct {
    int group;
    const char *module;
    const char *name;
} known_types[RT_N] = {
    {RT_GROUP_DATETIME, "datetime", "date"},
    {RT_GROUP_DATETIME, "datetime", "time"},
    {RT_GROUP_DATETIME, "datetime", "datetime"},
    {RT_GROUP_DATETIME, "datetime", "timedelta"},
    {RT_GROUP_DATETIME, "datetime", "timezone"},
    {RT_GROUP_DECIMAL, "decimal", "Decimal"},
    {RT_GROUP_UUID, "uuid", "UUID"},
    {RT_GROUP_UUID, "uuid", "SafeUUID"},
};

/* Fill the classes of one group from mod.  0 or -1. */
static int
load_group(codec_state *cs, int group, PyObject *mod)
{
    for (int k = 0; k < RT_N; k++) {
        if (known_types[k].group != group) {
            continue;
        }
        PyObject *t = PyObject_GetAttrString(mod, known_types[k].name);
        if (t == NULL) {
            return -1;
        }
        Py_XSETREF(cs->types[k], t);
    }
    cs->types_loaded |= 1 << group;
    return 0;
}

/* Fill the classes of a group from its module if this interpreter has
 * already imported it (never imports anything: no instance can exist
 * before). */
static void
lookup_sender_group(codec_state *cs, int group)
{
    const char *name = NULL;
    for (int k = 0; k < RT_N; k++) {
        if (known_types[k].group == group) {
            name = known_types[k].module;
            break;
        }
    }
    PyObject *modname = PyUnicode_FromString(name);
    PyObject *mod = modname ? PyImport_GetModule(modname) : NULL;
    Py_XDECREF(modname);
    if (mod != NULL) {
        (void)load_group(cs, group, mod);
        Py_DECREF(mod);
    }
    PyErr_Clear();
}

int
sender_type_kind(codec_state *cs, PyTypeObject *tp, int group)
{
    if (!(cs->types_loaded & (1 << group))) {
        lookup_sender_group(cs, group);
    }
    for (int k = 0; k < RT_N; k++) {
        if (known_types[k].group == group &&
            (PyObject *)tp == cs->types[k]) {
            return k;
        }
    }
    return -1;
}

PyObject *
codec_recv_type(codec_state *cs, int which)
{
    if (cs->types[which] != NULL) {
        return cs->types[which];
    }
    int group = known_types[which].group;
    PyObject *mod = PyImport_ImportModule(known_types[which].module);
    if (mod == NULL || load_group(cs, group, mod) < 0) {
        Py_XDECREF(mod);
        PyObject *exc = PyErr_GetRaisedException();
        PyErr_Format(PyExc_ImportError,
                     "cannot rebuild a %s.%s sent by another interpreter: "
                     "module %s cannot be imported in this interpreter",
                     known_types[which].module, known_types[which].name,
                     known_types[which].module);
        raise_from(exc);
        return NULL;
    }
    Py_DECREF(mod);
    return cs->types[which];
}

/* ------------------------------------------------------------------ */
/* notes on exceptions (objects that could not cross, or be rebuilt)   */

void
exc_add_note(PyObject *exc, PyObject *note)
{
    PyObject *raised = PyErr_GetRaisedException();
    PyObject *res = PyObject_CallMethod(exc, "add_note", "O", note);
    if (res == NULL) {
        PyErr_Clear();
    }
    Py_XDECREF(res);
    PyErr_SetRaisedException(raised);
}

/* ------------------------------------------------------------------ */
/* dumps() output: Message, a bytes subclass                           */

static void
message_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    const char *p = PyBytes_AS_STRING(self);
    if (PyBytes_GET_SIZE(self) >= MSG_LOCAL_HEADER &&
        (p[4] & MSGF_LOCAL)) {
        token_unregister(get_le64(p + 40));
    }
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyType_Slot message_slots[] = {
    {Py_tp_dealloc, message_dealloc},
    {Py_tp_doc,
     "What subinterp.dumps() returns for objects holding handles or "
     "shared buffers: bytes that keep those alive, and that loads() "
     "accepts only in this process while this object exists."},
    {0, NULL},
};

static PyType_Spec message_spec = {
    .name = "subinterp.Message",
    .basicsize = 0,
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = message_slots,
};

static PyObject *
dumps_local(codec_state *cs, msg *m)
{
    PyObject *plain = NULL, *args = NULL, *res = NULL;
    uint64_t token;
    Py_ssize_t body = m->size - MSG_HEADER;
    char *p;
    plain = codec_new_bytes(NULL, MSG_LOCAL_HEADER + body, 0, &p);
    if (plain == NULL) {
        msg_free(m);
        return NULL;
    }
    memcpy(p, m->data, MSG_HEADER);
    p[4] |= MSGF_LOCAL;
    memcpy(p + MSG_LOCAL_HEADER, m->data + MSG_HEADER, (size_t)body);
    /* the table keeps the references, not the bytes */
    msg_free_data(m);
    if (token_register(m, &token) < 0) {
        goto done;
    }
    put_le64(p + 24, codec_process_nonce());
    put_le64(p + 32, (uint64_t)getpid());
    put_le64(p + 40, token);
    args = PyTuple_Pack(1, plain);
    if (args == NULL) {
        token_unregister(token);
        goto done;
    }
    /* bytes.__new__ of the subclass (which users cannot call) */
    res = PyBytes_Type.tp_new(cs->MessageType, args, NULL);
    if (res == NULL) {
        token_unregister(token);
    }
done:
    Py_XDECREF(plain);
    Py_XDECREF(args);
    return res;
}

/* What the functions below do with the message obj encodes to; one that
 * takes the message sets *m to NULL. */
typedef PyObject *(*msg_use)(module_state *st, msg **m);

/* Encode obj (mode), hand the message to use, and free it. */
static PyObject *
with_message(PyObject *mod, PyObject *obj, enc_mode mode, msg_use use)
{
    module_state *st = get_mod_state(mod);
    msg *m = codec_encode_mode(st, obj, mode);
    if (m == NULL) {
        return NULL;
    }
    PyObject *res = use(st, &m);
    msg_free(m);
    return res;
}

/* dumps(obj, /) */
static PyObject *
coremod_dumps(PyObject *mod, PyObject *obj)
{
    module_state *st = get_mod_state(mod);
    msg *local = NULL;
    PyObject *res = codec_dumps(st, obj, &local);
    if (local != NULL) {
        res = dumps_local(codec_get(st), local);
    }
    return res;
}

/* loads(data, /, *, trusted=True) */
static PyObject *
coremod_loads(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"", "trusted", NULL};
    module_state *st = get_mod_state(mod);
    codec_state *cs = codec_get(st);
    Py_buffer view;
    int trusted = 1;
    PyObject *res = NULL;
    msg *m = NULL;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|$p:loads", kwlist,
                                     &view, &trusted)) {
        return NULL;
    }
    const char *p = view.buf;
    Py_ssize_t n = view.len;
    codec_drain_pending();
    if (n >= MSG_HEADER && p[0] == MSG_MAGIC0 && p[1] == MSG_MAGIC1 &&
        p[2] == MSG_MAGIC2 && (p[4] & MSGF_LOCAL)) {
        if (n < MSG_LOCAL_HEADER) {
            codec_corrupt(cs, "truncated header");
            goto done;
        }
        if (get_le64(p + 24) != codec_process_nonce() ||
            get_le64(p + 32) != (uint64_t)getpid()) {
            PyErr_SetString(PyExc_ValueError,
                            "this message holds handles or shared buffers "
                            "of another process (or of the parent of a "
                            "fork); such messages can only be loaded in "
                            "the process that made them");
            goto done;
        }
        m = token_pin(get_le64(p + 40));
        if (m == NULL) {
            PyErr_SetString(PyExc_ValueError,
                            "the handles and shared buffers of this "
                            "message were released: the object dumps() "
                            "returned was garbage-collected; keep it alive "
                            "until loads()");
            goto done;
        }
        res = codec_decode_data(st, p, n, MSG_LOCAL_HEADER, m->refs,
                                m->nrefs, trusted);
        token_unpin(m);
    }
    else {
        res = codec_decode_data(st, p, n, MSG_HEADER, NULL, 0, trusted);
    }
done:
    PyBuffer_Release(&view);
    codec_drain_pending();
    return res;
}

static PyObject *
drop_message(module_state *Py_UNUSED(st), msg **Py_UNUSED(m))
{
    Py_RETURN_TRUE;
}

/* is_shareable(obj, /) */
static PyObject *
coremod_is_shareable(PyObject *mod, PyObject *obj)
{
    PyObject *res = with_message(mod, obj, ENC_CROSS, drop_message);
    if (res == NULL &&
        (PyErr_ExceptionMatches(get_mod_state(mod)->NotShareableError) ||
         PyErr_ExceptionMatches(PyExc_ValueError))) {
        PyErr_Clear();
        Py_RETURN_FALSE;
    }
    return res;
}

static PyObject *
decode_message(module_state *st, msg **m)
{
    return codec_decode(st, *m);
}

/* _roundtrip(obj, /): what crossing does, in one interpreter */
static PyObject *
coremod_roundtrip(PyObject *mod, PyObject *obj)
{
    return with_message(mod, obj, ENC_CROSS, decode_message);
}

static PyObject *
size_message(module_state *Py_UNUSED(st), msg **m)
{
    return Py_BuildValue("(nn)", msg_size(*m), (*m)->nrefs);
}

/* _message_size(obj, /) */
static PyObject *
coremod_message_size(PyObject *mod, PyObject *obj)
{
    return with_message(mod, obj, ENC_CROSS, size_message);
}

static PyObject *
coremod_codec_debug(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    codec_counters c;
    codec_drain_pending();
    codec_get_counters(&c);
    return Py_BuildValue("{snsnsnsnsn}", "live_blobs", c.live_blobs,
                         "pending", c.pending, "leaked", c.leaked,
                         "tokens", c.tokens, "owners", c.owners);
}

static PyObject *
coremod_reducer_override(PyObject *mod, PyObject *obj)
{
    return codec_reducer_override(get_mod_state(mod), obj);
}

/* _set_functions_by_value(enabled, /) */
static PyObject *
coremod_set_functions_by_value(PyObject *Py_UNUSED(mod), PyObject *arg)
{
    int enabled = PyObject_IsTrue(arg);
    if (enabled < 0) {
        return NULL;
    }
    return PyBool_FromLong(codec_set_by_value(enabled));
}

/* _main_ref(path, spec, qualname) */
static PyObject *
coremod_main_ref(PyObject *mod, PyObject *args)
{
    PyObject *path, *spec, *qualname;
    if (!PyArg_ParseTuple(args, "OOU:_main_ref", &path, &spec, &qualname)) {
        return NULL;
    }
    return codec_resolve_main(codec_get(get_mod_state(mod)), path, spec,
                              qualname);
}

/* _code_func(modname, code, defaults, kwdefaults) */
static PyObject *
coremod_code_func(PyObject *mod, PyObject *args)
{
    PyObject *modname, *code, *defaults, *kwdefaults;
    if (!PyArg_ParseTuple(args, "OSOO:_code_func", &modname, &code,
                          &defaults, &kwdefaults)) {
        return NULL;
    }
    if ((modname != Py_None && !PyUnicode_Check(modname)) ||
        (defaults != Py_None && !PyTuple_Check(defaults)) ||
        (kwdefaults != Py_None && !PyDict_Check(kwdefaults))) {
        PyErr_SetString(PyExc_TypeError, "_code_func: bad arguments");
        return NULL;
    }
    return codec_make_code_func(codec_get(get_mod_state(mod)), modname,
                                code, defaults, kwdefaults);
}

/* _handle_ref(i) */
static PyObject *
coremod_handle_ref(PyObject *mod, PyObject *arg)
{
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return codec_decode_ref(get_mod_state(mod), i, REF_HANDLE, NULL);
}

/* _buffer_ref(i, offset, nbytes, readonly, fmt, shape) */
static PyObject *
coremod_buffer_ref(PyObject *mod, PyObject *args)
{
    if (!PyTuple_Check(args) || PyTuple_GET_SIZE(args) != 6) {
        PyErr_SetString(PyExc_TypeError, "_buffer_ref takes 6 arguments");
        return NULL;
    }
    Py_ssize_t i = PyLong_AsSsize_t(PyTuple_GET_ITEM(args, 0));
    if (i == -1 && PyErr_Occurred()) {
        return NULL;
    }
    PyObject *rest = PyTuple_GetSlice(args, 1, 6);
    if (rest == NULL) {
        return NULL;
    }
    PyObject *res = codec_decode_ref(get_mod_state(mod), i, REF_BLOB, rest);
    Py_DECREF(rest);
    return res;
}

static PyMethodDef codec_methods[] = {
    {"dumps", coremod_dumps, METH_O,
     "dumps(obj, /)\n--\n\n"
     "Encode obj as subinterp sends it to another interpreter.\n\n"
     "The result is bytes.  If obj holds handles (interpreters, queues, "
     "...) or zero-copy buffers (memoryview, share()), the result is a "
     "Message, a bytes subclass that only loads() in this process, and "
     "only while that Message object is alive."},
    {"loads", _PyCFunction_CAST(coremod_loads), METH_VARARGS | METH_KEYWORDS,
     "loads(data, /, *, trusted=True)\n--\n\n"
     "Decode what dumps() returned.\n\n"
     "Corrupt or truncated data raises CorruptMessageError (a "
     "ValueError).  Messages may hold pickled objects, functions sent as "
     "code and references to modules: for data from outside the program, "
     "pass trusted=False, which refuses those (unpickling untrusted data "
     "runs arbitrary code, as with pickle.loads)."},
    {"is_shareable", coremod_is_shareable, METH_O,
     "is_shareable(obj, /)\n--\n\n"
     "True if obj can be sent to another interpreter (it tries to encode "
     "it: objects that need pickle are pickled)."},
    {"share", _PyCFunction_CAST(coremod_share), METH_FASTCALL | METH_KEYWORDS,
     "share(obj, /, *, writable=False)\n--\n\n"
     "Wrap a buffer so that it crosses to other interpreters without "
     "being copied.\n\n"
     "Receivers get a memoryview on the same memory, read-only unless "
     "writable=True (which needs a writable, C-contiguous buffer; then "
     "writes from any interpreter are visible to all, and synchronizing "
     "them is up to you).  obj stays pinned (it cannot be resized) until "
     "every view of it is gone."},
    {"_roundtrip", coremod_roundtrip, METH_O,
     "_roundtrip(obj, /)\n--\n\n"
     "Encode and decode obj as a crossing would (tests, benchmarks)."},
    {"_message_size", coremod_message_size, METH_O,
     "_message_size(obj, /)\n--\n\n"
     "(bytes, references) of the message obj encodes to."},
    {"_codec_debug", coremod_codec_debug, METH_NOARGS,
     "_codec_debug()\n--\n\nCounters of the codec's process-wide state."},
    {"_reducer_override", coremod_reducer_override, METH_O,
     "_reducer_override(obj, /)\n--\n\n"
     "reducer_override of the codec's pickler."},
    {"_set_functions_by_value", coremod_set_functions_by_value, METH_O,
     "_set_functions_by_value(enabled, /)\n--\n\n"
     "Switch sending functions by value (subinterp.set_functions_by_value); "
     "returns the previous setting."},
    {"_main_ref", coremod_main_ref, METH_VARARGS,
     "_main_ref(path, spec, qualname)\n--\n\n"
     "Find an object of the main script (pickle reconstructor)."},
    {"_code_func", coremod_code_func, METH_VARARGS,
     "_code_func(modname, code, defaults, kwdefaults)\n--\n\n"
     "Rebuild a function sent as code (pickle reconstructor)."},
    {"_handle_ref", coremod_handle_ref, METH_O,
     "_handle_ref(i)\n--\n\nA handle of the message being decoded."},
    {"_buffer_ref", coremod_buffer_ref, METH_VARARGS,
     "_buffer_ref(i, offset, nbytes, readonly, fmt, shape)\n--\n\n"
     "A buffer of the message being decoded."},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------ */
/* handles                                                             */

int
codec_register_handle_type(module_state *st, PyTypeObject *tp)
{
    codec_state *cs = codec_get(st);
    if (cs == NULL) {
        PyErr_SetString(PyExc_SystemError,
                        "codec_register_handle_type before codec_init");
        return -1;
    }
    for (int i = 0; i < cs->nhandle_types; i++) {
        if (cs->handle_types[i] == tp) {
            return 0;
        }
    }
    if (cs->nhandle_types >= CODEC_MAX_HANDLE_TYPES) {
        PyErr_SetString(PyExc_SystemError, "too many handle types");
        return -1;
    }
    cs->handle_types[cs->nhandle_types++] = (PyTypeObject *)Py_NewRef(tp);
    return 0;
}

/* ------------------------------------------------------------------ */
/* CPython 3.12.0-3.12.3: gh-119213                                    */
/*
 * Argument Clinic functions of extension modules (such as
 * _pickle.Pickler.__init__) build the tuple of their keyword names the
 * first time they are called with keywords, in whichever interpreter
 * does so, and keep it in a static for the life of the process.  Made in
 * a subinterpreter, it is freed by the wrong allocator later and the
 * process crashes at exit.  The fix (3.12.4) builds it in the main
 * interpreter.  On older 3.12 we make those first calls ourselves, from
 * the main interpreter, when it imports us; until that has happened (a
 * process whose main interpreter never imported subinterp) the pickle
 * fallback avoids keywords: no out-of-band buffers.
 */

static atomic_int pickle_kw_ok;

int
codec_pickle_kw_ok(void)
{
    return atomic_load(&pickle_kw_ok);
}

static void
pickle_kw_warm_up(void)
{
    if (Py_Version >= 0x030C04F0) {
        atomic_store(&pickle_kw_ok, 1);
        return;
    }
    if (PyInterpreterState_Get() != PyInterpreterState_Main() ||
        atomic_load(&pickle_kw_ok)) {
        return;
    }
    PyObject *pickle = PyImport_ImportModule("_pickle");
    PyObject *io = PyImport_ImportModule("io");
    PyObject *file = NULL, *args = NULL, *kw = NULL, *r1 = NULL, *r2 = NULL;
    if (pickle == NULL || io == NULL) {
        goto done;
    }
    file = PyObject_CallMethod(io, "BytesIO", NULL);
    args = file ? PyTuple_Pack(1, file) : NULL;
    kw = args ? Py_BuildValue("{sOsO}", "buffer_callback", Py_None,
                              "fix_imports", Py_True) : NULL;
    if (kw == NULL) {
        goto done;
    }
    PyObject *cls = PyObject_GetAttrString(pickle, "Pickler");
    if (cls != NULL) {
        r1 = PyObject_Call(cls, args, kw);
        Py_DECREF(cls);
    }
    Py_CLEAR(kw);
    kw = Py_BuildValue("{sOsO}", "buffers", Py_None, "fix_imports",
                       Py_True);
    cls = kw ? PyObject_GetAttrString(pickle, "Unpickler") : NULL;
    if (cls != NULL) {
        r2 = PyObject_Call(cls, args, kw);
        Py_DECREF(cls);
    }
    if (r1 != NULL && r2 != NULL) {
        atomic_store(&pickle_kw_ok, 1);
    }
done:
    PyErr_Clear();
    Py_XDECREF(pickle);
    Py_XDECREF(io);
    Py_XDECREF(file);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    Py_XDECREF(r1);
    Py_XDECREF(r2);
}

/* ------------------------------------------------------------------ */
/* init, GC                                                            */

static atomic_int closing_hook_added;

static int
intern(PyObject **slot, const char *s)
{
    *slot = PyUnicode_InternFromString(s);
    return *slot == NULL ? -1 : 0;
}

static int
fn_attr(PyObject *mod, PyObject **slot, const char *name)
{
    *slot = PyObject_GetAttrString(mod, name);
    return *slot == NULL ? -1 : 0;
}

int
codec_init(PyObject *mod, module_state *st)
{
    codec_state *cs = PyMem_Calloc(1, sizeof(codec_state));
    if (cs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    st->codec = cs;
    if (codec_buf_global_init() < 0) {
        return -1;
    }
    codec_types_init();
    if (!atomic_exchange(&closing_hook_added, 1) &&
        runtime_add_closing_hook(codec_interp_closing) < 0) {
        return -1;
    }
    pickle_kw_warm_up();
    if (intern(&cs->s_module, "__module__") < 0 ||
        intern(&cs->s_qualname, "__qualname__") < 0 ||
        intern(&cs->s_file, "__file__") < 0 ||
        intern(&cs->s_spec, "__spec__") < 0 ||
        intern(&cs->s_name, "name") < 0 ||
        intern(&cs->s_reduce, "__reduce__") < 0 ||
        intern(&cs->s_getinitargs, "__getinitargs__") < 0 ||
        intern(&cs->s_dump, "dump") < 0 ||
        intern(&cs->s_load, "load") < 0 ||
        intern(&cs->s_getvalue, "getvalue") < 0 ||
        intern(&cs->s_clear, "clear") < 0 ||
        intern(&cs->s_cast, "cast") < 0 ||
        intern(&cs->s_raw, "raw") < 0 ||
        intern(&cs->s_main, "__main__") < 0 ||
        intern(&cs->s_mp_main, "__mp_main__") < 0 ||
        intern(&cs->s_builtins, "__builtins__") < 0 ||
        intern(&cs->s___name__, "__name__") < 0 ||
        intern(&cs->s_bytes, "bytes") < 0 ||
        intern(&cs->s_is_safe, "is_safe") < 0 ||
        intern(&cs->s_value, "value") < 0) {
        return -1;
    }
    cs->CorruptMessageError = PyErr_NewExceptionWithDoc(
        "subinterp.CorruptMessageError",
        "A message could not be decoded: it is truncated, corrupted, or "
        "was not made by subinterp.", PyExc_ValueError, NULL);
    if (cs->CorruptMessageError == NULL ||
        PyModule_AddObjectRef(mod, "CorruptMessageError",
                              cs->CorruptMessageError) < 0) {
        return -1;
    }
    if (codec_buf_types_init(mod, cs) < 0) {
        return -1;
    }
    cs->MessageType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &message_spec, (PyObject *)&PyBytes_Type);
    if (cs->MessageType == NULL ||
        PyModule_AddType(mod, cs->MessageType) < 0) {
        return -1;
    }
    if (PyModule_AddFunctions(mod, codec_methods) < 0) {
        return -1;
    }
    if (fn_attr(mod, &cs->fn_main_ref, "_main_ref") < 0 ||
        fn_attr(mod, &cs->fn_code_func, "_code_func") < 0 ||
        fn_attr(mod, &cs->fn_handle_ref, "_handle_ref") < 0 ||
        fn_attr(mod, &cs->fn_buffer_ref, "_buffer_ref") < 0) {
        return -1;
    }
    return 0;
}

int
codec_traverse(module_state *st, visitproc visit, void *arg)
{
    codec_state *cs = codec_get(st);
    if (cs == NULL) {
        return 0;
    }
    Py_VISIT(cs->CorruptMessageError);
    Py_VISIT(cs->SharedBufferType);
    Py_VISIT(cs->MessageType);
    for (int i = 0; i < cs->nhandle_types; i++) {
        Py_VISIT(cs->handle_types[i]);
    }
    Py_VISIT(cs->fn_main_ref);
    Py_VISIT(cs->fn_code_func);
    Py_VISIT(cs->fn_handle_ref);
    Py_VISIT(cs->fn_buffer_ref);
    Py_VISIT(cs->helpers);
    Py_VISIT(cs->builtins_mod);
    for (int i = 0; i < RT_N; i++) {
        Py_VISIT(cs->types[i]);
    }
    Py_VISIT(cs->ref_cache);
    Py_VISIT(cs->send_cache);
    return 0;
}

void
codec_clear(module_state *st)
{
    codec_state *cs = codec_get(st);
    if (cs == NULL) {
        return;
    }
    /* The module goes away with its interpreter (for interpreters that
       subinterp did not create, this is the only chance to release what
       the interpreter pinned). */
    codec_drain_pending();
    codec_interp_closing();
    Py_CLEAR(cs->CorruptMessageError);
    Py_CLEAR(cs->SharedBufferType);
    Py_CLEAR(cs->MessageType);
    for (int i = 0; i < cs->nhandle_types; i++) {
        Py_CLEAR(cs->handle_types[i]);
    }
    cs->nhandle_types = 0;
    Py_CLEAR(cs->fn_main_ref);
    Py_CLEAR(cs->fn_code_func);
    Py_CLEAR(cs->fn_handle_ref);
    Py_CLEAR(cs->fn_buffer_ref);
    Py_CLEAR(cs->helpers);
    Py_CLEAR(cs->builtins_mod);
    for (int i = 0; i < RT_N; i++) {
        Py_CLEAR(cs->types[i]);
    }
    Py_CLEAR(cs->ref_cache);
    Py_CLEAR(cs->send_cache);
    Py_CLEAR(cs->s_module);
    Py_CLEAR(cs->s_qualname);
    Py_CLEAR(cs->s_file);
    Py_CLEAR(cs->s_spec);
    Py_CLEAR(cs->s_name);
    Py_CLEAR(cs->s_reduce);
    Py_CLEAR(cs->s_getinitargs);
    Py_CLEAR(cs->s_dump);
    Py_CLEAR(cs->s_load);
    Py_CLEAR(cs->s_getvalue);
    Py_CLEAR(cs->s_clear);
    Py_CLEAR(cs->s_cast);
    Py_CLEAR(cs->s_raw);
    Py_CLEAR(cs->s_main);
    Py_CLEAR(cs->s_mp_main);
    Py_CLEAR(cs->s_builtins);
    Py_CLEAR(cs->s___name__);
    Py_CLEAR(cs->s_bytes);
    Py_CLEAR(cs->s_is_safe);
    Py_CLEAR(cs->s_value);
    PyMem_Free(cs);
    st->codec = NULL;
}
