/* objects.c - the registry of process-wide objects and their handles.
 *
 * A process-wide object (queue, channel, lock, ...) starts with an `sobj`:
 * its type, an id unique in the process and a C reference count.  Every
 * live object is on one list (registry.mutex), so that it can be found by
 * id (unpickling a handle, interpreters.Queue(id)), told when an
 * interpreter was destroyed (unbound queue items, abandoned locks), and
 * made consistent around fork().
 *
 * A handle is the Python object of one interpreter that refers to an
 * sobj (HandleObject: a handle kind and one C reference).  Handles cross
 * between interpreters in messages by kind and pointer; the receiver gets
 * a new handle to the same object, the live one when the kind keeps a
 * table of them (one object per id, as the standard library has).
 *
 * Lock order (see fork.c for the whole process): registry.mutex -> one
 * object mutex -> (select only) several object mutexes in address order.
 * Nothing takes registry.mutex while holding an object mutex
 * (sobj_decref, msg_free run after unlocking), and nothing calls into
 * Python while holding any of them.
 */
#include "wait.h"

#include <stdlib.h>

/* ------------------------------------------------------------------ */
/* the registry                                                        */

static struct {
    pthread_mutex_t mutex;
    sobj head;              /* mutex: circular list, sentinel */
    int64_t next_id;        /* mutex */
    /* fork: the object mutexes locked by prepare, in address order */
    sub_mutex **fork_locked;
    sobj **fork_objs;
    size_t fork_n;
} registry = {
    .mutex = PTHREAD_MUTEX_INITIALIZER,
    .head = {.prev = &registry.head, .next = &registry.head},
    .next_id = 1,
};

void
sobj_register(sobj *o, const sobj_type *type)
{
    o->type = type;
    o->refcount = 1;
    atomic_init(&o->inner, 0);
    pthread_mutex_lock(&registry.mutex);
    o->id = registry.next_id++;
    o->prev = registry.head.prev;
    o->next = &registry.head;
    registry.head.prev->next = o;
    registry.head.prev = o;
    pthread_mutex_unlock(&registry.mutex);
}

void
sobj_incref(sobj *o)
{
    pthread_mutex_lock(&registry.mutex);
    o->refcount++;
    pthread_mutex_unlock(&registry.mutex);
}

void
sobj_decref(sobj *o)
{
    int last = 0, drop = 0;
    pthread_mutex_lock(&registry.mutex);
    assert(o->refcount > 0);
    if (--o->refcount == 0) {
        o->prev->next = o->next;
        o->next->prev = o->prev;
        o->prev = o->next = NULL;
        last = 1;
    }
    else if (o->type->drop_buffer != NULL &&
             o->refcount == atomic_load(&o->inner)) {
        /* Only the object's own buffered items refer to it: no handle,
           no other message, no blocked operation (each holds a reference
           of its own).  Nobody can take those items any more; drop them,
           holding a reference so that the object outlives the drop. */
        o->refcount++;
        drop = 1;
    }
    pthread_mutex_unlock(&registry.mutex);
    if (last) {
        o->type->destroy(o);
    }
    else if (drop) {
        o->type->drop_buffer(o);
        sobj_decref(o);
    }
}

sobj *
sobj_lookup(int64_t id, const sobj_type *type)
{
    sobj *res = NULL;
    pthread_mutex_lock(&registry.mutex);
    for (sobj *o = registry.head.next; o != &registry.head; o = o->next) {
        if (o->id == id) {
            if (type == NULL || o->type == type) {
                o->refcount++;
                res = o;
            }
            break;
        }
    }
    pthread_mutex_unlock(&registry.mutex);
    return res;
}

