/* lighttpd_compat: every field or API of lighttpd that differs between the
 * releases the module supports (1.4.69 to 1.4.85), chosen at compile time
 * from the target's LIGHTTPD_VERSION_ID.  The hooks call these and never
 * test a version themselves.  Include after lighttpd's headers. */
#ifndef LIGHTTPD_COMPAT_H
#define LIGHTTPD_COMPAT_H

#include <string.h>

#include "base.h"
#include "fdevent.h"
#include "plugin.h"
#include "request.h"

/* A version as one comparable number: 1.4.69 is 0x010445. */
#define LIGHTTPD_COMPAT_V(major, minor, patch) \
    (((major) << 16) | ((minor) << 8) | (patch))

/* LIGHTTPD_VERSION_ID depends on the build system that made lighttpd:
 * autotools (Debian's packages) puts the patch number in the low byte
 * (1.4.69: 0x10445), meson and CMake put its decimal digits there as hex
 * (1.4.69: 0x10469).  Within the supported range the two never meet: the
 * autotools bytes are 0x45..0x55, the meson/CMake ones 0x69..0x85, so a
 * low byte whose digits are decimal and at least 0x60 is read as digits. */
#define LIGHTTPD_COMPAT_ID_PATCH_BYTE (LIGHTTPD_VERSION_ID & 0xff)
#define LIGHTTPD_COMPAT_ID_IS_DIGITS \
    (LIGHTTPD_COMPAT_ID_PATCH_BYTE >= 0x60 \
     && (LIGHTTPD_COMPAT_ID_PATCH_BYTE & 0x0f) <= 9 \
     && (LIGHTTPD_COMPAT_ID_PATCH_BYTE >> 4) <= 9)
#define LIGHTTPD_COMPAT_VERSION \
    ((LIGHTTPD_VERSION_ID & ~0xff) \
     | (LIGHTTPD_COMPAT_ID_IS_DIGITS \
        ? (LIGHTTPD_COMPAT_ID_PATCH_BYTE >> 4) * 10 \
          + (LIGHTTPD_COMPAT_ID_PATCH_BYTE & 0x0f) \
        : LIGHTTPD_COMPAT_ID_PATCH_BYTE))

/* The releases this source was built and tested against (doc/building.md);
 * -Dallow_untested_lighttpd=true (UPLOADPROGRESS_ALLOW_UNTESTED_LIGHTTPD)
 * builds for another one anyway, untested. */
#ifndef UPLOADPROGRESS_ALLOW_UNTESTED_LIGHTTPD
#if LIGHTTPD_COMPAT_VERSION < LIGHTTPD_COMPAT_V(1, 4, 69) \
 || LIGHTTPD_COMPAT_VERSION > LIGHTTPD_COMPAT_V(1, 4, 85)
#error "mod_uploadprogress supports lighttpd 1.4.69 to 1.4.85; configure with -Dallow_untested_lighttpd=true to try another release, untested"
#endif
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

/* 1.4.83 made the plugin's hooks a static const struct plugin that each
 * module copies into lighttpd's at load and points its data at (PLUGIN_DATA's
 * const self), and made r->handler_module point at the handling module's
 * data.  Before, lighttpd kept its dlopen handle in the struct plugin it
 * hands to plugin_init, set self itself, and handler_module pointed at the
 * hooks. */
#if LIGHTTPD_COMPAT_VERSION >= LIGHTTPD_COMPAT_V(1, 4, 83)

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
