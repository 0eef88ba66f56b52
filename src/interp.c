/* interp.c - the Interpreter type and the module functions around it.
 *
 * An Interpreter object is a handle: a HandleObject whose ref is one C
 * reference to an interp_entry (runtime.c).  Equal handles may exist in
 * several interpreters at once; they compare and hash by id.
 *
 * Running code elsewhere ("a job") always has the same shape:
 *
 *   caller interpreter            target interpreter (same OS thread)
 *   ------------------            -----------------------------------
 *   encode inputs -> msg
 *   runtime_run_in(e, job_run) -> decode msg, do the work,
 *                                 encode the result (or the exception's
 *                                 description) -> msg
 *   decode the result msg  <-
 *
 * No Python object crosses; runtime_run_in switches the thread from one
 * interpreter (and GIL) to the other and back.
 */
#include "subinterp.h"
#include "wait.h"

#include <marshal.h>
#include <string.h>
#include <unistd.h>

static const handle_kind interp_kind;

/* ------------------------------------------------------------------ */
/* jobs                                                                */

typedef enum {
    JOB_EXEC,         /* in: marshalled code (bytes) */
    JOB_CALL,         /* in: (callable, args, kwargs or None) */
    JOB_PREPARE_MAIN, /* in: dict */
} job_kind;

typedef struct {
    job_kind kind;
    const msg *in;
    msg *out;       /* result, when it succeeded */
    msg *exc;       /* failed: the exception's description, made by
                       interp_capture_exception */
    int lost;       /* failed, and even the description could not be made */
} job;

static PyObject *
main_dict(void)
{
    PyObject *main = PyImport_AddModule("__main__"); /* borrowed */
    if (main == NULL) {
        return NULL;
    }
    return PyModule_GetDict(main); /* borrowed */
}

/* ------------------------------------------------------------------ */
/* calls at the top level of __main__                                  */

/* A call from another interpreter (Interpreter.call, call_in_thread, pool
 * tasks) runs as if made at the top level of this interpreter's __main__,
 * as the standard library's calls do: the builtins that read the caller's
 * frame (globals, locals, vars, dir, eval, exec) see __main__.__dict__ as
 * both globals and locals.  Without a Python frame they fail or crash:
 * globals() returns NULL without an exception on 3.12 and 3.13, and
 * eval() raises SystemError (3.12, 3.13) or TypeError (3.14).
 *
 * The frame is that of a module-level code object, "M()", whose constant
 * M is the C function main_call_run below, wrapped in a function
 * bound to __main__.__dict__.  A function whose code is not optimized runs
 * with its globals as its locals, exactly like exec(code, ns, ns), and its
 * frame has no local variable of its own to show.  Module-level code takes
 * no arguments, so the call to make waits in a thread-local slot; each
 * user saves and restores the slot, so that a nested call (a signal
 * handler or trace function that runs before the trampoline) finds its
 * own.  Python functions (and methods of them) skip the trampoline: they
 * push their own frame before any builtin can look. */

typedef struct {
    PyObject *fn;
    PyObject *args;
    PyObject *kwargs;   /* or NULL */
} main_call;

static _Thread_local main_call *pending_main_call;

static PyObject *
main_call_run(PyObject *Py_UNUSED(self), PyObject *Py_UNUSED(ignored))
{
    main_call *c = pending_main_call;
    pending_main_call = NULL;
    if (c == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no call to make");
        return NULL;
    }
    PyObject *res = PyObject_Call(c->fn, c->args, c->kwargs);
    /* PyObject_Call does not check what a C function returned (a release
     * build of 3.12 or 3.13 lets globals() without a frame return NULL
     * with no exception); the eval loop must never see that. */
    if (res == NULL && !PyErr_Occurred()) {
        PyErr_Format(PyExc_SystemError,
                     "%R returned NULL without setting an exception",
                     c->fn);
    }
    return res;
}

static PyMethodDef main_call_def = {
    "_main_call", main_call_run, METH_NOARGS, NULL,
};

#define MAIN_CALL_MARKER "subinterp main call"

/* A new trampoline function whose globals (and so locals) are ns. */
static PyObject *
main_call_make(PyObject *ns)
{
    PyObject *code = NULL;
    PyObject *consts = NULL;
    PyObject *newconsts = NULL;
    PyObject *runner = NULL;
    PyObject *replaced = NULL;
    PyObject *kwargs = NULL;
    PyObject *replace = NULL;
    PyObject *empty = NULL;
    PyObject *func = NULL;

    /* Not "'marker'()", which the compiler warns about (a literal is not
     * callable); the conditional folds to the same two instructions,
     * load the constant and call it, on every version. */
    code = Py_CompileString("('" MAIN_CALL_MARKER "' if 1 else 0)()",
                            "<subinterp>", Py_eval_input);
    if (code == NULL) {
        goto done;
    }
    consts = PyObject_GetAttrString(code, "co_consts");
    if (consts == NULL || !PyTuple_Check(consts)) {
        goto bad;
    }
    newconsts = PyTuple_New(PyTuple_GET_SIZE(consts));
    runner = PyCFunction_New(&main_call_def, NULL);
    if (newconsts == NULL || runner == NULL) {
        goto done;
    }
    int found = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(consts); i++) {
        PyObject *c = PyTuple_GET_ITEM(consts, i);
        if (PyUnicode_Check(c) &&
            PyUnicode_CompareWithASCIIString(c, MAIN_CALL_MARKER) == 0) {
            c = runner;
            found = 1;
        }
        PyTuple_SET_ITEM(newconsts, i, Py_NewRef(c));
    }
    if (!found) {
        goto bad;
    }
    kwargs = Py_BuildValue("{sO}", "co_consts", newconsts);
    replace = PyObject_GetAttrString(code, "replace");
    empty = PyTuple_New(0);
    if (kwargs == NULL || replace == NULL || empty == NULL) {
        goto done;
    }
    replaced = PyObject_Call(replace, empty, kwargs);
    if (replaced == NULL) {
        goto done;
    }
    func = PyFunction_New(replaced, ns);
    goto done;
bad:
    PyErr_SetString(PyExc_SystemError, "could not build the main call");
done:
    Py_XDECREF(code);
    Py_XDECREF(consts);
    Py_XDECREF(newconsts);
    Py_XDECREF(runner);
    Py_XDECREF(replaced);
    Py_XDECREF(kwargs);
    Py_XDECREF(replace);
    Py_XDECREF(empty);
    return func;
}

/* fn(*args, **kwargs) at the top level of this interpreter's __main__ (see
 * above); kwargs may be NULL.  New reference, or NULL with an exception
 * set, its traceback starting at fn (the trampoline's own frame is cut). */
PyObject *
interp_call_in_main(module_state *st, PyObject *fn, PyObject *args,
                    PyObject *kwargs)
{
    PyObject *target = fn;
    if (PyMethod_Check(target)) {
        target = PyMethod_GET_FUNCTION(target);
    }
    if (PyFunction_Check(target)) {
        /* A Python function pushes its own frame at once, and the
         * builtins it calls read that one: the trampoline (about 0.1 us)
         * would change nothing. */
        PyObject *res = PyObject_Call(fn, args, kwargs);
        assert(res != NULL || PyErr_Occurred());
        return res;
    }
    /* What PyImport_AddModule("__main__") finds, without its costs (a
     * new string, and on 3.13 a weak reference, per call). */
    PyObject *ns = NULL;
    PyObject *modules = PyImport_GetModuleDict(); /* borrowed */
    if (st->main_name == NULL) {
        st->main_name = PyUnicode_InternFromString("__main__");
        if (st->main_name == NULL) {
            return NULL;
        }
    }
    if (modules != NULL && PyDict_CheckExact(modules)) {
        PyObject *mod = PyDict_GetItemWithError(modules, st->main_name);
        if (mod != NULL && PyModule_Check(mod)) {
            ns = PyModule_GetDict(mod); /* borrowed */
        }
        else if (PyErr_Occurred()) {
            return NULL;
        }
    }
    if (ns == NULL && (ns = main_dict()) == NULL) {
        return NULL;
    }
    /* Made again when __main__ was replaced in sys.modules. */
    if (st->main_call == NULL ||
        PyFunction_GetGlobals(st->main_call) != ns) {
        PyObject *made = main_call_make(ns);
        if (made == NULL) {
            return NULL;
        }
        Py_XSETREF(st->main_call, made);
    }
    PyObject *func = Py_NewRef(st->main_call);
    main_call c = {.fn = fn, .args = args, .kwargs = kwargs};
    main_call *saved = pending_main_call;
    pending_main_call = &c;
    PyObject *res = PyObject_CallNoArgs(func);
    pending_main_call = saved;
    if (res == NULL) {
        PyObject *exc = PyErr_GetRaisedException();
        PyObject *tb = exc ? PyException_GetTraceback(exc) : NULL;
        if (tb != NULL && PyTraceBack_Check(tb)) {
            PyTracebackObject *t = (PyTracebackObject *)tb;
            PyCodeObject *code = PyFrame_GetCode(t->tb_frame);
            if ((PyObject *)code == PyFunction_GetCode(func)) {
                PyException_SetTraceback(
                    exc, t->tb_next ? (PyObject *)t->tb_next : Py_None);
            }
            Py_DECREF(code);
        }
        Py_XDECREF(tb);
        PyErr_SetRaisedException(exc);
    }
    Py_DECREF(func);
    return res;
}

