/* A test-only LD_PRELOAD shim: every timerfd_create fails with EMFILE, as
 * in a worker out of file descriptors, so that a test sees the module's
 * answer to an event stream it cannot time (tests/integration/
 * test_fair_streams.py). */
#include <errno.h>
#include <sys/timerfd.h>

int timerfd_create(int clockid, int flags)
{
    (void)clockid;
    (void)flags;
    errno = EMFILE;
    return -1;
}
