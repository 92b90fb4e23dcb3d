/* report_request: a backend's report at upload-progress.report-url
 * (doc/processing.md), taken in the module's handler: checked, its body
 * read, then put into the table.  The form data's rules are
 * progress_report's (lighttpd-free); this room is the lighttpd side. */
#ifndef REPORT_REQUEST_H
#define REPORT_REQUEST_H

#include "first.h"

#include "base.h"
#include "plugin.h"

#include "progress_counters.h"
#include "progress_table.h"

/* What a report changes, with the settings of its request. */
typedef struct {
    progress_table *table;
    progress_counters *counters;
    unsigned int remove_timeout;   /* of the entry, from the report on */
    int debug;                     /* log each report taken */
} report_request_target;

/* Answers r (a POST at the report URL): 204 if the report changed the work
 * on its upload, else a refusal with a JSON body.  HANDLER_WAIT_FOR_EVENT
 * (or an error) while lighttpd still reads the body. */
handler_t report_request_handle(request_st *r, const report_request_target *target);

#endif
