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

#include <stdatomic.h>

/* ------------------------------------------------------------------ */
/* error codes -> exceptions                                           */

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

int
set_err(module_state *st, int err)
{
    switch (err) {
    case ERR_OK:
        return 0;
    case ERR_PYEXC:
        assert(PyErr_Occurred());
        break;
    case ERR_NO_MEMORY:
        PyErr_NoMemory();
        break;
    case ERR_INTERP_NOT_FOUND:
        PyErr_SetString(st->InterpreterNotFoundError,
                        "interpreter not found (closed or never existed)");
        break;
    case ERR_INTERP_RUNNING:
        PyErr_SetString(st->InterpreterError,
                        "interpreter already running code in another "
                        "thread");
        break;
    case ERR_INTERP_CURRENT:
        PyErr_SetString(st->InterpreterError,
                        "cannot do this to the current interpreter");
        break;
    case ERR_INTERP_NOT_OWNED:
        PyErr_SetString(st->InterpreterError,
                        "interpreter was not created by subinterp");
        break;
    case ERR_INTERP_THREADS:
        PyErr_SetString(st->InterpreterError,
                        "interpreter still has threads running (daemon "
                        "threads cannot be waited for); stop them first");
        break;
    case ERR_INTERP_BUSY:
        PyErr_Format(st->InterpreterError,
                     "interpreter still has threads running after %d "
                     "seconds (its waits of subinterp were stopped with "
                     "SystemExit); stop them first",
                     (int)CLOSE_GRACE);
        break;
    case ERR_INTERP_CLOSING:
        PyErr_SetString(st->InterpreterNotFoundError,
                        "interpreter is being closed");
        break;
    case ERR_INTERP_CREATE:
        PyErr_SetString(st->InterpreterError,
                        "interpreter creation failed");
        break;
    default:
        PyErr_Format(PyExc_SystemError, "subinterp: unknown error %d", err);
        break;
    }
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

static int
add_exception(PyObject *mod, PyObject **slot, const char *name,
              PyObject *bases, const char *doc)
{
    int res = -1;
    PyObject *exc = PyErr_NewExceptionWithDoc(name, doc, bases, NULL);
    if (exc == NULL) {
        goto done;
    }
    if (PyModule_AddObjectRef(mod, strrchr(name, '.') + 1, exc) < 0) {
        goto done;
    }
    *slot = Py_NewRef(exc);
    res = 0;
done:
    Py_XDECREF(exc);
    return res;
}

static int
exceptions_init(PyObject *mod, module_state *st)
{
    int res = -1;
    PyObject *bases = NULL;
    PyObject *str_method = NULL;

    if (add_exception(mod, &st->InterpreterError, "subinterp.InterpreterError",
                      PyExc_Exception,
                      "A cross-interpreter operation failed.") < 0) {
        goto done;
    }
    if (add_exception(mod, &st->InterpreterNotFoundError,
                      "subinterp.InterpreterNotFoundError",
                      st->InterpreterError,
                      "The interpreter was closed or never existed.") < 0) {
        goto done;
    }
    if (add_exception(mod, &st->ExecutionFailed, "subinterp.ExecutionFailed",
                      st->InterpreterError,
                      "Code raised an uncaught exception in another "
                      "interpreter.\n\n"
                      "``excinfo`` describes the original exception: type "
                      "(with __name__, __qualname__, __module__), msg "
                      "(its str()), formatted (the one-line \"Type: msg\") "
                      "and errdisplay (the traceback text).") < 0) {
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
    /* A TypeError like the issue's contract asks, and a ValueError like
       the stdlib's own NotShareableError, so either except clause works. */
    bases = PyTuple_Pack(2, PyExc_TypeError, PyExc_ValueError);
    if (bases == NULL) {
        goto done;
    }
    if (add_exception(mod, &st->NotShareableError,
                      "subinterp.NotShareableError", bases,
                      "The object cannot be passed to another "
                      "interpreter.") < 0) {
        goto done;
    }
    if (add_exception(mod, &st->RemoteTraceback, "subinterp.RemoteTraceback",
                      PyExc_Exception,
                      "The traceback text of an exception raised in another "
                      "interpreter (set as its __cause__).") < 0) {
        goto done;
    }
    res = 0;
done:
    Py_XDECREF(bases);
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

static PyMethodDef module_functions[] = {
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
    if (queue_init(mod, st) < 0 || channel_init(mod, st) < 0 ||
        select_init(mod, st) < 0 || sync_init(mod, st) < 0 ||
        aioop_init(mod, st) < 0) {
        return -1;
    }
    if (interp_init(mod, st) < 0) {
        return -1;
    }
    if (pool_init(mod, st) < 0) {
        return -1;
    }
    /* end of component inits */
    return 0;
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
    return 0;
}

static int
coremodule_clear(PyObject *mod)
{
    module_state *st = get_mod_state(mod);
    /* component clear */
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
