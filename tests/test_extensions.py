"""Extension modules that cannot load in an interpreter: the ImportError
says which module, why, and what to do (subinterp/_extensions.py).

The modules are real: the standard library's ``_testsinglephase`` and
tiny extensions built here with setuptools: ``_sp_basic`` (single-phase
init, no state), ``sp_pkg._sp_once`` (multi-phase init that refuses every
interpreter but the first to load it, as numpy, PyO3 and Cython modules
do) and ``_sp_needs`` (single-phase init that imports ``sp_pkg._sp_once``).
"""

import concurrent.futures
import importlib
import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
from script_helpers import run_script

import subinterp
from subinterp import BrokenInterpreterPool, ExecutionFailed
from subinterp._extensions import explain_import_error

REFUSED = "does not support loading in subinterpreters"

SP_BASIC = r"""
#include <Python.h>

/* Single-phase init and no global state: an import that CPython refuses
   (after running this function) leaves nothing behind. */
static PyObject *
ping(PyObject *mod, PyObject *unused)
{
    return PyLong_FromLong(42);
}

static PyMethodDef methods[] = {
    {"ping", ping, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef def = {
    PyModuleDef_HEAD_INIT, "_sp_basic", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__sp_basic(void)
{
    return PyModule_Create(&def);
}
"""

SP_ONCE = r"""
#include <Python.h>

/* Multi-phase init, allowed in interpreters that share the main GIL, and
   its own check that only one interpreter per process loads it (numpy's
   message). */
static int64_t first_interp = -1;   /* guarded by the main GIL */

static int
exec_mod(PyObject *mod)
{
    int64_t id = PyInterpreterState_GetID(PyInterpreterState_Get());
    if (first_interp == -1) {
        first_interp = id;
    }
    else if (first_interp != id) {
        PyErr_SetString(PyExc_ImportError,
                        "cannot load module more than once per process");
        return -1;
    }
    return PyModule_AddIntConstant(mod, "answer", 42);
}

static PyModuleDef_Slot slots[] = {
    {Py_mod_exec, exec_mod},
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_SUPPORTED},
    {0, NULL},
};

static struct PyModuleDef def = {
    PyModuleDef_HEAD_INIT, "_sp_once", NULL, 0, NULL, slots,
};

PyMODINIT_FUNC
PyInit__sp_once(void)
{
    return PyModuleDef_Init(&def);
}
"""

SP_NEEDS = r"""
#include <Python.h>

/* Single-phase init that imports sp_pkg._sp_once, as an f2py module of
   scipy imports numpy. */
static struct PyModuleDef def = {
    PyModuleDef_HEAD_INIT, "_sp_needs", NULL, -1, NULL,
};

PyMODINIT_FUNC
PyInit__sp_needs(void)
{
    PyObject *dep = PyImport_ImportModule("sp_pkg._sp_once");
    if (dep == NULL) {
        return NULL;
    }
    Py_DECREF(dep);
    return PyModule_Create(&def);
}
"""

SETUP = """
from setuptools import Extension, setup
setup(
    name="sp-test-modules",
    ext_modules=[
        Extension("_sp_basic", ["sp_basic.c"]),
        Extension("sp_pkg._sp_once", ["sp_once.c"]),
        Extension("_sp_needs", ["sp_needs.c"]),
    ],
)
"""


