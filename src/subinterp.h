/* subinterp.h - declarations shared by the components of subinterp._core.
 *
 * The core has two kinds of state (docs/design.md has the long version):
 *
 *   process-wide   plain C structs, no PyObject *, protected by our own
 *                  mutexes: the registry of interpreters (runtime.c), the
 *                  queues, channels, pools and shared buffers.
 *   per-interp     module_state below: heap types, exception classes and
 *                  cached objects of one interpreter's copy of the module.
 *
 * A Python object never crosses between interpreters.  What crosses is a
 * message (codec.c): bytes in raw memory plus counted references to
 * process-wide objects.
 */
#ifndef SUBINTERP_H
#define SUBINTERP_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdatomic.h>
#include <stdint.h>

#include "compat.h"

/* ------------------------------------------------------------------ */
/* Invariant checks.  Builds without NDEBUG (make debug, the ASan run,  */
/* which the suite runs) validate the shared structures where they     */
/* change: a FIFO's counts and links, a waiter list, a blob's counts,   */
/* a pool's task states.  Each structure has one `*_check` function    */
/* that uses INVARIANT(); release builds compile the calls away.        */

#ifndef NDEBUG
#  define SUBINTERP_CHECKS 1
#else
#  define SUBINTERP_CHECKS 0
#endif

static inline void
invariant_failed(const char *file, int line, const char *cond,
                 const char *what)
{
    fprintf(stderr, "subinterp: invariant broken at %s:%d: %s (%s)\n",
            file, line, what, cond);
    fflush(stderr);
    abort();
}

