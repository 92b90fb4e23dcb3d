/* libFuzzer target: every renderer for any snapshot.  The JSON answer is
 * valid JSON, the JSONP one is the callback around it, the XML one is
 * well formed, the legacy one is its object literal, and each fits in
 * PROGRESS_RENDER_MAX, whatever bytes the processing record's text holds. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "progress_render.h"

/* A JSON value as the renderers write them: objects, strings without
 * escapes, integers.  Returns the end of the value, or NULL. */
static const char *json_value(const char *p, const char *end);

static const char *json_string(const char *p, const char *end)
{
    if (p == end || *p++ != '"') return NULL;
    while (p < end && *p != '"') {
        if (*p == '\\' || (unsigned char)*p < 0x20) return NULL;
        ++p;
    }
    return p < end ? p + 1 : NULL;
}

static const char *json_object(const char *p, const char *end)
{
    if (p == end || *p++ != '{') return NULL;
    if (p < end && *p == '}') return p + 1;
    for (;;) {
        if ((p = json_string(p, end)) == NULL || p == end || *p++ != ':') return NULL;
        if ((p = json_value(p, end)) == NULL || p == end) return NULL;
        if (*p == '}') return p + 1;
        if (*p++ != ',') return NULL;
    }
}

static const char *json_value(const char *p, const char *end)
{
    if (p == end) return NULL;
    if (*p == '{') return json_object(p, end);
    if (*p == '"') return json_string(p, end);
    if (*p == '-') ++p;
    const char * const digits = p;
    while (p < end && *p >= '0' && *p <= '9') ++p;
    if (p == digits || (*digits == '0' && p - digits > 1)) return NULL;
    return p;
}

static void assert_json(const char *s, size_t len)
{
    assert(json_object(s, s + len) == s + len);
}

/* <upload> with elements of digits or a state name, after the prolog. */
static void assert_xml(const char *s, size_t len)
{
    static const char prolog[] = "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><upload>";
    static const char tail[] = "</upload>";
    assert(len >= sizeof prolog - 1 + sizeof tail - 1);
    assert(memcmp(s, prolog, sizeof prolog - 1) == 0);
    assert(memcmp(s + len - (sizeof tail - 1), tail, sizeof tail - 1) == 0);
    const char *p = s + sizeof prolog - 1, * const end = s + len - (sizeof tail - 1);
    while (p < end) {
        assert(*p++ == '<');
        const char * const name = p;
        while (p < end && *p >= 'a' && *p <= 'z') ++p;
        const size_t nlen = (size_t)(p - name);
        assert(nlen > 0 && p < end && *p++ == '>');
        while (p < end && *p != '<') {
            assert((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z'));
            ++p;
        }
        assert(end - p >= (ptrdiff_t)(nlen + 3) && p[0] == '<' && p[1] == '/');
        assert(memcmp(p + 2, name, nlen) == 0 && p[2 + nlen] == '>');
        p += nlen + 3;
    }
}

static void take(const uint8_t **data, size_t *size, void *out, size_t n)
{
    memset(out, 0, n);
    const size_t k = *size < n ? *size : n;
    memcpy(out, *data, k);
    *data += k;
    *size -= k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    progress_snapshot snap;
    uint8_t state;
    take(&data, &size, &state, 1);
    take(&data, &size, &snap.status, sizeof snap.status);
    take(&data, &size, &snap.size, sizeof snap.size);
    take(&data, &size, &snap.received, sizeof snap.received);
    take(&data, &size, &snap.speed, sizeof snap.speed);
    uint8_t phase;
    take(&data, &size, &phase, 1);
    take(&data, &size, &snap.percent, sizeof snap.percent);
    take(&data, &size, snap.text, sizeof snap.text);   /* any bytes: a torn write */
    snap.state = (progress_state)(state % 4);
    snap.phase = (progress_phase)(phase % 4);
    snap.owner_pid = 0;
    snap.owner_ref = 0;
    const char * const callback = (const char *)data;  /* the rest */
    const size_t cblen = progress_callback_is_valid(callback, size) ? size : 0;

    char buf[PROGRESS_RENDER_MAX];
    const char *type;
    size_t len = progress_render(&snap, PROGRESS_FORMAT_JSON, NULL, 0, buf, sizeof buf, &type);
    assert(len > 0 && len <= sizeof buf);
    assert_json(buf, len);

    len = progress_render(&snap, PROGRESS_FORMAT_XML, NULL, 0, buf, sizeof buf, &type);
    assert(len > 0 && len <= sizeof buf);
    if (snap.state == PROGRESS_STARTING)
        assert(len == sizeof "not in progress" - 1 && memcmp(buf, "not in progress", len) == 0);
    else assert_xml(buf, len);

    len = progress_render(&snap, PROGRESS_FORMAT_LEGACY, NULL, 0, buf, sizeof buf, &type);
    assert(len > 0 && len <= sizeof buf);
    assert(memcmp(buf, "new Object({ '", 14) == 0 && memcmp(buf + len - 3, " })", 3) == 0);

    if (cblen > 0) {
        len = progress_render(&snap, PROGRESS_FORMAT_XML, callback, cblen, buf, sizeof buf, &type);
        assert(len > cblen + 3 && len <= sizeof buf);
        assert(memcmp(buf, callback, cblen) == 0 && buf[cblen] == '(');
        assert(memcmp(buf + len - 2, ");", 2) == 0);
        assert_json(buf + cblen + 1, len - cblen - 3);
    }
    return 0;
}