/* "TypeError: text" for the exception being raised (cleared), or NULL. */
PyObject *
interp_describe_error(void)
{
    PyObject *err = PyErr_GetRaisedException();
    PyObject *res = NULL;
    if (err != NULL) {
        PyObject *name = PyType_GetName(Py_TYPE(err));
        PyObject *text = PyObject_Str(err);
        if (name != NULL && text != NULL) {
            res = PyUnicode_FromFormat("%U: %U", name, text);
        }
        Py_XDECREF(name);
        Py_XDECREF(text);
        Py_DECREF(err);
    }
    PyErr_Clear();
    return res;
}

/* If the exception being raised is an ImportError of an extension module
 * that cannot load in this interpreter (CPython refuses a module without
 * per-interpreter GIL support in an isolated interpreter; PyO3, numpy and
 * Cython modules refuse a second interpreter), replace it with the
 * ImportError subinterp/_extensions.py makes: the module, why, the
 * options, the original as its __cause__.  Jobs, pool tasks and the pool
 * initializer call this on their way out of a failure only, so successful
 * calls never pay for it.  Any failure here keeps the original
 * exception. */
void
interp_explain_import_error(void)
{
    if (!PyErr_ExceptionMatches(PyExc_ImportError)) {
        return;
    }
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *explained = NULL;
    PyObject *explain = compat_import_attr("subinterp._extensions",
                                           "explain_import_error");
    if (explain != NULL) {
        explained = PyObject_CallOneArg(explain, exc);
        Py_DECREF(explain);
    }
    PyErr_Clear();
    if (explained != NULL && PyExceptionInstance_Check(explained)) {
        Py_SETREF(exc, explained);
    }
    else {
        Py_XDECREF(explained);
    }
    PyErr_SetRaisedException(exc);
}

/* Describe the exception being raised as a message: a tuple (type name,
 * qualified name, module, str(exc), formatted traceback, why the object
 * could not be encoded or None).  With obj, *obj is the exception itself
 * as a message of its own when it can be encoded (the pool re-raises it
 * as itself), else NULL: decoding it may still fail in the receiver (an
 * __init__ that does not take the exception's args), and the description
 * must survive that.  Clears the exception; NULL when even the
 * description could not be made. */
msg *
interp_capture_exception(module_state *st, msg **obj)
{
    interp_explain_import_error();
    PyObject *exc = PyErr_GetRaisedException();
    if (exc == NULL) {
        /* A failure reported without an exception: describe that rather
         * than crash on it. */
        PyErr_SetString(PyExc_SystemError,
                        "error return without exception set");
        exc = PyErr_GetRaisedException();
    }
    PyObject *formatted = NULL;
    PyObject *tb_lines = NULL;
    PyObject *info = NULL;
    PyObject *why_not = NULL;
    msg *m = NULL;
    PyObject *type = (PyObject *)Py_TYPE(exc);

    if (obj != NULL) {
        *obj = st != NULL ? codec_encode(st, exc) : NULL;
        if (*obj == NULL) {
            why_not = interp_describe_error();
        }
    }
    PyObject *name = PyType_GetName((PyTypeObject *)type);
    PyObject *qualname = PyType_GetQualName((PyTypeObject *)type);
    PyObject *module = PyObject_GetAttrString(type, "__module__");
    PyObject *text = PyObject_Str(exc);
    if (text == NULL) {
        /* as the traceback module shows it */
        PyErr_Clear();
        text = PyUnicode_FromString("<exception str() failed>");
    }
    if (name == NULL || qualname == NULL || module == NULL || text == NULL) {
        PyErr_Clear();
    }
    PyObject *format = compat_import_attr("traceback", "format_exception");
    if (format != NULL) {
        tb_lines = PyObject_CallOneArg(format, exc);
        Py_DECREF(format);
    }
    if (tb_lines != NULL) {
        PyObject *empty = PyUnicode_FromStringAndSize("", 0);
        if (empty != NULL) {
            formatted = PyUnicode_Join(empty, tb_lines);
            Py_DECREF(empty);
        }
    }
    PyErr_Clear();
    if (module != NULL && !PyUnicode_Check(module)) {
        Py_CLEAR(module);
    }
    info = Py_BuildValue("(OOOOOO)",
                         name ? name : Py_None,
                         qualname ? qualname : Py_None,
                         module ? module : Py_None,
                         text ? text : Py_None,
                         formatted ? formatted : Py_None,
                         why_not ? why_not : Py_None);
    if (info != NULL && st != NULL) {
        m = codec_encode(st, info);
    }
    PyErr_Clear();
    if (m == NULL && obj != NULL && *obj != NULL) {
        msg_free(*obj);
        *obj = NULL;
    }
    Py_XDECREF(info);
    Py_XDECREF(why_not);
    Py_XDECREF(name);
    Py_XDECREF(qualname);
    Py_XDECREF(module);
    Py_XDECREF(text);
    Py_XDECREF(tb_lines);
    Py_XDECREF(formatted);
    Py_DECREF(exc);
    return m;
}

static void
job_capture_exception(module_state *st, job *j)
{
    j->exc = interp_capture_exception(st, NULL);
    if (j->exc == NULL) {
        j->lost = 1;
    }
}

/* Running a code object with free variables without the cells they need
 * crashes; refuse it as builtin exec() does.  0, or -1 with TypeError. */
static int
check_no_free_vars(PyObject *code)
{
    PyObject *names = PyCode_GetFreevars((PyCodeObject *)code);
    if (names == NULL) {
        return -1;
    }
    Py_ssize_t n = PyTuple_Check(names) ? PyTuple_GET_SIZE(names) : 0;
    Py_DECREF(names);
    if (n > 0) {
        PyErr_SetString(PyExc_TypeError,
                        "code object passed to exec() may not contain free "
                        "variables");
        return -1;
    }
    return 0;
}

static PyObject *
job_exec(PyObject *in)
{
    PyObject *code = NULL;
    PyObject *res = NULL;
    PyObject *ns = main_dict();
    if (ns == NULL) {
        return NULL;
    }
    if (PyBytes_Check(in)) {
        code = PyMarshal_ReadObjectFromString(PyBytes_AS_STRING(in),
                                              PyBytes_GET_SIZE(in));
        if (code != NULL && !PyCode_Check(code)) {
            Py_CLEAR(code);
            PyErr_SetString(PyExc_TypeError, "expected a code object");
        }
        else if (code != NULL && check_no_free_vars(code) < 0) {
            Py_CLEAR(code);
        }
    }
    else {
        PyErr_SetString(PyExc_TypeError, "bad exec job");
    }
    if (code == NULL) {
        return NULL;
    }
    res = PyEval_EvalCode(code, ns, ns);
    Py_DECREF(code);
    return res;
}

static PyObject *
job_call(module_state *st, PyObject *in)
{
    if (!PyTuple_Check(in) || PyTuple_GET_SIZE(in) != 3 ||
        !PyTuple_Check(PyTuple_GET_ITEM(in, 1))) {
        PyErr_SetString(PyExc_TypeError, "bad call job");
        return NULL;
    }
    PyObject *fn = PyTuple_GET_ITEM(in, 0);
    PyObject *args = PyTuple_GET_ITEM(in, 1);
    PyObject *kwargs = PyTuple_GET_ITEM(in, 2);
    if (kwargs == Py_None) {
        kwargs = NULL;
    }
    else if (!PyDict_Check(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "bad call job");
        return NULL;
    }
    return interp_call_in_main(st, fn, args, kwargs);
}

