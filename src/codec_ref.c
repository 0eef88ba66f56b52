/* codec_ref.c - functions and classes by reference, both sides.
 *
 * The sender decides how a function or class crosses
 * (codec_function_ref): by reference, as pickle sends them, when
 * sys.modules[obj.__module__] has obj under obj.__qualname__ ("module:
 * qualname"); functions of the main script as (path, spec, qualname), the
 * receiver importing the script as __mp_main__ (multiprocessing's spawn
 * does the same); stateless functions (no closure, no globals but
 * builtins) as marshalled code; and every other function or class by
 * value through cloudpickle, when that is installed and switched on, or
 * not at all (NotShareableError saying why and what to do).
 *
 * The receiver finds them again (codec_resolve_global, codec_resolve_main)
 * with the same two steps the sender checked: import the module
 * (import_module) and walk the qualified name (qualname_lookup), and
 * caches what it found.  The only part in Python (subinterp._codec) is
 * finding or importing the main script's module, and the check that the
 * script keeps its top-level code under the __main__ guard.
 */
#include "codec_impl.h"

#include <marshal.h>
#include <stdarg.h>

/* ------------------------------------------------------------------ */
/* the steps both sides take                                           */

/* The module called name: imported if needed when trusted, else only if
 * this interpreter has it already (CorruptMessageError otherwise). */
PyObject *
codec_import_module(codec_state *cs, PyObject *name, int trusted)
{
    if (trusted) {
        return PyImport_Import(name);
    }
    PyObject *mod = PyImport_GetModule(name);
    if (mod == NULL && !PyErr_Occurred()) {
        codec_corrupt(cs, "refusing to import module %R for an untrusted "
                      "message", name);
    }
    return mod;
}

/* getattr chain "a.b.c" from obj: new reference, or NULL with the
 * exception of the step that failed. */
static PyObject *
qualname_lookup(PyObject *obj, PyObject *qualname)
{
    PyObject *dot = PyUnicode_FromOrdinal('.');
    PyObject *parts = dot ? PyUnicode_Split(qualname, dot, -1) : NULL;
    PyObject *cur = parts ? Py_NewRef(obj) : NULL;
    Py_XDECREF(dot);
    for (Py_ssize_t i = 0; cur != NULL && i < PyList_GET_SIZE(parts); i++) {
        Py_SETREF(cur, PyObject_GetAttr(cur, PyList_GET_ITEM(parts, i)));
    }
    Py_XDECREF(parts);
    return cur;
}

/* Add a note (printf-style, as PyUnicode_FromFormat) to the exception
 * being raised: what the receiver was looking up, and what to check. */
static void
note_lookup_failure(const char *fmt, ...)
{
    va_list va;
    va_start(va, fmt);
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *note = PyUnicode_FromFormatV(fmt, va);
    va_end(va);
    if (note != NULL) {
        exc_add_note(exc, note);
        Py_DECREF(note);
    }
    PyErr_Clear();
    PyErr_SetRaisedException(exc);
}

/* ------------------------------------------------------------------ */
/* receiver side                                                       */

static void
cache_store(codec_state *cs, PyObject *key, PyObject *obj)
{
    if (cs->ref_cache == NULL) {
        cs->ref_cache = PyDict_New();
        if (cs->ref_cache == NULL) {
            PyErr_Clear();
            return;
        }
    }
    if (PyDict_GET_SIZE(cs->ref_cache) >= 4096) {
        PyDict_Clear(cs->ref_cache);
    }
    if (PyDict_SetItem(cs->ref_cache, key, obj) < 0) {
        PyErr_Clear();
    }
}

static PyObject *
cache_lookup(codec_state *cs, PyObject *key)
{
    if (cs->ref_cache == NULL) {
        return NULL;
    }
    PyObject *obj = PyDict_GetItemWithError(cs->ref_cache, key);
    if (obj == NULL) {
        PyErr_Clear();
        return NULL;
    }
    return Py_NewRef(obj);
}

