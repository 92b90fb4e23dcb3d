#include "progress_id.h"

#include <string.h>

#include "test_plant.h"

/* A digit's value, or -1: one load per digit of the 32 in a poll's id. */
static int hex_digit_value(unsigned char c)
{
    static const signed char values[256] = {
        ['0'] = 1, ['1'] = 2, ['2'] = 3, ['3'] = 4, ['4'] = 5,
        ['5'] = 6, ['6'] = 7, ['7'] = 8, ['8'] = 9, ['9'] = 10,
        ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
        ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
    };
    return values[c] - 1;   /* stored plus one: 0 marks a non-digit */
}

/* Reads 2 * n hex digits from s into bytes; returns 0, or -1 on a non-digit. */
static int parse_hex(const char *s, size_t n, uint8_t *bytes)
{
    for (size_t i = 0; i < n; ++i) {
        const int hi = hex_digit_value((unsigned char)s[2 * i]);
        const int lo = hex_digit_value((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx: the bytes of each group */
static int parse_uuid(const char *s, uint8_t bytes[16])
{
    static const uint8_t group_bytes[] = { 4, 2, 2, 2, 6 };
    for (size_t g = 0; g < sizeof group_bytes; ++g) {
        if (g > 0 && *s++ != '-') return -1;
        if (parse_hex(s, group_bytes[g], bytes) < 0) return -1;
        s += 2 * group_bytes[g];
        bytes += group_bytes[g];
    }
    return 0;
}

int progress_id_parse(const char *s, size_t len, progress_id *id)
{
    test_plant_in_core();
    uint8_t bytes[sizeof id->bytes];
    int rc = -1;
    if (len == PROGRESS_ID_HEX_LEN) rc = parse_hex(s, sizeof bytes, bytes);
    else if (len == PROGRESS_ID_UUID_LEN) rc = parse_uuid(s, bytes);
    if (rc == 0) memcpy(id->bytes, bytes, sizeof bytes);
    return rc;
}

static int names_equal_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return 0;
    for (size_t i = 0; i < alen; ++i) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x == y) continue;
        if (x >= 'A' && x <= 'Z') x |= 0x20;
        if (y >= 'A' && y <= 'Z') y |= 0x20;
        if (x != y) return 0;
    }
    return 1;
}

const char *progress_query_find(const char *query, size_t query_len,
                                const char *name, size_t *value_len)
{
    if (query_len == 0) return NULL; /* query may be NULL then */
    const size_t name_len = strlen(name);
    const char *p = query;
    const char * const end = query + query_len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char * const param_end = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(param_end - p));
        if (eq && names_equal_nocase(p, (size_t)(eq - p), name, name_len)) {
            *value_len = (size_t)(param_end - eq - 1);
            return eq + 1;
        }
        if (NULL == amp) break;
        p = amp + 1;
    }
    return NULL;
}

int progress_id_is_param_name(const char *name, size_t len)
{
    return names_equal_nocase(name, len, PROGRESS_ID_NAME, sizeof PROGRESS_ID_NAME - 1);
}

const char *progress_id_find_in_query(const char *query, size_t query_len,
                                      size_t *value_len)
{
    return progress_query_find(query, query_len, PROGRESS_ID_NAME, value_len);
}

int progress_callback_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > PROGRESS_CALLBACK_MAX) return 0;
    if (s[0] >= '0' && s[0] <= '9') return 0;
    for (size_t i = 0; i < len; ++i) {
        const unsigned char c = (unsigned char)s[i];
        const int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                    || (c >= '0' && c <= '9') || c == '_' || c == '$' || c == '.';
        if (!ok) return 0;
    }
    return 1;
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