static PyObject *
job_prepare_main(PyObject *in)
{
    PyObject *ns = main_dict();
    if (ns == NULL) {
        return NULL;
    }
    if (!PyDict_Check(in)) {
        PyErr_SetString(PyExc_TypeError, "bad prepare_main job");
        return NULL;
    }
    if (PyDict_Update(ns, in) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

/* Runs inside the target interpreter (interp_fn). */
static void
job_run(void *arg)
{
    job *j = (job *)arg;
    PyObject *in = NULL;
    PyObject *res = NULL;
    module_state *st = get_current_state();
    if (st == NULL) {
        goto error;
    }
    in = codec_decode(st, j->in);
    if (in == NULL) {
        goto error;
    }
    switch (j->kind) {
    case JOB_EXEC:
        res = job_exec(in);
        break;
    case JOB_CALL:
        res = job_call(st, in);
        break;
    case JOB_PREPARE_MAIN:
        res = job_prepare_main(in);
        break;
    }
    if (res == NULL) {
        goto error;
    }
    if (j->kind == JOB_CALL) {
        j->out = codec_encode(st, res);
        if (j->out == NULL) {
            goto error;
        }
    }
    goto done;
error:
    job_capture_exception(st, j);
done:
    Py_XDECREF(in);
    Py_XDECREF(res);
    /* The target may not keep an exception: its thread state is reused. */
    assert(!PyErr_Occurred());
}

static PyObject *
new_namespace(PyObject *kw)
{
    PyObject *res = NULL;
    PyObject *ns_type = compat_import_attr("types", "SimpleNamespace");
    PyObject *empty = PyTuple_New(0);
    if (ns_type != NULL && empty != NULL) {
        res = PyObject_Call(ns_type, empty, kw);
    }
    Py_XDECREF(ns_type);
    Py_XDECREF(empty);
    return res;
}

/* The one-line description of an exception, as the standard library
 * makes excinfo.formatted (and ExecutionFailed's args[0]): "Type: msg",
 * with the type's module in front unless it is builtins or __main__, as
 * the traceback module names types. */
static PyObject *
excinfo_formatted(PyObject *qualname, PyObject *module, PyObject *msgtext)
{
    if (!PyUnicode_Check(qualname)) {
        return PyObject_Str(msgtext);
    }
    if (PyUnicode_Check(module) &&
        PyUnicode_CompareWithASCIIString(module, "builtins") != 0 &&
        PyUnicode_CompareWithASCIIString(module, "__main__") != 0) {
        return PyUnicode_FromFormat("%U.%U: %S", module, qualname, msgtext);
    }
    return PyUnicode_FromFormat("%U: %S", qualname, msgtext);
}

/* ExecutionFailed for a decoded description (the tuple made by
 * interp_capture_exception), with the standard library's excinfo: a
 * namespace with type (__name__, __qualname__, __module__), msg,
 * formatted ("Type: msg") and errdisplay (the traceback text without its
 * final newline; absent when it could not be made, as there).  New
 * reference, or NULL with an exception set. */
static PyObject *
execution_failed_from_info(module_state *st, PyObject *info)
{
    PyObject *kw = NULL;
    PyObject *type = NULL;
    PyObject *excinfo = NULL;
    PyObject *formatted = NULL;
    PyObject *errdisplay = NULL;
    PyObject *exc = NULL;
    PyObject *qual = PyTuple_GET_ITEM(info, 1);
    PyObject *mod = PyTuple_GET_ITEM(info, 2);
    PyObject *msgtext = PyTuple_GET_ITEM(info, 3);
    PyObject *tb = PyTuple_GET_ITEM(info, 4);

    kw = Py_BuildValue("{sOsOsO}", "__name__", PyTuple_GET_ITEM(info, 0),
                       "__qualname__", qual, "__module__", mod);
    if (kw == NULL || (type = new_namespace(kw)) == NULL) {
        goto done;
    }
    Py_CLEAR(kw);
    formatted = excinfo_formatted(qual, mod, msgtext);
    if (formatted == NULL) {
        goto done;
    }
    kw = Py_BuildValue("{sOsOsO}", "type", type, "msg", msgtext,
                       "formatted", formatted);
    if (kw == NULL) {
        goto done;
    }
    if (PyUnicode_Check(tb)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(tb);
        if (n > 0 && PyUnicode_READ_CHAR(tb, n - 1) == '\n') {
            n--;
        }
        errdisplay = PyUnicode_Substring(tb, 0, n);
        if (errdisplay == NULL ||
            PyDict_SetItemString(kw, "errdisplay", errdisplay) < 0) {
            goto done;
        }
    }
    excinfo = new_namespace(kw);
    if (excinfo == NULL) {
        goto done;
    }
    exc = PyObject_CallOneArg(st->ExecutionFailed, formatted);
    if (exc != NULL && PyObject_SetAttrString(exc, "excinfo", excinfo) < 0) {
        Py_CLEAR(exc);
    }
done:
    Py_XDECREF(kw);
    Py_XDECREF(type);
    Py_XDECREF(excinfo);
    Py_XDECREF(formatted);
    Py_XDECREF(errdisplay);
    return exc;
}

/* The exception to raise in this interpreter for a description made by
 * interp_capture_exception.
 *
 * EXC_EXECUTION_FAILED (exec, call): ExecutionFailed with excinfo.
 * EXC_ITSELF_TRACEBACK / EXC_ITSELF_EXCINFO (pool tasks): the exception
 * itself when obj (its message) decodes to one, with the other
 * interpreter's traceback as its __cause__: a RemoteTraceback of the text,
 * as ProcessPoolExecutor does, or an ExecutionFailed, as the standard
 * library's InterpreterPoolExecutor does.  When it cannot be rebuilt, an
 * ExecutionFailed (whose text has the traceback) with a note saying why.
 * New reference, or NULL with an exception set. */
PyObject *
interp_exception_from_info(module_state *st, const msg *m, const msg *obj,
                           exc_rebuild how)
{
    PyObject *info = NULL;
    PyObject *exc = NULL;
    PyObject *orig = NULL;
    PyObject *why_not = NULL;
    PyObject *cause = NULL;

    if (m == NULL) {
        return PyObject_CallFunction(
            st->ExecutionFailed, "s",
            "code in the other interpreter raised an exception that could "
            "not be described");
    }
    if (how != EXC_EXECUTION_FAILED && obj != NULL) {
        orig = codec_decode(st, obj);
        if (orig != NULL && !PyExceptionInstance_Check(orig)) {
            PyErr_Format(PyExc_TypeError, "%.200s is not an exception",
                         Py_TYPE(orig)->tp_name);
            Py_CLEAR(orig);
        }
        if (orig == NULL) {
            why_not = interp_describe_error();
        }
    }
    info = codec_decode(st, m);
    if (info == NULL) {
        goto done;
    }
    if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) != 6) {
        PyErr_SetString(PyExc_SystemError, "bad exception description");
        goto done;
    }
    if (orig != NULL) {
        if (how == EXC_ITSELF_TRACEBACK) {
            cause = PyObject_CallOneArg(st->RemoteTraceback,
                                        PyTuple_GET_ITEM(info, 4));
        }
        else {
            cause = execution_failed_from_info(st, info);
        }
        if (cause == NULL) {
            goto done;
        }
        PyException_SetCause(orig, Py_NewRef(cause));
        exc = Py_NewRef(orig);
        goto done;
    }
    exc = execution_failed_from_info(st, info);
    if (exc != NULL && how != EXC_EXECUTION_FAILED) {
        /* why it is not the exception itself: it could not be sent, or
           not rebuilt here */
        PyObject *sent_err = PyTuple_GET_ITEM(info, 5);
        PyObject *note = NULL;
        if (sent_err != Py_None) {
            note = PyUnicode_FromFormat(
                "the exception could not be sent from the other "
                "interpreter (%S)", sent_err);
        }
        else if (why_not != NULL) {
            note = PyUnicode_FromFormat(
                "the exception could not be rebuilt in this interpreter "
                "(%S)", why_not);
        }
        if (note != NULL) {
            exc_add_note(exc, note);
            Py_DECREF(note);
        }
        PyErr_Clear();
    }
done:
    Py_XDECREF(info);
    Py_XDECREF(orig);
    Py_XDECREF(why_not);
    Py_XDECREF(cause);
    return exc;
}

/* ------------------------------------------------------------------ */
/* interpreters subinterp did not create                               */

/* A foreign interpreter (entry_is_foreign: made by the standard library
 * or an embedder) may be destroyed by its creator at any moment, from any
 * thread, and only the standard library can look it up safely (by id,
 * under CPython's lock).  So subinterp/_foreign.py asks it, and this file
 * never touches such an interpreter by pointer:
 *
 *   whence, is_running, list_all   the standard library's answers;
 *   close()                        its destroy(), with its rule: only what
 *                                  its interpreters module created;
 *   exec, call, prepare_main       the job waits in pending_foreign_job
 *                                  and the standard library's exec()
 *                                  enters the interpreter in this thread
 *                                  (marking it running, as its own calls
 *                                  do) to run "_core._run_pending()",
 *                                  which runs the job with job_run;
 *   Interpreter objects            hold a reference of the standard
 *                                  library's own count to an interpreter
 *                                  its interpreters module created, as
 *                                  its Interpreter objects do.
 *
 * An InterpreterNotFoundError from it marks the entry as gone. */

/* The names concurrent.interpreters gives Interpreter.whence (the entry
 * keeps one of these static strings). */
static const char *const whence_names[] = {
    "unknown", "runtime init", "legacy C-API", "C-API",
    "cross-interpreter C-API", "_interpreters module",
};
#define WHENCE_STDLIB (whence_names[5])

static _Thread_local job *pending_foreign_job;

/* subinterp._foreign.<name>(*args); new reference or NULL with an
 * exception (InterpreterNotFoundError marks e, when given, as gone). */
static PyObject *
foreign_call(module_state *st, interp_entry *e, const char *name,
             PyObject *args)
{
    PyObject *fn = NULL;
    PyObject *res = NULL;
    if (st->foreign == NULL) {
        st->foreign = PyImport_ImportModule("subinterp._foreign");
        if (st->foreign == NULL) {
            return NULL;
        }
    }
    fn = PyObject_GetAttrString(st->foreign, name);
    if (fn != NULL) {
        res = PyObject_Call(fn, args, NULL);
        Py_DECREF(fn);
    }
    if (res == NULL && e != NULL &&
        PyErr_ExceptionMatches(st->InterpreterNotFoundError)) {
        runtime_entry_ended(e);
    }
    return res;
}

