/* region_handoff: see region_handoff.h. */
#include "first.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "log.h"
#include "plugin.h"

#include "progress_table.h"
#include "region_handoff.h"

void region_handoff_init(void) {
    progress_region_keep_from_exec(getenv(PROGRESS_REGION_ENV));
}

/* The table's hash key, made for each fresh table. */
__attribute_cold__
static void table_key(uint8_t key[16]) {
    /* (early at boot the kernel's pool may not be ready: never wait) */
    if (getrandom(key, 16, GRND_NONBLOCK) != 16) {
        /* not secret, but still differs per start */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        const uint64_t mix[2] = { (uint64_t)ts.tv_nsec, (uint64_t)getpid() };
        memcpy(key, mix, 16);
    }
}

__attribute_cold__
static void log_region_found(server * const srv, const uint32_t configured, const uint32_t kept, const int debug) {
    if (configured != kept)
        log_error(srv->errh, __FILE__, __LINE__,
          "upload-progress: upload-progress.max-entries %u takes effect at "
          "the next full restart (stop and start): the table kept across "
          "this graceful restart holds %u entries", configured, kept);
    else if (debug)
        log_error(srv->errh, __FILE__, __LINE__,
          "upload-progress: the table of the previous generation is kept "
          "(%u entries)", kept);
}

__attribute_cold__
static void log_region_refused(server * const srv, const progress_region_result result, const char * const why) {
    log_error(srv->errh, __FILE__, __LINE__,
      "upload-progress: the table of the previous generation is not used "
      "(%s: %s); starting with an empty table",
      PROGRESS_REGION_OTHER_LAYOUT == result ? "made by another build of the module"
      : PROGRESS_REGION_GONE == result ? "gone" : "not a table", why);
}

/* Shared: lighttpd forks its workers after set_defaults, so every worker
 * sees this one region, and the next generation (the same process, or the
 * one graceful-restart-bg execs) finds it by its fd (doc/reload.md). */
__attribute_cold__
int region_handoff_open(server * const srv, region_handoff * const h, uint32_t * const max_entries, const int debug) {
    uint8_t key[16];
    char why[160];
    table_key(key);
    const uint32_t configured = *max_entries;
    const progress_region_result result =
      progress_region_open(&h->region, getenv(PROGRESS_REGION_ENV),
                           configured, key, why, sizeof why);
    switch (result) {
      case PROGRESS_REGION_FAILED:
        if (EOVERFLOW == errno)
            log_error(srv->errh, __FILE__, __LINE__,
              "upload-progress: a table of %u entries is more than this "
              "system can address: lower upload-progress.max-entries",
              configured);
        else
            log_perror(srv->errh, __FILE__, __LINE__,
              "upload-progress: shared memory for a table of %u entries",
              configured);
        return 0;
      case PROGRESS_REGION_NEW:
        break;
      case PROGRESS_REGION_FOUND:
        *max_entries = h->region.max_entries;
        log_region_found(srv, configured, *max_entries, debug);
        break;
      default:
        log_region_refused(srv, result, why);
        break;
    }
    char fd_text[16];
    progress_region_fd_text(&h->region, fd_text, sizeof fd_text);
    setenv(PROGRESS_REGION_ENV, fd_text, 1);
    h->restart_bg = (unsigned char)config_feature_bool(srv, "server.graceful-restart-bg", 0);
    h->check_at_close = (unsigned char)debug;
    h->errh = srv->errh;
    return 1;
}

/* With server.graceful-restart-bg, lighttpd runs the sighup hooks just
 * before it forks and execs the next generation, and it turns the feature
 * flag off first (so that it happens once): then the exec must take the
 * region's fd along.  A plain SIGHUP (logs) leaves the flag on. */
__attribute_cold__
void region_handoff_before_exec(server * const srv, region_handoff * const h) {
    if (!h->restart_bg || config_feature_bool(srv, "server.graceful-restart-bg", 0))
        return;
    if (0 == progress_region_inherit(&h->region, 1))
        h->inherited = 1;
    else
        log_perror(srv->errh, __FILE__, __LINE__,
          "upload-progress: the table cannot be handed to the next generation");
}

/* A full scan under the table's lock (every worker waits meanwhile): only
 * with debug, as the tests run. */
__attribute_cold__
static void log_table_check(log_error_st * const errh, progress_table * const table) {
    const char * const problem = progress_table_check(table);
    if (NULL == problem)
        log_error(errh, __FILE__, __LINE__, "upload-progress: table check: ok");
    else
        log_error(errh, __FILE__, __LINE__,
          "upload-progress: table check: failed: %s", problem);
}

__attribute_cold__
void region_handoff_close(region_handoff * const h) {
    if (h->check_at_close)
        log_table_check(h->errh, h->region.table);
    /* Only unmapped, never destroyed: the watcher frees its plugins while
     * the old workers of a graceful restart or stop still use the lock.
     * The region's fd stays open: the next generation of a graceful
     * restart attaches to it; a stop ends the process and the region. */
    progress_region_unmap(&h->region);
}
