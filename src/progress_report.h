/* progress_report: a backend's report on the work after an upload's last
 * byte, as sent to the report URL (doc/processing.md), parsed and checked.
 * Pure functions of their input; no allocation, no lighttpd includes.
 *
 * A report is form data (application/x-www-form-urlencoded): the query
 * string, a POST body, or both (each a piece given to progress_report_add):
 *   stage=NAME               a new stage (its percent unknown until told)
 *   percent=N                0 to 100, with a stage or for the current one
 *   outcome=finished|failed  the work's end, with an optional
 *   message=TEXT             short message
 * Values are %-decoded ('+' is a space).  A stage or message is 1 to
 * PROGRESS_TEXT_MAX bytes of printable ASCII other than " ' \ < > &, so
 * that it goes into JSON and a page as it is.  X-Progress-ID=... (the id,
 * which the glue reads) is passed over.  Anything else is refused: an
 * unknown name, a name twice, an outcome with a stage or percent, a
 * message without an outcome, an empty report. */
#ifndef PROGRESS_REPORT_H
#define PROGRESS_REPORT_H

#include <stddef.h>

#include "progress_table.h"

/* Longest piece progress_report_add() reads: longer is malformed.  A
 * report is a few dozen bytes; the glue reads no more body than this. */
#define PROGRESS_REPORT_BODY_MAX 1024

typedef enum progress_report_problem {
    PROGRESS_REPORT_VALID = 0,
    PROGRESS_REPORT_MALFORMED,   /* not name=value&..., a bad %-escape, an
                                  * unknown or repeated name, too long */
    PROGRESS_REPORT_BAD_STAGE,
    PROGRESS_REPORT_BAD_PERCENT,
    PROGRESS_REPORT_BAD_OUTCOME,
    PROGRESS_REPORT_BAD_MESSAGE,
    PROGRESS_REPORT_EMPTY,       /* neither a stage, a percent nor an outcome */
    PROGRESS_REPORT_MIXED,       /* an outcome with a stage or percent, or a
                                  * message without an outcome */
    /* the glue's refusals, for progress_report_problem_body() */
    PROGRESS_REPORT_NO_ID,       /* 400 */
    PROGRESS_REPORT_BAD_ID,      /* 400 */
    PROGRESS_REPORT_METHOD,      /* 405 */
    PROGRESS_REPORT_UNKNOWN_ID,  /* 404 */
    PROGRESS_REPORT_ENDED,       /* 409 */
    PROGRESS_REPORT_UNAVAILABLE  /* 503 */
} progress_report_problem;

typedef struct progress_report {
    progress_phase phase;        /* PROCESSING, FINISHED or FAILED */
    int percent;                 /* PROGRESS_PERCENT_UNKNOWN if not given */
    int has_text;                /* a stage, or a message, was given */
    size_t text_len;
    char text[PROGRESS_TEXT_MAX];
    unsigned int seen;           /* names met so far (internal) */
} progress_report;

void progress_report_init(progress_report *rep);

/* Adds one piece of form data (a query string, a body) to the report;
 * returns the first problem found (the report is then unusable). */
progress_report_problem progress_report_add(progress_report *rep,
                                            const char *s, size_t len);

/* After the last piece: whether the pieces make one report. */
progress_report_problem progress_report_check(progress_report *rep);

/* Whether s is a stage or message a report may carry (and an answer
 * may show as it is). */
int progress_report_text_is_valid(const char *s, size_t len);

/* The JSON body that explains a refused report; *len gets its length. */
const char *progress_report_problem_body(progress_report_problem problem,
                                         size_t *len);

#endif