PyObject *
codec_resolve_global(codec_state *cs, PyObject *key, int trusted)
{
    PyObject *obj = cache_lookup(cs, key);
    PyObject *modname = NULL, *qualname = NULL, *mod = NULL;
    if (obj != NULL) {
        return obj;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(key);
    Py_ssize_t colon = PyUnicode_FindChar(key, ':', 0, len, 1);
    if (colon < 0) {
        if (colon == -1) {
            codec_corrupt(cs, "bad global reference %R", key);
        }
        return NULL;
    }
    modname = PyUnicode_Substring(key, 0, colon);
    qualname = PyUnicode_Substring(key, colon + 1, len);
    if (modname == NULL || qualname == NULL) {
        goto done;
    }
    mod = codec_import_module(cs, modname, trusted);
    if (mod != NULL) {
        obj = qualname_lookup(mod, qualname);
    }
    if (obj != NULL) {
        cache_store(cs, key, obj);
    }
    else if (!PyErr_ExceptionMatches(cs->CorruptMessageError)) {
        note_lookup_failure(
            "subinterp: while looking up %U.%U, which another interpreter "
            "sent by reference (is that module importable here? new "
            "interpreters start with their creator's sys.path)",
            modname, qualname);
    }
done:
    Py_XDECREF(modname);
    Py_XDECREF(qualname);
    Py_XDECREF(mod);
    return obj;
}

PyObject *
codec_resolve_main(codec_state *cs, PyObject *path, PyObject *spec,
                   PyObject *qualname)
{
    PyObject *key = PyTuple_Pack(3, path, spec, qualname);
    PyObject *obj = NULL, *mod = NULL;
    if (key == NULL) {
        return NULL;
    }
    obj = cache_lookup(cs, key);
    if (obj != NULL) {
        goto done;
    }
    PyObject *helpers = codec_helpers(cs);
    if (helpers == NULL) {
        goto done;
    }
    mod = PyObject_CallMethod(helpers, "main_module", "OO", path, spec);
    if (mod != NULL) {
        obj = qualname_lookup(mod, qualname);
    }
    if (obj != NULL) {
        cache_store(cs, key, obj);
    }
    else if (PyErr_ExceptionMatches(PyExc_Exception)) {
        note_lookup_failure(
            "subinterp: while looking up %U of the main script (%S) in this "
            "interpreter; it imports the script as __mp_main__ (so code "
            "under `if __name__ == '__main__':` does not run), and the "
            "object must be defined at its top level",
            qualname, spec != Py_None ? spec : path);
    }
done:
    Py_DECREF(key);
    Py_XDECREF(mod);
    return obj;
}

PyObject *
codec_make_code_func(codec_state *cs, PyObject *modname,
                     PyObject *code_bytes, PyObject *defaults,
                     PyObject *kwdefaults)
{
    PyObject *code = NULL, *globals = NULL, *func = NULL;
    PyObject *freevars = NULL;
    code = PyMarshal_ReadObjectFromString(PyBytes_AS_STRING(code_bytes),
                                          PyBytes_GET_SIZE(code_bytes));
    if (code == NULL) {
        goto done;
    }
    if (!PyCode_Check(code)) {
        codec_corrupt(cs, "function code is not a code object");
        goto done;
    }
    freevars = PyCode_GetFreevars((PyCodeObject *)code);
    if (freevars == NULL) {
        goto done;
    }
    if (PyTuple_GET_SIZE(freevars) != 0) {
        codec_corrupt(cs, "function code needs a closure");
        goto done;
    }
    if (cs->builtins_mod == NULL) {
        cs->builtins_mod = PyImport_ImportModule("builtins");
        if (cs->builtins_mod == NULL) {
            goto done;
        }
    }
    /* The function had no globals but builtins: give it fresh ones. */
    globals = PyDict_New();
    if (globals == NULL ||
        PyDict_SetItem(globals, cs->s_builtins, cs->builtins_mod) < 0 ||
        PyDict_SetItem(globals, cs->s___name__,
                       modname != Py_None ? modname : cs->s_main) < 0) {
        goto done;
    }
    func = PyFunction_New(code, globals);
    if (func == NULL) {
        goto done;
    }
    if ((defaults != Py_None && PyFunction_SetDefaults(func, defaults) < 0) ||
        (kwdefaults != Py_None &&
         PyFunction_SetKwDefaults(func, kwdefaults) < 0)) {
        Py_CLEAR(func);
    }
done:
    Py_XDECREF(code);
    Py_XDECREF(globals);
    Py_XDECREF(freevars);
    return func;
}

/* ------------------------------------------------------------------ */
/* functions by value: the process-wide switch                         */

/* -1 until first read from the environment, then 0 or 1.  Process-wide:
 * a worker that sends a closure back follows the same setting as the
 * program that configured it. */
static atomic_int by_value_setting = -1;

int
codec_by_value_enabled(void)
{
    int v = atomic_load(&by_value_setting);
    if (v < 0) {
        const char *env = getenv("SUBINTERP_FUNCTIONS_BY_VALUE");
        int initial = !(env != NULL && strcmp(env, "0") == 0);
        /* whoever reads first decides; a concurrent set() wins */
        atomic_compare_exchange_strong(&by_value_setting, &v, initial);
        v = atomic_load(&by_value_setting);
    }
    return v;
}

int
codec_set_by_value(int enabled)
{
    (void)codec_by_value_enabled();
    return atomic_exchange(&by_value_setting, enabled != 0);
}

/* ------------------------------------------------------------------ */
/* sender side                                                         */

/* The sender's cache: id(obj) -> (kind, a, b, obj), for the functions
 * and classes found by name; by identity, since a metaclass may define
 * __eq__ and __hash__.  1 found (*how, *a, *b set), 0 not, -1 error. */
static int
send_cache_get(codec_state *cs, PyObject *obj, fref_kind *how,
               PyObject **a, PyObject **b)
{
    if (cs->send_cache == NULL) {
        return 0;
    }
    PyObject *key = PyLong_FromVoidPtr(obj);
    if (key == NULL) {
        return -1;
    }
    PyObject *cached = PyDict_GetItemWithError(cs->send_cache, key);
    Py_DECREF(key);
    if (cached == NULL || PyTuple_GET_ITEM(cached, 3) != obj) {
        return PyErr_Occurred() ? -1 : 0;
    }
    *how = (fref_kind)PyLong_AsLong(PyTuple_GET_ITEM(cached, 0));
    *a = Py_NewRef(PyTuple_GET_ITEM(cached, 1));
    *b = Py_NewRef(PyTuple_GET_ITEM(cached, 2));
    return 1;
}

static void
send_cache_put(codec_state *cs, PyObject *obj, fref_kind how, PyObject *a,
               PyObject *b)
{
    if (cs->send_cache == NULL) {
        cs->send_cache = PyDict_New();
        if (cs->send_cache == NULL) {
            PyErr_Clear();
            return;
        }
    }
    if (PyDict_GET_SIZE(cs->send_cache) >= 4096) {
        PyDict_Clear(cs->send_cache);
    }
    PyObject *k = PyLong_FromLong((long)how);
    PyObject *t = k ? PyTuple_Pack(4, k, a, b, obj) : NULL;
    PyObject *id = t ? PyLong_FromVoidPtr(obj) : NULL;
    if (id == NULL || PyDict_SetItem(cs->send_cache, id, t) < 0) {
        PyErr_Clear();
    }
    Py_XDECREF(k);
    Py_XDECREF(t);
    Py_XDECREF(id);
}

static PyObject *
str_attr(PyObject *obj, PyObject *name)
{
    PyObject *v = NULL;
    if (codec_getattr_opt(obj, name, &v) < 0) {
        PyErr_Clear();
        return NULL;
    }
    if (v != NULL && !PyUnicode_Check(v)) {
        Py_CLEAR(v);
    }
    return v;
}

/* 1 if the script at path keeps its top-level code under the __main__
 * guard, 0 if not, -1 on error (subinterp._codec.main_guarded). */
static int
main_script_guarded(codec_state *cs, PyObject *path)
{
    PyObject *helpers = codec_helpers(cs);
    if (helpers == NULL) {
        return -1;
    }
    PyObject *r = PyObject_CallMethod(helpers, "main_guarded", "O", path);
    if (r == NULL) {
        return -1;
    }
    int res = PyObject_IsTrue(r);
    Py_DECREF(r);
    return res;
}

/* For a function of __main__ / __mp_main__: (path or None, spec name or
 * None) of that module; both None when it cannot be imported elsewhere. */
static void
main_origin(codec_state *cs, PyObject *mod, PyObject **path,
            PyObject **spec)
{
    *path = str_attr(mod, cs->s_file);
    *spec = NULL;
    PyObject *specobj = NULL;
    if (codec_getattr_opt(mod, cs->s_spec, &specobj) < 0) {
        PyErr_Clear();
    }
    if (specobj != NULL && specobj != Py_None) {
        PyObject *name = str_attr(specobj, cs->s_name);
        if (name != NULL &&
            PyUnicode_CompareWithASCIIString(name, "__main__") != 0 &&
            PyUnicode_CompareWithASCIIString(name, "__mp_main__") != 0) {
            *spec = name;
        }
        else {
            Py_XDECREF(name);
        }
    }
    Py_XDECREF(specobj);
    /* "<stdin>" (python - < script.py) and the like name no file */
    if (*path != NULL && PyUnicode_GET_LENGTH(*path) > 0 &&
        PyUnicode_READ_CHAR(*path, 0) == '<') {
        Py_CLEAR(*path);
    }
    if (*path == NULL) {
        *path = Py_NewRef(Py_None);
    }
    if (*spec == NULL) {
        *spec = Py_NewRef(Py_None);
    }
}

/* Why the __main__ module mod (no file, no spec) cannot be imported by
 * another interpreter, in words its user recognizes. */
static const char *
main_unimportable_reason(codec_state *cs, PyObject *mod)
{
    PyObject *file = str_attr(mod, cs->s_file);
    int stdin_script = file != NULL &&
        PyUnicode_CompareWithASCIIString(file, "<stdin>") == 0;
    Py_XDECREF(file);
    if (stdin_script) {
        return "it belongs to the __main__ module of a script read from "
               "standard input, which other interpreters cannot import";
    }
    PyObject *argv = PySys_GetObject("argv");   /* borrowed */
    if (argv != NULL && PyList_Check(argv) && PyList_GET_SIZE(argv) > 0 &&
        PyUnicode_Check(PyList_GET_ITEM(argv, 0)) &&
        PyUnicode_CompareWithASCIIString(PyList_GET_ITEM(argv, 0),
                                         "-c") == 0) {
        return "it belongs to the __main__ module of `python -c` code, "
               "which other interpreters cannot import";
    }
    return "it belongs to the __main__ module of an interactive session "
           "or of exec'd code, which other interpreters cannot import";
}

/* An object of the main script module mod: 1 (*a = (path, spec,
 * qualname)), 0 when other interpreters cannot import the script (*reason
 * says why), -1 error. */
static int
fref_main(codec_state *cs, PyObject *mod, PyObject *qualname,
          PyObject **a, const char **reason)
{
    PyObject *path, *spec;
    int res = 0;
    main_origin(cs, mod, &path, &spec);
    if (path == Py_None && spec == Py_None) {
        *reason = main_unimportable_reason(cs, mod);
        goto done;
    }
    if (path != Py_None) {
        /* The receiver imports the script: its top-level code must be
           under the __main__ guard, or it would run again there (and
           again, if it starts interpreters). */
        int guarded = main_script_guarded(cs, path);
        if (guarded <= 0) {
            res = guarded;
            *reason = "it belongs to the main script, which has no "
                      "`if __name__ == \"__main__\":` block, so importing "
                      "it in another interpreter would run all of the "
                      "script's code again there; put the script's "
                      "top-level code under that block, or move it into "
                      "a module";
            goto done;
        }
    }
    *a = PyTuple_Pack(3, path, spec, qualname);
    res = *a == NULL ? -1 : 1;
done:
    Py_DECREF(path);
    Py_DECREF(spec);
    return res;
}

/* Can obj (with those __module__ and __qualname__, or NULL) be found by
 * name in another interpreter?  1 yes (*how, *a, *b set), 0 no (*reason
 * says why), -1 error. */
static int
fref_by_name(codec_state *cs, PyObject *obj, PyObject *modname,
             PyObject *qualname, fref_kind *how, PyObject **a,
             PyObject **b, const char **reason)
{
    PyObject *mod = NULL, *found = NULL;
    int res = 0;
    if (modname == NULL || qualname == NULL) {
        *reason = "it has no __module__ / __qualname__";
        return 0;
    }
    if (PyUnicode_FindChar(qualname, '<', 0, PyUnicode_GET_LENGTH(qualname),
                           1) >= 0) {
        *reason = PyUnicode_CompareWithASCIIString(qualname, "<lambda>") == 0
            ? "it is a lambda"
            : "it is defined inside a function";
        return 0;
    }
    int is_main = PyUnicode_Compare(modname, cs->s_main) == 0 ||
                  PyUnicode_Compare(modname, cs->s_mp_main) == 0;
    mod = PyImport_GetModule(modname);
    if (mod == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        if (is_main) {
            *reason = "its module is not loaded";
            return 0;
        }
        /* not imported here (rare: made by a module since removed from
           sys.modules); the receiver imports it */
        mod = PyImport_Import(modname);
        if (mod == NULL) {
            *reason = "its module cannot be imported";
            return 0;
        }
    }
    found = qualname_lookup(mod, qualname);
    if (found != obj) {
        *reason = "its module has a different object under that name";
        goto done;
    }
    if (is_main) {
        *how = FREF_MAIN;
        res = fref_main(cs, mod, qualname, a, reason);
    }
    else {
        *how = FREF_GLOBAL;
        *a = PyUnicode_FromFormat("%U:%U", modname, qualname);
        res = *a == NULL ? -1 : 1;
    }
    if (res > 0) {
        *b = Py_NewRef(Py_None);
    }
done:
    Py_DECREF(mod);
    Py_XDECREF(found);
    return res;
}

/* May a function or class that can cross neither by reference nor as
 * code cross by value, through cloudpickle?  1 yes; 0 no, and *hint says
 * why and what to do (the tail of the NotShareableError); -1 error. */
static int
by_value_usable(codec_state *cs, const char **hint)
{
    if (!codec_by_value_enabled()) {
        *hint = "; sending functions by value is switched off "
                "(subinterp.set_functions_by_value(True) turns it on)";
        return 0;
    }
    if (!codec_pickle_kw_ok()) {
        /* cloudpickle.Pickler() calls _pickle with keywords: gh-119213 */
        *hint = "; it could be sent by value through cloudpickle, but "
                "not on Python 3.12.0-3.12.3 before the main interpreter "
                "imported subinterp (gh-119213): import subinterp there "
                "first, or use Python 3.12.4 or newer";
        return 0;
    }
    if (cs->by_value_ok) {
        return 1;
    }
    PyObject *helpers = codec_helpers(cs);
    if (helpers == NULL) {
        return -1;
    }
    PyObject *r = PyObject_CallMethod(helpers, "by_value_available", NULL);
    if (r == NULL) {
        return -1;
    }
    cs->by_value_ok = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (cs->by_value_ok < 0) {
        cs->by_value_ok = 0;
        return -1;
    }
    if (!cs->by_value_ok) {
        *hint = "; to send it by value instead, install cloudpickle: "
                "pip install subinterp[cloudpickle]";
    }
    return cs->by_value_ok;
}

/* Why obj can be sent neither by name nor as plain code. */
typedef enum {
    NOT_CODE_CLASS,         /* a class */
    NOT_CODE_CLOSURE,       /* a function with a closure */
    NOT_CODE_GLOBALS,       /* a function using globals (names: detail) */
} not_code_why;

/* By value when that is usable (*how = FREF_VALUE, 0), else -1 with a
 * NotShareableError that says why and what to do. */
static int
fref_by_value(codec_state *cs, module_state *st, PyObject *obj,
              const char *reason, not_code_why why, PyObject *detail,
              fref_kind *how)
{
    const char *hint = "";
    int usable = by_value_usable(cs, &hint);
    if (usable != 0) {
        *how = FREF_VALUE;
        return usable > 0 ? 0 : -1;
    }
    switch (why) {
    case NOT_CODE_CLASS:
        PyErr_Format(st->NotShareableError,
                     "cannot share class %R: other interpreters find "
                     "classes by module and name, and this one cannot "
                     "be found that way (%s); define it at module "
                     "level in a module the other interpreter can "
                     "import%s", obj, reason, hint);
        break;
    case NOT_CODE_CLOSURE: {
        PyObject *code = PyFunction_GetCode(obj);
        PyObject *freevars = PyCode_GetFreevars((PyCodeObject *)code);
        if (freevars == NULL) {
            return -1;
        }
        PyErr_Format(st->NotShareableError,
                     "cannot share function %R: it cannot be found by name "
                     "in another interpreter (%s), and it is a closure "
                     "over %R, which cannot be sent as plain code; define "
                     "it at module level and pass those values as "
                     "arguments (e.g. with functools.partial)%s", obj,
                     reason, freevars, hint);
        Py_DECREF(freevars);
        break;
    }
    case NOT_CODE_GLOBALS:
        PyErr_Format(st->NotShareableError,
                     "cannot share function %R: it cannot be found by name "
                     "in another interpreter (%s), and it uses the global "
                     "names %R, so it cannot be sent as plain code either; "
                     "define it with def at module level, in a module the "
                     "other interpreter can import%s", obj, reason,
                     detail, hint);
        break;
    }
    return -1;
}

static int
names_in(PyObject *names, PyObject *globals, PyObject *found)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        int r = PyDict_Contains(globals, name);
        if (r < 0) {
            return -1;
        }
        if (r && !PySequence_Contains(found, name) &&
            PyList_Append(found, name) < 0) {
            return -1;
        }
    }
    return 0;
}