/* foreign_call with the interpreter's id as the one argument. */
static PyObject *
foreign_call_id(module_state *st, interp_entry *e, const char *name,
                int64_t id)
{
    PyObject *args = Py_BuildValue("(L)", (long long)id);
    if (args == NULL) {
        return NULL;
    }
    PyObject *res = foreign_call(st, e, name, args);
    Py_DECREF(args);
    return res;
}

/* The static string of whence_names equal to s ("unknown" if none). */
static const char *
whence_intern(PyObject *s)
{
    for (size_t i = 0; i < sizeof(whence_names) / sizeof(*whence_names);
         i++) {
        if (PyUnicode_Check(s) &&
            PyUnicode_CompareWithASCIIString(s, whence_names[i]) == 0) {
            return whence_names[i];
        }
    }
    return whence_names[0];
}

/* Where a foreign interpreter came from, asked once and remembered (the
 * standard library's objects keep theirs for life too).  NULL when it is
 * gone and was never asked; NULL with an exception on failure. */
static const char *
foreign_whence(module_state *st, interp_entry *e)
{
    const char *w = runtime_entry_whence(e);
    if (w != NULL) {
        return w;
    }
    PyObject *r = foreign_call_id(st, e, "whence", entry_id(e));
    if (r == NULL) {
        return NULL;
    }
    if (r == Py_None) {
        runtime_entry_ended(e);
    }
    else {
        w = whence_intern(r);
        runtime_entry_set_whence(e, w);
    }
    Py_DECREF(r);
    return w;
}

/* Run j in foreign interpreter e, entered by the standard library in
 * this thread.  0, or ERR_PYEXC with the exception set. */
static int
foreign_run(module_state *st, interp_entry *e, job *j)
{
    /* the standard library's words, for its refusal */
    const char *what = j->kind == JOB_EXEC ? "exec code for"
                       : j->kind == JOB_CALL ? "make a call in"
                                             : "update __main__ for";
    PyObject *args = Py_BuildValue("(Ls)", (long long)entry_id(e), what);
    if (args == NULL) {
        return ERR_PYEXC;
    }
    job *saved = pending_foreign_job;
    pending_foreign_job = j;
    PyObject *r = foreign_call(st, e, "run", args);
    Py_DECREF(args);
    int started = pending_foreign_job == NULL;
    pending_foreign_job = saved;
    if (r == NULL) {
        return ERR_PYEXC;
    }
    Py_DECREF(r);
    if (!started) {
        PyErr_SetString(st->InterpreterError,
                        "the call did not start in the interpreter");
        return ERR_PYEXC;
    }
    return 0;
}

/* _run_pending(): inside the foreign interpreter, run the job this thread
 * left (foreign_run).  Not for users: it only ever finds one there. */
static PyObject *
coremod_run_pending(PyObject *Py_UNUSED(mod), PyObject *Py_UNUSED(ignored))
{
    job *j = pending_foreign_job;
    pending_foreign_job = NULL;
    if (j == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "no call to run");
        return NULL;
    }
    job_run(j);
    Py_RETURN_NONE;
}

/* Free what a job that ran produced. */
static void
job_clear(job *j)
{
    if (j->out != NULL) {
        msg_free(j->out);
        j->out = NULL;
    }
    if (j->exc != NULL) {
        msg_free(j->exc);
        j->exc = NULL;
    }
}

/* Run a job whose input is already encoded; returns the decoded result
 * (for calls) or None.  Takes ownership of nothing. */
static PyObject *
job_submit(module_state *st, interp_entry *e, job_kind kind, const msg *in)
{
    PyObject *res = NULL;
    job j = {.kind = kind, .in = in};
    int err = entry_is_foreign(e) ? foreign_run(st, e, &j)
                                  : runtime_run_in(e, job_run, &j);
    /* (cheapest test first: the runtime's flag takes its mutex) */
    if (!wait_is_signal_thread() &&
        PyInterpreterState_Get() == PyInterpreterState_Main() &&
        runtime_is_shutting_down()) {
        /* A daemon thread of the main interpreter, back from a call that
           the exit handler stopped (or that ended while it runs): it does
           not go on to run more Python in a dying process, where it would
           race finalization (CPython aborts when such a thread prints its
           traceback while the main thread finalizes).  It stays blocked,
           its GIL released, until the process ends, as CPython leaves
           daemon threads at finalization. */
        job_clear(&j);
        Py_BEGIN_ALLOW_THREADS
        for (;;) {
            pause();
        }
        Py_END_ALLOW_THREADS
    }
    if (err < 0) {
        set_err(st, err);
        goto done;
    }
    if (j.out != NULL) {
        res = codec_decode(st, j.out);
    }
    else if (j.exc != NULL || j.lost) {
        PyObject *exc = interp_exception_from_info(st, j.exc, NULL,
                                                   EXC_EXECUTION_FAILED);
        if (exc != NULL) {
            PyErr_SetRaisedException(exc);
        }
    }
    else {
        res = Py_NewRef(Py_None);
    }
done:
    job_clear(&j);
    return res;
}

/* ------------------------------------------------------------------ */
/* the Interpreter type                                                */

typedef struct {
    HandleObject handle;        /* ref: the interp_entry */
    int self_ref;               /* immutable: a handle the interpreter
                                   holds to itself; its reference does not
                                   keep the interpreter alive (see
                                   entry_incref_handle) */
    int holds;                  /* immutable: holds a reference of the
                                   standard library's count (a foreign
                                   interpreter its interpreters module
                                   created), given back in dealloc */
} InterpreterObject;

static interp_entry *
self_entry(PyObject *self)
{
    return (interp_entry *)((InterpreterObject *)self)->handle.ref;
}

static module_state *
self_state(PyObject *self)
{
    return get_mod_state_by_type(Py_TYPE(self));
}

/* Keep the foreign interpreter of a new object alive as the standard
 * library's Interpreter objects do, when its interpreters module created
 * it (one that is already gone is not an error: the object's operations
 * say so).  0, or -1 with an exception. */
