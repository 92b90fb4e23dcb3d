/* module_data: the module's per-server state (lighttpd's plugin_data with
 * its defaults and per-request conf), shared by the glue and the rooms
 * that work on it with lighttpd (upload_tracking), as gw_backend.h shares
 * gw_plugin_data among lighttpd's own gateway modules. */
#ifndef MODULE_DATA_H
#define MODULE_DATA_H

#include "first.h"

#include <stdint.h>
#include <sys/types.h>

#include "base.h"
#include "buffer.h"
#include "plugin.h"

#include "module_log.h"
#include "progress_counters.h"
#include "progress_push.h"
#include "progress_table.h"
#include "region_handoff.h"

typedef struct {
    const buffer *progress_url;   /* NULL: the module is off */
    const buffer *report_url;     /* NULL: no reports taken here */
    unsigned int remove_timeout;
    unsigned int processing_timeout;
    unsigned char debug;
    unsigned char format;         /* progress_format */
} plugin_config;

typedef struct upload_ctx upload_ctx;   /* upload_tracking's */

typedef struct {
    PLUGIN_DATA;
    plugin_config defaults;
    plugin_config conf;

    region_handoff handoff;       /* the counters and the table */
    progress_table *table;        /* in the region */
    void *push_shared;            /* the count of event streams: one per
                                   * generation, in a mapping of its own */
    uint32_t max_entries;         /* the table's (the region's) */
    /* bit (used % 64) set for the buffer length of every progress and
     * report URL, in any condition */
    uint64_t url_lengths;
    /* the first test of every request: url_lengths, or every length while
     * an exec would take the region along (so that the next request of
     * graceful-restart-bg's old generation reaches the module, which
     * keeps the region from it): one test for both */
    uint64_t first_test_lengths;
    pid_t pid;                    /* this worker */
    int is_worker;                /* serves requests (not the watcher) */
    module_log log;               /* the lines clients can repeat */
    uint32_t lock_failures_logged;

    progress_push *push;          /* event streams and the worker's timer */
    progress_push_config push_config;

    upload_ctx **uploads;         /* this worker's uploads in flight, by ref */
    uint32_t *free_refs;          /* refs of empty places in uploads */
    uint32_t uploads_used;
    uint32_t nfree;

    progress_counters *counters;  /* in the region */
    /* what this process last put into plugin_stats: the counts, then the
     * entries, the open work and the table's lock calls */
    unsigned long published[PROGRESS_COUNT_N + 3];
} plugin_data;

#endif