/* The global names code (and the code nested in it) may read from
 * globals: every co_names entry defined there.  (co_names also holds
 * attribute names, so this errs on the side of "uses globals".) */
static int
code_globals_used(PyObject *code, PyObject *globals, PyObject *found,
                  int depth)
{
    int res = -1;
    PyObject *names = NULL, *consts = NULL;
    if (depth > 50) {
        return 0;
    }
    names = PyObject_GetAttrString(code, "co_names");
    consts = names ? PyObject_GetAttrString(code, "co_consts") : NULL;
    if (consts == NULL || !PyTuple_Check(names) || !PyTuple_Check(consts)) {
        goto done;
    }
    if (names_in(names, globals, found) < 0) {
        goto done;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(consts); i++) {
        PyObject *c = PyTuple_GET_ITEM(consts, i);
        if (PyCode_Check(c) &&
            code_globals_used(c, globals, found, depth + 1) < 0) {
            goto done;
        }
    }
    res = 0;
done:
    Py_XDECREF(names);
    Py_XDECREF(consts);
    return res;
}

/* obj cannot be found by name (reason): as marshalled code when it is a
 * stateless function, else by value, else refused.  0 or -1. */
static int
fref_not_by_name(codec_state *cs, module_state *st, PyObject *obj,
                 PyObject *modname, const char *reason, fref_kind *how,
                 PyObject **a, PyObject **b)
{
    if (!Py_IS_TYPE(obj, &PyFunction_Type)) {
        if (PyType_Check(obj)) {
            return fref_by_value(cs, st, obj, reason, NOT_CODE_CLASS, NULL,
                                 how);
        }
        *how = FREF_NONE;   /* a builtin: pickle says what it can do */
        return 0;
    }
    PyObject *closure = PyFunction_GetClosure(obj);
    PyObject *code = PyFunction_GetCode(obj);
    if (closure != NULL && closure != Py_None) {
        return fref_by_value(cs, st, obj, reason, NOT_CODE_CLOSURE, NULL,
                             how);
    }
    PyObject *globals_used = PyList_New(0);
    if (globals_used == NULL ||
        code_globals_used(code, PyFunction_GetGlobals(obj), globals_used,
                          0) < 0) {
        Py_XDECREF(globals_used);
        return -1;
    }
    int res = 0;
    if (PyList_GET_SIZE(globals_used) > 0) {
        res = fref_by_value(cs, st, obj, reason, NOT_CODE_GLOBALS,
                            globals_used, how);
    }
    else {
        *how = FREF_CODE;
        *a = PyMarshal_WriteObjectToString(code, Py_MARSHAL_VERSION);
        *b = Py_NewRef(modname != NULL ? modname : Py_None);
        res = *a == NULL ? -1 : 0;
    }
    Py_DECREF(globals_used);
    return res;
}

int
codec_function_ref(codec_state *cs, module_state *st, PyObject *obj,
                   fref_kind *how, PyObject **a, PyObject **b)
{
    const char *reason = NULL;
    *a = *b = NULL;
    int res = send_cache_get(cs, obj, how, a, b);
    if (res != 0) {
        return res < 0 ? -1 : 0;
    }
    PyObject *modname = str_attr(obj, cs->s_module);
    PyObject *qualname = str_attr(obj, cs->s_qualname);
    res = fref_by_name(cs, obj, modname, qualname, how, a, b, &reason);
    if (res > 0) {
        send_cache_put(cs, obj, *how, *a, *b);
        res = 0;
    }
    else if (res == 0) {
        PyErr_Clear();
        /* not cached: such functions are often made on the fly */
        res = fref_not_by_name(cs, st, obj, modname, reason, how, a, b);
    }
    if (res < 0) {
        Py_CLEAR(*a);
        Py_CLEAR(*b);
    }
    Py_XDECREF(modname);
    Py_XDECREF(qualname);
    return res;
}
