/* request_ctx: the one thing a request's r->plugin_ctx[id] can hold for
 * this module, tagged, so that no hook takes one for another.
 *
 * Contract
 * - NULL is REQUEST_CTX_NONE: the module takes no part in the request (yet).
 * - Every record the module keeps there begins with a request_ctx, whose
 *   kind says what follows: an upload in flight (upload_tracking's upload_ctx), an
 *   event stream (progress_push's push_stream).  The kinds that carry no
 *   record of their own (an upload served untracked, an upload whose record
 *   has ended) point at a tag of this file, never freed.
 * - A request is what it was when the module first saw it: once it holds an
 *   upload, it holds one (or the ended upload's tag) until its last reset;
 *   a report keeps its tag until its last reset (also one refused before
 *   the module saw it, once lighttpd hands it on); a stream is one from
 *   its first pass.  Hooks decide by
 *   request_ctx_kind(), never from r->handler_module or the request's
 *   method.  doc/mod_uploadprogress.md, "Requests that come back". */
#ifndef REQUEST_CTX_H
#define REQUEST_CTX_H

#include "first.h"

#include <stddef.h>

#include "base.h"
#include "request.h"

typedef enum {
    REQUEST_CTX_NONE,
    REQUEST_CTX_UPLOAD,          /* tracked, in flight: upload_tracking's */
    REQUEST_CTX_UNTRACKED,       /* an upload served but not tracked (tag) */
    REQUEST_CTX_UPLOAD_ENDED,    /* an upload whose record ended when lighttpd
                                    handed the request on (tag) */
    REQUEST_CTX_STREAM,          /* an event stream: progress_push's */
    REQUEST_CTX_REPORT           /* a backend's report at the report URL,
                                    whose body lighttpd reads for the
                                    module's handler (tag) */
} request_kind;

typedef struct request_ctx {
    request_kind kind;
} request_ctx;

static inline request_ctx * request_ctx_get(const request_st * const r, const size_t plugin_id)
{
    return r->plugin_ctx[plugin_id];
}

static inline request_kind request_ctx_kind(const request_st * const r, const size_t plugin_id)
{
    const request_ctx * const ctx = request_ctx_get(r, plugin_id);
    return NULL == ctx ? REQUEST_CTX_NONE : ctx->kind;
}

/* ctx: a record that begins with its request_ctx, or NULL (none). */
static inline void request_ctx_set(request_st * const r, const size_t plugin_id, request_ctx * const ctx)
{
    r->plugin_ctx[plugin_id] = ctx;
}

/* Marks r with a kind that carries no record (REQUEST_CTX_UNTRACKED,
 * REQUEST_CTX_UPLOAD_ENDED or REQUEST_CTX_REPORT): a tag shared by all
 * requests, never freed. */
static inline void request_ctx_tag(request_st * const r, const size_t plugin_id, const request_kind kind)
{
    static request_ctx tags[] = {
        { REQUEST_CTX_UNTRACKED }, { REQUEST_CTX_UPLOAD_ENDED }, { REQUEST_CTX_REPORT } };
    request_ctx_set(r, plugin_id,
                    &tags[REQUEST_CTX_REPORT == kind ? 2
                          : REQUEST_CTX_UPLOAD_ENDED == kind ? 1 : 0]);
}

#endif