@pytest.fixture(scope="module")
def ext_dir(tmp_path_factory):
    """A folder with _sp_basic and sp_pkg (sp_pkg/__init__.py imports
    sp_pkg._sp_once, as a package imports its compiled part), built for
    this Python."""
    pytest.importorskip("setuptools", reason="building test extensions needs setuptools")
    d = tmp_path_factory.mktemp("extensions")
    (d / "sp_basic.c").write_text(SP_BASIC)
    (d / "sp_once.c").write_text(SP_ONCE)
    (d / "sp_needs.c").write_text(SP_NEEDS)
    (d / "setup.py").write_text(SETUP)
    (d / "sp_pkg").mkdir()
    (d / "sp_pkg" / "__init__.py").write_text("from . import _sp_once\n")
    proc = subprocess.run(
        [sys.executable, "setup.py", "build_ext", "--inplace", "-q"],
        cwd=d, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return str(d)


@pytest.fixture
def on_path(ext_dir, monkeypatch):
    """ext_dir on sys.path: interpreters created now start with it."""
    monkeypatch.syspath_prepend(ext_dir)
    return ext_dir


def try_import(name):
    """Import name; return its outcome as text (runs in a worker)."""
    try:
        importlib.import_module(name)
    except ImportError as exc:
        return f"ImportError: {exc}"
    return "ok"


def check_refused(text, name):
    """text explains that name was refused in an isolated interpreter."""
    assert f"cannot import {name} in this interpreter" in text
    assert "single-phase init" in text
    assert 'config="legacy"' in text
    assert "share the main GIL" in text
    assert "ProcessPoolExecutor" in text
    assert "docs/extensions.md" in text


# ---------------------------------------------------------------------------
# an isolated interpreter refuses a single-phase module


def test_exec_import_is_explained(on_path):
    with subinterp.create() as interp:
        with pytest.raises(ExecutionFailed) as info:
            interp.exec("import _sp_basic")
    excinfo = info.value.excinfo
    assert excinfo.type.__name__ == "ImportError"
    check_refused(excinfo.msg, "_sp_basic")
    # the original, as the cause
    assert f"module _sp_basic {REFUSED}" in excinfo.errdisplay
    assert "direct cause" in excinfo.errdisplay


def test_call_import_is_explained(on_path):
    with subinterp.create() as interp:
        with pytest.raises(ExecutionFailed) as info:
            interp.call(importlib.import_module, "_sp_basic")
        check_refused(info.value.excinfo.msg, "_sp_basic")
        # the interpreter is still usable, and other modules load
        assert interp.call(try_import, "json") == "ok"


@pytest.mark.filterwarnings(
    "ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_call_in_thread_import_is_explained(on_path):
    with subinterp.create() as interp:
        t = interp.call_in_thread(importlib.import_module, "_sp_basic")
        with pytest.raises(ExecutionFailed) as info:
            t.result()
    check_refused(info.value.excinfo.msg, "_sp_basic")


def test_pool_task_import_is_explained(on_path):
    with subinterp.Pool(1) as pool:
        fut = pool.submit(importlib.import_module, "_sp_basic")
        with pytest.raises(ImportError) as info:
            fut.result()
        # the pool still works
        assert pool.submit(abs, -3).result() == 3
    exc = info.value
    assert type(exc) is ImportError  # `except ImportError` still works
    assert exc.name == "_sp_basic"
    check_refused(str(exc), "_sp_basic")
    # the remote traceback, with the original message, is the cause
    assert isinstance(exc.__cause__, subinterp.RemoteTraceback)
    assert f"module _sp_basic {REFUSED}" in str(exc.__cause__)


def test_pool_map_import_is_explained(on_path):
    with subinterp.Pool(1) as pool:
        with pytest.raises(ImportError, match="cannot import _sp_basic"):
            list(pool.map(importlib.import_module, ["json", "_sp_basic"]))


def test_pool_initializer_import_is_explained(on_path):
    with subinterp.Pool(1, initializer=importlib.import_module,
                        initargs=("_sp_basic",)) as pool:
        fut = pool.submit(abs, -1)
        with pytest.raises(BrokenInterpreterPool) as info:
            fut.result()
    text = str(info.value)
    assert "initializer failed: ImportError: " in text
    check_refused(text, "_sp_basic")


def test_worker_code_sees_the_original(on_path):
    # Only what leaves the interpreter is explained: code there that
    # catches the ImportError (e.g. to fall back to a pure-Python module)
    # gets CPython's exception unchanged.
    with subinterp.create() as interp:
        assert interp.call(try_import, "_sp_basic") == (
            f"ImportError: module _sp_basic {REFUSED}")


def test_other_import_errors_unchanged(on_path):
    with subinterp.create() as interp:
        with pytest.raises(ExecutionFailed) as info:
            interp.exec("import no_such_module_here")
        assert info.value.excinfo.type.__name__ == "ModuleNotFoundError"
        assert info.value.excinfo.msg == "No module named 'no_such_module_here'"
        with pytest.raises(ExecutionFailed) as info:
            interp.exec("raise ImportError('plain')")
        assert info.value.excinfo.msg == "plain"
    with subinterp.Pool(1) as pool:
        with pytest.raises(ModuleNotFoundError, match="^No module named"):
            pool.submit(importlib.import_module, "no_such_module_here").result()


def test_explained_once():
    # An explained error that crosses again (e.g. a pool task that ran a
    # task of another pool) is not explained a second time.
    first = explain_import_error(ImportError(f"module m {REFUSED}"))
    assert first is not None and first.name == "m"
    assert first.__cause__.args == (f"module m {REFUSED}",)
    assert explain_import_error(first) is None
    wrapped = ImportError("wrapped")
    wrapped.__cause__ = first
    assert explain_import_error(wrapped) is None


def test_explain_finds_the_refusal_in_the_chain():
    # numpy and pandas re-raise their own ImportError; CPython's refusal
    # is in the cause or context, or only in the text.
    inner = ImportError(f"module numpy._core._multiarray_umath {REFUSED}")
    outer = ImportError("\n\nIMPORTANT: PLEASE READ THIS ...")
    outer.__context__ = inner
    new = explain_import_error(outer)
    assert new.name == "numpy._core._multiarray_umath"
    assert new.__cause__ is outer
    once = explain_import_error(
        ImportError("module 'curses' can only be loaded once per process"))
    assert once.name == "curses"
    assert "loads in only one interpreter per process" in str(once)
    text_only = ImportError(f"Unable to import required dependencies:\n"
                            f"numpy: module numpy.x {REFUSED}")
    assert explain_import_error(text_only).name == "numpy.x"
    assert explain_import_error(ImportError("something else")) is None
    assert explain_import_error(ModuleNotFoundError("No module named 'x'")) is None


def test_testsinglephase_is_explained():
    # The standard library's own single-phase test module (built with
    # CPython's tests).  In a fresh process: its init function keeps C
    # globals that another interpreter's refused import would free again
    # (a crash on 3.12; CPython runs the init function before refusing).
    if importlib.util.find_spec("_testsinglephase") is None:
        pytest.skip("this CPython build has no _testsinglephase")
    proc = run_script("""
        import subinterp
        with subinterp.create() as interp:
            try:
                interp.exec("import _testsinglephase")
            except subinterp.ExecutionFailed as exc:
                print(exc.excinfo.type.__name__)
                print(exc.excinfo.msg)
        """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ImportError\n")
    check_refused(proc.stdout, "_testsinglephase")


# ---------------------------------------------------------------------------
# legacy interpreters (in fresh processes: a module that loads once per
# process remembers its first interpreter for the process's lifetime)


def run_with_path(ext_dir, code):
    proc = run_script(f"import sys\nsys.path.insert(0, {ext_dir!r})\n"
                      + textwrap.dedent(code))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_legacy_loads_single_phase(ext_dir):
    out = run_with_path(ext_dir, """
        import subinterp
        with subinterp.create(config="legacy") as interp:
            interp.exec("import _sp_basic")
            print(interp.call(eval, "_sp_basic.ping()"))
        """)
    assert out == "42\n"


def test_once_per_process_is_explained(ext_dir):
    out = run_with_path(ext_dir, """
        import importlib
        import subinterp
        a = subinterp.create(config="legacy")
        b = subinterp.create(config="legacy")
        a.exec("import sp_pkg")
        print(a.call(eval, "sp_pkg._sp_once.answer"))
        for what in ("exec", "call"):
            try:
                if what == "exec":
                    b.exec("import sp_pkg")
                else:
                    b.call(importlib.import_module, "sp_pkg._sp_once")
            except subinterp.ExecutionFailed as exc:
                print(what, exc.excinfo.type.__name__)
                print(exc.excinfo.msg)
        with subinterp.Pool(1, config="legacy") as pool:
            try:
                pool.submit(importlib.import_module, "sp_pkg").result()
            except ImportError as exc:
                print("pool", exc.name)
                print(exc)
        b.close()
        a.close()
        """)
    assert out.startswith("42\n")
    for what in ("exec", "call"):
        assert f"\n{what} ImportError\n" in out
    assert "\npool sp_pkg._sp_once\n" in out
    # the module is named: from the import statement of sp_pkg, from
    # import_module's argument
    assert out.count("cannot import sp_pkg._sp_once in this interpreter: "
                     "it is an extension module that loads in only one "
                     "interpreter per process") == 3
    assert out.count("use the module in one interpreter only") == 3
    assert out.count("docs/extensions.md") == 3
    assert 'config="legacy"' not in out  # no help here


def test_main_interpreter_first_is_explained(ext_dir):
    # A legacy interpreter loaded sp_pkg._sp_once, then imports _sp_needs
    # (single-phase).  3.12 loads it there.  3.13+ loads it in the main
    # interpreter first, whose import of sp_pkg._sp_once is refused there
    # (as scipy's f2py modules fail on numpy); 3.13 passes that error on,
    # 3.14+ raises a generic one and prints the cause.
    out = run_with_path(ext_dir, """
        import subinterp
        with subinterp.create(config="legacy") as interp:
            interp.exec("import sp_pkg")
            try:
                interp.exec("import _sp_needs")
                print("loaded")
            except subinterp.ExecutionFailed as exc:
                print(exc.excinfo.type.__name__)
                print(exc.excinfo.msg)
                print(exc.excinfo.errdisplay)
        """)
    if sys.version_info < (3, 13):
        assert out == "loaded\n"
        return
    if sys.version_info < (3, 14):
        assert out.startswith("ImportError\ncannot import sp_pkg._sp_once in "
                              "this interpreter: it is an extension module "
                              "that loads in only one interpreter per process")
        assert "cannot load module more than once per process" in out
    else:
        assert out.startswith("ImportError\ncannot import an extension module "
                              "in this interpreter: CPython loads a "
                              "single-phase extension module for a legacy "
                              "interpreter in the main interpreter first, "
                              "and that failed")
        assert "failed to import from subinterpreter due to exception" in out
    assert "use the module in one interpreter only" in out
