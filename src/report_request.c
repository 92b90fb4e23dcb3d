/* report_request: see report_request.h. */
#include "first.h"

#include <stddef.h>

#include "base.h"
#include "buffer.h"
#include "http_header.h"
#include "log.h"
#include "plugin.h"

#include "lighttpd_compat.h"
#include "progress_id.h"
#include "progress_report.h"
#include "report_request.h"
#include "request_answer.h"
#include "request_id.h"

static const int report_status[] = {
    [PROGRESS_REPORT_NO_ID] = 400, [PROGRESS_REPORT_BAD_ID] = 400,
    [PROGRESS_REPORT_METHOD] = 405, [PROGRESS_REPORT_UNKNOWN_ID] = 404,
    [PROGRESS_REPORT_ENDED] = 409, [PROGRESS_REPORT_UNAVAILABLE] = 503 };

/* A refused report: 400 for bad input, else as report_status says. */
static handler_t refuse_report(request_st * const r, const report_request_target * const target, const progress_report_problem problem) {
    size_t len;
    const char * const body = progress_report_problem_body(problem, &len);
    const int status = (size_t)problem < sizeof report_status / sizeof *report_status
                       && report_status[problem] ? report_status[problem] : 400;
    if (405 == status)
        http_header_response_set(r, HTTP_HEADER_ALLOW, CONST_STR_LEN("Allow"),
                                 CONST_STR_LEN("POST"));
    if (status < 500) /* (a 503 refuses a good report for want of the table) */
        progress_counters_add(target->counters, PROGRESS_COUNT_BAD_REPORTS);
    return answer(r, status, "application/json", body, len);
}

static void log_report(request_st * const r, const progress_id * const id, const progress_report * const rep, const int status) {
    char idhex[PROGRESS_ID_HEX_LEN + 1];
    progress_id_format(id, idhex);
    log_error(r->conf.errh, __FILE__, __LINE__,
      "upload-progress: report %s phase %d percent %d text \"%.*s\" -> %d", idhex,
      (int)rep->phase, rep->percent, (int)rep->text_len, rep->text, status);
}

/* Takes a report whose form data are the query string and body (which
 * may be empty): 204 if it changed the work on the upload of id. */
static handler_t take_report(request_st * const r, const report_request_target * const target, const progress_id * const id, const char * const body, const size_t body_len) {
    progress_report rep;
    progress_report_init(&rep);
    progress_report_problem problem =
      progress_report_add(&rep, r->uri.query.ptr, buffer_clen(&r->uri.query));
    if (PROGRESS_REPORT_VALID == problem)
        problem = progress_report_add(&rep, body, body_len);
    if (PROGRESS_REPORT_VALID == problem)
        problem = progress_report_check(&rep);
    if (PROGRESS_REPORT_VALID != problem)
        return refuse_report(r, target, problem);
    const unix_time64_t now = log_monotonic_secs;
    switch (progress_table_report(target->table, id, rep.phase, rep.percent,
                                  rep.has_text ? rep.text : NULL, rep.text_len,
                                  now, now + target->remove_timeout)) {
      case PROGRESS_REPORT_OK:
        break;
      case PROGRESS_REPORT_UNKNOWN:
        return refuse_report(r, target, PROGRESS_REPORT_UNKNOWN_ID);
      case PROGRESS_REPORT_FINISHED:
        return refuse_report(r, target, PROGRESS_REPORT_ENDED);
      case PROGRESS_REPORT_NO_LOCK:
      default:
        return refuse_report(r, target, PROGRESS_REPORT_UNAVAILABLE);
    }
    if (target->debug) log_report(r, id, &rep, 204);
    progress_counters_add(target->counters, PROGRESS_COUNT_REPORTS);
    r->http_status = 204;
    r->resp_body_finished = 1;
    return HANDLER_FINISHED;
}

handler_t report_request_handle(request_st * const r, const report_request_target * const target) {
    if (HTTP_METHOD_POST != r->http_method)
        return refuse_report(r, target, PROGRESS_REPORT_METHOD);
    progress_id id;
    switch (request_progress_id(r, &id)) {
      case ID_FOUND:
        break;
      case ID_MALFORMED:
        return refuse_report(r, target, PROGRESS_REPORT_BAD_ID);
      default:
        return refuse_report(r, target, PROGRESS_REPORT_NO_ID);
    }
    /* a body of unknown length (chunked, HTTP/2) is bounded as it comes:
     * lighttpd would otherwise spool all of it before the copy refuses it */
    if (request_body_length(r) > PROGRESS_REPORT_BODY_MAX
        || request_body_received(r) > PROGRESS_REPORT_BODY_MAX)
        return refuse_report(r, target, PROGRESS_REPORT_MALFORMED);
    const handler_t rc = request_body_read(r);
    if (HANDLER_GO_ON != rc) return rc;
    char body[PROGRESS_REPORT_BODY_MAX];
    const long len = request_body_copy(r, body, sizeof body);
    if (len < 0) return refuse_report(r, target, PROGRESS_REPORT_MALFORMED);
    return take_report(r, target, &id, body, (size_t)len);
}
