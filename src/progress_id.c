#include "progress_id.h"

#include <string.h>

static int hex_digit_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20; /* fold to lower case; leaves digits and non-letters apart */
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int progress_id_parse(const char *s, size_t len, progress_id *id)
{
    uint8_t bytes[sizeof id->bytes];
    if (len != PROGRESS_ID_HEX_LEN) return -1;
    for (size_t i = 0; i < sizeof bytes; ++i) {
        const int hi = hex_digit_value((unsigned char)s[2 * i]);
        const int lo = hex_digit_value((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(id->bytes, bytes, sizeof bytes);
    return 0;
}

static int name_is_progress_id(const char *name, size_t len)
{
    static const char want[] = PROGRESS_ID_NAME;
    if (len != sizeof want - 1) return 0;
    for (size_t i = 0; i < len; ++i) {
        unsigned char a = (unsigned char)name[i], b = (unsigned char)want[i];
        if (a >= 'A' && a <= 'Z') a |= 0x20;
        if (b >= 'A' && b <= 'Z') b |= 0x20;
        if (a != b) return 0;
    }
    return 1;
}

const char *progress_id_find_in_query(const char *query, size_t query_len,
                                      size_t *value_len)
{
    if (query_len == 0) return NULL; /* query may be NULL then */
    const char *p = query;
    const char * const end = query + query_len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char * const param_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(param_end - p));
        if (eq && name_is_progress_id(p, (size_t)(eq - p))) {
            *value_len = (size_t)(param_end - eq - 1);
            return eq + 1;
        }
        p = param_end + 1;
    }
    return NULL;
}

void progress_id_format(const progress_id *id, char out[PROGRESS_ID_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof id->bytes; ++i) {
        out[2 * i] = hex[id->bytes[i] >> 4];
        out[2 * i + 1] = hex[id->bytes[i] & 0xf];
    }
    out[PROGRESS_ID_HEX_LEN] = '\0';
}

int progress_id_equal(const progress_id *a, const progress_id *b)
{
    return 0 == memcmp(a->bytes, b->bytes, sizeof a->bytes);
}
