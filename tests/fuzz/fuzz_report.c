/* libFuzzer target: a backend's report (client input at the report URL).
 * The input is split at its first NUL into a query and a body, as the
 * glue gives them.  A report found valid carries a text that an answer
 * may show as it is, a percent of 0-100 or none, and a phase that is one
 * of the three; every refusal has its JSON body. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "progress_report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char * const s = (const char *)data;
    const char * const nul = memchr(s, '\0', size);
    const size_t qlen = nul ? (size_t)(nul - s) : size;
    progress_report rep;
    progress_report_init(&rep);
    progress_report_problem problem = progress_report_add(&rep, s, qlen);
    if (problem == PROGRESS_REPORT_VALID && nul)
        problem = progress_report_add(&rep, nul + 1, size - qlen - 1);
    if (problem == PROGRESS_REPORT_VALID) problem = progress_report_check(&rep);
    if (problem == PROGRESS_REPORT_VALID) {
        assert(rep.phase == PROGRESS_PHASE_PROCESSING || rep.phase == PROGRESS_PHASE_FINISHED
               || rep.phase == PROGRESS_PHASE_FAILED);
        assert(rep.percent == PROGRESS_PERCENT_UNKNOWN
               || (rep.percent >= 0 && rep.percent <= 100));
        assert(rep.phase == PROGRESS_PHASE_PROCESSING || rep.percent == PROGRESS_PERCENT_UNKNOWN);
        if (rep.has_text) assert(progress_report_text_is_valid(rep.text, rep.text_len));
        else assert(rep.phase != PROGRESS_PHASE_PROCESSING || rep.percent >= 0);
    } else {
        size_t len;
        const char * const body = progress_report_problem_body(problem, &len);
        assert(len > 0 && strlen(body) == len);
    }
    return 0;
}
