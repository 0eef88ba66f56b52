/* compat.h - differences between the supported CPython versions
 * (3.12 to 3.15) live here and nowhere else. */
#ifndef SUBINTERP_COMPAT_H
#define SUBINTERP_COMPAT_H

#include <Python.h>
#include <pthread.h>

#if PY_VERSION_HEX < 0x030C0000
#  error "subinterp needs CPython 3.12 or newer (per-interpreter GIL)"
#endif

#if PY_VERSION_HEX >= 0x030D0000
#  define SUBINTERP_HAS_MOD_GIL 1
#else
#  define SUBINTERP_HAS_MOD_GIL 0
#endif

/* Whether a new interpreter's first thread state must be kept for as long
 * as the interpreter lives.  3.12 makes it in memory of the interpreter
 * itself and, once it was deleted, aborts when the next thread state is
 * made there ("init_threadstate: thread state already initialized", seen
 * on 3.12.1; its standard library keeps that thread state too).  3.13
 * and later allocate them alike. */
#if PY_VERSION_HEX < 0x030D0000
#  define SUBINTERP_KEEP_FIRST_TSTATE 1
#else
#  define SUBINTERP_KEEP_FIRST_TSTATE 0
#endif

/* PyImport_ImportModuleAttrString() is new in 3.14. */
static inline PyObject *
compat_import_attr(const char *modname, const char *attrname)
{
    PyObject *mod = PyImport_ImportModule(modname);
    if (mod == NULL) {
        return NULL;
    }
    PyObject *attr = PyObject_GetAttrString(mod, attrname);
    Py_DECREF(mod);
    return attr;
}

/* Our own locks are plain pthread mutexes on every version: they are
 * taken without a GIL and paired with condition variables. */
typedef pthread_mutex_t sub_mutex;
#define sub_mutex_init(m) pthread_mutex_init((m), NULL)
#define sub_mutex_lock(m) pthread_mutex_lock(m)
#define sub_mutex_unlock(m) pthread_mutex_unlock(m)
#define sub_mutex_destroy(m) pthread_mutex_destroy(m)

#endif /* SUBINTERP_COMPAT_H */
