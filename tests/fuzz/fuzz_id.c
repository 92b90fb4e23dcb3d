/* libFuzzer target: the id as a header value and in a query string.
 * A parsed id prints as 32 hex digits that parse back to the same id; a
 * value found in a query lies inside the query; a poll's one-pass scan
 * finds the id and the callback that progress_query_find() finds. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "progress_id.h"

static void check_value(const char *s, size_t len)
{
    progress_id id;
    if (progress_id_parse(s, len, &id) != 0) return;
    assert(len == PROGRESS_ID_HEX_LEN || len == PROGRESS_ID_UUID_LEN);
    char hex[PROGRESS_ID_HEX_LEN + 1];
    progress_id_format(&id, hex);
    assert(strlen(hex) == PROGRESS_ID_HEX_LEN);
    progress_id again;
    assert(progress_id_parse(hex, PROGRESS_ID_HEX_LEN, &again) == 0);
    assert(progress_id_equal(&id, &again));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char * const s = (const char *)data;
    check_value(s, size);                       /* the header's value */
    size_t vlen = 0;
    const char * const v = progress_id_find_in_query(s, size, &vlen);
    if (v != NULL) {
        assert(v >= s && v + vlen <= s + size);
        check_value(v, vlen);
    }
    progress_poll_query q;
    progress_poll_query_scan(s, size, &q);
    assert(q.id == v && (v == NULL || q.id_len == vlen));
    size_t cb_len = 0;
    const char * const cb = progress_query_find(s, size, PROGRESS_CALLBACK_NAME, &cb_len);
    assert(q.callback == cb && (cb == NULL || q.callback_len == cb_len));
    return 0;
}
