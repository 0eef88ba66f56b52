/* fork.c - what each component does around fork(), in one ordered table.
 *
 * A fork copies the process with only the forking thread in it.  A mutex
 * that another thread held at that moment stays held for ever in the
 * child, and a structure it was changing stays half-changed.  So before
 * the fork (prepare) every mutex of ours is taken, after it the parent
 * releases them (parent) and the child makes them anew and forgets what
 * the threads it did not inherit were doing (child).
 *
 * The table is registered with pthread_atfork once per process.  prepare
 * runs its entries top down, taking the mutexes in the process's lock
 * order: a mutex that is ever taken while another one is held comes
 * after it, or a thread holding the first and waiting for the second
 * would deadlock with the forking thread.  parent and child run the
 * entries bottom up: the parent releases in the reverse order, and the
 * child has every lower layer usable again (registry, codec buffers,
 * interpreter registry) before a higher one, such as the pools' clean-up,
 * frees messages that reach into them.
 *
 *   pools       pools_mutex -> each pool's mutex: a pool takes a C
 *               reference to an interpreter (runtime.mutex) under its
 *               mutex, so it comes before the runtime
 *   objects     registry.mutex -> every object mutex in address order
 *               (the order select takes several in)
 *   parking     the parked-waiter list of wait.c, a leaf: taken alone,
 *               never with another mutex of ours held
 *   codec       the shared-buffer registry, a leaf
 *   runtime     runtime.mutex: held only around the interpreter
 *               registry's own fields (and the thread-state calls of
 *               claim); taken under a pool's mutex, so last.  In the
 *               child it also ends the process when subinterpreters
 *               were alive (CPython cannot delete them there).
 *
 * CPython takes its own locks before ours (os.fork() runs PyOS_BeforeFork
 * first), and Python-level hooks (os.register_at_fork: the pools pause
 * their workers there) run before any of this.
 *
 * XXX claim (runtime.c) creates and deletes thread states, which take
 * CPython's lock of the interpreter list, under runtime.mutex.  Where
 * PyOS_BeforeFork holds that lock (3.13 and later), a thread inside claim
 * when another forks would deadlock the fork at runtime_fork_prepare.
 * The pools park their workers before a fork, which makes it rare; the
 * cure is in runtime.c: no thread-state call under runtime.mutex.
 */
#include "subinterp.h"

#include <pthread.h>

typedef struct {
    const char *name;
    void (*prepare)(void);
    void (*parent)(void);
    void (*child)(void);
} fork_hook;

static const fork_hook fork_hooks[] = {
    {"pools", pools_fork_prepare, pools_fork_parent, pools_fork_child},
    {"objects", objects_fork_prepare, objects_fork_parent,
     objects_fork_child},
    {"parking", wait_fork_prepare, wait_fork_parent, wait_fork_child},
    {"codec", codec_buf_fork_prepare, codec_buf_fork_parent,
     codec_buf_fork_child},
    {"runtime", runtime_fork_prepare, runtime_fork_parent,
     runtime_fork_child},
};

#define N_FORK_HOOKS (sizeof(fork_hooks) / sizeof(fork_hooks[0]))

static void
fork_prepare(void)
{
    for (size_t i = 0; i < N_FORK_HOOKS; i++) {
        fork_hooks[i].prepare();
    }
}

static void
fork_parent(void)
{
    for (size_t i = N_FORK_HOOKS; i-- > 0;) {
        fork_hooks[i].parent();
    }
}

static void
fork_child(void)
{
    for (size_t i = N_FORK_HOOKS; i-- > 0;) {
        fork_hooks[i].child();
    }
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static int fork_install_failed;

static void
fork_install_once(void)
{
    fork_install_failed =
        pthread_atfork(fork_prepare, fork_parent, fork_child) != 0;
}

int
fork_hooks_install(void)
{
    (void)pthread_once(&fork_once, fork_install_once);
    return fork_install_failed ? ERR_ATFORK : 0;
}
