/* request_answer: the module's own whole answers (polls, reports and their
 * refusals): a small body that no cache may keep. */
#ifndef REQUEST_ANSWER_H
#define REQUEST_ANSWER_H

#include "first.h"

#include <string.h>

#include "base.h"
#include "http_chunk.h"
#include "http_header.h"
#include "plugin.h"

static inline handler_t answer(request_st * const r, const int status, const char * const content_type, const char * const body, const size_t len)
{
    http_header_response_set(r, HTTP_HEADER_CONTENT_TYPE,
                             CONST_STR_LEN("Content-Type"),
                             content_type, strlen(content_type));
    http_header_response_set(r, HTTP_HEADER_CACHE_CONTROL,
                             CONST_STR_LEN("Cache-Control"),
                             CONST_STR_LEN("no-store"));
    /* Every HTTP/1.1 cache obeys no-store (RFC 9111 5.2.2.5); a date in
     * the past is for an HTTP/1.0 cache, which knows no Cache-Control and
     * forwards the requests it would cache as HTTP/1.0 (RFC 9110 2.5).
     * Sent to every request, it costs about 200 instructions a poll. */
    if (r->http_version == HTTP_VERSION_1_0)
        http_header_response_set(r, HTTP_HEADER_EXPIRES,
                                 CONST_STR_LEN("Expires"),
                                 CONST_STR_LEN("Thu, 19 Nov 1981 08:52:00 GMT"));
    http_chunk_append_mem(r, body, len);
    /* No byte ranges of an answer that the next poll renders otherwise:
     * lighttpd would advertise "Accept-Ranges: bytes" and serve a Range
     * request a 206 slice of it (and spend about 300 instructions a poll
     * on that). */
    r->conf.range_requests = 0;
    r->http_status = status;
    r->resp_body_finished = 1;
    return HANDLER_FINISHED;
}

#endif
