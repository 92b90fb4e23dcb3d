#include "first.h"

#include <stdlib.h>

#include "base.h"
#include "log.h"
#include "plugin.h"

#include "lighttpd_compat.h"
#include "module_log.h"
#include "progress_counters.h"
#include "progress_id.h"
#include "progress_push.h"
#include "progress_render.h"
#include "progress_table.h"
#include "request_ctx.h"
#include "request_id.h"
#include "upload_tracking.h"

/* owner_ref of an entry recorded for a request that was never tracked */
#define UPLOAD_REF_NONE UINT32_MAX

static upload_ctx * upload_ctx_new(plugin_data * const p, request_st * const r, const progress_id * const id) {
    upload_ctx * const ctx = ck_calloc(1, sizeof(*ctx));
    if (p->nfree > 0) {
        ctx->ref = p->free_refs[--p->nfree];
    } else {
        if (0 == (p->uploads_used & 15)) { /* grow in steps of 16 */
            ck_realloc_u32((void **)&p->uploads, p->uploads_used, 16, sizeof(*p->uploads));
            ck_realloc_u32((void **)&p->free_refs, p->uploads_used, 16, sizeof(*p->free_refs));
        }
        ctx->ref = p->uploads_used++;
    }
    p->uploads[ctx->ref] = ctx;
    ctx->ctx.kind = REQUEST_CTX_UPLOAD;
    ctx->id = *id;
    ctx->r = r;
    ctx->size = request_body_length(r);
    ctx->speed_second = log_monotonic_secs; /* (the table's begin) */
    ctx->published = -1;
    ctx->keep_alive = (unsigned char)request_keeps_connection(r);
    ctx->remove_timeout = p->conf.remove_timeout;
    ctx->processing_timeout = p->conf.processing_timeout;
    ctx->debug = p->conf.debug;
    progress_push_uploads(p->push, r->con->srv, p->uploads_used - p->nfree);
    return ctx;
}

static void upload_ctx_free(plugin_data * const p, upload_ctx * const ctx) {
    p->uploads[ctx->ref] = NULL;
    p->free_refs[p->nfree++] = ctx->ref;
    progress_push_uploads(p->push, ctx->r->con->srv, p->uploads_used - p->nfree);
    free(ctx);
}

void upload_track(request_st * const r, plugin_data * const p) {
    progress_id id;
    char idhex[PROGRESS_ID_HEX_LEN + 1];
    switch (request_progress_id(r, &id)) {
      case ID_FOUND:
        break;
      case ID_MALFORMED:
        if (p->conf.debug)
            log_error(r->conf.errh, __FILE__, __LINE__,
              "upload-progress: malformed " PROGRESS_ID_NAME "; upload not tracked");
        return;
      default:
        return;
    }
    progress_id_format(&id, idhex);
    upload_ctx * const ctx = upload_ctx_new(p, r, &id);
    switch (progress_table_begin(p->table, &id, request_body_length(r), p->pid,
                                 ctx->ref, log_monotonic_secs)) {
      case PROGRESS_BEGIN_OK:
        request_ctx_set(r, p->id, &ctx->ctx);
        progress_counters_began(p->counters);
        if (p->conf.debug)
            log_error(r->conf.errh, __FILE__, __LINE__,
              "upload-progress: tracking %s size %lld", idhex,
              (long long)request_body_length(r));
        return;
      case PROGRESS_BEGIN_IN_FLIGHT:
        module_log_id_in_use(&p->log, r, idhex);
        break;
      case PROGRESS_BEGIN_NO_LOCK: /* the trigger logs it */
        break;
      case PROGRESS_BEGIN_FULL:
      default:
        module_log_table_full(&p->log, r, p->max_entries, idhex);
        break;
    }
    progress_counters_add(p->counters, PROGRESS_COUNT_UNTRACKED);
    upload_ctx_free(p, ctx);
    /* (its id was in use by an upload in flight, or the table was full):
     * however it ends, it must not touch the entry of its id */
    request_ctx_tag(r, p->id, REQUEST_CTX_UNTRACKED);
}

/* How an upload ended whose body lighttpd dropped: a CGI's local redirect
 * (cgi.local-redir) empties the body queue and zeroes its length before
 * the request is reset for the new target.  The body was whole if lighttpd
 * read all of it before the backend started, or if it still keeps the
 * connection (it stops when it drops a partial body).  Otherwise, or for a
 * chunked body, the last published count (at most a second old) tells. */
static progress_snapshot dropped_body_outcome(const request_st * const r, const plugin_data * const p, const upload_ctx * const ctx) {
    const int whole = !request_body_streams(r)
                   || (ctx->keep_alive && request_keeps_connection(r));
    progress_snapshot last = { .received = ctx->size };
    if (!whole || ctx->size < 0)
        progress_table_lookup(p->table, &ctx->id, log_monotonic_secs, &last);
    if (whole || last.received == ctx->size)
        return (progress_snapshot){ .state = PROGRESS_DONE,
                                    .size = last.received,
                                    .received = last.received };
    return (progress_snapshot){ .state = PROGRESS_ERROR, .status = 400,
                                .size = ctx->size, .received = last.received };
}

