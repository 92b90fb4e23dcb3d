#include "progress_render.h"

#include <string.h>

typedef struct {
    char *p;
} out;

static void put_str(out *o, const char *s, size_t len)
{
    memcpy(o->p, s, len);
    o->p += len;
}

#define PUT_LITERAL(o, s) put_str((o), (s), sizeof(s) - 1)

static void put_int(out *o, int64_t v)
{
    char digits[20];
    size_t n = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *o->p++ = '-';
    while (n) *o->p++ = digits[--n];
}

/* name_part then value, for a known (non-negative) value */
static void put_known(out *o, const char *name_part, size_t len, int64_t v)
{
    if (v < 0) return;
    put_str(o, name_part, len);
    put_int(o, v);
}

#define PUT_KNOWN(o, s, v) put_known((o), (s), sizeof(s) - 1, (v))

/* <name>value</name> for a known (non-negative) value */
#define PUT_ELEMENT(o, name, v) do { \
        if ((v) >= 0) { \
            PUT_LITERAL((o), "<" name ">"); \
            put_int((o), (v)); \
            PUT_LITERAL((o), "</" name ">"); \
        } \
    } while (0)

int progress_format_parse(const char *s, size_t len, progress_format *format)
{
    static const struct { const char *name; size_t len; progress_format format; }
    names[] = { { "json", 4, PROGRESS_FORMAT_JSON },
                { "legacy", 6, PROGRESS_FORMAT_LEGACY },
                { "xml", 3, PROGRESS_FORMAT_XML } };
    for (size_t i = 0; i < sizeof names / sizeof *names; ++i) {
        if (len == names[i].len && 0 == memcmp(s, names[i].name, len)) {
            *format = names[i].format;
            return 0;
        }
    }
    return -1;
}

int64_t progress_eta(const progress_snapshot *snap)
{
    if (snap->state != PROGRESS_UPLOADING || snap->size < 0 || snap->received < 0
        || snap->speed <= 0)
        return -1;
    const int64_t left = snap->size > snap->received ? snap->size - snap->received : 0;
    return left / snap->speed + (left % snap->speed != 0);
}

const char *progress_state_name(progress_state state)
{
    switch (state) {
    case PROGRESS_UPLOADING: return "uploading";
    case PROGRESS_DONE:      return "done";
    case PROGRESS_ERROR:     return "error";
    case PROGRESS_STARTING:
    default:                 return "starting";
    }
}

static void put_state_name(out *o, progress_state state)
{
    const char * const name = progress_state_name(state);
    put_str(o, name, strlen(name));
}

static void render_json(out *o, const progress_snapshot *snap)
{
    PUT_LITERAL(o, "{\"state\":\"");
    put_state_name(o, snap->state);
    *o->p++ = '"';
    if (snap->state != PROGRESS_STARTING) {
        if (snap->state == PROGRESS_ERROR) PUT_KNOWN(o, ",\"status\":", snap->status);
        PUT_KNOWN(o, ",\"received\":", snap->received);
        PUT_KNOWN(o, ",\"size\":", snap->size);
        if (snap->state == PROGRESS_UPLOADING) {
            PUT_KNOWN(o, ",\"speed\":", snap->speed);
            PUT_KNOWN(o, ",\"eta\":", progress_eta(snap));
        }
    }
    *o->p++ = '}';
}

static void render_legacy(out *o, const progress_snapshot *snap)
{
    PUT_LITERAL(o, "new Object({ 'state' : '");
    put_state_name(o, snap->state);
    *o->p++ = '\'';
    if (snap->state != PROGRESS_STARTING) {
        if (snap->state == PROGRESS_ERROR) PUT_KNOWN(o, ", 'status' : ", snap->status);
        PUT_KNOWN(o, ", 'received' : ", snap->received);
        PUT_KNOWN(o, ", 'size' : ", snap->size);
    }
    PUT_LITERAL(o, " })");
}

/* lighttpd 1.4's module answered an id it did not know in plain text. */
static const char xml_unknown[] = "not in progress";

static void render_xml(out *o, const progress_snapshot *snap)
{
    if (snap->state == PROGRESS_STARTING) {
        PUT_LITERAL(o, xml_unknown);
        return;
    }
    PUT_LITERAL(o, "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><upload>");
    PUT_ELEMENT(o, "size", snap->size);
    PUT_ELEMENT(o, "received", snap->received);
    PUT_LITERAL(o, "<state>");
    put_state_name(o, snap->state);
    PUT_LITERAL(o, "</state>");
    if (snap->state == PROGRESS_ERROR) PUT_ELEMENT(o, "status", (int64_t)snap->status);
    PUT_LITERAL(o, "</upload>");
}

size_t progress_render(const progress_snapshot *snap, progress_format format,
                       const char *callback, size_t callback_len,
                       char *buf, const char **content_type)
{
    out o = { buf };
    if (callback_len > 0) {
        put_str(&o, callback, callback_len);
        *o.p++ = '(';
        render_json(&o, snap);
        PUT_LITERAL(&o, ");");
        *content_type = "application/javascript";
    } else if (format == PROGRESS_FORMAT_LEGACY) {
        render_legacy(&o, snap);
        *content_type = "text/javascript";
    } else if (format == PROGRESS_FORMAT_XML) {
        render_xml(&o, snap);
        *content_type = snap->state == PROGRESS_STARTING ? "text/plain" : "text/xml";
    } else {
        render_json(&o, snap);
        *content_type = "application/json";
    }
    return (size_t)(o.p - buf);
}

const char *progress_render_problem(progress_problem problem, size_t *len)
{
    static const char no_id[] =
        "{\"error\":\"missing id: send X-Progress-ID as a request header "
        "or as a query parameter\"}";
    static const char bad_id[] =
        "{\"error\":\"malformed id: X-Progress-ID must be 32 hex digits "
        "or a UUID\"}";
    static const char bad_callback[] =
        "{\"error\":\"malformed callback: 1 to 64 letters, digits, _, $ "
        "or ., not starting with a digit\"}";
    static const char method[] =
        "{\"error\":\"method not allowed: poll with GET or HEAD\"}";
    switch (problem) {
    case PROGRESS_PROBLEM_NO_ID:        *len = sizeof no_id - 1;        return no_id;
    case PROGRESS_PROBLEM_BAD_ID:       *len = sizeof bad_id - 1;       return bad_id;
    case PROGRESS_PROBLEM_BAD_CALLBACK: *len = sizeof bad_callback - 1; return bad_callback;
    case PROGRESS_PROBLEM_METHOD:
    default:                            *len = sizeof method - 1;       return method;
    }
}
