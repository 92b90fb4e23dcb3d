/* mod_uploadprogress: reports the progress of request-body uploads (JSON,
 * JSONP, the JavaScript object of lighttpd 1.5 and nginx, or XML).
 *
 * The glue to lighttpd: config keys and hooks; it routes the rest.  The
 * uploads this worker serves are upload_tracking's, reports
 * report_request's, event streams progress_push's, the region's handoff
 * across reloads region_handoff's, the lines clients can repeat
 * module_log's.  The table of uploads (progress_table), the id rules
 * (progress_id) and the answer bodies (progress_render, progress_report)
 * know nothing of lighttpd.  doc/mod_uploadprogress.md describes the
 * behaviour. */
#include "first.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "plugin.h"

#include "base.h"
#include "buffer.h"
#include "fdevent.h"
#include "http_header.h"
#include "log.h"
#include "request.h"

#include "lighttpd_compat.h"
#include "module_data.h"
#include "module_log.h"
#include "progress_counters.h"
#include "progress_id.h"
#include "progress_push.h"
#include "progress_render.h"
#include "progress_table.h"
#include "region_handoff.h"
#include "report_request.h"
#include "request_answer.h"
#include "request_ctx.h"
#include "request_id.h"
#include "test_plant.h"
#include "upload_tracking.h"

#define UPLOADPROGRESS_MAX_ENTRIES_DEFAULT 65536
#define UPLOADPROGRESS_MAX_ENTRIES_LIMIT (64u << 20)   /* 7.5 GiB of table */
/* Work of the once-a-second sweep (slots looked at or shifted): 512 KiB of
 * a table that is mostly not in the CPU's caches.  65,536 (4 MiB) stalled
 * polls by ~4 ms more when many entries expired (doc/benchmarks.md, line 5);
 * 8,192 costs nothing measurable, and frees up to ~8,000 entries a second. */
#define UPLOADPROGRESS_SWEEP_BUDGET 8192
#define UPLOADPROGRESS_PUBLISH_MS_DEFAULT 100
#define UPLOADPROGRESS_PUSH_MS_DEFAULT 250
#define UPLOADPROGRESS_PUSH_MS_LIMIT 60000
#define UPLOADPROGRESS_MAX_STREAMS_DEFAULT 1024
#define UPLOADPROGRESS_MAX_STREAMS_LIMIT (1u << 20)
/* streams one client may hold: room for many uploads at once from one
 * browser or one office behind NAT, far from the whole default max-streams */
#define UPLOADPROGRESS_MAX_STREAMS_PER_CLIENT_DEFAULT 64
/* seconds a client refused for too many streams is asked to wait */
#define UPLOADPROGRESS_STREAMS_RETRY_AFTER "5"
/* seconds a 202's work may stay open without an outcome (doc/processing.md) */
#define UPLOADPROGRESS_PROCESSING_TIMEOUT_DEFAULT 3600

static const plugin mod_uploadprogress_plugin;   /* the hooks, at the end */

INIT_FUNC(mod_uploadprogress_init) {
    region_handoff_init();
    plugin_data * const p = ck_calloc(1, sizeof(plugin_data));
    plugin_data_set_hooks((plugin_data_base *)p, &mod_uploadprogress_plugin);
    return p;
}

FREE_FUNC(mod_uploadprogress_free) {
    plugin_data * const p = p_d;
    upload_free_all(p);
    progress_push_free(p->push);
    if (NULL != p->push_shared)
        munmap(p->push_shared, progress_push_shared_bytes());
    region_handoff_close(&p->handoff);
    test_plant_at_exit(p->is_worker);
}

/* Lock calls that failed (in any process) since this one last said so:
 * called once a second by the trigger (and when a worker is gone), so it
 * sums up any number of them in one line. */
__attribute_cold__
static void log_lock_failures(server * const srv, plugin_data * const p) {
    const uint32_t failures = progress_table_lock_failures(p->table);
    if (failures == p->lock_failures_logged) return;
    log_error(srv->errh, __FILE__, __LINE__,
      "upload-progress: %u calls could not take the table's lock; their "
      "uploads and polls went without the table",
      failures - p->lock_failures_logged);
    p->lock_failures_logged = failures;
}