PyObject *
sobj_list_ids(const sobj_type *type)
{
    PyObject *res = NULL;
    int64_t *ids = NULL;
    size_t n = 0, i = 0;

    pthread_mutex_lock(&registry.mutex);
    for (sobj *o = registry.head.next; o != &registry.head; o = o->next) {
        n += o->type == type;
    }
    ids = PyMem_RawMalloc((n ? n : 1) * sizeof(int64_t));
    if (ids != NULL) {
        for (sobj *o = registry.head.next; o != &registry.head;
             o = o->next) {
            if (o->type == type) {
                ids[i++] = o->id;
            }
        }
    }
    pthread_mutex_unlock(&registry.mutex);
    if (ids == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    res = PyList_New((Py_ssize_t)n);
    if (res == NULL) {
        goto done;
    }
    for (i = 0; i < n; i++) {
        PyObject *v = PyLong_FromLongLong(ids[i]);
        if (v == NULL) {
            Py_CLEAR(res);
            goto done;
        }
        PyList_SET_ITEM(res, (Py_ssize_t)i, v);
    }
done:
    PyMem_RawFree(ids);
    return res;
}

/* An interpreter was destroyed: tell every object that cares (unbound
 * queue items, locks it held).  No GIL, no lock held on entry. */
static void
registry_interp_closed(int64_t interp_id)
{
    sobj **objs = NULL;
    size_t n = 0, i = 0;

    wait_resume_interp(interp_id);

    pthread_mutex_lock(&registry.mutex);
    for (sobj *o = registry.head.next; o != &registry.head; o = o->next) {
        n += o->type->interp_closed != NULL;
    }
    if (n > 0) {
        objs = PyMem_RawMalloc(n * sizeof(sobj *));
    }
    if (objs != NULL) {
        for (sobj *o = registry.head.next; o != &registry.head;
             o = o->next) {
            if (o->type->interp_closed != NULL) {
                o->refcount++;
                objs[i++] = o;
            }
        }
    }
    pthread_mutex_unlock(&registry.mutex);
    /* XXX Out of memory here leaves unbound items bound. */
    for (i = 0; objs != NULL && i < n; i++) {
        objs[i]->type->interp_closed(objs[i], interp_id);
        sobj_decref(objs[i]);
    }
    PyMem_RawFree(objs);
}

static int
cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (sub_mutex *const *)a;
    uintptr_t y = (uintptr_t) * (sub_mutex *const *)b;
    return x < y ? -1 : x > y;
}

/* Entries of the fork table (fork.c).  Hold every mutex so that the child
 * gets consistent objects: registry.mutex, then the object mutexes in
 * address order, as select takes several. */
void
objects_fork_prepare(void)
{
    pthread_mutex_lock(&registry.mutex);
    size_t n = 0;
    for (sobj *o = registry.head.next; o != &registry.head; o = o->next) {
        n++;
    }
    registry.fork_n = 0;
    registry.fork_locked = malloc((n ? n : 1) * sizeof(sub_mutex *));
    registry.fork_objs = malloc((n ? n : 1) * sizeof(sobj *));
    if (registry.fork_locked == NULL || registry.fork_objs == NULL) {
        /* XXX Out of memory at fork: the child may see a half-updated
           object if another thread was in the middle of an operation. */
        free(registry.fork_locked);
        free(registry.fork_objs);
        registry.fork_locked = NULL;
        registry.fork_objs = NULL;
        return;
    }
    size_t m = 0;
    for (sobj *o = registry.head.next; o != &registry.head; o = o->next) {
        registry.fork_objs[n - 1 - m++] = o;
        if (o->type->mutex != NULL) {
            registry.fork_locked[registry.fork_n++] = o->type->mutex(o);
        }
    }
    qsort(registry.fork_locked, registry.fork_n, sizeof(sub_mutex *),
          cmp_ptr);
    for (size_t i = 0; i < registry.fork_n; i++) {
        sub_mutex_lock(registry.fork_locked[i]);
    }
    registry.fork_n = n;   /* from here on: number of objects */
}

