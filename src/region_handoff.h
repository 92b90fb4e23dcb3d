/* region_handoff: the region (progress_region: the counters and the table)
 * handed from one generation of lighttpd to the next across a graceful
 * restart (doc/reload.md).  progress_region is the lighttpd-free region;
 * this room is when lighttpd opens, passes on and drops it. */
#ifndef REGION_HANDOFF_H
#define REGION_HANDOFF_H

#include "first.h"

#include <stdint.h>

#include "base.h"
#include "log.h"

#include "progress_region.h"

typedef struct {
    progress_region region;       /* the counters and the table: outlives
                                   * a graceful restart */
    unsigned char restart_bg;     /* server.graceful-restart-bg is on */
    unsigned char inherited;      /* an exec would take the region along */
    unsigned char check_at_close; /* upload-progress.debug: see close */
    log_error_st *errh;           /* the server's error log */
} region_handoff;

/* At the module's init, before lighttpd opens its logs and the other
 * modules their backends: the region of the previous generation (if any)
 * is closed on exec. */
void region_handoff_init(void);

/* The region the previous generation named in the environment, else a
 * fresh one for *max_entries (which becomes the region's); named in the
 * environment in turn for the next generation.  Returns 0 (logged) if
 * there is no region at all. */
int region_handoff_open(server *srv, region_handoff *h, uint32_t *max_entries, int debug);

/* The sighup hook: lets the exec of server.graceful-restart-bg's next
 * generation take the region along. */
void region_handoff_before_exec(server *srv, region_handoff *h);

/* The old generation that graceful-restart-bg leaves running: what it
 * execs from now on (CGI, say) must not get the region.  (Inline: the
 * uri hook calls it for every request.) */
static inline void region_handoff_keep_from_exec(region_handoff * const h)
{
    if (h->inherited && 0 == progress_region_inherit(&h->region, 0))
        h->inherited = 0;
}

/* When the module is freed (a stop, a worker's end, the watcher's
 * graceful restart): with upload-progress.debug (globally), the table's
 * invariants are checked (progress_table_check) and the verdict logged,
 * "upload-progress: table check: ok" or "table check: failed: why", for
 * the tests (test_chaos.py); then the region is unmapped, its fd left
 * open. */
void region_handoff_close(region_handoff *h);

#endif
