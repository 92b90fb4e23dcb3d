#include "progress_report.h"

#include <string.h>

enum {
    SEEN_STAGE = 1,
    SEEN_PERCENT = 2,
    SEEN_OUTCOME = 4,
    SEEN_MESSAGE = 8
};

void progress_report_init(progress_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->phase = PROGRESS_PHASE_PROCESSING;
    rep->percent = PROGRESS_PERCENT_UNKNOWN;
}

int progress_report_text_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > PROGRESS_TEXT_MAX) return 0;
    for (size_t i = 0; i < len; ++i) {
        const unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || NULL != memchr("\"'\\<>&", c, 6)) return 0;
    }
    return 1;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* %-decodes v into out (at most cap bytes); returns the decoded length,
 * cap + 1 if it does not fit, or -1 for a bad escape. */
static long form_decode(const char *v, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; ++i) {
        char c = v[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            if (len - i < 3) return -1;
            const int h = hex_value(v[i + 1]), l = hex_value(v[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (n == cap) return (long)cap + 1;
        out[n++] = c;
    }
    return (long)n;
}

static progress_report_problem set_text(progress_report *rep, const char *v, size_t len,
                                        progress_report_problem bad)
{
    const long n = form_decode(v, len, rep->text, sizeof rep->text);
    if (n < 0) return PROGRESS_REPORT_MALFORMED;
    if (!progress_report_text_is_valid(rep->text, (size_t)n)) return bad;
    rep->text_len = (size_t)n;
    rep->has_text = 1;
    return PROGRESS_REPORT_VALID;
}

/* 0 to 100 in plain digits, no sign, no leading zero */
static progress_report_problem set_percent(progress_report *rep, const char *v, size_t len)
{
    if (len == 0 || len > 3 || (len > 1 && v[0] == '0')) return PROGRESS_REPORT_BAD_PERCENT;
    int n = 0;
    for (size_t i = 0; i < len; ++i) {
        if (v[i] < '0' || v[i] > '9') return PROGRESS_REPORT_BAD_PERCENT;
        n = n * 10 + (v[i] - '0');
    }
    if (n > 100) return PROGRESS_REPORT_BAD_PERCENT;
    rep->percent = n;
    return PROGRESS_REPORT_VALID;
}

static progress_report_problem set_outcome(progress_report *rep, const char *v, size_t len)
{
    if (len == 8 && 0 == memcmp(v, "finished", 8)) rep->phase = PROGRESS_PHASE_FINISHED;
    else if (len == 6 && 0 == memcmp(v, "failed", 6)) rep->phase = PROGRESS_PHASE_FAILED;
    else return PROGRESS_REPORT_BAD_OUTCOME;
    return PROGRESS_REPORT_VALID;
}

static int name_is(const char *name, size_t len, const char *want)
{
    return len == strlen(want) && 0 == memcmp(name, want, len);
}

static progress_report_problem add_pair(progress_report *rep, const char *name, size_t nlen,
                                        const char *v, size_t vlen)
{
    static const struct { const char *name; unsigned int bit; } names[] = {
        { "stage", SEEN_STAGE }, { "percent", SEEN_PERCENT },
        { "outcome", SEEN_OUTCOME }, { "message", SEEN_MESSAGE } };
    if (progress_id_is_param_name(name, nlen)) return PROGRESS_REPORT_VALID;
    unsigned int bit = 0;
    for (size_t i = 0; i < sizeof names / sizeof *names; ++i)
        if (name_is(name, nlen, names[i].name)) bit = names[i].bit;
    if (bit == 0 || (rep->seen & bit)) return PROGRESS_REPORT_MALFORMED;
    rep->seen |= bit;
    switch (bit) {
    case SEEN_STAGE:   return set_text(rep, v, vlen, PROGRESS_REPORT_BAD_STAGE);
    case SEEN_MESSAGE: return set_text(rep, v, vlen, PROGRESS_REPORT_BAD_MESSAGE);
    case SEEN_PERCENT: return set_percent(rep, v, vlen);
    default:           return set_outcome(rep, v, vlen);
    }
}

progress_report_problem progress_report_add(progress_report *rep, const char *s, size_t len)
{
    if (len > PROGRESS_REPORT_BODY_MAX) return PROGRESS_REPORT_MALFORMED;
    if (len == 0) return PROGRESS_REPORT_VALID;   /* s may be NULL then */
    const char * const end = s + len;
    while (s < end) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        if (amp == NULL) amp = end;
        if (amp > s) {   /* (an empty pair, as in "a=1&&b=2", is passed over) */
            const char * const eq = memchr(s, '=', (size_t)(amp - s));
            if (eq == NULL) return PROGRESS_REPORT_MALFORMED;
            const progress_report_problem problem =
                add_pair(rep, s, (size_t)(eq - s), eq + 1, (size_t)(amp - eq - 1));
            if (problem != PROGRESS_REPORT_VALID) return problem;
        }
        s = amp + 1;
    }
    return PROGRESS_REPORT_VALID;
}

progress_report_problem progress_report_check(progress_report *rep)
{
    const unsigned int seen = rep->seen;
    if (seen & SEEN_OUTCOME)
        return (seen & (SEEN_STAGE | SEEN_PERCENT)) ? PROGRESS_REPORT_MIXED
                                                    : PROGRESS_REPORT_VALID;
    if (seen & SEEN_MESSAGE) return PROGRESS_REPORT_MIXED;
    return (seen & (SEEN_STAGE | SEEN_PERCENT)) ? PROGRESS_REPORT_VALID
                                                : PROGRESS_REPORT_EMPTY;
}

const char *progress_report_problem_body(progress_report_problem problem, size_t *len)
{
#define BODY(s) do { static const char b_[] = "{\"error\":\"" s "\"}"; \
                     *len = sizeof b_ - 1; return b_; } while (0)
    switch (problem) {
    case PROGRESS_REPORT_MALFORMED:
        BODY("malformed report: send form data of stage, percent, outcome, "
             "message, each once");
    case PROGRESS_REPORT_BAD_STAGE:
        BODY("bad stage: 1 to 32 bytes of printable ASCII, not \\\" ' \\\\ < > &");
    case PROGRESS_REPORT_BAD_PERCENT:
        BODY("bad percent: a whole number from 0 to 100");
    case PROGRESS_REPORT_BAD_OUTCOME:
        BODY("bad outcome: finished or failed");
    case PROGRESS_REPORT_BAD_MESSAGE:
        BODY("bad message: 1 to 32 bytes of printable ASCII, not \\\" ' \\\\ < > &");
    case PROGRESS_REPORT_EMPTY:
        BODY("empty report: send a stage, a percent or an outcome");
    case PROGRESS_REPORT_MIXED:
        BODY("mixed report: an outcome (with its message) or a stage and "
             "percent, not both");
    case PROGRESS_REPORT_NO_ID:
        BODY("missing id: send X-Progress-ID as a request header or as a "
             "query parameter");
    case PROGRESS_REPORT_BAD_ID:
        BODY("malformed id: X-Progress-ID must be 32 hex digits or a UUID");
    case PROGRESS_REPORT_METHOD:
        BODY("method not allowed: report with POST");
    case PROGRESS_REPORT_UNKNOWN_ID:
        BODY("unknown id: no upload with this id is known");
    case PROGRESS_REPORT_ENDED:
        BODY("finished: the work on this upload has ended");
    case PROGRESS_REPORT_UNAVAILABLE:
        BODY("unavailable: the table of uploads cannot be read; try again");
    case PROGRESS_REPORT_VALID:
    default:
        *len = 0;
        return "";
    }
#undef BODY
}