static void mod_uploadprogress_merge_config_cpv(plugin_config * const pconf, const config_plugin_value_t * const cpv) {
    switch (cpv->k_id) { /* index into static config_plugin_keys_t cpk[] */
      case 0: /* upload-progress.progress-url */
        pconf->progress_url = cpv->v.b;
        break;
      case 1: /* upload-progress.remove-timeout */
        pconf->remove_timeout = cpv->v.u;
        break;
      case 2: /* upload-progress.debug */
        pconf->debug = (unsigned char)cpv->v.u;
        break;
      case 3: /* upload-progress.max-entries: sizes the table, not a request */
        break;
      case 4: /* upload-progress.format */
        pconf->format = (unsigned char)cpv->v.u;
        break;
      case 5: /* upload-progress.publish-interval: the server's timer */
      case 6: /* upload-progress.push-interval: the server's timer */
      case 7: /* upload-progress.max-streams: one count for the server */
      case 8: /* upload-progress.max-streams-per-client: the server's */
        break;
      case 9: /* upload-progress.report-url */
        pconf->report_url = cpv->v.b;
        break;
      case 10: /* upload-progress.processing-timeout */
        pconf->processing_timeout = cpv->v.u;
        break;
      default:/* should not happen */
        return;
    }
}

static void mod_uploadprogress_merge_config(plugin_config * const pconf, const config_plugin_value_t *cpv) {
    do {
        mod_uploadprogress_merge_config_cpv(pconf, cpv);
    } while ((++cpv)->k_id != -1);
}

__attribute_noinline__
static void mod_uploadprogress_patch_conditions(request_st * const r, plugin_data * const p) {
    for (int i = 1, used = p->nconfig; i < used; ++i) {
        if (config_check_cond(r, (uint32_t)p->cvlist[i].k_id))
            mod_uploadprogress_merge_config(&p->conf, p->cvlist + p->cvlist[i].v.u2[0]);
    }
}

/* Runs for every request: without conditional settings it is one copy. */
static void mod_uploadprogress_patch_config(request_st * const r, plugin_data * const p) {
    p->conf = p->defaults; /* copy small struct instead of memcpy() */
    if (p->nconfig > 1)
        mod_uploadprogress_patch_conditions(r, p);
}

/* The keys of event streams and the timer: one value for the server. */
__attribute_cold__
static int mod_uploadprogress_check_push_cpv(server * const srv, plugin_data * const p, const config_plugin_value_t * const cpv, const int global) {
    static const char * const names[] = {
      "publish-interval", "push-interval", "max-streams",
      "max-streams-per-client" };
    static const uint32_t lo[] = { 10, 10, 1, 1 };
    static const uint32_t hi[] = { 1000, UPLOADPROGRESS_PUSH_MS_LIMIT,
                                   UPLOADPROGRESS_MAX_STREAMS_LIMIT,
                                   UPLOADPROGRESS_MAX_STREAMS_LIMIT };
    const int k = cpv->k_id - 5;
    if (!global) {
        log_error(srv->errh, __FILE__, __LINE__,
          "upload-progress.%s is one for the server: set it globally, not "
          "in a conditional", names[k]);
        return 0;
    }
    if (cpv->v.u < lo[k] || cpv->v.u > hi[k]) {
        log_error(srv->errh, __FILE__, __LINE__,
          "upload-progress.%s must be from %u to %u%s, not %u", names[k],
          lo[k], hi[k], k < 2 ? " milliseconds" : "", cpv->v.u);
        return 0;
    }
    uint32_t * const value[] = { &p->push_config.publish_ms,
                                 &p->push_config.push_ms,
                                 &p->push_config.max_streams,
                                 &p->push_config.max_streams_per_client };
    *value[k] = cpv->v.u;
    return 1;
}

