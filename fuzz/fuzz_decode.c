/* fuzz_decode.c - libFuzzer harness for the codec's decoder.
 *
 * The program embeds CPython and links the codec's own sources (so that
 * libFuzzer's coverage instrumentation sees the decoder), with a small
 * stand-in for the rest of subinterp._core: a module whose state holds
 * what the codec needs (NotShareableError, codec_state), a fake handle
 * kind, and two raw blobs, so that the handle, buffer and pinned-data
 * opcodes have something to refer to.
 *
 * Each input is decoded as an untrusted message (no pickle, no code, no
 * imports).  Decoding must either succeed or raise ValueError (or
 * MemoryError); any other outcome - a crash, a sanitizer report, another
 * exception type - is a bug and aborts the run.
 *
 * Input layout: the first byte selects the mode, the rest is the data.
 *   mode & 1 == 0   the data is a message body; the harness adds a
 *                   valid header (so mutations explore the body)
 *   mode & 1 == 1   the data is a whole message, header included
 * When a body decodes, its result is encoded again (dumps mode, which
 * never needs the pickle helpers for what an untrusted decode can
 * produce... except cycles through tuples, which are skipped) and the
 * new message must decode too.
 */
#include "../src/codec_impl.h"

#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------------------------ */
/* stand-ins for the other components of _core                         */

PyModuleDef coremodule_def;

int
runtime_add_closing_hook(interp_closing_hook hook)
{
    (void)hook;
    return 0;
}

static void
fake_ref(void *ref)
{
    (void)ref;
}

static PyObject *
fake_wrap(module_state *st, void *ref)
{
    (void)st;
    (void)ref;
    return PyUnicode_FromString("<handle>");
}

static const handle_kind fake_kind = {
    .name = "Fake",
    .tag = 7,
    .incref = fake_ref,
    .decref = fake_ref,
    .wrap = fake_wrap,
};

static int
fuzzmod_exec(PyObject *mod)
{
    module_state *st = PyModule_GetState(mod);
    st->NotShareableError = PyErr_NewException(
        "subinterp.NotShareableError", PyExc_TypeError, NULL);
    if (st->NotShareableError == NULL) {
        return -1;
    }
    return codec_init(mod, st);
}

static PyModuleDef_Slot fuzzmod_slots[] = {
    {Py_mod_exec, fuzzmod_exec},
    {0, NULL},
};

static PyModuleDef fuzzmod_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "_fuzzcore",
    .m_size = sizeof(module_state),
    .m_slots = fuzzmod_slots,
};

static PyObject *
fuzzmod_init(void)
{
    return PyModuleDef_Init(&fuzzmod_def);
}

/* ------------------------------------------------------------------ */

static module_state *st;
static msg_ref refs[4];
static PyObject *mod;

static void
die(const char *what)
{
    fprintf(stderr, "fuzz_decode: %s\n", what);
    if (PyErr_Occurred()) {
        PyErr_Print();
    }
    abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    PyPreConfig pre;
    PyPreConfig_InitIsolatedConfig(&pre);
    /* every allocation visible to AddressSanitizer */
    pre.allocator = PYMEM_ALLOCATOR_MALLOC;
    if (PyStatus_Exception(Py_PreInitialize(&pre))) {
        die("pre-init");
    }
    if (PyImport_AppendInittab("_fuzzcore", fuzzmod_init) < 0) {
        die("inittab");
    }
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.site_import = 0;
    const char *home = getenv("FUZZ_PYTHONHOME");
    if (home != NULL) {
        PyStatus s = PyConfig_SetBytesString(&config, &config.home, home);
        if (PyStatus_Exception(s)) {
            die("home");
        }
    }
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        die("init");
    }
    mod = PyImport_ImportModule("_fuzzcore");
    if (mod == NULL) {
        die("import _fuzzcore");
    }
    st = PyModule_GetState(mod);
    static const char data[] = "0123456789abcdef\xe9\xe9\xe9\xe9"
                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    for (int i = 0; i < 2; i++) {
        blob *b = blob_raw_copy(data, (Py_ssize_t)sizeof(data) - 1, i);
        if (b == NULL) {
            die("blob");
        }
        refs[i].what = REF_BLOB;
        refs[i].ptr = b;
    }
    refs[2].what = REF_HANDLE;
    refs[2].kind = &fake_kind;
    refs[2].ptr = &refs[2];
    refs[3].what = REF_HANDLE;
    refs[3].kind = &fake_kind;
    refs[3].ptr = &refs[3];
    return 0;
}

/* Decoding failed: only ValueError (incl. CorruptMessageError) and
 * MemoryError are allowed. */
static void
check_error(void)
{
    if (!PyErr_Occurred()) {
        die("NULL without an exception");
    }
    if (!PyErr_ExceptionMatches(PyExc_ValueError) &&
        !PyErr_ExceptionMatches(PyExc_MemoryError)) {
        die("decoding raised something other than ValueError");
    }
    PyErr_Clear();
}

static char *
with_header(const uint8_t *body, size_t size)
{
    char *buf = malloc(MSG_HEADER + size + 1);
    if (buf == NULL) {
        abort();
    }
    memcpy(buf, "SIc\x01\0\0\0\0", 8);
    put_le64(buf + 8, (uint64_t)size);
    put_le64(buf + 16, 0);
    memcpy(buf + MSG_HEADER, body, size);
    return buf;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    int mode = data[0];
    data++;
    size--;
    char *buf;
    Py_ssize_t n;
    if (mode & 1) {
        buf = malloc(size + 1);
        if (buf == NULL) {
            abort();
        }
        memcpy(buf, data, size);
        n = (Py_ssize_t)size;
    }
    else {
        buf = with_header(data, size);
        n = (Py_ssize_t)size + MSG_HEADER;
    }
    PyObject *obj = codec_decode_data(st, buf, n, MSG_HEADER, refs, 4, 0);
    if (obj == NULL) {
        check_error();
    }
    else {
        /* what decodes must encode, and decode again */
        msg *m = codec_encode_mode(st, obj, ENC_DUMPS);
        if (m == NULL) {
            /* a cycle through a tuple needs pickle: not here */
            PyErr_Clear();
        }
        else {
            PyObject *again = codec_decode_data(st, m->data, m->size,
                                                MSG_HEADER, m->refs,
                                                m->nrefs, 0);
            if (again == NULL) {
                die("re-encoded message does not decode");
            }
            Py_DECREF(again);
            msg_free(m);
        }
        Py_DECREF(obj);
    }
    free(buf);
    codec_drain_pending();
    return 0;
}
