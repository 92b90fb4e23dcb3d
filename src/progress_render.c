#include "progress_render.h"

#include <string.h>

#include "progress_report.h"

typedef struct {
    char *p;
} out;

static void put_str(out *o, const char *s, size_t len)
{
    memcpy(o->p, s, len);
    o->p += len;
}

#define PUT_LITERAL(o, s) put_str((o), (s), sizeof(s) - 1)

/* A part of an answer chosen at run time (a state's name, a format's
 * field), padded: put_piece() copies all PIECE_ROOM bytes at once (a few
 * moves, no call to memcpy for a length it does not know) and moves on by
 * the part's length.  The padding is NUL bytes, which later parts
 * overwrite; the buffer has room for the last part's (see
 * PROGRESS_RENDER_MAX). */
enum { PIECE_ROOM = 32 };

typedef struct {
    char s[PIECE_ROOM];   /* NUL-padded, so also a C string */
    size_t len;
} piece;

#define PIECE(s) { (s), sizeof(s) - 1 }

static void put_piece(out *o, const piece *part)
{
    memcpy(o->p, part->s, PIECE_ROOM);
    o->p += part->len;
}

/* Decimal digits of u, 1 to 20: from its bit length (log10(2) is about
 * 1233 / 4096), less one when u is below that power of ten. */
static unsigned int decimal_digits(uint64_t u)
{
    static const uint64_t powers[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL,
        10000000ULL, 100000000ULL, 1000000000ULL, 10000000000ULL,
        100000000000ULL, 1000000000000ULL, 10000000000000ULL,
        100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL };
    u |= 1;   /* (as many digits; clz of 0 is undefined) */
    const unsigned int t = (unsigned int)(64 - __builtin_clzll(u)) * 1233 >> 12;
    return t + 1 - (u < powers[t]);
}

/* Writes n (< 100) as two digits just before d; returns where they begin. */
static char *put_two_digits(char *d, unsigned int n)
{
    static const char pairs[] =
        "0001020304050607080910111213141516171819"
        "2021222324252627282930313233343536373839"
        "4041424344454647484950515253545556575859"
        "6061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    memcpy(d - 2, pairs + 2 * n, 2);
    return d - 2;
}

/* Two digits per division, written from the last, in 32 bits once the
 * number fits (a poll writes four numbers, mostly below 4 Gi). */
static void put_int(out *o, int64_t v)
{
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    if (v < 0) *o->p++ = '-';
    o->p += decimal_digits(u);
    char *d = o->p;
    for (; u > UINT32_MAX; u /= 100)
        d = put_two_digits(d, (unsigned int)(u % 100));
    uint32_t n = (uint32_t)u;
    for (; n >= 100; n /= 100)
        d = put_two_digits(d, n % 100);
    if (n >= 10) put_two_digits(d, n);
    else d[-1] = (char)('0' + n);
}

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

static const piece *state_name(progress_state state)
{
    static const piece names[] = {
        [PROGRESS_STARTING] = PIECE("starting"), [PROGRESS_UPLOADING] = PIECE("uploading"),
        [PROGRESS_DONE] = PIECE("done"), [PROGRESS_ERROR] = PIECE("error") };
    return (unsigned int)state < sizeof names / sizeof *names ? &names[state]
                                                              : &names[PROGRESS_STARTING];
}

const char *progress_state_name(progress_state state)
{
    return state_name(state)->s;
}

/* How an object answer (JSON, legacy) spells its parts; each field's piece
 * goes before its value.  No speed piece: no speed and eta; no work: no
 * processing record (legacy answers as it always has). */
typedef struct {
    piece open;         /* up to the state name */
    piece state_end;
    piece status, received, size, speed, eta;
    int work;
    piece close;
} object_syntax;

static const object_syntax json_syntax = {
    PIECE("{\"state\":\""), PIECE("\""),
    PIECE(",\"status\":"), PIECE(",\"received\":"), PIECE(",\"size\":"),
    PIECE(",\"speed\":"), PIECE(",\"eta\":"),
    1,
    PIECE("}")
};