__attribute_cold__
static int mod_uploadprogress_check_cpv(server * const srv, plugin_data * const p, config_plugin_value_t * const cpv, const int global) {
    switch (cpv->k_id) {
      case 0: /* upload-progress.progress-url */
        if (buffer_is_blank(cpv->v.b)) {
            cpv->v.b = NULL;
        } else if (cpv->v.b->ptr[0] != '/') {
            log_error(srv->errh, __FILE__, __LINE__,
              "upload-progress.progress-url must be a URL path starting "
              "with '/', not \"%s\"", cpv->v.b->ptr);
            return 0;
        }
        return 1;
      case 1: /* upload-progress.remove-timeout */
        if (cpv->v.u > INT32_MAX) {
            log_error(srv->errh, __FILE__, __LINE__,
              "upload-progress.remove-timeout must be a number of seconds "
              "from 0 to %d, not %u", INT32_MAX, cpv->v.u);
            return 0;
        }
        return 1;
      case 3: /* upload-progress.max-entries */
        if (!global) {
            log_error(srv->errh, __FILE__, __LINE__,
              "upload-progress.max-entries sizes the one table of the "
              "server: set it globally, not in a conditional");
            return 0;
        }
        if (cpv->v.u < 1 || cpv->v.u > UPLOADPROGRESS_MAX_ENTRIES_LIMIT) {
            log_error(srv->errh, __FILE__, __LINE__,
              "upload-progress.max-entries must be from 1 to %u, not %u",
              UPLOADPROGRESS_MAX_ENTRIES_LIMIT, cpv->v.u);
            return 0;
        }
        p->max_entries = cpv->v.u;
        return 1;
      case 4: { /* upload-progress.format */
        progress_format format;
        if (0 != progress_format_parse(BUF_PTR_LEN(cpv->v.b), &format)) {
            log_error(srv->errh, __FILE__, __LINE__,
              "upload-progress.format must be \"json\", \"legacy\" or "
              "\"xml\", not \"%s\"", cpv->v.b->ptr);
            return 0;
        }
        cpv->v.u = format;
        cpv->vtype = T_CONFIG_LOCAL;
        return 1;
      }
      case 5: /* upload-progress.publish-interval */
      case 6: /* upload-progress.push-interval */
      case 7: /* upload-progress.max-streams */
      case 8: /* upload-progress.max-streams-per-client */
        return mod_uploadprogress_check_push_cpv(srv, p, cpv, global);
      case 9: /* upload-progress.report-url */
        if (buffer_is_blank(cpv->v.b)) {
            cpv->v.b = NULL;
        } else if (cpv->v.b->ptr[0] != '/') {
            log_error(srv->errh, __FILE__, __LINE__,
              "upload-progress.report-url must be a URL path starting "
              "with '/', not \"%s\"", cpv->v.b->ptr);
            return 0;
        }
        return 1;
      case 10: /* upload-progress.processing-timeout */
        if (cpv->v.u < 1 || cpv->v.u > INT32_MAX) {
            log_error(srv->errh, __FILE__, __LINE__,
              "upload-progress.processing-timeout must be a number of seconds "
              "from 1 to %d, not %u", INT32_MAX, cpv->v.u);
            return 0;
        }
        return 1;
      default:
        return 1;
    }
}

/* Whether count i has changed since this process last published it (or
 * `always`); remembers n as published. */
static int count_to_publish(plugin_data * const p, const int i, const unsigned long n, const int always) {
    if (n == p->published[i] && !always) return 0;
    p->published[i] = n;
    return 1;
}

/* plugin_stats holds ints: a count wraps to 0 after INT_MAX, as a counter
 * that restarts. */
static void stats_set(const char * const name, const size_t len, const unsigned long n) {
    plugin_stats_set(name, (uint32_t)len, (int)(n & INT_MAX));
}

/* Copies the counts into lighttpd's plugin_stats, which mod_status prints
 * at status.statistics-url; `always`: every key, else only those that
 * changed (a key's lookup there costs some hundred instructions, and an
 * idle second should cost next to nothing). */
static void mod_uploadprogress_publish_counts(plugin_data * const p, const int always) {
    for (int i = 0; i < PROGRESS_COUNT_N; ++i) {
        const unsigned long n = progress_counters_get(p->counters, (progress_count)i);
        if (!count_to_publish(p, i, n, always)) continue;
        size_t len;
        const char * const name = progress_count_name((progress_count)i, &len);
        stats_set(name, len, n);
    }
    const unsigned long entries = progress_table_count(p->table);
    if (count_to_publish(p, PROGRESS_COUNT_N, entries, always))
        stats_set(CONST_STR_LEN("uploadprogress.entries"), entries);
    const unsigned long processing = progress_table_open_work(p->table);
    if (count_to_publish(p, PROGRESS_COUNT_N + 1, processing, always))
        stats_set(CONST_STR_LEN("uploadprogress.processing"), processing);
    const unsigned long locks = progress_table_locks(p->table);
    if (count_to_publish(p, PROGRESS_COUNT_N + 2, locks, always))
        stats_set(CONST_STR_LEN("uploadprogress.table_locks"), locks);
}

/* The count of event streams: the old generation's streams end with it,
 * so each generation counts its own (zero-filled, shared by its workers). */