static int
interp_hold_foreign(module_state *st, PyObject *self)
{
    interp_entry *e = self_entry(self);
    const char *w = foreign_whence(st, e);
    if (w == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (w != WHENCE_STDLIB) {
        return 0;
    }
    PyObject *r = foreign_call_id(st, e, "hold", entry_id(e));
    if (r == NULL) {
        if (PyErr_ExceptionMatches(st->InterpreterNotFoundError)) {
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
    Py_DECREF(r);
    ((InterpreterObject *)self)->holds = 1;
    return 0;
}

/* The Interpreter object of this interpreter for e: the live one when
 * there is one (one object per id, as in the standard library), else a
 * new one holding a new C reference to e. */
PyObject *
interp_object_new(module_state *st, interp_entry *e)
{
    int64_t id = entry_id(e);
    PyObject *cached = handle_cache_get(st->interp_handles, id);
    if (cached != NULL) {
        return cached;
    }
    InterpreterObject *self = PyObject_GC_New(InterpreterObject,
                                              st->InterpreterType);
    if (self == NULL) {
        return NULL;
    }
    self->self_ref = entry_incref_handle(e);
    self->holds = 0;
    self->handle.kind = &interp_kind;
    self->handle.ref = e;
    PyObject_GC_Track(self);
    if (handle_cache_add(&st->interp_handles, id, (PyObject *)self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    if (entry_is_foreign(e) && !self->self_ref &&
        interp_hold_foreign(st, (PyObject *)self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

interp_entry *
interp_object_entry(module_state *st, PyObject *obj)
{
    if (!Py_IS_TYPE(obj, st->InterpreterType)) {
        return NULL;
    }
    return self_entry(obj);
}

static int
interp_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static void
interp_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    interp_entry *e = self_entry(self);
    if (e != NULL) {
        module_state *st = dealloc_state(tp);
        if (st != NULL) {
            handle_cache_remove(st->interp_handles, entry_id(e), self);
        }
        if (st != NULL && st->foreign != NULL &&
            ((InterpreterObject *)self)->holds) {
            /* (may end the interpreter, as the standard library's own
               objects do with their last reference) */
            PyObject *exc = PyErr_GetRaisedException();
            PyObject *r = PyObject_CallMethod(st->foreign, "release", "L",
                                              (long long)entry_id(e));
            Py_XDECREF(r);
            PyErr_Clear();
            PyErr_SetRaisedException(exc);
        }
    }
    ((InterpreterObject *)self)->handle.ref = NULL;
    if (e != NULL) {
        entry_decref_handle(e, ((InterpreterObject *)self)->self_ref);
    }
    tp->tp_free(self);
    Py_DECREF(tp);
    if (e != NULL) {
        /* Keep any exception being raised while the orphan is closed. */
        PyObject *exc = PyErr_GetRaisedException();
        runtime_close_orphans();
        PyErr_SetRaisedException(exc);
    }
}

static PyObject *
interp_richcompare(PyObject *self, PyObject *other, int op)
{
    module_state *st = self_state(self);
    if (st == NULL) {
        return NULL;
    }
    interp_entry *o = interp_object_entry(st, other);
    if (o == NULL || (op != Py_EQ && op != Py_NE)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int eq = entry_id(self_entry(self)) == entry_id(o);
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static Py_hash_t
interp_hash(PyObject *self)
{
    Py_hash_t h = (Py_hash_t)entry_id(self_entry(self));
    return h == -1 ? -2 : h;
}

static PyObject *
interp_repr(PyObject *self)
{
    interp_entry *e = self_entry(self);
    return PyUnicode_FromFormat("Interpreter(%lld)", (long long)entry_id(e));
}

static PyObject *
interp_get_id(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(entry_id(self_entry(self)));
}

static PyObject *
interp_get_whence(PyObject *self, void *Py_UNUSED(closure))
{
    interp_entry *e = self_entry(self);
    int running = 0, owned = 0;
    if (entry_id(e) == 0) {
        return PyUnicode_FromString("runtime init");
    }
    if (entry_is_foreign(e)) {
        module_state *st = self_state(self);
        const char *w = st == NULL ? NULL : foreign_whence(st, e);
        if (w == NULL && PyErr_Occurred()) {
            return NULL;
        }
        /* gone before anyone asked: nothing can tell any more */
        return PyUnicode_FromString(w != NULL ? w : "unknown");
    }
    if (runtime_entry_state(e, &running, &owned) < 0) {
        return PyUnicode_FromString("unknown");
    }
    return PyUnicode_FromString(owned ? "subinterp" : "unknown");
}

static PyObject *
interp_is_running(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    module_state *st = self_state(self);
    int running = 0, owned = 0;
    if (st == NULL) {
        return NULL;
    }
    if (entry_is_foreign(self_entry(self))) {
        return foreign_call_id(st, self_entry(self), "is_running",
                               entry_id(self_entry(self)));
    }
    int err = runtime_entry_state(self_entry(self), &running, &owned);
    if (err < 0) {
        set_err(st, err);
        return NULL;
    }
    return PyBool_FromLong(running);
}

/* Source text given to exec() is compiled here, in the calling
 * interpreter, as the standard library does: a syntax error is a
 * SyntaxError raised by the call (not an ExecutionFailed), the file name
 * is "<script>", str and bytes-like sources are taken as compile() takes
 * them (a coding cookie applies to bytes only), and compile-time warnings
 * go to the caller.  The code object then crosses marshalled, like any
 * other.  New reference, or NULL with an exception set. */
static PyObject *
compile_exec_source(PyObject *source)
{
    PyObject *res = NULL;
    PyObject *compile = compat_import_attr("builtins", "compile");
    if (compile != NULL) {
        /* dont_inherit: the caller's __future__ flags do not apply, as
           they would not in the other interpreter */
        res = PyObject_CallFunction(compile, "Ossii", source, "<script>",
                                    "exec", 0, 1);
        Py_DECREF(compile);
    }
    return res;
}

/* Encode what exec() was given: source text (str or bytes-like), a code
 * object, or a function without arguments or closure (its body runs in
 * __main__).  The target receives marshalled code. */
static msg *
encode_exec_input(module_state *st, PyObject *code)
{
    msg *m = NULL;
    PyObject *marshalled = NULL;
    PyObject *compiled = NULL;
    if (PyUnicode_Check(code) || PyObject_CheckBuffer(code)) {
        compiled = compile_exec_source(code);
        if (compiled == NULL) {
            return NULL;
        }
        code = compiled;
    }
    if (PyFunction_Check(code)) {
        PyObject *fcode = PyFunction_GetCode(code); /* borrowed */
        PyObject *closure = PyFunction_GetClosure(code);
        if (closure != NULL && closure != Py_None) {
            PyErr_Format(st->NotShareableError,
                         "exec() got function %R with a closure; pass a "
                         "function without free variables, or source "
                         "text", code);
            goto done;
        }
        PyObject *argcount = PyObject_GetAttrString(fcode, "co_argcount");
        PyObject *kwonly = argcount == NULL ? NULL
            : PyObject_GetAttrString(fcode, "co_kwonlyargcount");
        PyObject *flags = kwonly == NULL ? NULL
            : PyObject_GetAttrString(fcode, "co_flags");
        int bad = flags == NULL ? -1
            : (PyLong_AsLong(argcount) != 0 || PyLong_AsLong(kwonly) != 0 ||
               (PyLong_AsLong(flags) & (CO_VARARGS | CO_VARKEYWORDS)) != 0);
        Py_XDECREF(argcount);
        Py_XDECREF(kwonly);
        Py_XDECREF(flags);
        if (bad < 0) {
            goto done;
        }
        if (bad) {
            PyErr_Format(PyExc_ValueError,
                         "exec() got function %R that takes arguments; use "
                         "call() to pass arguments", code);
            goto done;
        }
        code = fcode;
    }
    if (PyCode_Check(code)) {
        if (check_no_free_vars(code) < 0) {
            goto done;
        }
        marshalled = PyMarshal_WriteObjectToString(code,
                                                   Py_MARSHAL_VERSION);
        if (marshalled == NULL) {
            goto done;
        }
        m = codec_encode(st, marshalled);
        goto done;
    }
    PyErr_Format(PyExc_TypeError,
                 "exec() expected source text (str or bytes), a code object "
                 "or a function, got %.200s", Py_TYPE(code)->tp_name);
done:
    Py_XDECREF(marshalled);
    Py_XDECREF(compiled);
    return m;
}

/* job_submit for the interpreter of self with an input just encoded (m,
 * freed here; NULL: the encoding failed, with an exception set). */
static PyObject *
job_submit_encoded(module_state *st, PyObject *self, job_kind kind, msg *m)
{
    if (m == NULL) {
        return NULL;
    }
    PyObject *res = job_submit(st, self_entry(self), kind, m);
    msg_free(m);
    return res;
}

static PyObject *
interp_exec(PyObject *self, PyObject *code)
{
    module_state *st = self_state(self);
    if (st == NULL) {
        return NULL;
    }
    return job_submit_encoded(st, self, JOB_EXEC,
                              encode_exec_input(st, code));
}

/* Encode (fn, args, kwargs) for a call job. */
static msg *
encode_call(module_state *st, PyObject *const *args, Py_ssize_t nargs,
            PyObject *kwnames, const char *what)
{
    msg *m = NULL;
    PyObject *targs = NULL;
    PyObject *kwargs = NULL;
    PyObject *packed = NULL;
    if (nargs < 1) {
        PyErr_Format(PyExc_TypeError, "%s() missing the callable", what);
        return NULL;
    }
    if (!PyCallable_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "%s() expected a callable, got %.200s",
                     what, Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    targs = PyTuple_New(nargs - 1);
    if (targs == NULL) {
        goto done;
    }
    for (Py_ssize_t i = 1; i < nargs; i++) {
        PyTuple_SET_ITEM(targs, i - 1, Py_NewRef(args[i]));
    }
    if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0) {
        kwargs = PyDict_New();
        if (kwargs == NULL) {
            goto done;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i),
                               args[nargs + i]) < 0) {
                goto done;
            }
        }
    }
    packed = PyTuple_Pack(3, args[0], targs, kwargs ? kwargs : Py_None);
    if (packed == NULL) {
        goto done;
    }
    m = codec_encode(st, packed);
done:
    Py_XDECREF(targs);
    Py_XDECREF(kwargs);
    Py_XDECREF(packed);
    return m;
}

static PyObject *
interp_call(PyObject *self, PyObject *const *args, size_t nargsf,
            PyObject *kwnames)
{
    module_state *st = self_state(self);
    if (st == NULL) {
        return NULL;
    }
    return job_submit_encoded(st, self, JOB_CALL,
                              encode_call(st, args, PyVectorcall_NARGS(nargsf),
                                          kwnames, "call"));
}

static void
capsule_free_msg(PyObject *capsule)
{
    msg *m = PyCapsule_GetPointer(capsule, "subinterp.msg");
    if (m != NULL) {
        msg_free(m);
    }
}

/* Runs an encoded call (from call_in_thread's thread). */
static PyObject *
interp_call_encoded(PyObject *self, PyObject *capsule)
{
    module_state *st = self_state(self);
    if (st == NULL) {
        return NULL;
    }
    msg *m = PyCapsule_GetPointer(capsule, "subinterp.msg");
    if (m == NULL) {
        return NULL;
    }
    return job_submit(st, self_entry(self), JOB_CALL, m);
}

static PyObject *
interp_call_in_thread(PyObject *self, PyObject *const *args, size_t nargsf,
                      PyObject *kwnames)
{
    module_state *st = self_state(self);
    PyObject *capsule = NULL;
    PyObject *res = NULL;
    if (st == NULL) {
        return NULL;
    }
    /* Encode here, so an unshareable callable fails at the call site. */
    msg *m = encode_call(st, args, PyVectorcall_NARGS(nargsf), kwnames,
                         "call_in_thread");
    if (m == NULL) {
        return NULL;
    }
    capsule = PyCapsule_New(m, "subinterp.msg", capsule_free_msg);
    if (capsule == NULL) {
        msg_free(m);
        return NULL;
    }
    if (st->call_in_thread == NULL) {
        st->call_in_thread = compat_import_attr("subinterp._thread",
                                                "start_call");
        if (st->call_in_thread == NULL) {
            goto done;
        }
    }
    res = PyObject_CallFunctionObjArgs(st->call_in_thread, self, capsule,
                                       NULL);
done:
    Py_DECREF(capsule);
    return res;
}

static PyObject *
interp_prepare_main(PyObject *self, PyObject *args, PyObject *kwargs)
{
    module_state *st = self_state(self);
    PyObject *ns = NULL;
    PyObject *merged = NULL;
    PyObject *res = NULL;
    msg *m = NULL;
    if (st == NULL) {
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "|O:prepare_main", &ns)) {
        return NULL;
    }
    merged = PyDict_New();
    if (merged == NULL) {
        goto done;
    }
    /* What dict(ns, **kwargs) accepts, as the standard library does: a
     * mapping (anything with keys()) or an iterable of pairs. */
    if (ns != NULL && ns != Py_None) {
        int merged_ok = PyObject_HasAttrString(ns, "keys")
            ? PyDict_Merge(merged, ns, 1)
            : PyDict_MergeFromSeq2(merged, ns, 1);
        if (merged_ok < 0) {
            goto done;
        }
    }
    if (kwargs != NULL && PyDict_Update(merged, kwargs) < 0) {
        goto done;
    }
    if (PyDict_GET_SIZE(merged) == 0) {
        PyErr_SetString(PyExc_ValueError,
                        "prepare_main() needs at least one name to bind");
        goto done;
    }
    PyObject *key;
    Py_ssize_t pos = 0;
    while (PyDict_Next(merged, &pos, &key, NULL)) {
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError,
                         "prepare_main() names must be str, got %.200s",
                         Py_TYPE(key)->tp_name);
            goto done;
        }
    }
    m = codec_encode(st, merged);
    if (m == NULL) {
        goto done;
    }
    res = job_submit(st, self_entry(self), JOB_PREPARE_MAIN, m);
done:
    if (m != NULL) {
        msg_free(m);
    }
    Py_XDECREF(merged);
    return res;
}

static PyObject *
interp_close(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    module_state *st = self_state(self);
    if (st == NULL) {
        return NULL;
    }
    if (entry_is_foreign(self_entry(self))) {
        PyObject *r = foreign_call_id(st, self_entry(self), "close",
                                      entry_id(self_entry(self)));
        if (r == NULL) {
            return NULL;
        }
        Py_DECREF(r);
        runtime_entry_ended(self_entry(self));
        Py_RETURN_NONE;
    }
    int err = runtime_close(self_entry(self), 1);
    if (err < 0) {
        set_err(st, err);
        return NULL;
    }
    runtime_close_orphans();
    Py_RETURN_NONE;
}

static PyObject *
interp_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_NewRef(self);
}

static PyObject *
interp_exit(PyObject *self, PyObject *Py_UNUSED(args))
{
    /* closing one that is already gone is fine at the end of a block */
    if (!runtime_entry_alive(self_entry(self))) {
        Py_RETURN_NONE;
    }
    PyObject *res = interp_close(self, NULL);
    module_state *st = self_state(self);
    if (res == NULL && st != NULL &&
        PyErr_ExceptionMatches(st->InterpreterNotFoundError)) {
        /* (a foreign one found gone only now) */
        PyErr_Clear();
        res = Py_NewRef(Py_None);
    }
    return res;
}

/* Pickled as Interpreter(id), like the standard library's: valid in this
 * process while the interpreter lives. */
static PyObject *
interp_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    return Py_BuildValue("(O(L))", (PyObject *)Py_TYPE(self),
                         (long long)entry_id(self_entry(self)));
}

/* The Interpreter object for an id given by the user: an int (bool
 * included, as in the standard library), else TypeError; negative:
 * ValueError; beyond 64 bits: OverflowError; not a live interpreter:
 * InterpreterNotFoundError. */
static PyObject *
interp_from_id(module_state *st, PyObject *arg)
{
    int64_t id;
    if (id_from_object(arg, "interpreter", &id) < 0) {
        return NULL;
    }
    int err = 0;
    interp_entry *e = runtime_lookup(id, &err);
    if (e != NULL && entry_is_foreign(e) &&
        id != PyInterpreterState_GetID(PyInterpreterState_Get())) {
        /* it may be gone since: ask again below */
        entry_decref(e);
        e = NULL;
    }
    if (e == NULL) {
        /* not one of ours: the standard library knows every other */
        PyObject *w = foreign_call_id(st, NULL, "whence", id);
        if (w == NULL) {
            return NULL;
        }
        if (w != Py_None) {
            e = runtime_lookup_foreign(id);
        }
        if (e != NULL && entry_is_foreign(e)) {
            runtime_entry_set_whence(e, whence_intern(w));
        }
        Py_DECREF(w);
        if (e == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_Format(st->InterpreterNotFoundError,
                             "interpreter %lld not found", id);
            }
            return NULL;
        }
    }
    PyObject *res = interp_object_new(st, e);
    entry_decref(e);
    return res;
}