void
objects_fork_parent(void)
{
    if (registry.fork_locked != NULL) {
        for (size_t i = 0; i < registry.fork_n; i++) {
            sobj *o = registry.fork_objs[i];
            if (o->type->mutex != NULL) {
                sub_mutex_unlock(o->type->mutex(o));
            }
        }
    }
    free(registry.fork_locked);
    free(registry.fork_objs);
    registry.fork_locked = NULL;
    registry.fork_objs = NULL;
    pthread_mutex_unlock(&registry.mutex);
}

/* In the child only the forking thread exists: every blocked waiter is
 * gone with its thread. */
void
objects_fork_child(void)
{
    pthread_mutex_init(&registry.mutex, NULL);
    for (sobj *o = registry.head.next; o != &registry.head; o = o->next) {
        if (o->type->mutex != NULL) {
            wait_mutex_init(o->type->mutex(o));
        }
        if (o->type->after_fork != NULL) {
            o->type->after_fork(o);
        }
    }
    free(registry.fork_locked);
    free(registry.fork_objs);
    registry.fork_locked = NULL;
    registry.fork_objs = NULL;
}

/* ------------------------------------------------------------------ */
/* handles                                                             */

PyObject *
handle_new(PyTypeObject *tp, const handle_kind *kind, sobj *o)
{
    HandleObject *self = (HandleObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    kind->incref(o);
    self->kind = kind;
    self->ref = o;
    return (PyObject *)self;
}

PyObject *
handle_get(module_state *st, PyTypeObject *tp, const handle_kind *kind,
           sobj *o)
{
    PyObject **table = kind->cache != NULL ? kind->cache(st) : NULL;
    PyObject *res = table != NULL ? handle_cache_get(*table, o->id) : NULL;
    if (res != NULL) {
        return res;
    }
    res = handle_new(tp, kind, o);
    if (res != NULL && table != NULL &&
        handle_cache_add(table, o->id, res) < 0) {
        Py_CLEAR(res);
    }
    return res;
}

void
handle_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    HandleObject *h = (HandleObject *)self;
    sobj *o = (sobj *)h->ref;
    const handle_kind *kind = h->kind;
    if (kind != NULL && kind->cache != NULL && o != NULL) {
        /* NULL once the module state was cleared (interpreter teardown):
           the table is gone then */
        PyObject **table = kind->cache(dealloc_state(tp));
        if (table != NULL) {
            handle_cache_remove(*table, o->id, self);
        }
    }
    tp->tp_free(self);
    Py_DECREF(tp);
    if (o != NULL) {
        /* the kind's: a channel counts its receive ends */
        kind->decref(o);
    }
}

sobj *
handle_sobj(PyObject *obj, const handle_kind **kind)
{
    /* Every handle type of a process-wide object, and only those, frees
       its instances with handle_dealloc. */
    if (Py_TYPE(obj)->tp_dealloc != handle_dealloc) {
        return NULL;
    }
    *kind = ((HandleObject *)obj)->kind;
    return (sobj *)((HandleObject *)obj)->ref;
}

