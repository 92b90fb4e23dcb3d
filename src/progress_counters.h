/* progress_counters: what the module has done since the server started,
 * counted server-wide for lighttpd's status page.
 *
 * Contract
 * - The counters live in one block of caller-provided, zero-filled memory
 *   of progress_counters_bytes() bytes; nothing is allocated and the block
 *   holds no pointers, so it may be a MAP_SHARED mapping that several
 *   processes update at once.
 * - Each counter is a lock-free atomic of its own cache line: an update is
 *   never lost and costs no lock.  A reader sees each counter as it was at
 *   some moment, not all of them at one same moment.
 * - The counts only grow, wrapping at ULONG_MAX + 1; the in-flight gauge
 *   rises when an upload begins and falls when it ends. */
#ifndef PROGRESS_COUNTERS_H
#define PROGRESS_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

typedef enum progress_count {
    PROGRESS_COUNT_TRACKED,    /* uploads given an entry in the table */
    PROGRESS_COUNT_DONE,       /* entries ended with the whole body */
    PROGRESS_COUNT_ERROR,      /* entries ended in error */
    PROGRESS_COUNT_UNTRACKED,  /* uploads served without an entry */
    PROGRESS_COUNT_POLLS,      /* polls answered */
    PROGRESS_COUNT_BAD_POLLS,  /* polls refused */
    PROGRESS_COUNT_IN_FLIGHT,  /* gauge: tracked uploads not ended yet */
    PROGRESS_COUNT_REPORTS,    /* backends' reports taken (204) */
    PROGRESS_COUNT_BAD_REPORTS, /* reports refused (400, 404, 405, 409) */
    PROGRESS_COUNT_N
} progress_count;

typedef struct progress_counters progress_counters;

size_t progress_counters_bytes(void);

/* Lays the counters out in mem (zero-filled, progress_counters_bytes()
 * long, aligned as mmap or malloc align): all start at zero. */
progress_counters *progress_counters_init(void *mem);

/* Adds one to a count. */
void progress_counters_add(progress_counters *c, progress_count which);

/* An upload got an entry: tracked and in flight. */
void progress_counters_began(progress_counters *c);

/* n tracked uploads ended, in error or done: no longer in flight. */
void progress_counters_ended(progress_counters *c, int error, uint32_t n);

unsigned long progress_counters_get(progress_counters *c,
                                    progress_count which);

/* The name under which a count is reported ("uploadprogress.tracked"),
 * and its length in *len. */
const char *progress_count_name(progress_count which, size_t *len);

#endif