/* Interpreter(id, /): the interpreter with that id. */
static PyObject *
interp_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kwargs)
{
    PyObject *id;
    if (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) {
        PyErr_SetString(PyExc_TypeError,
                        "Interpreter() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "Interpreter", 1, 1, &id)) {
        return NULL;
    }
    module_state *st = get_mod_state_by_type(tp);
    if (st == NULL) {
        return NULL;
    }
    return interp_from_id(st, id);
}

static PyMethodDef interp_methods[] = {
    {"is_running", interp_is_running, METH_NOARGS,
     "is_running($self, /)\n--\n\n"
     "True if the interpreter is running code in some thread (the main "
     "interpreter always is)."},
    {"exec", interp_exec, METH_O,
     "exec($self, code, /)\n--\n\n"
     "Run code in the interpreter's __main__ module, in this thread.\n\n"
     "code is source text, a code object, or a function that takes no "
     "arguments and has no closure (its body runs as if at the top level "
     "of __main__).  An uncaught exception raises ExecutionFailed here."},
    {"call", _PyCFunction_CAST(interp_call),
     METH_FASTCALL | METH_KEYWORDS,
     "call($self, callable, /, *args, **kwargs)\n--\n\n"
     "Call callable(*args, **kwargs) in the interpreter, in this thread, "
     "and return its result.\n\n"
     "The callable crosses by reference (module and qualified name) or as "
     "code; arguments and the result are copied."},
    {"call_in_thread", _PyCFunction_CAST(interp_call_in_thread),
     METH_FASTCALL | METH_KEYWORDS,
     "call_in_thread($self, callable, /, *args, **kwargs)\n--\n\n"
     "Like call(), in a new thread.  Returns the started thread; its "
     "result(timeout=None) method returns the call's result."},
    {"_call_encoded", interp_call_encoded, METH_O, NULL},
    {"prepare_main", _PyCFunction_CAST(interp_prepare_main),
     METH_VARARGS | METH_KEYWORDS,
     "prepare_main($self, ns=None, /, **kwargs)\n--\n\n"
     "Bind the given names in the interpreter's __main__ module."},
    {"close", interp_close, METH_NOARGS,
     "close($self, /)\n--\n\n"
     "Destroy the interpreter.  Raises InterpreterError when it is the "
     "current one or runs code in another thread."},
    {"__enter__", interp_enter, METH_NOARGS, NULL},
    {"__exit__", interp_exit, METH_VARARGS, NULL},
    {"__reduce__", interp_reduce, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef interp_getset[] = {
    {"id", interp_get_id, NULL, "The interpreter's id (an int).", NULL},
    {"whence", interp_get_whence, NULL,
     "Where the interpreter came from: 'runtime init' for the main one, "
     "'subinterp' for ones this package created, and for the others what "
     "the standard library says ('_interpreters module', 'C-API', "
     "'legacy C-API', ...; 'unknown' on 3.12).",
     NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot interp_slots[] = {
    {Py_tp_doc,
     "Interpreter(id, /)\n--\n\n"
     "A handle to an interpreter of this process.\n\n"
     "Create an interpreter with subinterp.create(); Interpreter(id) "
     "returns the handle of a live one (the same object each time, in this "
     "interpreter), or raises InterpreterNotFoundError.  Handles compare "
     "and hash by id; an interpreter created by subinterp is closed when "
     "its last handle goes away, or by close()."},
    {Py_tp_new, interp_tp_new},
    {Py_tp_dealloc, interp_dealloc},
    {Py_tp_traverse, interp_traverse},
    {Py_tp_richcompare, interp_richcompare},
    {Py_tp_hash, interp_hash},
    {Py_tp_repr, interp_repr},
    {Py_tp_methods, interp_methods},
    {Py_tp_getset, interp_getset},
    {0, NULL},
};

static PyType_Spec interp_spec = {
    .name = "subinterp.Interpreter",
    .basicsize = sizeof(InterpreterObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = interp_slots,
};

/* handle kind: how Interpreter handles cross in messages */

static void
kind_incref(void *ref)
{
    entry_incref((interp_entry *)ref);
}

static void
kind_decref(void *ref)
{
    entry_decref((interp_entry *)ref);
}

static PyObject *
kind_wrap(module_state *st, void *ref)
{
    return interp_object_new(st, (interp_entry *)ref);
}

static const handle_kind interp_kind = {
    .name = "Interpreter",
    .tag = 1,
    .incref = kind_incref,
    .decref = kind_decref,
    .wrap = kind_wrap,
};

/* ------------------------------------------------------------------ */
/* configuration                                                       */

/* The named configurations, as the standard library names them. */
static const struct {
    const char *name;
    PyInterpreterConfig cfg;
} config_presets[] = {
#define ISOLATED                                                        \
    {                                                                   \
        .use_main_obmalloc = 0, .allow_fork = 0, .allow_exec = 0,       \
        .allow_threads = 1, .allow_daemon_threads = 0,                  \
        .check_multi_interp_extensions = 1,                             \
        .gil = PyInterpreterConfig_OWN_GIL,                             \
    }
    {"isolated", ISOLATED},
    {"default", ISOLATED},
#undef ISOLATED
    {"legacy", {
        .use_main_obmalloc = 1, .allow_fork = 1, .allow_exec = 1,
        .allow_threads = 1, .allow_daemon_threads = 1,
        .check_multi_interp_extensions = 0,
        .gil = PyInterpreterConfig_SHARED_GIL,
    }},
};

static int
config_preset(const char *name, PyInterpreterConfig *cfg)
{
    for (size_t i = 0; i < sizeof(config_presets) / sizeof(*config_presets);
         i++) {
        if (strcmp(name, config_presets[i].name) == 0) {
            *cfg = config_presets[i].cfg;
            return 0;
        }
    }
    return -1;
}

static int
config_set_field(PyInterpreterConfig *cfg, PyObject *key, PyObject *value)
{
    if (!PyUnicode_Check(key)) {
        PyErr_Format(PyExc_TypeError, "config keys must be str, not %.200s",
                     Py_TYPE(key)->tp_name);
        return -1;
    }
    if (PyUnicode_CompareWithASCIIString(key, "gil") == 0) {
        if (PyUnicode_Check(value)) {
            if (PyUnicode_CompareWithASCIIString(value, "own") == 0) {
                cfg->gil = PyInterpreterConfig_OWN_GIL;
                return 0;
            }
            if (PyUnicode_CompareWithASCIIString(value, "shared") == 0) {
                cfg->gil = PyInterpreterConfig_SHARED_GIL;
                return 0;
            }
            if (PyUnicode_CompareWithASCIIString(value, "default") == 0) {
                cfg->gil = PyInterpreterConfig_DEFAULT_GIL;
                return 0;
            }
        }
        PyErr_Format(PyExc_ValueError,
                     "gil must be 'own', 'shared' or 'default', not %R",
                     value);
        return -1;
    }
    int *field = NULL;
    const char *names[] = {"use_main_obmalloc", "allow_fork", "allow_exec",
                           "allow_threads", "allow_daemon_threads",
                           "check_multi_interp_extensions"};
    int *fields[] = {&cfg->use_main_obmalloc, &cfg->allow_fork,
                     &cfg->allow_exec, &cfg->allow_threads,
                     &cfg->allow_daemon_threads,
                     &cfg->check_multi_interp_extensions};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (PyUnicode_CompareWithASCIIString(key, names[i]) == 0) {
            field = fields[i];
        }
    }
    if (field == NULL) {
        PyErr_Format(PyExc_ValueError,
                     "unknown interpreter config field %R (known: "
                     "use_main_obmalloc, allow_fork, allow_exec, "
                     "allow_threads, allow_daemon_threads, "
                     "check_multi_interp_extensions, gil)", key);
        return -1;
    }
    if (!PyBool_Check(value)) {
        PyErr_Format(PyExc_TypeError, "config field %U must be a bool, not "
                     "%.200s", key, Py_TYPE(value)->tp_name);
        return -1;
    }
    *field = value == Py_True;
    return 0;
}

static int
config_update(PyInterpreterConfig *cfg, PyObject *mapping)
{
    PyObject *items = PyMapping_Items(mapping);
    if (items == NULL) {
        return -1;
    }
    int res = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items) && res == 0; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        /* a Mapping that is not a dict makes the list from its own
           items() */
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_Format(PyExc_TypeError,
                         "config: items() of a %.100s must give (name, "
                         "value) pairs, not %.100s",
                         Py_TYPE(mapping)->tp_name, Py_TYPE(item)->tp_name);
            res = -1;
            break;
        }
        res = config_set_field(cfg, PyTuple_GET_ITEM(item, 0),
                               PyTuple_GET_ITEM(item, 1));
    }
    Py_DECREF(items);
    return res;
}

/* CPython checks these too, with less helpful messages. */
static int
config_check(const PyInterpreterConfig *cfg)
{
    if (cfg->gil == PyInterpreterConfig_OWN_GIL && cfg->use_main_obmalloc) {
        PyErr_SetString(PyExc_ValueError,
                        "invalid interpreter config: an own GIL "
                        "(gil='own') needs its own allocator "
                        "(use_main_obmalloc=False)");
        return -1;
    }
    if (!cfg->use_main_obmalloc && !cfg->check_multi_interp_extensions) {
        PyErr_SetString(PyExc_ValueError,
                        "invalid interpreter config: an own allocator "
                        "(use_main_obmalloc=False) needs "
                        "check_multi_interp_extensions=True (single-phase "
                        "init extension modules cannot be isolated)");
        return -1;
    }
    if (cfg->allow_daemon_threads && !cfg->allow_threads) {
        PyErr_SetString(PyExc_ValueError,
                        "invalid interpreter config: allow_daemon_threads "
                        "needs allow_threads");
        return -1;
    }
    return 0;
}

int
interp_config_from_args(PyObject *config, PyObject *overrides,
                 PyInterpreterConfig *cfg)
{
    if (config == NULL || config == Py_None) {
        config_preset("isolated", cfg);
    }
    else if (PyUnicode_Check(config)) {
        const char *name = PyUnicode_AsUTF8(config);
        if (name == NULL) {
            return -1;
        }
        if (config_preset(name, cfg) < 0) {
            PyErr_Format(PyExc_ValueError,
                         "unknown interpreter config %R (use 'isolated' or "
                         "'legacy', or a mapping of fields)", config);
            return -1;
        }
    }
    else if (PyMapping_Check(config)) {
        config_preset("isolated", cfg);
        if (config_update(cfg, config) < 0) {
            return -1;
        }
    }
    else {
        /* an object with the fields as attributes, like the stdlib's
           types.SimpleNamespace configs: its __dict__, which must be a
           dict (a class's is a read-only proxy of its type's; reaching
           for the dict slot directly would make one in a static type) */
        PyObject *ns = PyType_Check(config)
                           ? NULL
                           : PyObject_GetAttrString(config, "__dict__");
        if (ns == NULL || !PyDict_Check(ns)) {
            Py_XDECREF(ns);
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "config must be a str, a mapping or a namespace, "
                         "not %.200s", Py_TYPE(config)->tp_name);
            return -1;
        }
        config_preset("isolated", cfg);
        int res = config_update(cfg, ns);
        Py_DECREF(ns);
        if (res < 0) {
            return -1;
        }
    }
    if (overrides != NULL && config_update(cfg, overrides) < 0) {
        return -1;
    }
    return config_check(cfg);
}

/* ------------------------------------------------------------------ */
/* module functions                                                    */

void
path_copy_free(path_copy *p)
{
    for (Py_ssize_t i = 0; i < p->n; i++) {
        PyMem_RawFree(p->items[i]);
    }
    PyMem_RawFree(p->items);
    PyMem_RawFree(p->sizes);
}

int
path_copy_take(path_copy *p)
{
    PyObject *path = PySys_GetObject("path"); /* borrowed */
    memset(p, 0, sizeof(*p));
    if (path == NULL || !PyList_Check(path)) {
        return 0;
    }
    Py_ssize_t n = PyList_GET_SIZE(path);
    p->items = PyMem_RawCalloc(n ? n : 1, sizeof(char *));
    p->sizes = PyMem_RawCalloc(n ? n : 1, sizeof(Py_ssize_t));
    if (p->items == NULL || p->sizes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(path, i);
        if (!PyUnicode_Check(item)) {
            continue;
        }
        PyObject *b = PyUnicode_AsEncodedString(item, "utf-8",
                                                "surrogatepass");
        if (b == NULL) {
            return -1;
        }
        Py_ssize_t size = PyBytes_GET_SIZE(b);
        char *copy = PyMem_RawMalloc(size + 1);
        if (copy == NULL) {
            Py_DECREF(b);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(copy, PyBytes_AS_STRING(b), size + 1);
        Py_DECREF(b);
        p->items[p->n] = copy;
        p->sizes[p->n] = size;
        p->n++;
    }
    return 0;
}

/* Inside the new interpreter: install the path.  subinterp._core is not
 * imported here: the first thing that needs it there (a job, a pool
 * worker's loop, an import by user code) imports it through
 * get_current_state().  An interpreter that is made and closed, or kept
 * idle, does not pay the ~1.7 ms and ~0.3 MiB of the import
 * (docs/benchmarks.md, "Where the time and memory go"). */
void
interp_init_new(void *arg)
{
    path_copy *p = (path_copy *)arg;
    PyObject *list = PyList_New(p->n);
    if (list == NULL) {
        goto error;
    }
    for (Py_ssize_t i = 0; i < p->n; i++) {
        PyObject *s = PyUnicode_DecodeUTF8(p->items[i], p->sizes[i],
                                           "surrogatepass");
        if (s == NULL) {
            Py_DECREF(list);
            goto error;
        }
        PyList_SET_ITEM(list, i, s);
    }
    int res = PySys_SetObject("path", list);
    Py_DECREF(list);
    if (res < 0) {
        goto error;
    }
    return;
error:
    /* The interpreter exists; report the problem where it is first used. */
    p->failed = 1;
    if (PyErr_ExceptionMatches(PyExc_SystemExit)) {
        /* Stopped (at exit): PyErr_Print() would end the whole process
           from this thread. */
        PyErr_Clear();
    }
    else {
        PyErr_Print();
    }
}

/* A new Interpreter for e, which the caller's reference is moved into. */
static PyObject *
object_for_entry(PyObject *mod, interp_entry *e)
{
    if (e == NULL) {
        return NULL;
    }
    PyObject *res = interp_object_new(get_mod_state(mod), e);
    entry_decref(e);
    return res;
}

static PyObject *
coremod_create(PyObject *mod, PyObject *args, PyObject *kwargs)
{
    PyObject *config = NULL;
    PyInterpreterConfig cfg;
    path_copy path;
    interp_entry *e = NULL;

    if (!PyArg_ParseTuple(args, "|O:create", &config)) {
        return NULL;
    }
    if (interp_config_from_args(config, kwargs, &cfg) < 0) {
        return NULL;
    }
    runtime_close_orphans();
    if (path_copy_take(&path) < 0) {
        path_copy_free(&path);
        return NULL;
    }
    int err = runtime_create(&cfg, interp_init_new, &path, &e);
    path_copy_free(&path);
    if (err < 0) {
        set_err(get_mod_state(mod), err);
        return NULL;
    }
    return object_for_entry(mod, e);
}

static PyObject *
coremod_get_current(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return object_for_entry(mod, runtime_current());
}

static PyObject *
coremod_get_main(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    return object_for_entry(mod, runtime_main());
}

static PyObject *
coremod_interpreter(PyObject *mod, PyObject *arg)
{
    return interp_from_id(get_mod_state(mod), arg);
}

/* Sort key of list_all(): ids grow with creation, so this is oldest
 * first, as in the standard library. */
static PyObject *
list_all_key(PyObject *Py_UNUSED(mod), PyObject *obj)
{
    return PyObject_GetAttrString(obj, "id");
}

static PyMethodDef list_all_key_def = {
    "_list_all_key", list_all_key, METH_O, NULL,
};

/* Append to res an Interpreter for each id of ids (those closed in the
 * meantime are left out).  0, or -1 with an exception set. */
static int
list_append_own(PyObject *mod, PyObject *res, PyObject *ids)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(ids); i++) {
        PyObject *obj = coremod_interpreter(mod, PyList_GET_ITEM(ids, i));
        if (obj == NULL) {
            /* closed in the meantime */
            PyErr_Clear();
            continue;
        }
        int rc = PyList_Append(res, obj);
        Py_DECREF(obj);
        if (rc < 0) {
            return -1;
        }
    }
    return 0;
}

