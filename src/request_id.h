/* request_id: the progress id a request names (an upload, a poll, a
 * report), in its X-Progress-ID header or its query string. */
#ifndef REQUEST_ID_H
#define REQUEST_ID_H

#include "first.h"

#include <stddef.h>

#include "base.h"
#include "buffer.h"
#include "http_header.h"

#include "progress_id.h"

typedef enum { ID_FOUND, ID_MISSING, ID_MALFORMED } id_lookup;

/* The header wins over the query parameter. */
static inline id_lookup request_progress_id(const request_st * const r, progress_id * const id)
{
    const buffer * const h = http_header_request_get(r, HTTP_HEADER_OTHER,
                               CONST_STR_LEN(PROGRESS_ID_NAME));
    const char *v;
    size_t vlen;
    if (NULL != h) {
        v = h->ptr;
        vlen = buffer_clen(h);
    } else {
        v = progress_id_find_in_query(r->uri.query.ptr,
                                      buffer_clen(&r->uri.query), &vlen);
        if (NULL == v) return ID_MISSING;
    }
    return 0 == progress_id_parse(v, vlen, id) ? ID_FOUND : ID_MALFORMED;
}

#endif
