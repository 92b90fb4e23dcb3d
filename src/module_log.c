/* module_log: see module_log.h. */
#include "first.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "base.h"
#include "log.h"

#include "lighttpd_compat.h"
#include "module_log.h"

enum { LOG_SUFFIX_MAX = 64 };   /* room for log_limited()'s suffix */

/* Whether a line of this kind may be written now: at most one a second.
 * If so, suffix tells how many were left out since the last one ("" if
 * none). */
static int log_limited(module_log * const log, const log_kind kind, char suffix[LOG_SUFFIX_MAX]) {
    log_limit * const l = &log->kinds[kind];
    if (l->second == log_monotonic_secs && 0 != l->second) {
        ++l->left_out;
        return 0;
    }
    suffix[0] = '\0';
    if (l->left_out)
        snprintf(suffix, LOG_SUFFIX_MAX, " (%u more like this not logged)", l->left_out);
    l->second = log_monotonic_secs;
    l->left_out = 0;
    return 1;
}

__attribute_cold__
void module_log_table_full(module_log * const l, request_st * const r, const uint32_t max_entries, const char * const idhex) {
    char more[LOG_SUFFIX_MAX];
    if (!log_limited(l, LOG_TABLE_FULL, more)) return;
    log_error(r->conf.errh, __FILE__, __LINE__,
      "upload-progress: table full (%u uploads in flight); upload %s is "
      "served but not tracked%s", max_entries, idhex, more);
}

__attribute_cold__
void module_log_id_in_use(module_log * const l, request_st * const r, const char * const idhex) {
    char more[LOG_SUFFIX_MAX];
    if (!log_limited(l, LOG_ID_IN_USE, more)) return;
    log_error(r->conf.errh, __FILE__, __LINE__,
      "upload-progress: id %s is in use by an upload in flight; "
      "this upload is served but not tracked%s", idhex, more);
}

__attribute_cold__
void module_log_stream_refused(module_log * const l, request_st * const r, const progress_push_start_result why, const int err, const progress_push_config * const config) {
    char more[LOG_SUFFIX_MAX];
    switch (why) {
      case PROGRESS_PUSH_NO_TIMER:
        if (!log_limited(l, LOG_NO_TIMER, more)) return;
        log_error(r->conf.errh, __FILE__, __LINE__,
          "upload-progress: cannot make the timer of event streams "
          "(timerfd_create: %s); streams are refused with 503%s",
          strerror(err), more);
        return;
      case PROGRESS_PUSH_NO_WORKER_SLOT:
        if (!log_limited(l, LOG_NO_WORKER_SLOT, more)) return;
        log_error(r->conf.errh, __FILE__, __LINE__,
          "upload-progress: event streams are counted for %d workers at "
          "most (server.max-worker is more); this worker's streams are "
          "refused with 503%s", PROGRESS_PUSH_WORKER_SLOTS, more);
        return;
      case PROGRESS_PUSH_CLIENT_FULL:
        if (!log_limited(l, LOG_CLIENT_STREAMS_FULL, more)) return;
        log_error(r->conf.errh, __FILE__, __LINE__,
          "upload-progress: %s holds %u event streams "
          "(upload-progress.max-streams-per-client); more of its streams are "
          "refused with 429%s", request_remote_addr_text(r)->ptr,
          config->max_streams_per_client, more);
        return;
      default:
        if (!log_limited(l, LOG_STREAMS_FULL, more)) return;
        log_error(r->conf.errh, __FILE__, __LINE__,
          "upload-progress: %u event streams at once (upload-progress.max-streams); "
          "more are refused with 503%s", config->max_streams, more);
        return;
    }
}

__attribute_cold__
void module_log_worker_exit(log_error_st * const errh, const pid_t pid, const int status) {
    /* (a worker that stops exits with 0, or 1 if connections were open) */
    if (WIFSIGNALED(status))
        log_error(errh, __FILE__, __LINE__,
          "upload-progress: worker %d died with signal %d", (int)pid, WTERMSIG(status));
    else if (WIFEXITED(status) && WEXITSTATUS(status) > 1)
        log_error(errh, __FILE__, __LINE__,
          "upload-progress: worker %d exited with status %d", (int)pid, WEXITSTATUS(status));
}