/* Append to res an Interpreter for each (id, whence) of foreign, the
 * standard library's list, whose id is not in seen.  0, or -1 with an
 * exception set. */
static int
list_append_foreign(module_state *st, PyObject *res, PyObject *foreign,
                    PyObject *seen)
{
    /* a tuple of its (id, whence) pairs, checked: it comes from Python
       code (subinterp._foreign), and converting an id may run more */
    PyObject *pairs = PySequence_Tuple(foreign);
    if (pairs == NULL) {
        return -1;
    }
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyTuple_GET_SIZE(pairs); i++) {
        PyObject *item = PyTuple_GET_ITEM(pairs, i);
        long long id;
        PyObject *w;
        if (!PyTuple_Check(item)) {
            PyErr_Format(PyExc_TypeError, "_foreign.ids() must give "
                         "(id, whence) tuples, not %.100s",
                         Py_TYPE(item)->tp_name);
            rc = -1;
            break;
        }
        if (!PyArg_ParseTuple(item, "LO", &id, &w)) {
            rc = -1;
            break;
        }
        int known = PySet_Contains(seen, PyTuple_GET_ITEM(item, 0));
        if (known != 0) {
            rc = known < 0 ? -1 : 0;
            continue;
        }
        interp_entry *e = runtime_lookup_foreign(id);
        if (e == NULL) {
            rc = PyErr_Occurred() ? -1 : 0;
            continue;
        }
        runtime_entry_set_whence(e, whence_intern(w));
        PyObject *obj = interp_object_new(st, e);
        entry_decref(e);
        if (obj == NULL || PyList_Append(res, obj) < 0) {
            rc = -1;
        }
        Py_XDECREF(obj);
    }
    Py_DECREF(pairs);
    return rc;
}

