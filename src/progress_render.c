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

/* ,"name":value for a known (non-negative) value */
static void put_known(out *o, const char *name_part, size_t len, int64_t v)
{
    if (v < 0) return;
    put_str(o, name_part, len);
    put_int(o, v);
}

#define PUT_KNOWN(o, s, v) put_known((o), (s), sizeof(s) - 1, (v))

size_t progress_render_json(const progress_snapshot *snap, char *buf)
{
    out o = { buf };
    switch (snap->state) {
    case PROGRESS_UPLOADING:
        PUT_LITERAL(&o, "{\"state\":\"uploading\"");
        break;
    case PROGRESS_DONE:
        PUT_LITERAL(&o, "{\"state\":\"done\"");
        break;
    case PROGRESS_ERROR:
        PUT_LITERAL(&o, "{\"state\":\"error\"");
        PUT_KNOWN(&o, ",\"status\":", snap->status);
        break;
    case PROGRESS_STARTING:
    default:
        PUT_LITERAL(&o, "{\"state\":\"starting\"}");
        return (size_t)(o.p - buf);
    }
    PUT_KNOWN(&o, ",\"received\":", snap->received);
    PUT_KNOWN(&o, ",\"size\":", snap->size);
    *o.p++ = '}';
    return (size_t)(o.p - buf);
}

const char *progress_render_problem(progress_problem problem, size_t *len)
{
    static const char no_id[] =
        "{\"error\":\"missing id: send X-Progress-ID as a request header "
        "or as a query parameter\"}";
    static const char bad_id[] =
        "{\"error\":\"malformed id: X-Progress-ID must be 32 hex digits\"}";
    static const char method[] =
        "{\"error\":\"method not allowed: poll with GET or HEAD\"}";
    switch (problem) {
    case PROGRESS_PROBLEM_NO_ID:  *len = sizeof no_id - 1;  return no_id;
    case PROGRESS_PROBLEM_BAD_ID: *len = sizeof bad_id - 1; return bad_id;
    case PROGRESS_PROBLEM_METHOD:
    default:                      *len = sizeof method - 1; return method;
    }
}