#define INVARIANT(cond, what)                                         \
    do {                                                              \
        if (SUBINTERP_CHECKS && !(cond)) {                            \
            invariant_failed(__FILE__, __LINE__, #cond, (what));      \
        }                                                             \
    } while (0)

/* ------------------------------------------------------------------ */
/* Errors.  One convention for every internal function that can fail:   */
/* it returns 0 (or a result >= 0) on success, ERR_PYEXC (-1) when it   */
/* set a Python exception (only with a GIL), or another negative        */
/* err_code with no exception set (it may run without a GIL).  Pointer  */
/* results are NULL with an exception set.  The code becomes an         */
/* exception in one place, set_err() (module.c), which reads the table  */
/* of codes there: class and message.  The arguments a message takes    */
/* are named below, and given to set_err() after the code.             */

struct module_state;

typedef enum {
    ERR_OK = 0,
    ERR_PYEXC = -1,           /* a Python exception is set */
    ERR_NO_MEMORY = -2,
    ERR_ATFORK = -3,          /* pthread_atfork failed */
    /* interpreters */
    ERR_INTERP_NOT_FOUND = -10,
    ERR_INTERP_RUNNING = -11, /* running code in another thread */
    ERR_INTERP_CURRENT = -12, /* the operation is not allowed on the current
                                 interpreter */
    ERR_INTERP_NOT_OWNED = -13, /* not created by subinterp */
    ERR_INTERP_THREADS = -14, /* other threads still run in it */
    ERR_INTERP_CLOSING = -15,
    ERR_INTERP_CREATE = -16,  /* Py_NewInterpreterFromConfig failed; arg:
                                 CPython's message (const char *) */
    ERR_INTERP_BUSY = -17,    /* its threads did not end within the close
                                 grace period */
    ERR_SHUT_DOWN = -18,      /* the exit handler has run: no new
                                 interpreters */
    ERR_OBJECT_NOT_FOUND = -19, /* arg: the id (long long) */
    /* queues */
    ERR_QUEUE_EMPTY = -20,
    ERR_QUEUE_FULL = -21,
    ERR_QUEUE_NOT_FOUND = -22,  /* arg: the id (long long) */
    ERR_ITEM_INTERP_DESTROYED = -23, /* arg: the interpreter id
                                        (long long) */
    ERR_UNBOUND_ITEMS = -24,  /* arg: the object given (PyObject *) */
    /* channels */
    ERR_CHANNEL_CLOSED = -30, /* arg: the channel end, its `source`
                                 attribute (PyObject *, may be NULL) */
    ERR_CHANNEL_EMPTY = -31,
    ERR_CHANNEL_FULL = -32,
    ERR_CHANNEL_NOT_FOUND = -33, /* arg: the id (long long) */
    ERR_TIMEOUT = -34,
    /* locks */
    ERR_RELEASE_UNLOCKED = -40,
    ERR_RELEASE_UNOWNED = -41,
    ERR_TOO_MANY_RELEASES = -42,
    ERR_VALUE_OVERFLOW = -43,
    ERR_BARRIER_BROKEN = -44,
    ERR_NONBLOCKING_TIMEOUT = -45,
} err_code;

/* Raise the exception of code err (with the arguments the code takes, as
 * listed above) and return -1; 0 for ERR_OK.  ERR_PYEXC keeps the
 * exception that is set.  Asserts that an exception is set exactly when
 * err is ERR_PYEXC.  st may be NULL: the current interpreter's. */
int set_err(struct module_state *st, int err, ...);

/* The exception being raised becomes one raised from `cause`, which
 * this steals: its __cause__ and its __context__ (as `raise new from
 * cause`).  To replace an exception: take it with
 * PyErr_GetRaisedException(), raise the new one, then call this. */
static inline void
raise_from(PyObject *cause)
{
    PyObject *exc = PyErr_GetRaisedException();
    PyException_SetCause(exc, Py_NewRef(cause));
    PyException_SetContext(exc, cause);
    PyErr_SetRaisedException(exc);
}

/* ------------------------------------------------------------------ */
/* Per-interpreter module state                                        */

/* The module state is reached in three ways, and only these:
 *
 *   get_mod_state(mod)        from the module object (module functions,
 *                             slots; exec, traverse, clear, free);
 *   get_mod_state_by_type(tp) from a type of ours or a subclass of one
 *                             (methods, tp_new; for an instance:
 *                             get_mod_state_by_type(Py_TYPE(self)));
 *                             dealloc_state(tp) is the same for a
 *                             deallocator: it never raises;
 *   get_current_state()       in code that has neither (callbacks of the
 *                             runtime, code run in another interpreter),
 *                             by interpreter, imports the module if
 *                             needed. */
typedef struct module_state {
    /* exception classes */
    PyObject *InterpreterError;
    PyObject *InterpreterNotFoundError;
    PyObject *ExecutionFailed;
    PyObject *NotShareableError;
    PyObject *RemoteTraceback;

    /* heap types */
    PyTypeObject *InterpreterType;
    PyTypeObject *PoolType;

    /* per-component state, owned by that component (NULL until its init
       ran); each component frees its own in its clear function */
    struct codec_state *codec;
    struct queue_state *queue;
    struct channel_state *channel;
    struct sync_state *sync;

    /* lazily imported helpers (may be NULL) */
    PyObject *call_in_thread; /* subinterp._thread.call_in_thread */
    PyObject *foreign;        /* subinterp._foreign */

    /* made on first use (interp.c) */
    PyObject *main_call;      /* trampoline bound to __main__.__dict__ */
    PyObject *main_name;      /* interned "__main__" */

    /* The live Interpreter objects of this interpreter by id (see
       handle_cache_get), so that one id gives one object, as in the
       standard library.  Made on first use. */
    PyObject *interp_handles;
} module_state;

extern PyModuleDef coremodule_def;

static inline module_state *
get_mod_state(PyObject *mod)
{
    return (module_state *)PyModule_GetState(mod);
}

static inline module_state *
get_mod_state_by_type(PyTypeObject *tp)
{
    if (tp->tp_mro == NULL) {
        /* The collector cleared the type (its tp_clear drops only the
           MRO) before an instance's dealloc asks, at interpreter
           teardown: its own module is still there. */
        return (module_state *)PyType_GetModuleState(tp);
    }
    /* by the MRO: works for subclasses too */
    PyObject *mod = PyType_GetModuleByDef(tp, &coremodule_def);
    if (mod == NULL) {
        return NULL;
    }
    return get_mod_state(mod);
}

/* get_mod_state_by_type() in a deallocator: NULL when the module is
 * gone (a handle collected during the interpreter's finalization, after
 * its module was cleared).  Never raises: a deallocator must leave the
 * current exception as it found it. */
static inline module_state *
dealloc_state(PyTypeObject *tp)
{
    PyObject *exc = PyErr_GetRaisedException();
    module_state *st = get_mod_state_by_type(tp);
    if (st == NULL) {
        PyErr_Clear();
    }
    PyErr_SetRaisedException(exc);
    return st;
}

/* The module state of the current interpreter's copy of _core; imports
 * the module if this interpreter has not done so yet.  New exception on
 * failure (NULL). */
module_state *get_current_state(void);

/* Source text that subinterp runs in every interpreter that needs it
 * (the wrappers of select.c and aio.c at module exec, the clean-up
 * functions of a close in runtime.c) is compiled once per process:
 * code_cached() compiles it the first time (Py_file_input, with
 * `filename`), keeps it marshalled in the source's code_cache (raw
 * memory, shared by every interpreter, never freed) and unmarshals it
 * later, which costs a small fraction of compiling it (docs/benchmarks.md,
 * "Where the time and memory go").  A code object belongs to one
 * interpreter; its marshalled bytes belong to none.  New reference, or
 * NULL with an exception set. */
typedef struct {
    void *_Atomic blob;     /* NULL, or the marshalled code (module.c) */
} code_cache;
PyObject *code_cached(code_cache *cache, const char *source,
                      const char *filename);

/* ------------------------------------------------------------------ */
/* runtime.c: process-wide registry of interpreters                    */

typedef struct interp_entry interp_entry;

/* Look up (and create, for an interpreter made elsewhere) the entry of a
 * live interpreter; returns a new C reference or NULL with
 * ERR_INTERP_NOT_FOUND in *err.  No GIL needed. */
interp_entry *runtime_lookup(int64_t id, int *err);
/* The entry of an interpreter subinterp did not create, by id, made if
 * needed: a new reference; NULL with MemoryError, or without an exception
 * when id is one of ours being closed.  The caller has checked with the
 * standard library that it exists (interp.c). */
interp_entry *runtime_lookup_foreign(int64_t id);
/* Created neither by subinterp nor at runtime init: the standard library
 * says whence it came, whether it runs and whether it lives, and code
 * runs in it only through the standard library.  No lock needed. */
int entry_is_foreign(const interp_entry *e);
/* A foreign interpreter was found gone: lookups skip its entry. */
void runtime_entry_ended(interp_entry *e);
/* The whence string remembered for a foreign entry (static), or NULL. */
const char *runtime_entry_whence(interp_entry *e);
void runtime_entry_set_whence(interp_entry *e, const char *whence);
/* The entry of the current interpreter (new reference); GIL held. */
interp_entry *runtime_current(void);
void entry_incref(interp_entry *e);
/* Any thread, no GIL needed.  When the last reference to an interpreter
 * this package created goes, the interpreter is queued for closing by
 * runtime_close_orphans(). */
void entry_decref(interp_entry *e);
int64_t entry_id(const interp_entry *e);
/* The reference of an Interpreter object made in the current interpreter
 * (GIL held).  A handle an interpreter holds to itself (get_current(),
 * list_all(), a received handle) must not keep it alive, or it would never
 * be closed: such a reference only keeps the entry's memory and returns 1;
 * any other is an entry_incref() and returns 0.  Messages always hold
 * real references (the codec uses handle_kind.incref).  Give the result
 * back to entry_decref_handle(). */
int entry_incref_handle(interp_entry *e);
void entry_decref_handle(interp_entry *e, int self_ref);

/* Run fn(arg) inside the interpreter of entry `e`, from the calling
 * thread: leaves the current interpreter (releasing its GIL), enters the
 * target with a thread state cached for (this thread, target), calls fn,
 * and comes back.  Marks the target as running for the duration; returns
 * ERR_INTERP_RUNNING when another thread already runs code there.  fn runs
 * with the target's GIL held and must not let a Python exception escape
 * (it reports failure through arg).  Returns 0 or an err_code; never sets
 * a Python exception in the caller. */
typedef void (*interp_fn)(void *arg);
int runtime_run_in(interp_entry *e, interp_fn fn, void *arg);

/* Stop the code that another thread runs in e, as the exit handler does:
 * subinterp's waits inside e raise SystemExit (until e is closed: call it
 * only for an interpreter about to be closed), and, when still(arg)
 * returns 1 -- asked with e's GIL held, so that the running thread is not
 * between two pieces of Python code that still(arg) must see as one --
 * SystemExit is raised asynchronously in the running thread.  Takes e's
 * GIL for a moment (the running thread lets go of it within the switch
 * interval), never a lock of ours while waiting for it.  The caller holds
 * a reference to e. */
void runtime_interrupt_running(interp_entry *e, int (*still)(void *),
                               void *arg);

/* Hooks run (in registration order) after an interpreter with that id
 * was destroyed, with no GIL held and no lock of ours held: queues use it
 * for unbound items, locks to release what the interpreter held.  Register
 * once per process (from a component's init, guarded by a static flag). */
typedef void (*interp_closed_hook)(int64_t interp_id);
int runtime_add_closed_hook(interp_closed_hook hook);

/* Hooks run inside an interpreter (its GIL held, it is the current one)
 * just before it is destroyed, by whichever thread closes it: the codec
 * uses it to release buffers pinned there.  Must not fail; may run Python
 * code of that interpreter. */
typedef void (*interp_closing_hook)(void);
int runtime_add_closing_hook(interp_closing_hook hook);

/* Close interpreters whose last reference went away (entry_decref never
 * closes by itself, so that it can run without a GIL).  Call with the GIL
 * of the current interpreter held, at a point where leaving it briefly is
 * safe. */
void runtime_close_orphans(void);

/* ------------------------------------------------------------------ */
/* Handles: Python objects that refer to a process-wide C object        */
/* (Interpreter, Queue, channel ends, Lock, ...).  The codec carries    */
/* them by kind and pointer, holding a C reference while in a message,  */
/* and the receiver gets a new handle to the same C object.             */

typedef struct handle_kind {
    const char *name;           /* e.g. "Queue" */
    uint8_t tag;                /* stable number used in messages */
    void (*incref)(void *ref);  /* any thread, no GIL needed */
    void (*decref)(void *ref);  /* any thread, no GIL needed */
    /* A new handle object in the current interpreter (takes its own new
       C reference).  NULL with an exception on failure. */
    PyObject *(*wrap)(module_state *st, void *ref);
    /* Kinds with one object per id in an interpreter: the table of the
       live ones (handle_cache_get) in st, NULL once st was cleared.
       NULL for kinds that make a new object each time. */
    PyObject **(*cache)(module_state *st);
} handle_kind;

/* Every handle object starts like this. */
typedef struct {
    PyObject_HEAD
    const handle_kind *kind;
    void *ref;                  /* one C reference, owned */
} HandleObject;

/* A per-interpreter table of live handle objects by id: the standard
 * library gives one object per id (Interpreter(i) is Interpreter(i), a
 * queue that comes back through a queue is the queue that was sent), and
 * so do our wrap functions.  The table does not keep its objects alive:
 * its values are borrowed pointers (as ints), and every cached object
 * removes itself from the table in its dealloc, before it is freed, so a
 * pointer found in it is always a live object.  *table is a dict made on
 * first use; it holds ints only, so it needs no GC support.
 *
 * handle_cache_get: a new reference to the live object for id, or NULL
 * (no exception) when there is none.  handle_cache_add: 0, or -1 with an
 * exception.  handle_cache_remove: drops id's entry if it is obj; never
 * fails (called from dealloc; an exception being raised is kept). */
PyObject *handle_cache_get(PyObject *table, int64_t id);
int handle_cache_add(PyObject **table, int64_t id, PyObject *obj);
void handle_cache_remove(PyObject *table, int64_t id, PyObject *obj);

/* Make exact instances of tp travel as handles (called from each
 * component's init; tp's instances must start with HandleObject). */
int codec_register_handle_type(module_state *st, PyTypeObject *tp);

/* ------------------------------------------------------------------ */
/* codec.c: object graph <-> message                                   */

/* A message: bytes in raw memory (PyMem_RawMalloc) plus the process-wide
 * references it holds (handles, shared buffers).  Valid in every
 * interpreter of the process; may be freed from any thread, with or
 * without a GIL. */
typedef struct msg msg;

/* Encode obj in the current interpreter.  Returns a new message, or NULL
 * with an exception set (NotShareableError for objects that cannot
 * cross, ValueError for too deep nesting, MemoryError). */
msg *codec_encode(module_state *st, PyObject *obj);
/* Decode m in the current interpreter; m is not consumed.  New reference,
 * or NULL with an exception set (ValueError for a corrupt message). */
PyObject *codec_decode(module_state *st, const msg *m);
void msg_free(msg *m);
/* Size of the encoded bytes (not counting shared buffers). */
Py_ssize_t msg_size(const msg *m);
/* How many handle references m holds to the C object ref (any kind).
 * Any thread, no GIL needed. */
Py_ssize_t msg_count_refs(const msg *m, const void *ref);

/* ------------------------------------------------------------------ */
/* interp.c: the Interpreter type                                      */

/* New Interpreter object of the current interpreter for entry e (takes a
 * new C reference to e). */
PyObject *interp_object_new(module_state *st, interp_entry *e);
/* The entry behind an Interpreter object (borrowed), or NULL without an
 * exception when obj is not one. */
interp_entry *interp_object_entry(module_state *st, PyObject *obj);

/* Describe the exception being raised (clears it) / turn a description
 * back into an exception to raise; see interp.c. */
msg *interp_capture_exception(module_state *st, msg **obj);
typedef enum {
    EXC_EXECUTION_FAILED,   /* ExecutionFailed(excinfo): exec, call */
    EXC_ITSELF_TRACEBACK,   /* the exception itself, its __cause__ a
                               RemoteTraceback (subinterp.Pool) */
    EXC_ITSELF_EXCINFO,     /* the exception itself, its __cause__ an
                               ExecutionFailed (InterpreterPoolExecutor) */
} exc_rebuild;
/* An ImportError being raised for an extension module that cannot load in
 * this interpreter becomes one that says why and what to do. */
void interp_explain_import_error(void);
/* "TypeError: text" for the exception being raised (cleared), or NULL. */
PyObject *interp_describe_error(void);
PyObject *interp_exception_from_info(module_state *st, const msg *m,
                                     const msg *obj, exc_rebuild how);
/* fn(*args, **kwargs) (kwargs may be NULL) run with a frame at the top
 * level of the current interpreter's __main__, as calls from another
 * interpreter are made; see interp.c. */
PyObject *interp_call_in_main(module_state *st, PyObject *fn, PyObject *args,
                              PyObject *kwargs);
/* "isolated", "legacy", a mapping or namespace, plus keyword overrides */
int interp_config_from_args(PyObject *config, PyObject *overrides,
                            PyInterpreterConfig *cfg);

/* sys.path of the creator, as raw UTF-8 strings, so that a new interpreter
 * can import subinterp (and the creator's modules) before anything can
 * cross.  interp_init_new(path_copy *) runs inside the new interpreter:
 * installs the path (_core is imported there on first use); sets failed
 * on error. */
typedef struct {
    Py_ssize_t n;
    char **items;
    Py_ssize_t *sizes;
    int failed;
} path_copy;
int path_copy_take(path_copy *p);
void path_copy_free(path_copy *p);
void interp_init_new(void *arg);

/* ------------------------------------------------------------------ */
/* component init functions, called from the module's exec slot        */

int runtime_init(PyObject *mod, module_state *st);
/* the registry of process-wide objects and handles (objects.c) */
int objects_init(PyObject *mod, module_state *st);
int interp_init(PyObject *mod, module_state *st);
int codec_init(PyObject *mod, module_state *st);
int pool_init(PyObject *mod, module_state *st);
/* queues, channels, select, locks (after codec_init: they register
   handle types); they share st->queue */
int queue_init(PyObject *mod, module_state *st);
int channel_init(PyObject *mod, module_state *st);
int select_init(PyObject *mod, module_state *st);
int sync_init(PyObject *mod, module_state *st);
int aioop_init(PyObject *mod, module_state *st);

/* A set of exception classes made together (module.c): each named X
 * (subinterp.X, added to the module) with one or two bases, each
 * "module.attr" (imported; "subinterp.Y" the module's attribute Y) or the
 * name of a class made before it in the set. */
typedef struct {
    const char *name;
    const char *bases[2];   /* bases[1] may be NULL */
    const char *doc;
} exc_spec;
#define EXC_SET_MAX 8
/* Make the set specs[0..n) into *slots[i] (new references), unless
 * *made_flag says it was made; sets *made_flag.  The imports of bases may
 * let another thread of the interpreter run: the set first made stays.
 * 0, or -1 with an exception (the slots untouched). */
int exceptions_make(PyObject *mod, const exc_spec *specs, int n,
                    PyObject **const slots[], int *made_flag);
/* The exception classes of queues, channels and locks, each made by its
 * component on first use.  0, or -1 with an exception. */
int queue_exceptions_ensure(module_state *st);
int channel_exceptions_ensure(module_state *st);
int sync_exceptions_ensure(module_state *st);
/* One of those classes (borrowed), by the err_code it is raised for;
 * NULL with an exception. */
PyObject *queue_exception(module_state *st, int err);
PyObject *channel_exception(module_state *st, int err);
PyObject *sync_exception(module_state *st, int err);

/* The types that get awaitable methods (aio.c): Lock, RLock, Semaphore,
 * BoundedSemaphore (into locks, borrowed; returns how many) and Event. */
int sync_awaitable_types(module_state *st, PyTypeObject *locks[4],
                         PyTypeObject **event);

/* per-component GC support for module state (codec, queue, ...) */
int codec_traverse(module_state *st, visitproc visit, void *arg);
void codec_clear(module_state *st);
int queue_traverse(module_state *st, visitproc visit, void *arg);
void queue_clear(module_state *st);  /* frees st->queue, sets it NULL */
int channel_traverse(module_state *st, visitproc visit, void *arg);
void channel_clear(module_state *st);
int sync_traverse(module_state *st, visitproc visit, void *arg);
void sync_clear(module_state *st);

/* runtime.c, for interp.c and module.c */
interp_entry *runtime_main(void);
/* Create an interpreter (GIL held), run init(arg) inside it, and set
 * *entry_p to its entry (a new reference).  0, or an err_code:
 * ERR_SHUT_DOWN once the exit handler has run (as concurrent.futures
 * refuses new work: an interpreter made then would never be closed),
 * ERR_NO_MEMORY, or ERR_PYEXC when CPython's creation failed (its
 * exception, or ERR_INTERP_CREATE's with CPython's message). */
int runtime_create(const PyInterpreterConfig *config, interp_fn init,
                   void *arg, interp_entry **entry_p);
/* How many interpreters a helper thread created for the process's main
 * thread (CPython 3.14+ with glibc, see runtime_create). */
long runtime_created_off_main(void);
/* Close an interpreter subinterp created.  Its threads are asked to stop
 * (waits of subinterp inside it raise SystemExit) and joined for at most
 * CLOSE_GRACE seconds; ERR_INTERP_BUSY if some still run.  interruptible:
 * the join is a wait of the caller's (a signal handler that raises, or a
 * stop of the caller's interpreter, ends it: ERR_PYEXC, the interpreter
 * stays). */
int runtime_close(interp_entry *e, int interruptible);
/* Seconds given to threads to stop, at close() and (once for all
 * interpreters) at exit. */
#define CLOSE_GRACE_SECONDS 2
#define CLOSE_GRACE ((double)CLOSE_GRACE_SECONDS)
int runtime_entry_state(interp_entry *e, int *running, int *owned);
int runtime_entry_alive(interp_entry *e);
PyObject *runtime_list_ids(void);
int runtime_is_shutting_down(void);
int runtime_count_subinterpreters(void);
/* Warn at exit if e is still open then (see warn_open_at_exit). */
void runtime_set_warn_at_exit(interp_entry *e);

/* Exit status of a forked child that had subinterpreters (EX_SOFTWARE). */
#define SUBINTERP_FORK_EXIT 70
/* m_free of the module whose state is st, in its interpreter. */
void runtime_module_freed(module_state *st);

/* Add note to exc's notes, best effort: a failure to add it is dropped,
 * and an exception being raised stays raised (codec.c). */
void exc_add_note(PyObject *exc, PyObject *note);

/* An id given by the user, as the standard library checks it: an int
 * (bool included), else TypeError; negative: ValueError ("<what> ID must
 * be a non-negative int"); beyond 64 bits: OverflowError.  0 or -1 with
 * an exception set (module.c). */
int id_from_object(PyObject *arg, const char *what, int64_t *out);

/* ------------------------------------------------------------------ */
/* fork: the table of fork.c, registered with pthread_atfork once      */

/* ERR_ATFORK if it could not be registered; no GIL needed. */
int fork_hooks_install(void);
/* Its entries, in prepare order (fork.c says why this order). */
void pools_fork_prepare(void);
void pools_fork_parent(void);
void pools_fork_child(void);
void objects_fork_prepare(void);
void objects_fork_parent(void);
void objects_fork_child(void);
void wait_fork_prepare(void);
void wait_fork_parent(void);
void wait_fork_child(void);
void codec_buf_fork_prepare(void);
void codec_buf_fork_parent(void);
void codec_buf_fork_child(void);
void runtime_fork_prepare(void);
void runtime_fork_parent(void);
void runtime_fork_child(void);

#endif /* SUBINTERP_H */
