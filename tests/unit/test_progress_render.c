#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "progress_render.h"

#include "run_suite.h"

static char body[PROGRESS_RENDER_MAX + 1];

static const char *render(progress_snapshot snap)
{
    const size_t len = progress_render_json(&snap, body);
    ck_assert_uint_le(len, PROGRESS_RENDER_MAX);
    body[len] = '\0';
    return body;
}

START_TEST(starting)
{
    ck_assert_str_eq(render((progress_snapshot){ .state = PROGRESS_STARTING,
                                                 .size = -1, .received = -1 }),
                     "{\"state\":\"starting\"}");
}
END_TEST

START_TEST(uploading_with_known_size)
{
    ck_assert_str_eq(render((progress_snapshot){ .state = PROGRESS_UPLOADING,
                                                 .size = 200194, .received = 65536 }),
                     "{\"state\":\"uploading\",\"received\":65536,\"size\":200194}");
    ck_assert_str_eq(render((progress_snapshot){ .state = PROGRESS_UPLOADING,
                                                 .size = 10, .received = 0 }),
                     "{\"state\":\"uploading\",\"received\":0,\"size\":10}");
}
END_TEST

START_TEST(uploading_with_unknown_size_leaves_size_out)
{
    ck_assert_str_eq(render((progress_snapshot){ .state = PROGRESS_UPLOADING,
                                                 .size = -1, .received = 123 }),
                     "{\"state\":\"uploading\",\"received\":123}");
}
END_TEST

START_TEST(done)
{
    ck_assert_str_eq(render((progress_snapshot){ .state = PROGRESS_DONE, .status = 200,
                                                 .size = 614400, .received = 614400 }),
                     "{\"state\":\"done\",\"received\":614400,\"size\":614400}");
    ck_assert_str_eq(render((progress_snapshot){ .state = PROGRESS_DONE, .status = 204,
                                                 .size = 0, .received = 0 }),
                     "{\"state\":\"done\",\"received\":0,\"size\":0}");
}
END_TEST

START_TEST(error_refused)
{
    ck_assert_str_eq(render((progress_snapshot){ .state = PROGRESS_ERROR, .status = 413,
                                                 .size = -1, .received = -1 }),
                     "{\"state\":\"error\",\"status\":413}");
    ck_assert_str_eq(render((progress_snapshot){ .state = PROGRESS_ERROR, .status = 502,
                                                 .size = -1, .received = -1 }),
                     "{\"state\":\"error\",\"status\":502}");
}
END_TEST

START_TEST(error_aborted_keeps_the_counts)
{
    ck_assert_str_eq(render((progress_snapshot){ .state = PROGRESS_ERROR, .status = 400,
                                                 .size = 614400, .received = 327680 }),
                     "{\"state\":\"error\",\"status\":400,\"received\":327680,\"size\":614400}");
}
END_TEST

START_TEST(largest_numbers_fit)
{
    const char *s = render((progress_snapshot){ .state = PROGRESS_ERROR, .status = 65535,
                                                .size = INT64_MAX, .received = INT64_MAX });
    ck_assert_str_eq(s, "{\"state\":\"error\",\"status\":65535,"
                        "\"received\":9223372036854775807,\"size\":9223372036854775807}");
}
END_TEST

START_TEST(problems_are_json_objects_with_an_error_message)
{
    const progress_problem all[] = { PROGRESS_PROBLEM_NO_ID, PROGRESS_PROBLEM_BAD_ID,
                                     PROGRESS_PROBLEM_METHOD };
    for (size_t i = 0; i < sizeof all / sizeof *all; ++i) {
        size_t len = 0;
        const char *s = progress_render_problem(all[i], &len);
        ck_assert_uint_eq(len, strlen(s));
        ck_assert_int_eq(strncmp(s, "{\"error\":\"", 10), 0);
        ck_assert_str_eq(s + len - 2, "\"}");
    }
    size_t len;
    ck_assert_ptr_nonnull(strstr(progress_render_problem(PROGRESS_PROBLEM_BAD_ID, &len),
                                 "32 hex digits"));
    ck_assert_ptr_nonnull(strstr(progress_render_problem(PROGRESS_PROBLEM_NO_ID, &len),
                                 "X-Progress-ID"));
}
END_TEST

static Suite *render_suite(void)
{
    Suite *s = suite_create("progress_render");
    TCase *tc = tcase_create("json");
    tcase_add_test(tc, starting);
    tcase_add_test(tc, uploading_with_known_size);
    tcase_add_test(tc, uploading_with_unknown_size_leaves_size_out);
    tcase_add_test(tc, done);
    tcase_add_test(tc, error_refused);
    tcase_add_test(tc, error_aborted_keeps_the_counts);
    tcase_add_test(tc, largest_numbers_fit);
    tcase_add_test(tc, problems_are_json_objects_with_an_error_message);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(render_suite());
}