PyObject *
handle_richcompare(PyObject *a, PyObject *b, int op)
{
    if (Py_TYPE(a) != Py_TYPE(b) || (op != Py_EQ && op != Py_NE)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    int eq = ((HandleObject *)a)->ref == ((HandleObject *)b)->ref;
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

Py_hash_t
handle_hash(PyObject *self)
{
    Py_hash_t h = (Py_hash_t)((sobj *)((HandleObject *)self)->ref)->id;
    return h == -1 ? -2 : h;
}

PyObject *
handle_get_id(PyObject *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(((sobj *)((HandleObject *)self)->ref)->id);
}

/* Pickle by id, valid inside this process while some handle or message
 * keeps the object alive (like the stdlib's queues). */
PyObject *
handle_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *fn = compat_import_attr("subinterp._core", "_handle_by_id");
    if (fn == NULL) {
        return NULL;
    }
    HandleObject *h = (HandleObject *)self;
    return Py_BuildValue("(N(Li))", fn, (long long)((sobj *)h->ref)->id,
                         (int)h->kind->tag);
}

int
handle_type_add(PyObject *mod, module_state *st, PyType_Spec *spec,
                PyTypeObject *base, PyTypeObject **slot)
{
    int res = -1;
    PyObject *tp = PyType_FromModuleAndSpec(mod, spec, (PyObject *)base);
    if (tp == NULL) {
        goto done;
    }
    if (base == NULL && PyModule_AddType(mod, (PyTypeObject *)tp) < 0) {
        goto done;
    }
    if (codec_register_handle_type(st, (PyTypeObject *)tp) < 0) {
        goto done;
    }
    *slot = (PyTypeObject *)Py_NewRef(tp);
    res = 0;
done:
    Py_XDECREF(tp);
    return res;
}

/* ------------------------------------------------------------------ */
/* module functions                                                    */

/* Unpickle a handle: _handle_by_id(id, tag). */
static PyObject *
coremod_handle_by_id(PyObject *mod, PyObject *args)
{
    long long id;
    int tag;
    PyObject *res = NULL;
    sobj *o = NULL;

    if (!PyArg_ParseTuple(args, "Li:_handle_by_id", &id, &tag)) {
        return NULL;
    }
    o = sobj_lookup(id, NULL);
    for (int i = 0; o != NULL && i < 2; i++) {
        const handle_kind *k = o->type->kinds[i];
        if (k != NULL && k->tag == tag) {
            res = k->wrap(get_mod_state(mod), o);
            goto done;
        }
    }
    set_err(get_mod_state(mod),
            tag == TAG_QUEUE ? ERR_QUEUE_NOT_FOUND
            : tag == TAG_RECV_CHANNEL || tag == TAG_SEND_CHANNEL
                ? ERR_CHANNEL_NOT_FOUND
                : ERR_OBJECT_NOT_FOUND,
            id);
done:
    if (o != NULL) {
        sobj_decref(o);
    }
    return res;
}

static PyObject *
coremod_interrupt_waits(PyObject *Py_UNUSED(mod), PyObject *arg)
{
    long long id = PyLong_AsLongLong(arg);
    if (id == -1 && PyErr_Occurred()) {
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    wait_interrupt_interp(id);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

/* _exception(name): an exception class of queues, channels or locks, made
 * on first use (each component makes its own). */
static PyObject *
coremod_exception(PyObject *mod, PyObject *name)
{
    module_state *st = get_mod_state(mod);
    if (queue_exceptions_ensure(st) < 0 ||
        channel_exceptions_ensure(st) < 0 ||
        sync_exceptions_ensure(st) < 0) {
        return NULL;
    }
    return PyObject_GetAttr(mod, name);
}

static PyMethodDef objects_functions[] = {
    {"_handle_by_id", coremod_handle_by_id, METH_VARARGS,
     "_handle_by_id(id, tag, /)\n--\n\n"
     "A new handle to a live queue, channel end or lock (unpickling)."},
    {"_exception", coremod_exception, METH_O,
     "_exception(name, /)\n--\n\n"
     "The exception class `name` of queues, channels and locks; they are "
     "made on first use (their bases live in the queue module)."},
    {"_interrupt_waits", coremod_interrupt_waits, METH_O,
     "_interrupt_waits(interp_id, /)\n--\n\n"
     "Make every queue, channel, select and lock wait inside that "
     "interpreter raise SystemExit, now and until it is destroyed."},
    {NULL, NULL, 0, NULL},
};

/* ------------------------------------------------------------------ */
/* init                                                                */

static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static int hooks_failed;

/* Once per process, by the first interpreter that imports the module
 * (its GIL held); the runtime's hook table is never full then. */
static void
add_hooks_once(void)
{
    hooks_failed = runtime_add_closed_hook(registry_interp_closed) < 0;
}

int
objects_init(PyObject *mod, module_state *Py_UNUSED(st))
{
    (void)pthread_once(&hooks_once, add_hooks_once);
    if (hooks_failed) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_SystemError,
                            "subinterp: the registry's hook is missing");
        }
        return -1;
    }
    return PyModule_AddFunctions(mod, objects_functions);
}
