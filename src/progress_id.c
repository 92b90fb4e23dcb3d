#include "progress_id.h"

#include <string.h>

#include "test_plant.h"

/* Eight bytes at once (SWAR): the rooms below read ids and parameter
 * names a word at a time, a poll's hot path. */
#define BYTES(x) (0x0101010101010101ULL * (uint64_t)(x))

/* The 8 bytes at s as a number whose lowest byte is s[0], on any host. */
static uint64_t load8(const char *s)
{
    uint64_t w;
    memcpy(&w, s, sizeof w);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    return w;
}

/* Stores v's 4 bytes at out, its lowest first, on any host. */
static void store4(uint8_t *out, uint32_t v)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap32(v);
#endif
    memcpy(out, &v, sizeof v);
}

/* 0x80 in each byte of w that is not a hex digit, 0 elsewhere.  (The sums
 * of 7-bit bytes carry into no neighbour; a byte >= 0x80 is refused.) */
static uint64_t non_hex_digits(uint64_t w)
{
    const uint64_t x = w & BYTES(0x7f);
    const uint64_t digit = (x + BYTES(0x80 - '0')) & ~(x + BYTES(0x7f - '9'));
    const uint64_t l = x | BYTES(0x20);
    const uint64_t letter = (l + BYTES(0x80 - 'a')) & ~(l + BYTES(0x7f - 'f'));
    return (w | ~(digit | letter)) & BYTES(0x80);
}

/* The 4 bytes that 8 hex digits spell, the first two digits in the
 * lowest byte. */
static uint32_t hex8_value(uint64_t w)
{
    /* a digit's value is its low nibble, + 9 for a letter (bit 6) */
    const uint64_t n = (w & BYTES(0x0f)) + 9 * ((w >> 6) & BYTES(1));
    uint64_t t = (n << 4 | n >> 8) & 0x00ff00ff00ff00ffULL;
    t = (t | t >> 8) & 0x0000ffff0000ffffULL;
    return (uint32_t)(t | t >> 16);
}

/* Reads 32 hex digits from s into bytes; returns 0, or -1 on a non-digit
 * (bytes untouched). */
static int parse_hex32(const char *s, uint8_t bytes[16])
{
    const uint64_t w0 = load8(s), w1 = load8(s + 8), w2 = load8(s + 16), w3 = load8(s + 24);
    if (non_hex_digits(w0) | non_hex_digits(w1) | non_hex_digits(w2) | non_hex_digits(w3))
        return -1;
    store4(bytes, hex8_value(w0));
    store4(bytes + 4, hex8_value(w1));
    store4(bytes + 8, hex8_value(w2));
    store4(bytes + 12, hex8_value(w3));
    return 0;
}

/* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx: its 32 digits, then as above */
static int parse_uuid(const char *s, uint8_t bytes[16])
{
    if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return -1;
    char hex[PROGRESS_ID_HEX_LEN];
    memcpy(hex, s, 8);
    memcpy(hex + 8, s + 9, 4);
    memcpy(hex + 12, s + 14, 4);
    memcpy(hex + 16, s + 19, 4);
    memcpy(hex + 20, s + 24, 12);
    return parse_hex32(hex, bytes);
}

int progress_id_parse(const char *s, size_t len, progress_id *id)
{
    test_plant_in_core();
    if (len == PROGRESS_ID_HEX_LEN) return parse_hex32(s, id->bytes);
    if (len == PROGRESS_ID_UUID_LEN) return parse_uuid(s, id->bytes);
    return -1;
}

/* w with its ASCII capitals in lower case, 8 bytes at once */
static uint64_t lower8(uint64_t w)
{
    const uint64_t x = w & BYTES(0x7f);
    const uint64_t upper = (x + BYTES(0x80 - 'A')) & ~(x + BYTES(0x7f - 'Z')) & ~w & BYTES(0x80);
    return w | upper >> 2;
}