/* list.sort(key=lambda interp: interp.id).  0, or -1 with an exception
 * set. */
static int
list_sort_by_id(PyObject *list)
{
    PyObject *empty = PyTuple_New(0);
    PyObject *key = PyCFunction_New(&list_all_key_def, NULL);
    PyObject *kw = key == NULL ? NULL : Py_BuildValue("{sO}", "key", key);
    PyObject *sort = kw == NULL ? NULL
        : PyObject_GetAttrString(list, "sort");
    PyObject *r = sort == NULL || empty == NULL ? NULL
        : PyObject_Call(sort, empty, kw);
    Py_XDECREF(empty);
    Py_XDECREF(key);
    Py_XDECREF(kw);
    Py_XDECREF(sort);
    if (r == NULL) {
        return -1;
    }
    Py_DECREF(r);
    return 0;
}

static PyObject *
coremod_list_all(PyObject *mod, PyObject *Py_UNUSED(ignored))
{
    module_state *st = get_mod_state(mod);
    PyObject *res = NULL;
    PyObject *seen = NULL;
    PyObject *foreign = NULL;
    PyObject *empty = NULL;
    PyObject *ids = runtime_list_ids();
    if (ids == NULL) {
        return NULL;
    }
    /* the interpreters subinterp did not create, from the standard
       library (with whence) */
    empty = PyTuple_New(0);
    if (empty == NULL) {
        goto error;
    }
    foreign = foreign_call(st, NULL, "ids", empty);
    seen = PySet_New(ids);
    res = PyList_New(0);
    if (foreign == NULL || seen == NULL || res == NULL ||
        list_append_own(mod, res, ids) < 0 ||
        list_append_foreign(st, res, foreign, seen) < 0 ||
        list_sort_by_id(res) < 0) {
        goto error;
    }
    goto done;
error:
    Py_CLEAR(res);
done:
    Py_XDECREF(seen);
    Py_XDECREF(foreign);
    Py_XDECREF(empty);
    Py_DECREF(ids);
    return res;
}

static PyObject *
coremod_warn_if_open_at_exit(PyObject *mod, PyObject *arg)
{
    module_state *st = get_mod_state(mod);
    interp_entry *e = st == NULL ? NULL : interp_object_entry(st, arg);
    if (e == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_TypeError,
                         "expected an Interpreter, got %.200s",
                         Py_TYPE(arg)->tp_name);
        }
        return NULL;
    }
    runtime_set_warn_at_exit(e);
    Py_RETURN_NONE;
}

static PyMethodDef interp_module_methods[] = {
    {"create", _PyCFunction_CAST(coremod_create),
     METH_VARARGS | METH_KEYWORDS,
     "create(config='isolated', /, **fields)\n--\n\n"
     "Create an interpreter and return its Interpreter handle."},
    {"get_current", coremod_get_current, METH_NOARGS,
     "get_current()\n--\n\nThe interpreter running this code."},
    {"get_main", coremod_get_main, METH_NOARGS,
     "get_main()\n--\n\nThe main interpreter."},
    {"list_all", coremod_list_all, METH_NOARGS,
     "list_all()\n--\n\n"
     "Every interpreter of the process, oldest first."},
    {"_interpreter", coremod_interpreter, METH_O,
     "_interpreter(id)\n--\n\nThe Interpreter with that id."},
    {"_warn_if_open_at_exit", coremod_warn_if_open_at_exit, METH_O,
     "_warn_if_open_at_exit(interp)\n--\n\n"
     "Give the standard library's RuntimeWarning (\"remaining "
     "subinterpreters\") if interp is still open at exit."},
    {"_run_pending", coremod_run_pending, METH_NOARGS,
     "_run_pending()\n--\n\n"
     "Run the call this thread is making into this interpreter through "
     "the standard library (subinterp/_foreign.py); nothing else."},
    {NULL, NULL, 0, NULL},
};

int
interp_init(PyObject *mod, module_state *st)
{
    st->InterpreterType = (PyTypeObject *)PyType_FromModuleAndSpec(
        mod, &interp_spec, NULL);
    if (st->InterpreterType == NULL) {
        return -1;
    }
    if (PyModule_AddType(mod, st->InterpreterType) < 0) {
        return -1;
    }
    if (codec_register_handle_type(st, st->InterpreterType) < 0) {
        return -1;
    }
    return PyModule_AddFunctions(mod, interp_module_methods);
}