/* How a request that ends now left its upload. */
static progress_snapshot upload_outcome(const request_st * const r, const plugin_data * const p, const upload_ctx * const ctx) {
    const off_t received = request_body_received(r);
    const off_t size = request_body_length(r);
    if (0 == size && 0 != ctx->size)
        return dropped_body_outcome(r, p, ctx);
    const int complete = request_body_complete(r);
    /* (a backend's cleanup may have set a 500 for a client gone mid-body) */
    if (r->http_status >= 400 && (complete || !request_client_gone(r)))
        return (progress_snapshot){ .state = PROGRESS_ERROR,
                                    .status = r->http_status,
                                    .size = -1, .received = -1 };
    if (complete)
        return (progress_snapshot){ .state = PROGRESS_DONE,
                                    .status = r->http_status,
                                    .size = size, .received = received };
    /* the client went away before the whole body was there */
    return (progress_snapshot){ .state = PROGRESS_ERROR, .status = 400,
                                .size = size, .received = received };
}

static void log_finish(request_st * const r, const progress_id * const id, const progress_snapshot * const fin) {
    char idhex[PROGRESS_ID_HEX_LEN + 1];
    progress_id_format(id, idhex);
    log_error(r->conf.errh, __FILE__, __LINE__,
      "upload-progress: finished %s state %s status %d received %lld size %lld",
      idhex, progress_state_name(fin->state), fin->status,
      (long long)fin->received, (long long)fin->size);
}

/* A 202 Accepted with the whole body leaves the work open until the
 * backend reports its outcome or the processing timeout passes; the entry
 * stays remove-timeout after that (doc/processing.md, "202 Accepted"). */
static int64_t keep_work_open(const request_st * const r, const upload_ctx * const ctx, progress_snapshot * const fin) {
    const int64_t expires = log_monotonic_secs + ctx->remove_timeout;
    if (202 != r->http_status || PROGRESS_DONE != fin->state) return expires;
    fin->phase = PROGRESS_PHASE_PROCESSING;
    fin->deadline = log_monotonic_secs + ctx->processing_timeout;
    return expires + ctx->processing_timeout;
}

void upload_end(request_st * const r, plugin_data * const p, upload_ctx * const ctx) {
    request_ctx_set(r, p->id, NULL);
    progress_snapshot fin = upload_outcome(r, p, ctx);
    const int64_t expires = keep_work_open(r, ctx, &fin);
    if (progress_table_finish(p->table, &ctx->id, p->pid, ctx->ref, &fin, expires))
        progress_counters_ended(p->counters, PROGRESS_ERROR == fin.state, 1);
    if (ctx->debug) log_finish(r, &ctx->id, &fin);
    upload_ctx_free(p, ctx);
}

void upload_record_refusal(request_st * const r, plugin_data * const p, const progress_id * const id) {
    const progress_snapshot fin = { .state = PROGRESS_ERROR,
                                    .status = r->http_status,
                                    .size = -1, .received = -1 };
    const unix_time64_t now = log_monotonic_secs;
    if (PROGRESS_BEGIN_OK != progress_table_begin(p->table, id, -1, p->pid,
                                                  UPLOAD_REF_NONE, now)) {
        progress_counters_add(p->counters, PROGRESS_COUNT_UNTRACKED);
        return;
    }
    progress_counters_began(p->counters);
    if (progress_table_finish(p->table, id, p->pid, UPLOAD_REF_NONE,
                              &fin, now + p->conf.remove_timeout)) {
        progress_counters_ended(p->counters, 1, 1);
        if (p->conf.debug) log_finish(r, id, &fin);
    }
}

void upload_publish_live_counts(void * const p_d) {
    plugin_data * const p = p_d;
    for (uint32_t i = 0; i < p->uploads_used; ++i) {
        upload_ctx * const ctx = p->uploads[i];
        if (NULL == ctx) continue;
        const off_t received = request_body_received(ctx->r);
        const off_t size = request_body_length(ctx->r);
        if (received == ctx->published && size == ctx->published_size
            && log_monotonic_secs == ctx->speed_second)
            continue;   /* (the entry says this already: an upload between pieces) */
        progress_table_update(p->table, &ctx->id, p->pid, ctx->ref, received,
                              size, ctx->speed_base, log_monotonic_secs);
        ctx->published = received;
        ctx->published_size = size;
        if (ctx->speed_second != log_monotonic_secs) {
            ctx->speed_second = log_monotonic_secs;
            ctx->speed_base = received;
        }
    }
}

void upload_free_all(plugin_data * const p) {
    for (uint32_t i = 0; i < p->uploads_used; ++i)
        free(p->uploads[i]);
    free(p->uploads);
    free(p->free_refs);
}
