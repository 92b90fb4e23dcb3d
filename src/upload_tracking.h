/* upload_tracking: the uploads this worker serves, from their head to their
 * end: each one's record (an upload_ctx in r's plugin_ctx, and in
 * plugin_data.uploads by ref), its entry begun and finished in the table,
 * its live byte count (for polls and for the workers that answer them),
 * and the uploads lighttpd refused before the module saw them.  The glue
 * decides which requests are uploads; this room keeps them. */
#ifndef UPLOAD_TRACKING_H
#define UPLOAD_TRACKING_H

#include "first.h"

#include <stdint.h>

#include "base.h"

#include "lighttpd_compat.h"
#include "module_data.h"
#include "progress_id.h"
#include "progress_table.h"
#include "request_ctx.h"

/* One upload in flight that this process serves. */
struct upload_ctx {
    request_ctx ctx;              /* REQUEST_CTX_UPLOAD: r->plugin_ctx holds it */
    progress_id id;
    request_st *r;
    off_t size;                   /* body length when tracking began */
    off_t speed_base;             /* published count the speed starts from */
    unix_time64_t speed_second;   /* second of the last update (the first of a second begins a speed) */
    off_t published;              /* count and size of the last update (-1: */
    off_t published_size;         /* none): the same again that second is skipped */
    unsigned char keep_alive;     /* whether the connection was to be kept */
    uint32_t ref;                 /* index in plugin_data.uploads */
    unsigned int remove_timeout;
    unsigned int processing_timeout;
    unsigned char debug;
};

/* Tracks r, an upload with a body (or a POST, a PUT) outside the progress
 * and report URLs, if it names an id: its entry begins, r holds its record.
 * An upload whose id is in use, or that finds the table full, is served
 * untracked and tagged so. */
void upload_track(request_st *r, plugin_data *p);

/* Ends ctx, r's upload: its outcome into the table, its record freed. */
void upload_end(request_st *r, plugin_data *p, upload_ctx *ctx);

/* Records an upload with id that lighttpd refused (r->http_status) before
 * it was tracked: an entry that says error with that status. */
void upload_record_refusal(request_st *r, plugin_data *p, const progress_id *id);

/* Publishes this worker's live counts for polls answered by other workers:
 * every publish-interval from the timer, and once a second (p_d: the
 * plugin_data, as progress_push calls it). */
void upload_publish_live_counts(void *p_d);

/* Frees every record (lighttpd frees the plugin). */
void upload_free_all(plugin_data *p);

/* An upload this worker serves is read live: exact at this moment.  (Here,
 * inline: every poll of an upload in flight passes it.) */
static inline void upload_read_live(const plugin_data * const p, const progress_id * const id, progress_snapshot * const snap)
{
    if (snap->owner_pid != p->pid || snap->owner_ref >= p->uploads_used)
        return;
    const upload_ctx * const ctx = p->uploads[snap->owner_ref];
    if (NULL == ctx || !progress_id_equal(&ctx->id, id)) return;
    snap->received = request_body_received(ctx->r);
    snap->size = request_body_length(ctx->r);
}

#endif
