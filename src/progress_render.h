/* progress_render: the bodies of the answers at the progress URL.
 * Pure functions of their input; no allocation, no lighttpd includes. */
#ifndef PROGRESS_RENDER_H
#define PROGRESS_RENDER_H

#include <stddef.h>

#include "progress_table.h"

/* Longest body progress_render_json() writes, NUL excluded:
 * {"state":"uploading","received":<19 digits>,"size":<19 digits>} and the
 * like, with room to spare. */
#define PROGRESS_RENDER_MAX 128

/* Writes the strict-JSON answer for one snapshot into buf (at least
 * PROGRESS_RENDER_MAX bytes); returns its length.  Keys in this order:
 * state, then received and size (uploading, done) or status, received and
 * size (error); a negative size or received is left out (unknown). */
size_t progress_render_json(const progress_snapshot *snap, char *buf);

typedef enum progress_problem {
    PROGRESS_PROBLEM_NO_ID,      /* 400 */
    PROGRESS_PROBLEM_BAD_ID,     /* 400 */
    PROGRESS_PROBLEM_METHOD      /* 405 */
} progress_problem;

/* The JSON body that explains a refused poll; *len gets its length. */
const char *progress_render_problem(progress_problem problem, size_t *len);

#endif
