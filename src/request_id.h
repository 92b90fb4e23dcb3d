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

/* The header wins over the query parameter (v, vlen: its value in r's
 * query; v NULL if none). */
static inline id_lookup progress_id_of(const request_st * const r, const char *v, size_t vlen, progress_id * const id)
{
    const buffer * const h = http_header_request_get(r, HTTP_HEADER_OTHER,
                               CONST_STR_LEN(PROGRESS_ID_NAME));
    if (NULL != h) {
        v = h->ptr;
        vlen = buffer_clen(h);
    } else if (NULL == v) {
        return ID_MISSING;
    }
    return 0 == progress_id_parse(v, vlen, id) ? ID_FOUND : ID_MALFORMED;
}

static inline id_lookup request_progress_id(const request_st * const r, progress_id * const id)
{
    size_t vlen = 0;
    const char * const v =
      progress_id_find_in_query(r->uri.query.ptr, buffer_clen(&r->uri.query), &vlen);
    return progress_id_of(r, v, vlen, id);
}

#endif
