/* objects.h - process-wide objects (queues, channels, locks) and their
 * handles: the registry of objects.c.
 */
#ifndef SUBINTERP_OBJECTS_H
#define SUBINTERP_OBJECTS_H

#include "subinterp.h"

#include <stdatomic.h>

typedef struct sobj sobj;
struct fifo;
struct item;

/* What select() may do with a FIFO reached through a handle. */
enum { FIFO_OP_RECV = 1, FIFO_OP_SEND = 2 };

typedef struct {
    const char *name;
    /* Free everything.  Called once the last reference went, with no lock
       held (the object is off the registry). */
    void (*destroy)(sobj *o);
    /* Interpreter `id` was destroyed (no GIL, no lock held; the object is
       referenced by the caller for the duration).  May be NULL. */
    void (*interp_closed)(sobj *o, int64_t id);
    /* The object's own mutex, for fork; NULL if none. */
    sub_mutex *(*mutex)(sobj *o);
    /* In the child after fork: forget every waiter. */
    void (*after_fork)(sobj *o);
    /* The handle kinds that refer to it (channels have two ends). */
    const handle_kind *kinds[2];
    /* Only references held by items in the object's own buffer are left
       (refcount == inner): nobody can ever take those items, so drop
       them, which breaks the cycle.  No lock held; the caller holds a
       reference for the duration.  NULL for objects without a buffer. */
    void (*drop_buffer)(sobj *o);

    /* Objects around a FIFO (queues, channels; NULL for the others), as
       select() reaches them without knowing their kind:
       fifo_of        the FIFO behind a handle of `kind` on o; *ops says
                      what select() may do with it (FIFO_OP_*), and
                      *unboundop what items sent through it do when
                      their interpreter is destroyed;
       item_encode    an object into an item for the FIFO (0 or -1 with
                      an exception);
       item_to_object a received item into the object (see
                      queue_item_to_object in wait.h);
       closed_err     the err_code of a case on the FIFO once closed. */
    struct fifo *(*fifo_of)(sobj *o, const handle_kind *kind, int *ops,
                            int *unboundop);
    int (*item_encode)(module_state *st, PyObject *obj, int unboundop,
                       struct item *out);
    PyObject *(*item_to_object)(module_state *st, PyObject *source,
                                struct fifo *f, struct item *it,
                                PyObject **taken);
    int closed_err;
} sobj_type;

struct sobj {
    const sobj_type *type;  /* immutable */
    int64_t id;             /* immutable, unique in the process */
    int64_t refcount;       /* registry.mutex */
    /* The part of refcount held by messages waiting in the object's own
       buffer (a queue that holds an item with a handle to itself).
       Changed under the object's mutex, read under registry.mutex, hence
       atomic.  It never exceeds what those items really hold: it goes up
       after an item entered the buffer and down when it leaves, while
       the item's references are still counted in refcount. */
    _Atomic int64_t inner;
    sobj *prev, *next;      /* registry.mutex */
};

/* Register a new object with one reference.  Never fails. */
void sobj_register(sobj *o, const sobj_type *type);
void sobj_incref(sobj *o);
/* Any thread, no GIL needed, no object mutex held. */
void sobj_decref(sobj *o);
/* New reference to the live object with that id and type (any type when
 * type is NULL), or NULL. */
sobj *sobj_lookup(int64_t id, const sobj_type *type);
/* A new list of the ids of the live objects of a type. */
PyObject *sobj_list_ids(const sobj_type *type);

/* ------------------------------------------------------------------ */
/* handles                                                             */

/* Stable handle tags (messages carry them; the Interpreter is 1). */
enum {
    TAG_QUEUE = 10,
    TAG_RECV_CHANNEL = 11,
    TAG_SEND_CHANNEL = 12,
    TAG_LOCK = 13,
    TAG_RLOCK = 14,
    TAG_EVENT = 15,
    TAG_SEMAPHORE = 16,
    TAG_BOUNDED_SEMAPHORE = 17,
    TAG_BARRIER = 18,
    TAG_INTERP_QUEUE = 19,  /* subinterp.interpreters.Queue (queue.c) */
};

/* A new handle of type tp on o (takes a new reference to o). */
PyObject *handle_new(PyTypeObject *tp, const handle_kind *kind, sobj *o);
/* The handle of type tp on o in this interpreter: the live one when the
 * kind keeps a table of them (kind->cache), else a new one. */
PyObject *handle_get(module_state *st, PyTypeObject *tp,
                     const handle_kind *kind, sobj *o);
/* The object behind obj and the handle's kind (*kind), or NULL when obj
 * is not a handle of a process-wide object.  Borrowed. */
sobj *handle_sobj(PyObject *obj, const handle_kind **kind);
/* Shared slots of every handle type of a process-wide object (its
 * tp_dealloc must be handle_dealloc: handle_sobj tells them so). */
void handle_dealloc(PyObject *self);
PyObject *handle_richcompare(PyObject *a, PyObject *b, int op);
Py_hash_t handle_hash(PyObject *self);
PyObject *handle_reduce(PyObject *self, PyObject *Py_UNUSED(ignored));
PyObject *handle_get_id(PyObject *self, void *Py_UNUSED(closure));
/* The slots every handle type of a process-wide object has. */
#define HANDLE_TYPE_SLOTS                                                  \
    {Py_tp_dealloc, handle_dealloc},                                       \
        {Py_tp_richcompare, handle_richcompare},                           \
        {Py_tp_hash, handle_hash}
/* Make a heap type of handles (a subclass of base when not NULL; only a
 * type without base is added to the module) and let its handles cross in
 * messages.  0, or -1 with an exception. */
int handle_type_add(PyObject *mod, module_state *st, PyType_Spec *spec,
                    PyTypeObject *base, PyTypeObject **slot);

#endif /* SUBINTERP_OBJECTS_H */