static const object_syntax legacy_syntax = {
    PIECE("new Object({ 'state' : '"), PIECE("'"),
    PIECE(", 'status' : "), PIECE(", 'received' : "), PIECE(", 'size' : "),
    PIECE(""), PIECE(""),
    0,
    PIECE(" })")
};

/* the field's piece then its value, for a known (non-negative) value */
static void put_field(out *o, const piece *name, int64_t v)
{
    if (v < 0) return;
    put_piece(o, name);
    put_int(o, v);
}

progress_phase progress_shown_phase(const progress_snapshot *snap)
{
    if (snap->phase != PROGRESS_PHASE_NONE) return snap->phase;
    if (snap->state == PROGRESS_UPLOADING && snap->size >= 0 && snap->received == snap->size)
        return PROGRESS_PHASE_PROCESSING;
    return PROGRESS_PHASE_NONE;
}

/* ,"phase":"processing","stage":"...","percent":N (doc/processing.md).
 * The text is checked again: a report's write cut short by a death (the
 * table repairs the slots, not their words) must not reach a page. */
static void put_work(out *o, const progress_snapshot *snap)
{
    static const piece phases[] = { PIECE(""), PIECE("processing"),
                                    PIECE("finished"), PIECE("failed") };
    const progress_phase phase = progress_shown_phase(snap);
    if (phase == PROGRESS_PHASE_NONE || (unsigned)phase > PROGRESS_PHASE_FAILED) return;
    PUT_LITERAL(o, ",\"phase\":\"");
    put_piece(o, &phases[phase]);
    *o->p++ = '"';
    if (snap->phase == PROGRESS_PHASE_NONE) return;   /* nothing reported */
    const char * const nul = memchr(snap->text, '\0', sizeof snap->text);
    const size_t tlen = NULL != nul ? (size_t)(nul - snap->text) : sizeof snap->text;
    if (progress_report_text_is_valid(snap->text, tlen)) {
        if (phase == PROGRESS_PHASE_PROCESSING) PUT_LITERAL(o, ",\"stage\":\"");
        else PUT_LITERAL(o, ",\"message\":\"");
        put_str(o, snap->text, tlen);
        *o->p++ = '"';
    }
    if (phase == PROGRESS_PHASE_PROCESSING && snap->percent >= 0 && snap->percent <= 100) {
        PUT_LITERAL(o, ",\"percent\":");
        put_int(o, snap->percent);
    }
}

static void render_object(out *o, const progress_snapshot *snap, const object_syntax *syn)
{
    put_piece(o, &syn->open);
    put_piece(o, state_name(snap->state));
    put_piece(o, &syn->state_end);
    if (snap->state != PROGRESS_STARTING) {
        if (snap->state == PROGRESS_ERROR) put_field(o, &syn->status, snap->status);
        put_field(o, &syn->received, snap->received);
        put_field(o, &syn->size, snap->size);
        if (snap->state == PROGRESS_UPLOADING && syn->speed.len > 0) {
            put_field(o, &syn->speed, snap->speed);
            put_field(o, &syn->eta, progress_eta(snap));
        }
        if (syn->work) put_work(o, snap);
    }
    put_piece(o, &syn->close);
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
    put_piece(o, state_name(snap->state));
    PUT_LITERAL(o, "</state>");
    if (snap->state == PROGRESS_ERROR) PUT_ELEMENT(o, "status", (int64_t)snap->status);
    PUT_LITERAL(o, "</upload>");
}

/* The longest answers: every number at its longest (19 digits; a status
 * 10), in the longest state name; and after them the padding of the last
 * part (put_piece). */
#define LONGEST_JSON (sizeof("{\"state\":\"uploading\",\"status\":,\"received\":," \
                             "\"size\":,\"speed\":,\"eta\":,\"phase\":\"processing\"," \
                             "\"stage\":\"\",\"percent\":100}") - 1 + 10 + 4 * 19 \
                      + PROGRESS_TEXT_MAX)
