/* module_log: the log lines that clients or a dying worker can make the
 * module write.  Those a client can repeat at will (a refused stream, an
 * upload not tracked) are written at most once a second each, with the
 * count of the ones left out since. */
#ifndef MODULE_LOG_H
#define MODULE_LOG_H

#include "first.h"

#include <stdint.h>
#include <sys/types.h>

#include "base.h"
#include "log.h"

#include "progress_push.h"

typedef enum {
    LOG_ID_IN_USE,
    LOG_TABLE_FULL,
    LOG_STREAMS_FULL,
    LOG_CLIENT_STREAMS_FULL,
    LOG_NO_TIMER,
    LOG_NO_WORKER_SLOT,
    LOG_KINDS
} log_kind;

typedef struct {
    unix_time64_t second;   /* when a line of this kind was last written */
    uint32_t left_out;      /* lines of this kind not written since */
} log_limit;

/* One process's limits: zero-filled at first. */
typedef struct {
    log_limit kinds[LOG_KINDS];
} module_log;

/* An upload not tracked: its id (hex) is in use by an upload in flight. */
void module_log_id_in_use(module_log *l, request_st *r, const char *idhex);

/* An upload not tracked: the table of max_entries is full. */
void module_log_table_full(module_log *l, request_st *r, uint32_t max_entries, const char *idhex);

/* A refused event stream (why: not PROGRESS_PUSH_STARTED); err: errno of
 * a timer that could not be made. */
void module_log_stream_refused(module_log *l, request_st *r, progress_push_start_result why, int err, const progress_push_config *config);

/* The watcher saw worker pid end with status (waitpid's): a line if it
 * died of a signal or exited with more than 1 (lighttpd says nothing of a
 * crash). */
void module_log_worker_exit(log_error_st *errh, pid_t pid, int status);

#endif
