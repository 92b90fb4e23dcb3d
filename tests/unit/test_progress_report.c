#include <check.h>
#include <string.h>

#include "progress_report.h"

#include "run_suite.h"

static progress_report rep;

/* Parses the pieces (NULL-terminated) as one report. */
static progress_report_problem parse2(const char *query, const char *body)
{
    progress_report_init(&rep);
    progress_report_problem problem = progress_report_add(&rep, query, strlen(query));
    if (problem == PROGRESS_REPORT_VALID && body)
        problem = progress_report_add(&rep, body, strlen(body));
    return problem == PROGRESS_REPORT_VALID ? progress_report_check(&rep) : problem;
}

static progress_report_problem parse(const char *s)
{
    return parse2(s, NULL);
}

static const char *text(void)
{
    static char buf[PROGRESS_TEXT_MAX + 1];
    memcpy(buf, rep.text, rep.text_len);
    buf[rep.text_len] = '\0';
    return buf;
}

START_TEST(a_stage_and_a_percent)
{
    ck_assert_int_eq(parse("stage=resizing+images&percent=40"), PROGRESS_REPORT_VALID);
    ck_assert_int_eq(rep.phase, PROGRESS_PHASE_PROCESSING);
    ck_assert_int_eq(rep.has_text, 1);
    ck_assert_str_eq(text(), "resizing images");
    ck_assert_int_eq(rep.percent, 40);
    ck_assert_int_eq(parse("stage=scan%2Fvirus"), PROGRESS_REPORT_VALID);
    ck_assert_str_eq(text(), "scan/virus");
    ck_assert_int_eq(rep.percent, PROGRESS_PERCENT_UNKNOWN);
    ck_assert_int_eq(parse("percent=0"), PROGRESS_REPORT_VALID);
    ck_assert_int_eq(rep.has_text, 0);
    ck_assert_int_eq(rep.percent, 0);
    ck_assert_int_eq(parse("percent=100"), PROGRESS_REPORT_VALID);
    ck_assert_int_eq(rep.percent, 100);
}
END_TEST

START_TEST(an_outcome_with_or_without_a_message)
{
    ck_assert_int_eq(parse("outcome=finished"), PROGRESS_REPORT_VALID);
    ck_assert_int_eq(rep.phase, PROGRESS_PHASE_FINISHED);
    ck_assert_int_eq(rep.has_text, 0);
    ck_assert_int_eq(parse("outcome=failed&message=disk+full"), PROGRESS_REPORT_VALID);
    ck_assert_int_eq(rep.phase, PROGRESS_PHASE_FAILED);
    ck_assert_str_eq(text(), "disk full");
    ck_assert_int_eq(parse("message=ok&outcome=finished"), PROGRESS_REPORT_VALID);
    ck_assert_int_eq(rep.phase, PROGRESS_PHASE_FINISHED);
}
END_TEST

START_TEST(the_id_is_passed_over_and_pieces_add_up)
{
    ck_assert_int_eq(parse2("X-Progress-ID=0123456789abcdef0123456789abcdef", "stage=a&percent=5"),
                     PROGRESS_REPORT_VALID);
    ck_assert_str_eq(text(), "a");
    ck_assert_int_eq(rep.percent, 5);
    ck_assert_int_eq(parse2("stage=a", "percent=5"), PROGRESS_REPORT_VALID);
    ck_assert_int_eq(parse2("stage=a", "stage=b"), PROGRESS_REPORT_MALFORMED);
    ck_assert_int_eq(parse("&&stage=a&"), PROGRESS_REPORT_VALID);
    /* the id's name in any case, as the glue finds it */
    ck_assert_int_eq(parse2("x-progress-id=0123456789abcdef0123456789abcdef", "stage=a"),
                     PROGRESS_REPORT_VALID);
    /* an empty piece may come as NULL (a query lighttpd never allocated) */
    progress_report_init(&rep);
    ck_assert_int_eq(progress_report_add(&rep, NULL, 0), PROGRESS_REPORT_VALID);
}
END_TEST

