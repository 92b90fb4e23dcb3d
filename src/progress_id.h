/* progress_id: the id that ties an upload to its progress polls.
 *
 * An id is 128 bits, written by clients as exactly 32 hex digits (either
 * case).  It reaches the server as the X-Progress-ID request header or as
 * the X-Progress-ID query parameter; finding the header is the glue's job,
 * parsing the value and finding the query parameter is done here.
 * No allocation, no lighttpd includes. */
#ifndef PROGRESS_ID_H
#define PROGRESS_ID_H

#include <stddef.h>
#include <stdint.h>

#define PROGRESS_ID_NAME "X-Progress-ID"
#define PROGRESS_ID_HEX_LEN 32

typedef struct progress_id {
    uint8_t bytes[16];
} progress_id;

/* Parses a value of exactly 32 hex digits into *id.
 * Returns 0 on success, -1 when the value is malformed (*id untouched). */
int progress_id_parse(const char *s, size_t len, progress_id *id);

/* Finds the X-Progress-ID parameter (name matched case-insensitively) in a
 * raw query string (the part after '?', not URL-decoded).  The first such
 * parameter counts.  Returns a pointer to its value inside query and sets
 * *value_len, or returns NULL when the query has no such parameter. */
const char *progress_id_find_in_query(const char *query, size_t query_len,
                                      size_t *value_len);

/* Writes the id as 32 lowercase hex digits and a NUL into out. */
void progress_id_format(const progress_id *id, char out[PROGRESS_ID_HEX_LEN + 1]);

int progress_id_equal(const progress_id *a, const progress_id *b);

#endif
