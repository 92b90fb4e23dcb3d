/* libFuzzer target: the JSONP callback in a query string.  A name the
 * check accepts is 1 to PROGRESS_CALLBACK_MAX characters of a safe set,
 * not starting with a digit: nothing a script would read as more code. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "progress_id.h"

static int safe(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || c == '_' || c == '$' || c == '.';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char * const s = (const char *)data;
    size_t len = 0;
    const char *cb = progress_query_find(s, size, PROGRESS_CALLBACK_NAME, &len);
    if (cb == NULL) {
        cb = s;
        len = size;
    }
    assert(cb >= s && cb + len <= s + size);
    if (!progress_callback_is_valid(cb, len)) return 0;
    assert(len >= 1 && len <= PROGRESS_CALLBACK_MAX);
    assert(!(cb[0] >= '0' && cb[0] <= '9'));
    for (size_t i = 0; i < len; ++i) assert(safe(cb[i]));
    return 0;
}