START_TEST(bad_stages_are_refused)
{
    char longest[3 * PROGRESS_TEXT_MAX + 16] = "stage=";
    memset(longest + 6, 'x', PROGRESS_TEXT_MAX);
    ck_assert_int_eq(parse(longest), PROGRESS_REPORT_VALID);
    strcat(longest, "x");
    ck_assert_int_eq(parse(longest), PROGRESS_REPORT_BAD_STAGE);
    ck_assert_int_eq(parse("stage="), PROGRESS_REPORT_BAD_STAGE);
    ck_assert_int_eq(parse("stage=%22quoted%22"), PROGRESS_REPORT_BAD_STAGE);
    ck_assert_int_eq(parse("stage=%3Cb%3E"), PROGRESS_REPORT_BAD_STAGE);
    ck_assert_int_eq(parse("stage=a%0Ab"), PROGRESS_REPORT_BAD_STAGE);
    ck_assert_int_eq(parse("stage=a%5Cb"), PROGRESS_REPORT_BAD_STAGE);
    ck_assert_int_eq(parse("stage=caf%C3%A9"), PROGRESS_REPORT_BAD_STAGE);
    ck_assert_int_eq(parse("stage=a%00b"), PROGRESS_REPORT_BAD_STAGE);
    ck_assert_int_eq(parse("stage=a%2"), PROGRESS_REPORT_MALFORMED);
    ck_assert_int_eq(parse("stage=a%zz"), PROGRESS_REPORT_MALFORMED);
    ck_assert_int_eq(parse("message=a%27b&outcome=failed"), PROGRESS_REPORT_BAD_MESSAGE);
}
END_TEST

START_TEST(bad_percents_are_refused)
{
    static const char *const bad[] = { "percent=", "percent=101", "percent=-1", "percent=+5",
                                       "percent=050", "percent=4.5", "percent=1000",
                                       "percent=%34%30", "percent=12a" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; ++i)
        ck_assert_msg(parse(bad[i]) == PROGRESS_REPORT_BAD_PERCENT, "%s", bad[i]);
}
END_TEST

START_TEST(reports_that_say_nothing_or_too_much_are_refused)
{
    ck_assert_int_eq(parse(""), PROGRESS_REPORT_EMPTY);
    ck_assert_int_eq(parse("X-Progress-ID=x"), PROGRESS_REPORT_EMPTY);
    ck_assert_int_eq(parse("stage"), PROGRESS_REPORT_MALFORMED);
    ck_assert_int_eq(parse("color=red"), PROGRESS_REPORT_MALFORMED);
    ck_assert_int_eq(parse("Stage=a"), PROGRESS_REPORT_MALFORMED);
    ck_assert_int_eq(parse("percent=1&percent=2"), PROGRESS_REPORT_MALFORMED);
    ck_assert_int_eq(parse("outcome=done"), PROGRESS_REPORT_BAD_OUTCOME);
    ck_assert_int_eq(parse("outcome=finished&stage=a"), PROGRESS_REPORT_MIXED);
    ck_assert_int_eq(parse("outcome=failed&percent=3"), PROGRESS_REPORT_MIXED);
    ck_assert_int_eq(parse("message=hello"), PROGRESS_REPORT_MIXED);
    ck_assert_int_eq(parse("stage=a&message=b"), PROGRESS_REPORT_MIXED);
    char big[PROGRESS_REPORT_BODY_MAX + 2];
    memset(big, '&', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(parse(big), PROGRESS_REPORT_MALFORMED);
}
END_TEST

START_TEST(every_refusal_has_a_json_body)
{
    for (int p = PROGRESS_REPORT_MALFORMED; p <= PROGRESS_REPORT_UNAVAILABLE; ++p) {
        size_t len;
        const char *body = progress_report_problem_body((progress_report_problem)p, &len);
        ck_assert_uint_gt(len, 12);
        ck_assert_uint_eq(strlen(body), len);
        ck_assert(strncmp(body, "{\"error\":\"", 10) == 0);
        ck_assert(strcmp(body + len - 2, "\"}") == 0);
    }
}
END_TEST

static Suite *report_suite(void)
{
    Suite *s = suite_create("progress_report");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, a_stage_and_a_percent);
    tcase_add_test(tc, an_outcome_with_or_without_a_message);
    tcase_add_test(tc, the_id_is_passed_over_and_pieces_add_up);
    tcase_add_test(tc, bad_stages_are_refused);
    tcase_add_test(tc, bad_percents_are_refused);
    tcase_add_test(tc, reports_that_say_nothing_or_too_much_are_refused);
    tcase_add_test(tc, every_refusal_has_a_json_body);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(report_suite());
}
