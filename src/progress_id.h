/* progress_id: the id that ties an upload to its progress polls, and the
 * other parameters a poll may carry.
 *
 * An id is 128 bits, written by clients as exactly 32 hex digits or as a
 * canonical UUID (8-4-4-4-12 hex digits joined by hyphens), in either case;
 * both spellings of the same bits are the same id.  It reaches the server
 * as the X-Progress-ID request header or as the X-Progress-ID query
 * parameter; finding the header is the glue's job, parsing the value and
 * finding query parameters is done here.
 * No allocation, no lighttpd includes. */
#ifndef PROGRESS_ID_H
#define PROGRESS_ID_H

#include <stddef.h>
#include <stdint.h>

#define PROGRESS_ID_NAME "X-Progress-ID"
#define PROGRESS_ID_HEX_LEN 32
#define PROGRESS_ID_UUID_LEN 36
#define PROGRESS_CALLBACK_NAME "callback"
#define PROGRESS_CALLBACK_MAX 64

typedef struct progress_id {
    uint8_t bytes[16];
} progress_id;

/* Parses a value of exactly 32 hex digits, or a UUID with its hyphens at
 * exactly 8-4-4-4-12, into *id.
 * Returns 0 on success, -1 when the value is malformed (*id untouched). */
int progress_id_parse(const char *s, size_t len, progress_id *id);

/* Finds the parameter `name` (matched case-insensitively) in a raw query
 * string (the part after '?', not URL-decoded).  The first such parameter
 * counts.  Returns a pointer to its value inside query and sets *value_len,
 * or returns NULL when the query has no such parameter. */
const char *progress_query_find(const char *query, size_t query_len,
                                const char *name, size_t *value_len);

/* A poll's parameters in a raw query string: the values of X-Progress-ID
 * and of the JSONP callback (NULL when absent), each as
 * progress_query_find() finds it, both in one pass. */
typedef struct progress_poll_query {
    const char *id;
    size_t id_len;
    const char *callback;
    size_t callback_len;
} progress_poll_query;

void progress_poll_query_scan(const char *query, size_t query_len, progress_poll_query *q);

/* Whether a query parameter's name is X-Progress-ID, in any case, as
 * progress_query_find() matches it. */
int progress_id_is_param_name(const char *name, size_t len);

/* progress_query_find() for the X-Progress-ID parameter. */
const char *progress_id_find_in_query(const char *query, size_t query_len,
                                      size_t *value_len);

/* Whether a JSONP callback name is safe to echo into a script: 1 to
 * PROGRESS_CALLBACK_MAX characters of ASCII letters, digits, '_', '$' and
 * '.', not starting with a digit. */
int progress_callback_is_valid(const char *s, size_t len);

/* Writes the id as 32 lowercase hex digits and a NUL into out. */
void progress_id_format(const progress_id *id, char out[PROGRESS_ID_HEX_LEN + 1]);

int progress_id_equal(const progress_id *a, const progress_id *b);

#endif