__attribute_cold__
static int mod_uploadprogress_push_shared_create(server * const srv, plugin_data * const p) {
    void * const mem = mmap(NULL, progress_push_shared_bytes(), PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (MAP_FAILED == mem) {
        log_perror(srv->errh, __FILE__, __LINE__,
          "upload-progress: mmap of %zu bytes for the count of event streams",
          progress_push_shared_bytes());
        return 0;
    }
    p->push_shared = mem;
    p->pid = getpid();
    return 1;
}

static int current_answer(void *p_d, const progress_id *id, progress_snapshot *snap);

__attribute_cold__
static void mod_uploadprogress_push_create(const server * const srv, plugin_data * const p) {
    /* one worker answers every poll live: nothing to publish, unless
     * graceful-restart-bg leaves it serving uploads beside the next
     * generation's worker */
    p->push_config.publishes = srv->srvconf.max_worker > 1 || p->handoff.restart_bg;
    p->push_config.plugin_id = (size_t)p->id;
    p->push_config.answer = current_answer;
    p->push_config.publish = upload_publish_live_counts;
    p->push_config.glue = p;
    p->push = progress_push_create(&p->push_config, p->push_shared);
}

/* The bits of plugin_data.url_lengths: each progress-url and report-url
 * of the configuration, global or conditional. */
__attribute_cold__
static uint64_t url_lengths(const plugin_data * const p) {
    uint64_t lengths = 0;
    for (int i = !p->cvlist[0].v.u2[1]; i < p->nconfig; ++i) {
        const config_plugin_value_t *cpv = p->cvlist + p->cvlist[i].v.u2[0];
        for (; -1 != cpv->k_id; ++cpv) {
            if ((0 == cpv->k_id || 9 == cpv->k_id) && NULL != cpv->v.b)
                lengths |= (uint64_t)1 << (cpv->v.b->used & 63);
        }
    }
    return lengths;
}

static void first_test_refresh(plugin_data * const p) {
    p->first_test_lengths = p->handoff.inherited ? ~(uint64_t)0 : p->url_lengths;
}

SETDEFAULTS_FUNC(mod_uploadprogress_set_defaults) {
    static const config_plugin_keys_t cpk[] = {
      { CONST_STR_LEN("upload-progress.progress-url"),
        T_CONFIG_STRING,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("upload-progress.remove-timeout"),
        T_CONFIG_INT,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("upload-progress.debug"),
        T_CONFIG_BOOL,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("upload-progress.max-entries"),
        T_CONFIG_INT,
        T_CONFIG_SCOPE_SERVER }
     ,{ CONST_STR_LEN("upload-progress.format"),
        T_CONFIG_STRING,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("upload-progress.publish-interval"),
        T_CONFIG_INT,
        T_CONFIG_SCOPE_SERVER }
     ,{ CONST_STR_LEN("upload-progress.push-interval"),
        T_CONFIG_INT,
        T_CONFIG_SCOPE_SERVER }
     ,{ CONST_STR_LEN("upload-progress.max-streams"),
        T_CONFIG_INT,
        T_CONFIG_SCOPE_SERVER }
     ,{ CONST_STR_LEN("upload-progress.max-streams-per-client"),
        T_CONFIG_INT,
        T_CONFIG_SCOPE_SERVER }
     ,{ CONST_STR_LEN("upload-progress.report-url"),
        T_CONFIG_STRING,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ CONST_STR_LEN("upload-progress.processing-timeout"),
        T_CONFIG_INT,
        T_CONFIG_SCOPE_CONNECTION }
     ,{ NULL, 0,
        T_CONFIG_UNSET,
        T_CONFIG_SCOPE_UNSET }
    };

    plugin_data * const p = p_d;
    if (!config_plugin_values_init(srv, p, cpk, "mod_uploadprogress"))
        return HANDLER_ERROR;

    p->max_entries = UPLOADPROGRESS_MAX_ENTRIES_DEFAULT;
    p->push_config.publish_ms = UPLOADPROGRESS_PUBLISH_MS_DEFAULT;
    p->push_config.push_ms = UPLOADPROGRESS_PUSH_MS_DEFAULT;
    p->push_config.max_streams = UPLOADPROGRESS_MAX_STREAMS_DEFAULT;
    p->push_config.max_streams_per_client = UPLOADPROGRESS_MAX_STREAMS_PER_CLIENT_DEFAULT;
    /* (init i to 0 if global context; to 1 to skip empty global context) */
    for (int i = !p->cvlist[0].v.u2[1]; i < p->nconfig; ++i) {
        config_plugin_value_t *cpv = p->cvlist + p->cvlist[i].v.u2[0];
        for (; -1 != cpv->k_id; ++cpv) {
            if (!mod_uploadprogress_check_cpv(srv, p, cpv, 0 == i))
                return HANDLER_ERROR;
        }
    }

    p->url_lengths = p->first_test_lengths = url_lengths(p);
    p->defaults.remove_timeout = 60;
    p->defaults.processing_timeout = UPLOADPROGRESS_PROCESSING_TIMEOUT_DEFAULT;

    /* initialize p->defaults from global config context */
    if (p->nconfig > 0 && p->cvlist->v.u2[1]) {
        const config_plugin_value_t *cpv = p->cvlist + p->cvlist->v.u2[0];
        if (-1 != cpv->k_id)
            mod_uploadprogress_merge_config(&p->defaults, cpv);
    }

    if (!region_handoff_open(srv, &p->handoff, &p->max_entries, p->defaults.debug)
        || !mod_uploadprogress_push_shared_create(srv, p))
        return HANDLER_ERROR;
    p->table = p->handoff.region.table;
    p->counters = p->handoff.region.counters;
    mod_uploadprogress_push_create(srv, p);
    return HANDLER_GO_ON;
}

SERVER_FUNC(mod_uploadprogress_worker_init) {
    plugin_data * const p = p_d;
    UNUSED(srv);
    p->pid = getpid();
    p->is_worker = 1;
    mod_uploadprogress_publish_counts(p, 1); /* every key, from the start */
    return HANDLER_GO_ON;
}

SIGHUP_FUNC(mod_uploadprogress_sighup) {
    plugin_data * const p = p_d;
    region_handoff_before_exec(srv, &p->handoff);
    first_test_refresh(p);
    return HANDLER_GO_ON;
}

/* In the watcher process of server.max-worker > 1 (never a worker itself):
 * a worker is gone, so its uploads in flight will never finish. */
static handler_t mod_uploadprogress_waitpid(server * const srv, void * const p_d, const pid_t pid, const int status) {
    plugin_data * const p = p_d;
    if (p->is_worker) return HANDLER_GO_ON; /* a CGI child or the like */
    module_log_worker_exit(srv->errh, pid, status);   /* (lighttpd starts another) */
    progress_push_worker_gone(p->push, pid);
    const uint32_t failed = progress_table_fail_owner(p->table, (int32_t)pid, 500,
                              log_monotonic_secs + p->defaults.remove_timeout);
    log_lock_failures(srv, p);
    if (failed)
        log_error(srv->errh, __FILE__, __LINE__,
          "upload-progress: worker %d is gone; its %u uploads in flight "
          "are now errors", (int)pid, failed);
    progress_counters_ended(p->counters, 1, failed);
    return HANDLER_GO_ON;
}

/* Lengths first: most paths differ in length, and the call costs more. */
static int path_is(const request_st * const r, const buffer * const url) {
    return NULL != url && buffer_clen(url) == buffer_clen(&r->uri.path)
        && buffer_is_equal(url, &r->uri.path);
}

/* lighttpd refused an upload before the uri stage (413 for its
 * Content-Length, 411 for a POST without one), so it was never tracked:
 * record the refusal.  Returns what r was: an upload with an id
 * (REQUEST_CTX_UPLOAD_ENDED: recorded), a report at the report URL
 * (REQUEST_CTX_REPORT: nothing to record), or neither. */
static request_kind record_refused(request_st * const r, plugin_data * const p) {
    /* A request refused while lighttpd parsed it (411, 400) never had its
     * conditionals evaluated: lighttpd's cache still holds the results of
     * the request before it on the connection.  Evaluate them afresh. */
    config_cond_cache_reset(r);
    mod_uploadprogress_patch_config(r, p);
    if (path_is(r, p->conf.report_url))   /* (a POST: a report there) */
        return REQUEST_CTX_REPORT;
    if (NULL == p->conf.progress_url
        || buffer_is_equal(p->conf.progress_url, &r->uri.path))
        return REQUEST_CTX_NONE;
    progress_id id;
    if (ID_FOUND != request_progress_id(r, &id)) return REQUEST_CTX_NONE;

    upload_record_refusal(r, p, &id);
    return REQUEST_CTX_UPLOAD_ENDED;
}

/* What r holds after a reset that saw an upload or a report: if lighttpd
 * hands r on (server.error-handler, cgi.local-redir), its mark (kind: an
 * ended or untracked upload, a report), so that the passes that follow
 * leave r alone (never a poll at the progress URL); else nothing. */
static void keep_mark(request_st * const r, const plugin_data * const p, const request_kind kind) {
    if (request_handed_on(r))
        request_ctx_tag(r, p->id, kind);
    else
        request_ctx_set(r, p->id, NULL);
}

/* Runs before lighttpd reuses or frees r, sometimes twice: the first call
 * ends the upload (if the response start did not) and forgets r.  It also
 * runs when lighttpd hands r on to server.error-handler (before it drops
 * the body length: the last moment to see an untracked refusal, 413 for
 * the Content-Length, as an upload) or to a CGI's local redirect: the
 * upload ends then, and r keeps the mark of an ended upload (a report,
 * refused before or after the module saw it, keeps a report's). */
__attribute_noinline__ /* (keeps the hook's test for other requests short) */
static void mod_uploadprogress_reset_ours(request_st * const r, plugin_data * const p) {
    switch (request_ctx_kind(r, p->id)) {
      case REQUEST_CTX_STREAM:
        progress_push_reset(p->push, r); /* (a client gone frees its stream) */
        break;
      case REQUEST_CTX_UPLOAD:
        upload_end(r, p, (upload_ctx *)request_ctx_get(r, p->id));
        keep_mark(r, p, REQUEST_CTX_UPLOAD_ENDED);
        break;
      case REQUEST_CTX_UNTRACKED:
      case REQUEST_CTX_UPLOAD_ENDED:
      case REQUEST_CTX_REPORT:
        keep_mark(r, p, request_ctx_kind(r, p->id));
        break;
      case REQUEST_CTX_NONE:
        if (r->http_status >= 400 && request_is_upload(r)
            && !request_response_started(r)) {
            const request_kind refused = record_refused(r, p);
            if (REQUEST_CTX_NONE != refused)
                keep_mark(r, p, refused);
        }
        break;
    }
}

REQUEST_FUNC(mod_uploadprogress_reset) {
    plugin_data * const p = p_d;
    /* every other request leaves here: no record of ours, not refused */
    if (NULL != request_ctx_get(r, p->id) || r->http_status >= 400)
        mod_uploadprogress_reset_ours(r, p);
    return HANDLER_GO_ON;
}

/* The final status is known here.  An upload whose outcome is settled ends
 * now, before the client can read the response, so that no poll answered
 * after the response (by another worker, say) still says uploading. */
__attribute_noinline__ /* (keeps the hook's test for other requests short) */
static void mod_uploadprogress_response_start_ours(request_st * const r, plugin_data * const p) {
    switch (request_ctx_kind(r, p->id)) {
      case REQUEST_CTX_UPLOAD:
        if (r->http_status >= 400 || request_body_complete(r))
            upload_end(r, p, (upload_ctx *)request_ctx_get(r, p->id));
        break;
      case REQUEST_CTX_NONE:
        /* (with an error handler, the reset before it recorded it) */
        if (r->http_status >= 400 && request_is_upload(r)
            && !request_error_handled(r))
            record_refused(r, p);
        break;
      default: /* a stream's answer, an untracked or ended upload's */
        break;
    }
}

REQUEST_FUNC(mod_uploadprogress_response_start) {
    plugin_data * const p = p_d;
    /* every other request leaves here: no record of ours, not refused */
    if (NULL != request_ctx_get(r, p->id) || r->http_status >= 400)
        mod_uploadprogress_response_start_ours(r, p);
    return HANDLER_GO_ON;
}

/* A refusal keeps its JSON body: with our module as the handler, lighttpd
 * does not swap in its own error page. */
static handler_t answer_problem(request_st * const r, const plugin_data * const p, const int status, const progress_problem problem) {
    size_t len;
    request_set_handler(r, (plugin_data_base *)p);
    const char * const body = progress_render_problem(problem, &len);
    if (status < 429) /* (429, 503: a good poll refused for want of room) */
        progress_counters_add(p->counters, PROGRESS_COUNT_BAD_POLLS);
    return answer(r, status, "application/json", body, len);
}

/* The answer a poll gets now: exact if this worker serves the upload. */
static int current_answer(void * const p_d, const progress_id * const id, progress_snapshot * const snap) {
    const plugin_data * const p = p_d;
    const int found = progress_table_lookup(p->table, id, log_monotonic_secs, snap);
    if (found > 0 && PROGRESS_UPLOADING == snap->state)
        upload_read_live(p, id, snap);
    return found;
}

static void log_stream(request_st * const r, const progress_id * const id) {
    char idhex[PROGRESS_ID_HEX_LEN + 1];
    progress_id_format(id, idhex);
    log_error(r->conf.errh, __FILE__, __LINE__,
      "upload-progress: event stream %s", idhex);
}

/* An event stream instead of one answer (doc: "Events"). */
static handler_t mod_uploadprogress_stream(request_st * const r, plugin_data * const p, const progress_id * const id) {
    request_set_handler(r, (plugin_data_base *)p);
    const progress_push_start_result started =
      progress_push_start(p->push, r, id, p->conf.remove_timeout);
    if (PROGRESS_PUSH_STARTED == started) {
        if (p->conf.debug) log_stream(r, id);
        return HANDLER_FINISHED;
    }
    module_log_stream_refused(&p->log, r, started, errno, &p->push_config);
    if (PROGRESS_PUSH_NO_TIMER == started) /* (polls still work) */
        return answer_problem(r, p, 503, PROGRESS_PROBLEM_NO_TIMER);
    http_header_response_set(r, HTTP_HEADER_OTHER, CONST_STR_LEN("Retry-After"),
                             CONST_STR_LEN(UPLOADPROGRESS_STREAMS_RETRY_AFTER));
    return PROGRESS_PUSH_CLIENT_FULL == started
      ? answer_problem(r, p, 429, PROGRESS_PROBLEM_CLIENT_STREAMS)
      : answer_problem(r, p, 503, PROGRESS_PROBLEM_TOO_MANY_STREAMS);
}


static handler_t mod_uploadprogress_poll(request_st * const r, plugin_data * const p) {
    if (!http_method_get_or_head(r->http_method)) {
        http_header_response_set(r, HTTP_HEADER_ALLOW, CONST_STR_LEN("Allow"),
                                 CONST_STR_LEN("GET, HEAD"));
        return answer_problem(r, p, 405, PROGRESS_PROBLEM_METHOD);
    }
    progress_poll_query q;
    progress_poll_query_scan(r->uri.query.ptr, buffer_clen(&r->uri.query), &q);
    const char * const callback = q.callback;
    const size_t cblen = q.callback_len;
    if (NULL != callback && !progress_callback_is_valid(callback, cblen))
        return answer_problem(r, p, 400, PROGRESS_PROBLEM_BAD_CALLBACK);
    progress_id id;
    switch (progress_id_of(r, q.id, q.id_len, &id)) {
      case ID_FOUND:
        break;
      case ID_MALFORMED:
        return answer_problem(r, p, 400, PROGRESS_PROBLEM_BAD_ID);
      default:
        return answer_problem(r, p, 400, PROGRESS_PROBLEM_NO_ID);
    }

    if (progress_push_requested(r))
        return NULL != callback
          ? answer_problem(r, p, 400, PROGRESS_PROBLEM_STREAM_CALLBACK)
          : mod_uploadprogress_stream(r, p, &id);

    progress_snapshot snap;
    if (current_answer(p, &id, &snap) < 0)
        return answer_problem(r, p, 503, PROGRESS_PROBLEM_UNAVAILABLE);

    char body[PROGRESS_RENDER_MAX];
    const char *content_type;
    const size_t len = progress_render(&snap, (progress_format)p->conf.format,
                                       callback, cblen, body, sizeof body,
                                       &content_type);
    if (p->conf.debug) {
        char idhex[PROGRESS_ID_HEX_LEN + 1];
        progress_id_format(&id, idhex);
        log_error(r->conf.errh, __FILE__, __LINE__,
          "upload-progress: poll %s -> %.*s", idhex, (int)len, body);
    }
    progress_counters_add(p->counters, PROGRESS_COUNT_POLLS);
    return answer(r, 200, content_type, body, len);
}

/* A backend's report at the report URL (doc/processing.md), in the
 * module's handler: taken once lighttpd has read its body (if any). */
static handler_t mod_uploadprogress_report(request_st * const r, plugin_data * const p) {
    mod_uploadprogress_patch_config(r, p); /* (other requests ran meanwhile) */
    const report_request_target target = {
      p->table, p->counters, p->conf.remove_timeout, p->conf.debug };
    return report_request_handle(r, &target);
}

/* The module's handler: a report's body to read, or an event stream
 * (whose timer writes its events; here lighttpd only asks whether the
 * stream's client is still there). */
SUBREQUEST_FUNC(mod_uploadprogress_subrequest) {
    plugin_data * const p = p_d;
    if (REQUEST_CTX_REPORT == request_ctx_kind(r, p->id))
        return mod_uploadprogress_report(r, p);
    return progress_push_subrequest(r);
}

/* A GET or HEAD at the progress URL: a poll or a stream, even where the
 * report URL is the same path (reports are POSTs). */
static int is_poll_at_progress_url(const request_st * const r, const plugin_data * const p) {
    return NULL != p->conf.progress_url && path_is(r, p->conf.progress_url)
        && http_method_get_or_head(r->http_method);
}

/* Whether r may be the module's: anything but a GET or HEAD without a
 * body (an upload has a body, or is a POST or PUT), or one at a path as
 * long as a progress or report URL (any path while the region must still
 * be kept from an exec).  Every other request stops here. */
static inline int request_may_be_ours(const request_st * const r, const plugin_data * const p) {
    return !http_method_get_or_head(r->http_method) || 0 != r->reqbody_length
        || (p->first_test_lengths >> (r->uri.path.used & 63) & 1);
}

__attribute_noinline__ /* (keeps the hook's test for other requests short) */
static handler_t mod_uploadprogress_uri_handler_ours(request_st * const r, plugin_data * const p) {
    region_handoff_keep_from_exec(&p->handoff);   /* (graceful-restart-bg's old generation) */
    first_test_refresh(p);
    if (NULL != r->handler_module) return HANDLER_GO_ON;
    /* uri_clean runs again after a rewrite, an error handler, a restart: a
     * request that holds an upload is never a poll, nor tracked twice
     * (doc: "Requests that come back") */
    if (REQUEST_CTX_NONE != request_ctx_kind(r, p->id)) return HANDLER_GO_ON;

    mod_uploadprogress_patch_config(r, p);
    if (path_is(r, p->conf.report_url) && !is_poll_at_progress_url(r, p)) {
        /* a report from its first pass to its last reset, never an upload
         * (whatever its answer: the hooks that record refused uploads
         * ask); taken by the module's handler, after this stage, so that
         * the modules that refuse requests in it (mod_auth, mod_access)
         * refuse reports too, whatever the order of the modules */
        request_ctx_tag(r, p->id, REQUEST_CTX_REPORT);
        request_set_handler(r, (plugin_data_base *)p);
        request_body_whole(r);
        return HANDLER_GO_ON;
    }
    if (NULL == p->conf.progress_url) return HANDLER_GO_ON;

    if (path_is(r, p->conf.progress_url))
        return mod_uploadprogress_poll(r, p);

    if (request_is_upload(r))
        upload_track(r, p);
    return HANDLER_GO_ON;
}

/* Every request: the test that every other request stops at. */
URIHANDLER_FUNC(mod_uploadprogress_uri_handler) {
    plugin_data * const p = p_d;
    return request_may_be_ours(r, p)
      ? mod_uploadprogress_uri_handler_ours(r, p) : HANDLER_GO_ON;
}

/* Once a second: publish, and free expired entries. */
TRIGGER_FUNC(mod_uploadprogress_trigger) {
    plugin_data * const p = p_d;
    region_handoff_keep_from_exec(&p->handoff);
    first_test_refresh(p);
    upload_publish_live_counts(p);
    const uint32_t freed = progress_table_sweep(p->table, log_monotonic_secs,
                                                UPLOADPROGRESS_SWEEP_BUDGET);
    log_lock_failures(srv, p);
    if (freed && p->defaults.debug)
        log_error(srv->errh, __FILE__, __LINE__,
          "upload-progress: swept %u finished uploads; %u entries left",
          freed, progress_table_count(p->table));
    mod_uploadprogress_publish_counts(p, 0);
    return HANDLER_GO_ON;
}

static const plugin mod_uploadprogress_plugin = {
    .version     = LIGHTTPD_VERSION_ID,
    .name        = "uploadprogress",

    .init        = mod_uploadprogress_init,
    .cleanup     = mod_uploadprogress_free,
    .set_defaults= mod_uploadprogress_set_defaults,
    .worker_init = mod_uploadprogress_worker_init,

    .handle_uri_clean      = mod_uploadprogress_uri_handler,
    .handle_response_start = mod_uploadprogress_response_start,
    .handle_request_reset  = mod_uploadprogress_reset,
    .handle_subrequest     = mod_uploadprogress_subrequest,
    .handle_trigger        = mod_uploadprogress_trigger,
    .handle_waitpid        = mod_uploadprogress_waitpid,
    .handle_sighup         = mod_uploadprogress_sighup,
};

__attribute_cold__
int mod_uploadprogress_plugin_init(plugin *p);
int mod_uploadprogress_plugin_init(plugin *p) {
    plugin_fill(p, &mod_uploadprogress_plugin);
    return 0;
}
