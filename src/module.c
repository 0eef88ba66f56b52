/* module.c - the subinterp._core module: definition, slots, module state
 * and the exception classes.
 *
 * The module uses multi-phase initialisation (PEP 489) so that every
 * interpreter that imports it gets its own module object, its own heap
 * types and its own exception classes (module_state).  Nothing here is
 * shared between interpreters; process-wide state lives in runtime.c and
 * the other components, as plain C.
 */
#include "subinterp.h"

#include <marshal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* errors: the table of error codes, and the converter                */

int
id_from_object(PyObject *arg, const char *what, int64_t *out)
{
    if (!PyLong_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "id must be an int, got %R", arg);
        return -1;
    }
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (id < 0) {
        PyErr_Format(PyExc_ValueError,
                     "%s ID must be a non-negative int, got %R", what, arg);
        return -1;
    }
    *out = (int64_t)id;
    return 0;
}

/* Where the class of an error comes from. */
typedef enum {
    CLS_NO_MEMORY,      /* PyErr_NoMemory() */
    CLS_RUNTIME,
    CLS_VALUE,
    CLS_OVERFLOW,
    CLS_TIMEOUT,
    CLS_INTERPRETER,    /* InterpreterError */
    CLS_INTERP_NOT_FOUND,
    CLS_QUEUE,          /* queue_exception(st, err) (queue.c) */
    CLS_CHANNEL,        /* channel_exception(st, err) (channel.c) */
    CLS_SYNC,           /* sync_exception(st, err) (sync.c) */
} err_class;

enum {
    ERRF_SOURCE = 1,    /* the argument is the `source` attribute to set */
};

/* The table of error codes: class and message (a PyErr_Format format
 * whose arguments are those subinterp.h lists for the code), by -code. */
static const struct {
    err_class cls;
    int flags;
    const char *fmt;
} err_table[] = {
    [-ERR_NO_MEMORY] = {CLS_NO_MEMORY, 0, NULL},
    [-ERR_ATFORK] = {CLS_RUNTIME, 0, "subinterp: pthread_atfork failed"},
    [-ERR_INTERP_NOT_FOUND] = {CLS_INTERP_NOT_FOUND, 0,
        "interpreter not found (closed or never existed)"},
    [-ERR_INTERP_RUNNING] = {CLS_INTERPRETER, 0,
        "interpreter already running code in another thread"},
    [-ERR_INTERP_CURRENT] = {CLS_INTERPRETER, 0,
        "cannot do this to the current interpreter"},
    [-ERR_INTERP_NOT_OWNED] = {CLS_INTERPRETER, 0,
        "interpreter was not created by subinterp"},
    [-ERR_INTERP_THREADS] = {CLS_INTERPRETER, 0,
        "interpreter still has threads running that close cannot wait "
        "for (daemon threads, threads started with _thread); stop them "
        "first"},
    [-ERR_INTERP_CLOSING] = {CLS_INTERP_NOT_FOUND, 0,
        "interpreter is being closed"},
    [-ERR_INTERP_CREATE] = {CLS_INTERPRETER, 0,
        "interpreter creation failed: %s"},
    [-ERR_INTERP_BUSY] = {CLS_INTERPRETER, 0,
        "interpreter still has threads running after "
        Py_STRINGIFY(CLOSE_GRACE_SECONDS) " seconds (its waits of "
        "subinterp were stopped with SystemExit); stop them first"},
    [-ERR_SHUT_DOWN] = {CLS_RUNTIME, 0,
        "cannot create interpreters after interpreter shutdown "
        "(subinterp's exit handler has run)"},
    [-ERR_OBJECT_NOT_FOUND] = {CLS_INTERPRETER, 0, "object %lld not found"},
    [-ERR_QUEUE_EMPTY] = {CLS_QUEUE, 0, "the queue is empty"},
    [-ERR_QUEUE_FULL] = {CLS_QUEUE, 0, "the queue is full"},
    [-ERR_QUEUE_NOT_FOUND] = {CLS_QUEUE, 0,
        "queue %lld not found (every handle to it was dropped, or it "
        "never existed)"},
    [-ERR_ITEM_INTERP_DESTROYED] = {CLS_QUEUE, 0,
        "the interpreter that put this item (id %lld) was destroyed "
        "before it was taken"},
    [-ERR_UNBOUND_ITEMS] = {CLS_QUEUE, 0,
        "unbounditems must be UNBOUND, UNBOUND_ERROR or UNBOUND_REMOVE, "
        "not %R"},
    [-ERR_CHANNEL_CLOSED] = {CLS_CHANNEL, ERRF_SOURCE,
        "the channel is closed"},
    [-ERR_CHANNEL_EMPTY] = {CLS_CHANNEL, 0, "nothing to receive"},
    [-ERR_CHANNEL_FULL] = {CLS_CHANNEL, 0,
        "cannot send without waiting (no receiver is waiting and the "
        "buffer is full)"},
    [-ERR_CHANNEL_NOT_FOUND] = {CLS_CHANNEL, 0, "channel %lld not found"},
    [-ERR_TIMEOUT] = {CLS_TIMEOUT, 0, "timed out"},
    [-ERR_RELEASE_UNLOCKED] = {CLS_RUNTIME, 0, "release unlocked lock"},
    [-ERR_RELEASE_UNOWNED] = {CLS_RUNTIME, 0,
        "cannot release un-acquired lock"},
    [-ERR_TOO_MANY_RELEASES] = {CLS_VALUE, 0,
        "Semaphore released too many times"},
    [-ERR_VALUE_OVERFLOW] = {CLS_OVERFLOW, 0,
        "Semaphore value would exceed the largest Py_ssize_t"},
    [-ERR_BARRIER_BROKEN] = {CLS_SYNC, 0,
        "the barrier is broken (aborted, reset, or a wait timed out or was "
        "interrupted)"},
    [-ERR_NONBLOCKING_TIMEOUT] = {CLS_VALUE, 0,
        "can't specify a timeout for a non-blocking call"},
};

