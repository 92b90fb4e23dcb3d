/* lighttpd_compat: every field or API of lighttpd that differs between the
 * releases the module supports (1.4.69 to 1.4.85, and newer 1.4 with the
 * newest paths), chosen at compile time from the target's version.  The hooks call these and never
 * test a version themselves.  Include after lighttpd's headers. */
#ifndef LIGHTTPD_COMPAT_H
#define LIGHTTPD_COMPAT_H

#include <stdlib.h>
#include <string.h>

#include "base.h"
#include "chunk.h"
#include "fdevent.h"
#include "http_chunk.h"
#include "http_header.h"
#include "plugin.h"
#include "request.h"
#include "sock_addr.h"

#include "lighttpd_version.h"

/* The patch number of the target's 1.4 release (src/lighttpd_version.h).
 * meson.build passes UPLOADPROGRESS_LIGHTTPD_PATCH from the tree's
 * config.h (PACKAGE_VERSION) or -Dlighttpd_version, which settles the
 * encoding of LIGHTTPD_VERSION_ID; without it the id is decoded alone. */
#ifndef UPLOADPROGRESS_LIGHTTPD_PATCH
#define UPLOADPROGRESS_LIGHTTPD_PATCH (-1)
#endif
#define LIGHTTPD_COMPAT_PATCH \
    LIGHTTPD_VERSION_PATCH(LIGHTTPD_VERSION_ID, UPLOADPROGRESS_LIGHTTPD_PATCH)

#if LIGHTTPD_COMPAT_PATCH == LIGHTTPD_VERSION_AMBIGUOUS
#error "LIGHTTPD_VERSION_ID names two lighttpd releases (autotools' and meson's or CMake's encoding): configure with -Dlighttpd_version=1.4.N, N the patch number of your lighttpd"
#elif LIGHTTPD_COMPAT_PATCH == LIGHTTPD_VERSION_UNKNOWN
#error "LIGHTTPD_VERSION_ID is not lighttpd 1.4's (or not the version given): build against the configured source tree of your lighttpd 1.4, or pass -Dlighttpd_version=1.4.N"
#endif

/* The releases this source was built and tested against (doc/building.md).
 * A newer one builds, with the newest paths and a note; an older one only
 * with -Dallow_untested_lighttpd=true (UPLOADPROGRESS_ALLOW_UNTESTED_LIGHTTPD). */
#if LIGHTTPD_COMPAT_PATCH > 85
#pragma message "mod_uploadprogress is tested with lighttpd 1.4.69 to 1.4.85: built for a newer 1.4 with the paths of 1.4.85, untested; run the integration tests against it"
#elif LIGHTTPD_COMPAT_PATCH < 69 && !defined(UPLOADPROGRESS_ALLOW_UNTESTED_LIGHTTPD)
#error "mod_uploadprogress supports lighttpd 1.4.69 to 1.4.85 (newer ones build, untested); configure with -Dallow_untested_lighttpd=true to try an older release, untested"
#endif

/* The request fields the module reads: the one place to adapt when a
 * lighttpd release renames them.  The same in every supported release. */
static inline off_t request_body_received(const request_st * const r)
{
    return r->reqbody_queue.bytes_in;
}

static inline off_t request_body_length(const request_st * const r)
{
    return r->reqbody_length;   /* -1 while unknown (chunked) */
}

/* A request with a body, or a POST or PUT whose body is empty.  (A
 * request that server.error-handler serves has lost its body length and
 * is a GET by then, so it is not taken for a new upload.) */
static inline int request_is_upload(const request_st * const r)
{
    return 0 != r->reqbody_length
        || HTTP_METHOD_POST == r->http_method
        || HTTP_METHOD_PUT == r->http_method;
}

/* Whether the response headers are out; until then lighttpd may still
 * hand a refused request to server.error-handler. */
static inline int request_response_started(const request_st * const r)
{
    return 0 != r->resp_header_len;
}

/* Whether the client is gone: the request failed, or the HTTP/2
 * connection that carries it did. */
static inline int request_client_gone(const request_st * const r)
{
    return CON_STATE_ERROR == r->state
        || CON_STATE_ERROR == r->con->request.state;
}

/* Whether the whole body, of a known length, has been read. */
static inline int request_body_complete(const request_st * const r)
{
    const off_t size = request_body_length(r);
    return size >= 0 && request_body_received(r) == size;
}

/* Whether lighttpd keeps the connection after this request; it stops
 * keeping it when it drops a body that had not all arrived. */
static inline int request_keeps_connection(const request_st * const r)
{
    return 0 != r->keep_alive;
}

/* Whether lighttpd hands the body to the backend while it arrives
 * (server.stream-request-body 1 or 2); with 0 it reads all of it first. */
static inline int request_body_streams(const request_st * const r)
{
    return 0 != (r->conf.stream_request_body
                 & (FDEVENT_STREAM_REQUEST | FDEVENT_STREAM_REQUEST_BUFMIN));
}

/* Whether an error handler serves the request in place of its error. */
static inline int request_error_handled(const request_st * const r)
{
    return 0 != r->error_handler_saved_status;
}

/* Whether lighttpd runs the reset hooks in the middle of r, to hand r on to
 * another target that serves it next; any other reset is r's last.  Two
 * places do: server.error-handler (response.c sets REDIRECT_STATUS to the
 * status, resets, then remembers the status) and cgi.local-redir
 * (http_cgi.c counts a loop and drops the body, mod_cgi.c sets the status
 * to 0 and resets).  Both go on only with the client still there and
 * nothing sent yet. */