#define LONGEST_LEGACY (sizeof("new Object({ 'state' : 'uploading', 'status' : , " \
                               "'received' : , 'size' :  })") - 1 + 10 + 2 * 19)
#define LONGEST_XML (sizeof("<?xml version=\"1.0\" encoding=\"iso-8859-1\"?><upload>" \
                            "<size></size><received></received><state>uploading</state>" \
                            "<status></status></upload>") - 1 + 10 + 2 * 19)
_Static_assert(PROGRESS_CALLBACK_MAX + sizeof("();") - 1 + LONGEST_JSON + PIECE_ROOM
               <= PROGRESS_RENDER_MAX,
               "PROGRESS_RENDER_MAX must hold the longest JSONP answer");
_Static_assert(LONGEST_LEGACY + PIECE_ROOM <= PROGRESS_RENDER_MAX
               && LONGEST_XML + PIECE_ROOM <= PROGRESS_RENDER_MAX,
               "PROGRESS_RENDER_MAX must hold the longest legacy and XML answers");

size_t progress_render(const progress_snapshot *snap, progress_format format,
                       const char *callback, size_t callback_len,
                       char *buf, size_t bufsize, const char **content_type)
{
    if (bufsize < PROGRESS_RENDER_MAX || callback_len > PROGRESS_CALLBACK_MAX) return 0;
    out o = { buf };
    if (callback_len > 0) {
        put_str(&o, callback, callback_len);
        *o.p++ = '(';
        render_object(&o, snap, &json_syntax);
        PUT_LITERAL(&o, ");");
        *content_type = "application/javascript";
    } else if (format == PROGRESS_FORMAT_LEGACY) {
        render_object(&o, snap, &legacy_syntax);
        *content_type = "text/javascript";
    } else if (format == PROGRESS_FORMAT_XML) {
        render_xml(&o, snap);
        *content_type = snap->state == PROGRESS_STARTING ? "text/plain" : "text/xml";
    } else {
        render_object(&o, snap, &json_syntax);
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
    static const char stream_callback[] =
        "{\"error\":\"callback and event stream: JSONP cannot be "
        "streamed; drop one\"}";
    static const char too_many_streams[] =
        "{\"error\":\"too many event streams: poll, or retry later\"}";
    static const char unavailable[] =
        "{\"error\":\"unavailable: the table of uploads cannot be read; "
        "try again\"}";
    static const char client_streams[] =
        "{\"error\":\"too many event streams from this client: poll, or "
        "retry later\"}";
    static const char no_timer[] =
        "{\"error\":\"event streams unavailable: the server cannot make "
        "their timer; poll\"}";
    switch (problem) {
    case PROGRESS_PROBLEM_NO_ID:        *len = sizeof no_id - 1;        return no_id;
    case PROGRESS_PROBLEM_BAD_ID:       *len = sizeof bad_id - 1;       return bad_id;
    case PROGRESS_PROBLEM_BAD_CALLBACK: *len = sizeof bad_callback - 1; return bad_callback;
    case PROGRESS_PROBLEM_STREAM_CALLBACK:
        *len = sizeof stream_callback - 1;
        return stream_callback;
    case PROGRESS_PROBLEM_TOO_MANY_STREAMS:
        *len = sizeof too_many_streams - 1;
        return too_many_streams;
    case PROGRESS_PROBLEM_UNAVAILABLE:  *len = sizeof unavailable - 1;  return unavailable;
    case PROGRESS_PROBLEM_CLIENT_STREAMS:
        *len = sizeof client_streams - 1;
        return client_streams;
    case PROGRESS_PROBLEM_NO_TIMER:     *len = sizeof no_timer - 1;     return no_timer;
    case PROGRESS_PROBLEM_METHOD:
    default:                            *len = sizeof method - 1;       return method;
    }
}