#define N_ERR_CODES ((int)(sizeof(err_table) / sizeof(err_table[0])))

/* The class of err (borrowed), or NULL with an exception. */
static PyObject *
err_class_of(module_state *st, err_class cls, int err)
{
    switch (cls) {
    case CLS_RUNTIME:
        return PyExc_RuntimeError;
    case CLS_VALUE:
        return PyExc_ValueError;
    case CLS_OVERFLOW:
        return PyExc_OverflowError;
    case CLS_TIMEOUT:
        return PyExc_TimeoutError;
    case CLS_INTERPRETER:
        return st->InterpreterError;
    case CLS_INTERP_NOT_FOUND:
        return st->InterpreterNotFoundError;
    case CLS_QUEUE:
        return queue_exception(st, err);
    case CLS_CHANNEL:
        return channel_exception(st, err);
    case CLS_SYNC:
        return sync_exception(st, err);
    default:
        break;
    }
    PyErr_Format(PyExc_SystemError, "subinterp: no class for error %d", err);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* code compiled once per process (see subinterp.h)                    */

typedef struct {
    Py_ssize_t size;
    char data[];
} code_blob;

PyObject *
code_cached(code_cache *cache, const char *source, const char *filename)
{
    code_blob *b = atomic_load_explicit(&cache->blob, memory_order_acquire);
    if (b != NULL) {
        return PyMarshal_ReadObjectFromString(b->data, b->size);
    }
    PyObject *code = Py_CompileString(source, filename, Py_file_input);
    if (code == NULL) {
        return NULL;
    }
    PyObject *bytes = PyMarshal_WriteObjectToString(code, Py_MARSHAL_VERSION);
    if (bytes == NULL) {
        /* the code is usable all the same */
        PyErr_Clear();
        return code;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(bytes);
    b = PyMem_RawMalloc(sizeof(code_blob) + size);
    if (b != NULL) {
        b->size = size;
        memcpy(b->data, PyBytes_AS_STRING(bytes), size);
        void *expected = NULL;
        /* Interpreters starting at once may both compile: the first
           stored stays. */
        if (!atomic_compare_exchange_strong_explicit(
                &cache->blob, &expected, b, memory_order_acq_rel,
                memory_order_acquire)) {
            PyMem_RawFree(b);
        }
    }
    Py_DECREF(bytes);
    return code;
}

/* An exception of cls with message msg and attribute source (None when
 * NULL), raised. */
static void
raise_with_source(PyObject *cls, const char *msg, PyObject *source)
{
    PyObject *exc = PyObject_CallFunction(cls, "s", msg);
    if (exc == NULL) {
        return;
    }
    if (PyObject_SetAttrString(exc, "source",
                               source != NULL ? source : Py_None) == 0) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    }
    Py_DECREF(exc);
}

int
set_err(module_state *st, int err, ...)
{
    assert((err == ERR_PYEXC) == (PyErr_Occurred() != NULL));
    if (err == ERR_OK) {
        return 0;
    }
    if (err == ERR_PYEXC) {
        return -1;
    }
    if (err > 0 || -err >= N_ERR_CODES || err_table[-err].fmt == NULL) {
        if (err == ERR_NO_MEMORY) {
            PyErr_NoMemory();
        }
        else {
            PyErr_Format(PyExc_SystemError, "subinterp: unknown error %d",
                         err);
        }
        return -1;
    }
    if (st == NULL && (st = get_current_state()) == NULL) {
        return -1;
    }
    PyObject *cls = err_class_of(st, err_table[-err].cls, err);
    if (cls == NULL) {
        return -1;
    }
    va_list va;
    va_start(va, err);
    if (err_table[-err].flags & ERRF_SOURCE) {
        raise_with_source(cls, err_table[-err].fmt, va_arg(va, PyObject *));
    }
    else {
        PyErr_FormatV(cls, err_table[-err].fmt, va);
    }
    va_end(va);
    return -1;
}

/* ------------------------------------------------------------------ */
/* one object per id: the handle cache (see subinterp.h)               */

PyObject *
handle_cache_get(PyObject *table, int64_t id)
{
    PyObject *res = NULL;
    if (table == NULL) {
        return NULL;
    }
    PyObject *key = PyLong_FromLongLong(id);
    if (key == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *addr = PyDict_GetItemWithError(table, key); /* borrowed */
    if (addr != NULL) {
        void *p = PyLong_AsVoidPtr(addr);
        if (p != NULL) {
            res = Py_NewRef((PyObject *)p);
        }
    }
    /* a failed lookup just means a new object is made */
    PyErr_Clear();
    Py_DECREF(key);
    return res;
}

int
handle_cache_add(PyObject **table, int64_t id, PyObject *obj)
{
    int res = -1;
    PyObject *key = NULL;
    PyObject *addr = NULL;
    if (*table == NULL && (*table = PyDict_New()) == NULL) {
        goto done;
    }
    key = PyLong_FromLongLong(id);
    addr = PyLong_FromVoidPtr(obj);
    if (key == NULL || addr == NULL) {
        goto done;
    }
    res = PyDict_SetItem(*table, key, addr);
done:
    Py_XDECREF(key);
    Py_XDECREF(addr);
    return res;
}

void
handle_cache_remove(PyObject *table, int64_t id, PyObject *obj)
{
    if (table == NULL) {
        return;     /* never cached, or the module state was cleared */
    }
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *key = PyLong_FromLongLong(id);
    if (key != NULL) {
        PyObject *addr = PyDict_GetItemWithError(table, key);
        /* Only our own entry: another object may have taken the id's
           place if adding this one failed half-way. */
        if (addr != NULL && PyLong_AsVoidPtr(addr) == (void *)obj) {
            (void)PyDict_DelItem(table, key);
        }
        Py_DECREF(key);
    }
    PyErr_Clear();
    PyErr_SetRaisedException(exc);
}

/* ------------------------------------------------------------------ */
/* exceptions                                                          */

/* ExecutionFailed.__str__, as the standard library's (Python 3.14): the
 * one-line description (args[0]), then the traceback text of the other
 * interpreter (excinfo.errdisplay), so that an uncaught ExecutionFailed
 * shows where the code failed.  Without that text (excinfo missing, or the
 * traceback could not be formatted), the plain one-line text. */
static PyObject *
execution_failed_str(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *res = NULL;
    PyObject *errdisplay = NULL;
    PyObject *line = NULL;
    PyObject *excinfo = PyObject_GetAttrString(self, "excinfo");
    if (excinfo != NULL) {
        errdisplay = PyObject_GetAttrString(excinfo, "errdisplay");
    }
    if (errdisplay == NULL) {
        /* the standard library's "except Exception: return
           super().__str__()" */
        if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            goto done;
        }
        PyErr_Clear();
        res = ((PyTypeObject *)PyExc_BaseException)->tp_str(self);
        goto done;
    }
    line = ((PyTypeObject *)PyExc_BaseException)->tp_str(self);
    if (line == NULL) {
        goto done;
    }
    res = PyUnicode_FromFormat("%U\n\nUncaught in the interpreter:\n\n%S",
                               line, errdisplay);
done:
    Py_XDECREF(line);
    Py_XDECREF(errdisplay);
    Py_XDECREF(excinfo);
    return res;
}

static PyMethodDef execution_failed_str_def = {
    "__str__", execution_failed_str, METH_NOARGS, NULL,
};

/* A new reference to the base named `base` of a class of specs[0..n):
 * "module.attr" (imported; "subinterp.X" is the module's attribute X),
 * or the name of a class of the set made before it (made[]). */
static PyObject *
exception_base(PyObject *mod, const char *base, const exc_spec *specs,
               PyObject *const *made, int n)
{
    const char *dot = strchr(base, '.');
    char modname[32];
    if (dot == NULL) {
        for (int i = 0; i < n; i++) {
            if (strcmp(specs[i].name, base) == 0 && made[i] != NULL) {
                return Py_NewRef(made[i]);
            }
        }
        PyErr_Format(PyExc_SystemError, "subinterp: no base %s", base);
        return NULL;
    }
    if ((size_t)(dot - base) >= sizeof(modname)) {
        PyErr_Format(PyExc_SystemError, "subinterp: bad base %s", base);
        return NULL;
    }
    memcpy(modname, base, (size_t)(dot - base));
    modname[dot - base] = '\0';
    if (strcmp(modname, "subinterp") == 0) {
        return PyObject_GetAttrString(mod, dot + 1);
    }
    return compat_import_attr(modname, dot + 1);
}

int
exceptions_make(PyObject *mod, const exc_spec *specs, int n,
                PyObject **const slots[], int *made_flag)
{
    int res = -1;
    PyObject *made[EXC_SET_MAX] = {NULL};
    char qualname[64];

    assert(n <= EXC_SET_MAX);
    if (*made_flag) {
        return 0;
    }
    for (int i = 0; i < n; i++) {
        PyObject *b[2] = {NULL, NULL};
        PyObject *bases = NULL;
        for (int k = 0; k < 2 && specs[i].bases[k] != NULL; k++) {
            b[k] = exception_base(mod, specs[i].bases[k], specs, made, i);
            if (b[k] == NULL) {
                Py_XDECREF(b[0]);
                goto done;
            }
        }
        bases = b[1] == NULL ? Py_NewRef(b[0]) : PyTuple_Pack(2, b[0], b[1]);
        Py_DECREF(b[0]);
        Py_XDECREF(b[1]);
        if (bases == NULL) {
            goto done;
        }
        PyOS_snprintf(qualname, sizeof(qualname), "subinterp.%s",
                      specs[i].name);
        made[i] = PyErr_NewExceptionWithDoc(qualname, specs[i].doc, bases,
                                            NULL);
        Py_DECREF(bases);
        if (made[i] == NULL) {
            goto done;
        }
    }
    /* The imports may have let another thread of this interpreter make
       the set meanwhile: the first one made stays. */
    if (!*made_flag) {
        for (int i = 0; i < n; i++) {
            if (PyModule_AddObjectRef(mod, specs[i].name, made[i]) < 0) {
                goto done;
            }
        }
        for (int i = 0; i < n; i++) {
            *slots[i] = made[i];
            made[i] = NULL;
        }
        *made_flag = 1;
    }
    res = 0;
done:
    for (int i = 0; i < n; i++) {
        Py_XDECREF(made[i]);
    }
    return res;
}

static const exc_spec module_exceptions[] = {
    {"InterpreterError", {"builtins.Exception"},
     "A cross-interpreter operation failed."},
    {"InterpreterNotFoundError", {"InterpreterError"},
     "The interpreter was closed or never existed."},
    {"ExecutionFailed", {"InterpreterError"},
     "Code raised an uncaught exception in another interpreter.\n\n"
     "``excinfo`` describes the original exception: type (with __name__, "
     "__qualname__, __module__), msg (its str()), formatted (the one-line "
     "\"Type: msg\") and errdisplay (the traceback text)."},
    /* A TypeError like the issue's contract asks, and a ValueError like
       the stdlib's own NotShareableError, so either except clause works. */
    {"NotShareableError", {"builtins.TypeError", "builtins.ValueError"},
     "The object cannot be passed to another interpreter."},
    {"RemoteTraceback", {"builtins.Exception"},
     "The traceback text of an exception raised in another interpreter "
     "(set as its __cause__)."},
};

static int
exceptions_init(PyObject *mod, module_state *st)
{
    PyObject **const slots[] = {
        &st->InterpreterError, &st->InterpreterNotFoundError,
        &st->ExecutionFailed, &st->NotShareableError, &st->RemoteTraceback,
    };
    int made = 0;
    int res = -1;
    PyObject *str_method = NULL;

    if (exceptions_make(mod, module_exceptions,
                        (int)Py_ARRAY_LENGTH(module_exceptions), slots,
                        &made) < 0) {
        goto done;
    }
    /* a method of the class, so that tp_str is set (a heap exception
       class takes new attributes) */
    str_method = PyDescr_NewMethod((PyTypeObject *)st->ExecutionFailed,
                                   &execution_failed_str_def);
    if (str_method == NULL ||
        PyObject_SetAttrString(st->ExecutionFailed, "__str__",
                               str_method) < 0) {
        goto done;
    }
    res = 0;
done:
    Py_XDECREF(str_method);
    return res;
}

/* ------------------------------------------------------------------ */
/* module slots                                                        */

/* Module objects of _core alive in the process: one per interpreter that
 * imported it.  Every one must be freed when its interpreter ends (m_free
 * runs); one that is not keeps its whole interpreter's memory alive.
 * Tests read it through _live_modules(). */
static atomic_long live_modules;

static PyObject *
coremod_live_modules(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(atomic_load(&live_modules));
}

static PyObject *
coremod_created_off_main(PyObject *Py_UNUSED(mod),
                         PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(runtime_created_off_main());
}

static PyMethodDef module_functions[] = {
    {"_created_off_main", coremod_created_off_main, METH_NOARGS,
     "_created_off_main()\n--\n\n"
     "How many interpreters a helper thread created for the process's "
     "main thread (on 3.14+ with glibc: see docs/design.md)."},
    {"_live_modules", coremod_live_modules, METH_NOARGS,
     "_live_modules()\n--\n\n"
     "How many interpreters of the process have a live copy of this "
     "module (for leak tests)."},
    {NULL, NULL, 0, NULL},
};

static int
coremodule_exec(PyObject *mod)
{
    module_state *st = get_mod_state(mod);

    /* m_free runs for every module whose exec slot ran, failed or not */
    atomic_fetch_add(&live_modules, 1);
    if (PyModule_AddFunctions(mod, module_functions) < 0) {
        return -1;
    }
    if (exceptions_init(mod, st) < 0) {
        return -1;
    }
    /* component inits */
    if (runtime_init(mod, st) < 0) {
        return -1;
    }
    if (codec_init(mod, st) < 0) {
        return -1;
    }
    if (objects_init(mod, st) < 0 || queue_init(mod, st) < 0 ||
        channel_init(mod, st) < 0 || select_init(mod, st) < 0 ||
        sync_init(mod, st) < 0 || aioop_init(mod, st) < 0) {
        return -1;
    }
    if (interp_init(mod, st) < 0) {
        return -1;
    }
    if (pool_init(mod, st) < 0) {
        return -1;
    }
    /* end of component inits */
    return set_err(st, fork_hooks_install());
}

static int
coremodule_traverse(PyObject *mod, visitproc visit, void *arg)
{
    module_state *st = get_mod_state(mod);
    Py_VISIT(st->InterpreterError);
    Py_VISIT(st->InterpreterNotFoundError);
    Py_VISIT(st->ExecutionFailed);
    Py_VISIT(st->NotShareableError);
    Py_VISIT(st->RemoteTraceback);
    Py_VISIT(st->InterpreterType);
    Py_VISIT(st->PoolType);
    Py_VISIT(st->call_in_thread);
    Py_VISIT(st->foreign);
    Py_VISIT(st->main_call);
    Py_VISIT(st->main_name);
    Py_VISIT(st->interp_handles);
    if (st->codec != NULL && codec_traverse(st, visit, arg) < 0) {
        return -1;
    }
    /* component traverse */
    if (st->queue != NULL && queue_traverse(st, visit, arg) < 0) {
        return -1;
    }
    if (st->channel != NULL && channel_traverse(st, visit, arg) < 0) {
        return -1;
    }
    if (st->sync != NULL && sync_traverse(st, visit, arg) < 0) {
        return -1;
    }
    return 0;
}

static int
coremodule_clear(PyObject *mod)
{
    module_state *st = get_mod_state(mod);
    /* component clear */
    if (st->sync != NULL) {
        sync_clear(st);
    }
    if (st->channel != NULL) {
        channel_clear(st);
    }
    if (st->queue != NULL) {
        queue_clear(st);
    }
    if (st->codec != NULL) {
        codec_clear(st);
    }
    Py_CLEAR(st->InterpreterError);
    Py_CLEAR(st->InterpreterNotFoundError);
    Py_CLEAR(st->ExecutionFailed);
    Py_CLEAR(st->NotShareableError);
    Py_CLEAR(st->RemoteTraceback);
    Py_CLEAR(st->InterpreterType);
    Py_CLEAR(st->PoolType);
    Py_CLEAR(st->call_in_thread);
    Py_CLEAR(st->foreign);
    Py_CLEAR(st->main_call);
    Py_CLEAR(st->main_name);
    Py_CLEAR(st->interp_handles);
    return 0;
}

static void
coremodule_free(void *mod)
{
    atomic_fetch_sub(&live_modules, 1);
    runtime_module_freed(get_mod_state((PyObject *)mod));
    (void)coremodule_clear((PyObject *)mod);
}

static PyModuleDef_Slot coremodule_slots[] = {
    {Py_mod_exec, coremodule_exec},
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#if SUBINTERP_HAS_MOD_GIL
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

PyModuleDef coremodule_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "subinterp._core",
    .m_doc = "C core of subinterp: interpreters, codec, queues, pools.",
    .m_size = sizeof(module_state),
    .m_slots = coremodule_slots,
    .m_traverse = coremodule_traverse,
    .m_clear = coremodule_clear,
    .m_free = coremodule_free,
};

PyMODINIT_FUNC
PyInit__core(void)
{
    return PyModuleDef_Init(&coremodule_def);
}