static inline int request_handed_on(const request_st * const r)
{
    if (request_response_started(r) || request_client_gone(r)) return 0;
    if (0 == r->http_status)   /* cgi.local-redir */
        return r->loops_per_request > 0 && 0 == r->reqbody_length;
    if (r->http_status < 400 || request_error_handled(r)
        || NULL == r->conf.error_handler)
        return 0;
    const buffer * const status =
      http_header_env_get(r, CONST_STR_LEN("REDIRECT_STATUS"));
    return NULL != status && atoi(status->ptr) == r->http_status;
}

/* Reading a small request body in the module's handler (a report): the
 * same in every supported release. */

/* lighttpd is to read the whole body before the handler sees it, however
 * server.stream-request-body is set. */
static inline void request_body_whole(request_st * const r)
{
    r->conf.stream_request_body &=
      ~(FDEVENT_STREAM_REQUEST | FDEVENT_STREAM_REQUEST_BUFMIN);
}

/* Reads what has come of the body: HANDLER_GO_ON once all of it is in,
 * HANDLER_WAIT_FOR_EVENT until then, or lighttpd's error. */
static inline handler_t request_body_read(request_st * const r)
{
    if (CON_STATE_READ_POST != r->state) return HANDLER_GO_ON;
    const handler_t rc = r->con->reqbody_read(r);
    if (HANDLER_GO_ON != rc) return rc;
    return CON_STATE_READ_POST == r->state ? HANDLER_WAIT_FOR_EVENT : HANDLER_GO_ON;
}

/* Copies the whole body, read, into buf: its length, or -1 if it is
 * longer than cap (or cannot be read). */
static inline long request_body_copy(request_st * const r, char * const buf, const size_t cap)
{
    const off_t len = chunkqueue_length(&r->reqbody_queue);
    if (len < 0 || (uint64_t)len > cap) return -1;
    if (0 != len && 0 != chunkqueue_read_data(&r->reqbody_queue, buf, (uint32_t)len,
                                              r->conf.errh))
        return -1;
    return (long)len;
}

/* The client's address as lighttpd has it for r (mod_extforward puts the
 * forwarded one there): per request from 1.4.70, per connection before. */
#if LIGHTTPD_COMPAT_PATCH >= 70
static inline const sock_addr * request_remote_addr(const request_st * const r)
{
    return (const sock_addr *)r->dst_addr;
}

static inline const buffer * request_remote_addr_text(const request_st * const r)
{
    return r->dst_addr_buf;
}
#else
static inline const sock_addr * request_remote_addr(const request_st * const r)
{
    return &r->con->dst_addr;
}

static inline const buffer * request_remote_addr_text(const request_st * const r)
{
    return &r->con->dst_addr_buf;
}
#endif

/* Streaming a response (progress_push): the same in every supported
 * release. */

/* Wakes r's connection so that lighttpd writes what was queued. */
static inline void request_wake(request_st * const r)
{
    joblist_append(r->con);
}

static inline server * request_server(const request_st * const r)
{
    return r->con->srv;
}

/* Queued response bytes not yet written to the client. */
static inline off_t request_queued(const request_st * const r)
{
    return chunkqueue_length(&r->write_queue);
}

/* Whether the client closed its side (HTTP/1.x): lighttpd takes a FIN for
 * a half-close and keeps writing. */
static inline int request_client_closed(const request_st * const r)
{
    return 0 != (r->conf.stream_request_body & FDEVENT_STREAM_REQUEST_TCP_FIN);
}

/* Lets lighttpd send the response's body as it is queued (HTTP/2 holds a
 * stream's data back until the end otherwise). */
static inline void request_stream_response(request_st * const r)
{
    r->conf.stream_response_body |= FDEVENT_STREAM_RESPONSE;
}

/* Ends a streamed response after what is queued (HTTP/1.1: last chunk). */
static inline void request_end_response(request_st * const r)
{
    http_chunk_close(r);
    r->resp_body_finished = 1;
}

/* Whether a graceful shutdown or restart has begun: lighttpd waits for the
 * requests in flight, up to server.graceful-shutdown-timeout. */
static inline int server_shutting_down(const server * const srv)
{
    return 0 != srv->graceful_expire_ts;
}

/* 1.4.83 made the plugin's hooks a static const struct plugin that each
 * module copies into lighttpd's at load and points its data at (PLUGIN_DATA's
 * const self), and made r->handler_module point at the handling module's
 * data.  Before, lighttpd kept its dlopen handle in the struct plugin it
 * hands to plugin_init, set self itself, and handler_module pointed at the
 * hooks. */
#if LIGHTTPD_COMPAT_PATCH >= 83

static inline void plugin_fill(plugin * const p, const plugin * const hooks)
{
    memcpy(p, hooks, sizeof(*p));
}

static inline void plugin_data_set_hooks(plugin_data_base * const pd, const plugin * const hooks)
{
    pd->self = hooks;
}

static inline void request_set_handler(request_st * const r, plugin_data_base * const pd)
{
    r->handler_module = pd;
}

#else

static inline void plugin_fill(plugin * const p, const plugin * const hooks)
{
    void * const lib = p->lib;
    *p = *hooks;
    p->lib = lib;
}

static inline void plugin_data_set_hooks(plugin_data_base * const pd, const plugin * const hooks)
{
    (void)pd;      /* lighttpd sets self to its own copy of the hooks */
    (void)hooks;
}

static inline void request_set_handler(request_st * const r, plugin_data_base * const pd)
{
    r->handler_module = pd->self;
}

#endif

#endif
