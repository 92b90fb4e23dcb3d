/* A test-only LD_PRELOAD shim over pthread_mutex_lock and _unlock: writes
 * every call that failed (any result but 0 and EOWNERDEAD, which the
 * table repairs) to the file named by LOCK_SHIM_LOG as "PID CALL RESULT",
 * and at exit "PID calls N", so that a test sees both that the module's
 * lock calls went through the shim and that none failed.  With
 * LOCK_SHIM_EINVAL set, every pthread_mutex_lock fails with EINVAL instead,
 * without locking, as on a destroyed mutex. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

typedef int (*mutex_call)(pthread_mutex_t *);

static atomic_ulong calls;

static void write_line(const char *line, int len)
{
    const char * const path = getenv("LOCK_SHIM_LOG");
    if (path == NULL || len <= 0) return;
    const int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (write(fd, line, (size_t)len) < 0) { /* nothing to do about it */ }
    close(fd);
}

static int counted(const char *name, mutex_call *real, pthread_mutex_t *m)
{
    if (*real == NULL) *(void **)real = dlsym(RTLD_NEXT, name);
    const int rc = (*real)(m);
    atomic_fetch_add(&calls, 1);
    if (rc != 0 && rc != EOWNERDEAD) {
        char line[96];
        write_line(line, snprintf(line, sizeof line, "%d %s %d\n", (int)getpid(), name, rc));
    }
    return rc;
}

static int broken(pthread_mutex_t *m)
{
    (void)m;
    return EINVAL;
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
    static mutex_call real;
    if (real == NULL && getenv("LOCK_SHIM_EINVAL") != NULL) real = broken;
    return counted("pthread_mutex_lock", &real, m);
}

int pthread_mutex_unlock(pthread_mutex_t *m)
{
    static mutex_call real;
    return counted("pthread_mutex_unlock", &real, m);
}

__attribute__((destructor))
static void report_calls(void)
{
    char line[64];
    write_line(line, snprintf(line, sizeof line, "%d calls %lu\n", (int)getpid(),
                              atomic_load(&calls)));
}
