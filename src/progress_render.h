/* progress_render: the bodies of the answers at the progress URL, in the
 * formats that clients of lighttpd's, nginx's and Apache's modules parse.
 * Pure functions of their input; no allocation, no lighttpd includes. */
#ifndef PROGRESS_RENDER_H
#define PROGRESS_RENDER_H

#include <stddef.h>

#include "progress_table.h"

/* Room for the longest answer progress_render() writes, NUL excluded:
 * a 64-character JSONP callback around
 * {"state":"uploading","received":<19 digits>,"size":<19 digits>,
 *  "speed":<10 digits>,"eta":<19 digits>,"phase":"processing",
 *  "stage":"<32 bytes>","percent":100}, or the longest XML answer, with
 * room to spare. */
#define PROGRESS_RENDER_MAX 384

typedef enum progress_format {
    PROGRESS_FORMAT_JSON = 0, /* strict JSON; JSONP with a callback */
    PROGRESS_FORMAT_LEGACY,   /* new Object({ ... }) of lighttpd 1.5, nginx */
    PROGRESS_FORMAT_XML       /* <upload> of lighttpd 1.4.42-1.4.67 */
} progress_format;

/* Parses a value of upload-progress.format ("json", "legacy", "xml");
 * returns 0, or -1 for any other value (*format untouched). */
int progress_format_parse(const char *s, size_t len, progress_format *format);

/* "starting", "uploading", "done" or "error". */
const char *progress_state_name(progress_state state);

/* The phase an answer tells: the snapshot's, or PROCESSING for an upload
 * in flight whose whole body is in (the backend has it, or is getting the
 * last of it, and has not answered yet). */
progress_phase progress_shown_phase(const progress_snapshot *snap);

/* Whole seconds left at the entry's speed, rounded up; -1 when unknown:
 * not uploading, size unknown (chunked) or no speed measured. */
int64_t progress_eta(const progress_snapshot *snap);

/* Writes the answer for one snapshot into buf, of bufsize bytes, and
 * returns its length; *content_type gets the answer's media type.  A
 * buffer of PROGRESS_RENDER_MAX bytes always has room; with less, or a
 * callback longer than PROGRESS_CALLBACK_MAX, nothing is written and 0
 * is returned.  Bytes of buf after the answer may be overwritten (with
 * NUL bytes).  A callback (callback_len > 0, already checked with
 * progress_callback_is_valid()) asks for JSONP: the JSON answer wrapped as
 * callback(...); whatever the format, since only a script can read it.
 * doc/mod_uploadprogress.md lists every answer of every format. */
size_t progress_render(const progress_snapshot *snap, progress_format format,
                       const char *callback, size_t callback_len,
                       char *buf, size_t bufsize, const char **content_type);

typedef enum progress_problem {
    PROGRESS_PROBLEM_NO_ID,        /* 400 */
    PROGRESS_PROBLEM_BAD_ID,       /* 400 */
    PROGRESS_PROBLEM_BAD_CALLBACK, /* 400 */
    PROGRESS_PROBLEM_METHOD,       /* 405 */
    PROGRESS_PROBLEM_STREAM_CALLBACK, /* 400: JSONP asked as an event stream */
    PROGRESS_PROBLEM_TOO_MANY_STREAMS, /* 503 */
    PROGRESS_PROBLEM_UNAVAILABLE,     /* 503: the table's lock cannot be had */
    PROGRESS_PROBLEM_CLIENT_STREAMS,  /* 429: one client's share of streams */
    PROGRESS_PROBLEM_NO_TIMER         /* 503: no timer for event streams */
} progress_problem;

/* The JSON body that explains a refused poll; *len gets its length. */
const char *progress_render_problem(progress_problem problem, size_t *len);

#endif
