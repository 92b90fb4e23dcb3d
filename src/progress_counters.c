#include "progress_counters.h"

#include <stdatomic.h>
#include <string.h>

/* Several processes share the block: an atomic that needed a lock would
 * keep that lock in one process only. */
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2, "unsigned long atomics must be lock-free");

/* One cache line each, so that workers counting polls do not slow down
 * workers counting uploads. */
typedef struct {
    _Alignas(64) atomic_ulong value;
} counter_line;

struct progress_counters {
    counter_line count[PROGRESS_COUNT_N];
};

static const char *const names[PROGRESS_COUNT_N] = {
    [PROGRESS_COUNT_TRACKED] = "uploadprogress.tracked",
    [PROGRESS_COUNT_DONE] = "uploadprogress.done",
    [PROGRESS_COUNT_ERROR] = "uploadprogress.error",
    [PROGRESS_COUNT_UNTRACKED] = "uploadprogress.untracked",
    [PROGRESS_COUNT_POLLS] = "uploadprogress.polls",
    [PROGRESS_COUNT_BAD_POLLS] = "uploadprogress.bad_polls",
    [PROGRESS_COUNT_IN_FLIGHT] = "uploadprogress.in_flight",
    [PROGRESS_COUNT_REPORTS] = "uploadprogress.reports",
    [PROGRESS_COUNT_BAD_REPORTS] = "uploadprogress.bad_reports",
};

size_t progress_counters_bytes(void)
{
    return sizeof(progress_counters);
}

progress_counters *progress_counters_init(void *mem)
{
    progress_counters * const c = mem;
    for (int i = 0; i < PROGRESS_COUNT_N; ++i)
        atomic_init(&c->count[i].value, 0);
    return c;
}

static void add(progress_counters *c, progress_count which, unsigned long n)
{
    atomic_fetch_add_explicit(&c->count[which].value, n, memory_order_relaxed);
}

void progress_counters_add(progress_counters *c, progress_count which)
{
    add(c, which, 1);
}

void progress_counters_began(progress_counters *c)
{
    add(c, PROGRESS_COUNT_TRACKED, 1);
    add(c, PROGRESS_COUNT_IN_FLIGHT, 1);
}

void progress_counters_ended(progress_counters *c, int error, uint32_t n)
{
    add(c, error ? PROGRESS_COUNT_ERROR : PROGRESS_COUNT_DONE, n);
    atomic_fetch_sub_explicit(&c->count[PROGRESS_COUNT_IN_FLIGHT].value, n,
                              memory_order_relaxed);
}

unsigned long progress_counters_get(progress_counters *c,
                                    progress_count which)
{
    return atomic_load_explicit(&c->count[which].value, memory_order_relaxed);
}

const char *progress_count_name(progress_count which, size_t *len)
{
    *len = strlen(names[which]);
    return names[which];
}
