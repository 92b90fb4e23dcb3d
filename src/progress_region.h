/* progress_region: the block of shared memory that holds the counters and
 * the table, made so that it outlives a graceful restart of lighttpd.
 *
 * Contract
 * - A region is a sealed memfd (it cannot grow or shrink, its seals cannot
 *   change) mapped MAP_SHARED: a header, the counters, then the table.
 *   Every process that maps it, in any generation, sees the same bytes.
 * - The fd stays open in the process that made the region, and its number
 *   is what the next generation is given (lighttpd keeps its process and
 *   environment across a graceful restart, and execs itself with them for
 *   server.graceful-restart-bg): progress_region_open() takes that number
 *   as text (PROGRESS_REGION_ENV) and attaches only to a sealed memfd whose
 *   header is intact and says this build's layout.  Anything else gets a
 *   fresh region, and the result says why (for one log line).
 * - No /proc, no file name: it works chrooted.  The fd is close-on-exec
 *   except while progress_region_inherit(r, 1) lets an exec of the next
 *   generation take it along.
 * - Unmapping a region never closes its fd; only the process's end does.
 *   So a full stop and start begins with a fresh region. */
#ifndef PROGRESS_REGION_H
#define PROGRESS_REGION_H

#include <stddef.h>
#include <stdint.h>

#include "progress_counters.h"
#include "progress_table.h"

/* The environment variable that names the fd of the region. */
#define PROGRESS_REGION_ENV "UPLOADPROGRESS_REGION_FD"

/* The layout of the header and of what follows it: bump it by hand when
 * the header or the counters change.  (The table's own layout and its
 * slot's size are in the header as well.)  A test build may add to it
 * (PROGRESS_REGION_LAYOUT_BUMP) to play another build of the module. */
#ifndef PROGRESS_REGION_LAYOUT_BUMP
#define PROGRESS_REGION_LAYOUT_BUMP 0
#endif
#define PROGRESS_REGION_LAYOUT (1 + PROGRESS_REGION_LAYOUT_BUMP)

typedef struct progress_region {
    int fd;
    void *base;                   /* the mapping; NULL when unmapped */
    size_t bytes;
    progress_counters *counters;
    progress_table *table;
    uint32_t max_entries;         /* the table's, made by whoever made it */
} progress_region;

typedef enum progress_region_result {
    PROGRESS_REGION_NEW,          /* none was named: a fresh region */
    PROGRESS_REGION_FOUND,        /* the named region, attached */
    PROGRESS_REGION_GONE,         /* the named fd is not open: fresh */
    PROGRESS_REGION_NOT_A_REGION, /* the named fd is something else: fresh */
    PROGRESS_REGION_OTHER_LAYOUT, /* made by another build: fresh */
    PROGRESS_REGION_DAMAGED,      /* its header does not hold: fresh */
    PROGRESS_REGION_FAILED        /* no region at all (errno says why) */
} progress_region_result;

/* Attaches to the region whose fd number fd_text names (NULL: none), else
 * makes a fresh one for max_entries with key as the table's hash key.  A
 * found region keeps its own max_entries (r->max_entries).  why (if not
 * NULL) gets what did not hold, for the log.  A region of another layout
 * or with a damaged header has its fd closed; an fd that is no region is
 * left alone (it is someone else's). */
progress_region_result progress_region_open(progress_region *r,
                                            const char *fd_text,
                                            uint32_t max_entries,
                                            const uint8_t key[16],
                                            char *why, size_t why_len);

/* The fd as PROGRESS_REGION_ENV's value: at least 12 bytes. */
void progress_region_fd_text(const progress_region *r, char *out, size_t len);

/* Closes on exec the region fd_text names (NULL: none), as soon as a new
 * generation starts: what lighttpd starts before the module's set_defaults
 * (a piped error log, a FastCGI backend listed first) must not inherit it. */
void progress_region_keep_from_exec(const char *fd_text);

/* Whether an exec takes the fd along (1) or closes it (0, the default).
 * Returns 0, or -1 (errno). */
int progress_region_inherit(const progress_region *r, int on);

/* Unmaps the region; the fd stays open for the next generation. */
void progress_region_unmap(progress_region *r);

/* The header's bytes at the start of the mapping (for tests that forge
 * one). */
size_t progress_region_header_bytes(void);

#endif