static inline int names_equal_nocase(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen) return 0;
    if (alen >= 8) { /* a word at a time, the last one overlapping */
        for (size_t i = 0; i + 8 < alen; i += 8)
            if (lower8(load8(a + i)) != lower8(load8(b + i))) return 0;
        return lower8(load8(a + alen - 8)) == lower8(load8(b + alen - 8));
    }
    for (size_t i = 0; i < alen; ++i) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x == y) continue;
        if (x >= 'A' && x <= 'Z') x |= 0x20;
        if (y >= 'A' && y <= 'Z') y |= 0x20;
        if (x != y) return 0;
    }
    return 1;
}

/* One name=value parameter of a query. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;   /* NULL: the parameter has no '=' */
    size_t value_len;
} query_param;

/* The parameter that begins at *p (< end) into *prm; *p moves past it
 * and its '&'.  Returns 0 once there is none left. */
static inline int next_param(const char **p, const char *end, query_param *prm)
{
    if (*p >= end) return 0;
    const char * const amp = memchr(*p, '&', (size_t)(end - *p));
    const char * const param_end = amp ? amp : end;
    const char * const eq = memchr(*p, '=', (size_t)(param_end - *p));
    prm->name = *p;
    prm->name_len = (size_t)((eq ? eq : param_end) - *p);
    prm->value = eq ? eq + 1 : NULL;
    prm->value_len = eq ? (size_t)(param_end - eq - 1) : 0;
    *p = amp ? amp + 1 : end;
    return 1;
}

const char *progress_query_find(const char *query, size_t query_len,
                                const char *name, size_t *value_len)
{
    if (query_len == 0) return NULL; /* query may be NULL then */
    const size_t name_len = strlen(name);
    const char *p = query;
    query_param prm;
    while (next_param(&p, query + query_len, &prm)) {
        if (prm.value && names_equal_nocase(prm.name, prm.name_len, name, name_len)) {
            *value_len = prm.value_len;
            return prm.value;
        }
    }
    return NULL;
}

/* Whether the query is "X-Progress-ID=" (any case) and 32 bytes without
 * '&', what our client and pages send: then the walk below would find just
 * that value and no callback.  A few words instead of the walk. */
static int query_is_a_lone_id(const char *query, size_t query_len)
{
    enum { NAME_LEN = sizeof PROGRESS_ID_NAME - 1 };
    return query_len == NAME_LEN + 1 + PROGRESS_ID_HEX_LEN
        && query[NAME_LEN] == '='
        && names_equal_nocase(query, NAME_LEN, PROGRESS_ID_NAME, NAME_LEN)
        && NULL == memchr(query + NAME_LEN + 1, '&', PROGRESS_ID_HEX_LEN);
}

/* The walk: each parameter in turn, until both are found.  Not inlined,
 * so that a lone id's poll does not save and restore the registers the
 * walk needs. */
__attribute__((noinline))
static void scan_each_param(const char *query, size_t query_len, progress_poll_query *q)
{
    if (query_len == 0) return; /* query may be NULL then */
    const char *p = query;
    query_param prm;
    while ((NULL == q->id || NULL == q->callback)
           && next_param(&p, query + query_len, &prm)) {
        if (NULL == prm.value) continue;
        if (NULL == q->id && names_equal_nocase(prm.name, prm.name_len, PROGRESS_ID_NAME,
                                                sizeof PROGRESS_ID_NAME - 1)) {
            q->id = prm.value;
            q->id_len = prm.value_len;
        } else if (NULL == q->callback
                   && names_equal_nocase(prm.name, prm.name_len, PROGRESS_CALLBACK_NAME,
                                         sizeof PROGRESS_CALLBACK_NAME - 1)) {
            q->callback = prm.value;
            q->callback_len = prm.value_len;
        }
    }
}

void progress_poll_query_scan(const char *query, size_t query_len, progress_poll_query *q)
{
    q->id = q->callback = NULL;
    q->id_len = q->callback_len = 0;
    if (query_is_a_lone_id(query, query_len)) {
        q->id = query + query_len - PROGRESS_ID_HEX_LEN;
        q->id_len = PROGRESS_ID_HEX_LEN;
        return;
    }
    scan_each_param(query, query_len, q);
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
