#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "progress_id.h"
#include "progress_render.h"

#include "run_suite.h"

static char body[PROGRESS_RENDER_MAX + 1];
static const char *content_type;

static const char *render_as(progress_snapshot snap, progress_format format,
                             const char *callback)
{
    const size_t cblen = callback ? strlen(callback) : 0;
    memset(body, '\0', sizeof body);
    const size_t len = progress_render(&snap, format, callback, cblen, body, sizeof body,
                                       &content_type);
    /* rendered (0 is a refusal), within the bound, and all of it written */
    ck_assert_uint_gt(len, 0);
    ck_assert_uint_le(len, PROGRESS_RENDER_MAX);
    ck_assert_uint_eq(strlen(body), len);
    body[len] = '\0';
    return body;
}

static const char *json(progress_snapshot snap)   { return render_as(snap, PROGRESS_FORMAT_JSON, NULL); }
static const char *legacy(progress_snapshot snap) { return render_as(snap, PROGRESS_FORMAT_LEGACY, NULL); }
static const char *xml(progress_snapshot snap)    { return render_as(snap, PROGRESS_FORMAT_XML, NULL); }

/* The states, as the table and the glue hand them over. */
static const progress_snapshot STARTING = { .state = PROGRESS_STARTING, .size = -1, .received = -1 };
static const progress_snapshot UPLOADING = { .state = PROGRESS_UPLOADING, .size = 200194,
                                             .received = 65536, .speed = 32768 };
static const progress_snapshot UPLOADING_NO_SPEED = { .state = PROGRESS_UPLOADING, .size = 200194,
                                                      .received = 65536 };
static const progress_snapshot CHUNKED = { .state = PROGRESS_UPLOADING, .size = -1,
                                           .received = 123, .speed = 100 };
static const progress_snapshot DONE = { .state = PROGRESS_DONE, .status = 200,
                                        .size = 614400, .received = 614400 };
static const progress_snapshot REFUSED = { .state = PROGRESS_ERROR, .status = 413,
                                           .size = -1, .received = -1 };
static const progress_snapshot ABORTED = { .state = PROGRESS_ERROR, .status = 400,
                                           .size = 614400, .received = 327680 };

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>"

START_TEST(json_every_state)
{
    ck_assert_str_eq(json(STARTING), "{\"state\":\"starting\"}");
    ck_assert_str_eq(content_type, "application/json");
    ck_assert_str_eq(json(UPLOADING),
        "{\"state\":\"uploading\",\"received\":65536,\"size\":200194,\"speed\":32768,\"eta\":5}");
    ck_assert_str_eq(content_type, "application/json");
    ck_assert_str_eq(json(UPLOADING_NO_SPEED),
        "{\"state\":\"uploading\",\"received\":65536,\"size\":200194,\"speed\":0}");
    ck_assert_str_eq(json(CHUNKED), "{\"state\":\"uploading\",\"received\":123,\"speed\":100}");
    ck_assert_str_eq(json(DONE), "{\"state\":\"done\",\"received\":614400,\"size\":614400}");
    ck_assert_str_eq(json(REFUSED), "{\"state\":\"error\",\"status\":413}");
    ck_assert_str_eq(json(ABORTED),
        "{\"state\":\"error\",\"status\":400,\"received\":327680,\"size\":614400}");
    ck_assert_str_eq(content_type, "application/json");
}
END_TEST

START_TEST(json_done_and_error_with_zero_and_other_counts)
{
    ck_assert_str_eq(json((progress_snapshot){ .state = PROGRESS_DONE, .status = 204,
                                               .size = 0, .received = 0 }),
                     "{\"state\":\"done\",\"received\":0,\"size\":0}");
    ck_assert_str_eq(json((progress_snapshot){ .state = PROGRESS_ERROR, .status = 502,
                                               .size = -1, .received = -1 }),
                     "{\"state\":\"error\",\"status\":502}");
    /* a chunked upload refused partway: received known, size not */
    ck_assert_str_eq(json((progress_snapshot){ .state = PROGRESS_ERROR, .status = 413,
                                               .size = -1, .received = 70000 }),
                     "{\"state\":\"error\",\"status\":413,\"received\":70000}");
    ck_assert_str_eq(json((progress_snapshot){ .state = PROGRESS_UPLOADING,
                                               .size = 10, .received = 0 }),
                     "{\"state\":\"uploading\",\"received\":0,\"size\":10,\"speed\":0}");
}
END_TEST

START_TEST(jsonp_wraps_the_json_answer)
{
    ck_assert_str_eq(render_as(STARTING, PROGRESS_FORMAT_JSON, "cb"),
                     "cb({\"state\":\"starting\"});");
    ck_assert_str_eq(content_type, "application/javascript");
    ck_assert_str_eq(render_as(UPLOADING, PROGRESS_FORMAT_JSON, "jQuery19_1.x$"),
        "jQuery19_1.x$({\"state\":\"uploading\",\"received\":65536,\"size\":200194,"
        "\"speed\":32768,\"eta\":5});");
    ck_assert_str_eq(render_as(CHUNKED, PROGRESS_FORMAT_JSON, "cb"),
        "cb({\"state\":\"uploading\",\"received\":123,\"speed\":100});");
    ck_assert_str_eq(render_as(DONE, PROGRESS_FORMAT_JSON, "cb"),
        "cb({\"state\":\"done\",\"received\":614400,\"size\":614400});");
    ck_assert_str_eq(render_as(REFUSED, PROGRESS_FORMAT_JSON, "cb"),
        "cb({\"state\":\"error\",\"status\":413});");
    ck_assert_str_eq(render_as(ABORTED, PROGRESS_FORMAT_JSON, "cb"),
        "cb({\"state\":\"error\",\"status\":400,\"received\":327680,\"size\":614400});");
    ck_assert_str_eq(content_type, "application/javascript");
}
END_TEST

START_TEST(a_callback_means_jsonp_in_every_format)
{
    const progress_snapshot all[] = { STARTING, UPLOADING, CHUNKED, DONE, REFUSED, ABORTED };
    for (size_t i = 0; i < sizeof all / sizeof *all; ++i) {
        char want[PROGRESS_RENDER_MAX + 1];
        strcpy(want, render_as(all[i], PROGRESS_FORMAT_JSON, "cb"));
        ck_assert_str_eq(render_as(all[i], PROGRESS_FORMAT_LEGACY, "cb"), want);
        ck_assert_str_eq(content_type, "application/javascript");
        ck_assert_str_eq(render_as(all[i], PROGRESS_FORMAT_XML, "cb"), want);
        ck_assert_str_eq(content_type, "application/javascript");
    }
}
END_TEST

START_TEST(legacy_every_state)
{
    ck_assert_str_eq(legacy(STARTING), "new Object({ 'state' : 'starting' })");
    ck_assert_str_eq(content_type, "text/javascript");
    ck_assert_str_eq(legacy(UPLOADING),
        "new Object({ 'state' : 'uploading', 'received' : 65536, 'size' : 200194 })");
    ck_assert_str_eq(legacy(CHUNKED), "new Object({ 'state' : 'uploading', 'received' : 123 })");
    ck_assert_str_eq(legacy(DONE),
        "new Object({ 'state' : 'done', 'received' : 614400, 'size' : 614400 })");
    ck_assert_str_eq(legacy(REFUSED), "new Object({ 'state' : 'error', 'status' : 413 })");
    ck_assert_str_eq(legacy(ABORTED),
        "new Object({ 'state' : 'error', 'status' : 400, 'received' : 327680, 'size' : 614400 })");
    ck_assert_str_eq(content_type, "text/javascript");
}
END_TEST

START_TEST(xml_every_state)
{
    ck_assert_str_eq(xml(STARTING), "not in progress");
    ck_assert_str_eq(content_type, "text/plain");
    ck_assert_str_eq(xml(UPLOADING), XML_HEAD
        "<upload><size>200194</size><received>65536</received><state>uploading</state></upload>");
    ck_assert_str_eq(content_type, "text/xml");
    ck_assert_str_eq(xml(CHUNKED), XML_HEAD
        "<upload><received>123</received><state>uploading</state></upload>");
    ck_assert_str_eq(xml(DONE), XML_HEAD
        "<upload><size>614400</size><received>614400</received><state>done</state></upload>");
    ck_assert_str_eq(xml(REFUSED), XML_HEAD
        "<upload><state>error</state><status>413</status></upload>");
    ck_assert_str_eq(xml(ABORTED), XML_HEAD
        "<upload><size>614400</size><received>327680</received><state>error</state>"
        "<status>400</status></upload>");
    ck_assert_str_eq(content_type, "text/xml");
}
END_TEST

START_TEST(eta_is_whole_seconds_left_rounded_up)
{
    progress_snapshot s = { .state = PROGRESS_UPLOADING, .size = 1000, .received = 0, .speed = 100 };
    ck_assert_int_eq(progress_eta(&s), 10);
    s.received = 1;
    ck_assert_int_eq(progress_eta(&s), 10);
    s.received = 901;
    ck_assert_int_eq(progress_eta(&s), 1);
    s.received = 1000;
    ck_assert_int_eq(progress_eta(&s), 0);
    s.received = 1200;   /* more than announced: nothing left */
    ck_assert_int_eq(progress_eta(&s), 0);
    s.received = 0;
    s.speed = 1;
    s.size = INT64_MAX;
    ck_assert_int_eq(progress_eta(&s), INT64_MAX);
}
END_TEST

START_TEST(eta_is_unknown_without_speed_size_or_upload)
{
    progress_snapshot s = UPLOADING_NO_SPEED;
    ck_assert_int_eq(progress_eta(&s), -1);
    s = CHUNKED;
    ck_assert_int_eq(progress_eta(&s), -1);
    s = DONE;
    s.speed = 100;
    ck_assert_int_eq(progress_eta(&s), -1);
    s = STARTING;
    ck_assert_int_eq(progress_eta(&s), -1);
}
END_TEST

START_TEST(largest_answers_fit_with_the_longest_callback)
{
    char callback[PROGRESS_CALLBACK_MAX + 1];
    memset(callback, 'c', PROGRESS_CALLBACK_MAX);
    callback[PROGRESS_CALLBACK_MAX] = '\0';
    ck_assert(progress_callback_is_valid(callback, PROGRESS_CALLBACK_MAX));
    const progress_snapshot big[] = {
        { .state = PROGRESS_UPLOADING, .size = INT64_MAX, .received = 0, .speed = 1 },
        { .state = PROGRESS_ERROR, .status = 65535, .size = INT64_MAX, .received = INT64_MAX },
        { .state = PROGRESS_DONE, .status = 65535, .size = INT64_MAX, .received = INT64_MAX },
    };
    const progress_format formats[] = { PROGRESS_FORMAT_JSON, PROGRESS_FORMAT_LEGACY,
                                        PROGRESS_FORMAT_XML };
    for (size_t i = 0; i < sizeof big / sizeof *big; ++i)
        for (size_t f = 0; f < sizeof formats / sizeof *formats; ++f) {
            render_as(big[i], formats[f], NULL);   /* asserts it fits the bound */
            render_as(big[i], formats[f], callback);
        }
    ck_assert_str_eq(render_as(big[0], PROGRESS_FORMAT_JSON, NULL),
        "{\"state\":\"uploading\",\"received\":0,\"size\":9223372036854775807,"
        "\"speed\":1,\"eta\":9223372036854775807}");
    ck_assert_str_eq(render_as(big[1], PROGRESS_FORMAT_XML, NULL), XML_HEAD
        "<upload><size>9223372036854775807</size><received>9223372036854775807</received>"
        "<state>error</state><status>65535</status></upload>");
}
END_TEST

START_TEST(format_names)
{
    progress_format f = PROGRESS_FORMAT_XML;
    ck_assert_int_eq(progress_format_parse("json", 4, &f), 0);
    ck_assert_int_eq(f, PROGRESS_FORMAT_JSON);
    ck_assert_int_eq(progress_format_parse("legacy", 6, &f), 0);
    ck_assert_int_eq(f, PROGRESS_FORMAT_LEGACY);
    ck_assert_int_eq(progress_format_parse("xml", 3, &f), 0);
    ck_assert_int_eq(f, PROGRESS_FORMAT_XML);
    const char *const bad[] = { "", "JSON", "jsonp", "js", "xml ", "java", "legacyx" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; ++i) {
        ck_assert_int_eq(progress_format_parse(bad[i], strlen(bad[i]), &f), -1);
        ck_assert_int_eq(f, PROGRESS_FORMAT_XML); /* untouched */
    }
}
END_TEST

START_TEST(problems_are_json_objects_with_an_error_message)
{
    const progress_problem all[] = { PROGRESS_PROBLEM_NO_ID, PROGRESS_PROBLEM_BAD_ID,
                                     PROGRESS_PROBLEM_BAD_CALLBACK, PROGRESS_PROBLEM_METHOD,
                                     PROGRESS_PROBLEM_STREAM_CALLBACK,
                                     PROGRESS_PROBLEM_TOO_MANY_STREAMS,
                                     PROGRESS_PROBLEM_UNAVAILABLE,
                                     PROGRESS_PROBLEM_CLIENT_STREAMS,
                                     PROGRESS_PROBLEM_NO_TIMER };
    for (size_t i = 0; i < sizeof all / sizeof *all; ++i) {
        size_t len = 0;
        const char *s = progress_render_problem(all[i], &len);
        ck_assert_uint_eq(len, strlen(s));
        ck_assert_int_eq(strncmp(s, "{\"error\":\"", 10), 0);
        ck_assert_str_eq(s + len - 2, "\"}");
    }
    size_t len;
    ck_assert_str_eq(progress_render_problem(PROGRESS_PROBLEM_BAD_ID, &len),
                     "{\"error\":\"malformed id: X-Progress-ID must be 32 hex digits or a UUID\"}");
    ck_assert_ptr_nonnull(strstr(progress_render_problem(PROGRESS_PROBLEM_NO_ID, &len),
                                 "X-Progress-ID"));
    ck_assert_str_eq(progress_render_problem(PROGRESS_PROBLEM_BAD_CALLBACK, &len),
                     "{\"error\":\"malformed callback: 1 to 64 letters, digits, _, $ or ., "
                     "not starting with a digit\"}");
    ck_assert_str_eq(progress_render_problem(PROGRESS_PROBLEM_TOO_MANY_STREAMS, &len),
                     "{\"error\":\"too many event streams: poll, or retry later\"}");
    ck_assert_str_eq(progress_render_problem(PROGRESS_PROBLEM_CLIENT_STREAMS, &len),
                     "{\"error\":\"too many event streams from this client: poll, "
                     "or retry later\"}");
    ck_assert_str_eq(progress_render_problem(PROGRESS_PROBLEM_NO_TIMER, &len),
                     "{\"error\":\"event streams unavailable: the server cannot "
                     "make their timer; poll\"}");
}
END_TEST

/* Told its buffer's size, it writes nothing into one that may be short. */
START_TEST(a_short_buffer_gets_nothing)
{
    char small[PROGRESS_RENDER_MAX - 1];
    memset(small, 'x', sizeof small);
    const char *type = NULL;
    ck_assert_uint_eq(progress_render(&UPLOADING, PROGRESS_FORMAT_JSON, NULL, 0,
                                      small, sizeof small, &type), 0);
    ck_assert_int_eq(small[0], 'x');
    /* nor, with a callback too long, into one that has room */
    char big[PROGRESS_RENDER_MAX], untouched[PROGRESS_RENDER_MAX];
    memset(big, 'x', sizeof big);
    memcpy(untouched, big, sizeof big);
    char callback[PROGRESS_CALLBACK_MAX + 2];
    memset(callback, 'a', sizeof callback);
    ck_assert_uint_eq(progress_render(&UPLOADING, PROGRESS_FORMAT_JSON, callback,
                                      sizeof callback, big, sizeof big, &type), 0);
    ck_assert_mem_eq(big, untouched, sizeof big);
    /* and with room and a callback of the longest length, it renders */
    ck_assert_uint_gt(progress_render(&UPLOADING, PROGRESS_FORMAT_JSON, callback,
                                      PROGRESS_CALLBACK_MAX, big, sizeof big, &type), 0);
}
END_TEST

/* The processing record (doc/processing.md): JSON and JSONP only. */
static const progress_snapshot BODY_IN = { .state = PROGRESS_UPLOADING, .size = 1000,
                                           .received = 1000, .percent = PROGRESS_PERCENT_UNKNOWN };
static const progress_snapshot STAGED = { .state = PROGRESS_UPLOADING, .size = 1000,
                                          .received = 1000, .phase = PROGRESS_PHASE_PROCESSING,
                                          .percent = 40, .text = "resizing images" };
static const progress_snapshot ACCEPTED = { .state = PROGRESS_DONE, .status = 202, .size = 1000,
                                            .received = 1000, .phase = PROGRESS_PHASE_PROCESSING,
                                            .percent = PROGRESS_PERCENT_UNKNOWN,
                                            .text = "queued" };
static const progress_snapshot FAILED = { .state = PROGRESS_DONE, .status = 202, .size = 1000,
                                          .received = 1000, .phase = PROGRESS_PHASE_FAILED,
                                          .percent = PROGRESS_PERCENT_UNKNOWN,
                                          .text = "virus found" };
static const progress_snapshot FINISHED = { .state = PROGRESS_DONE, .status = 200, .size = 1000,
                                            .received = 1000, .phase = PROGRESS_PHASE_FINISHED,
                                            .percent = PROGRESS_PERCENT_UNKNOWN };

START_TEST(json_tells_the_work_beside_the_state)
{
    ck_assert_str_eq(json(BODY_IN),
        "{\"state\":\"uploading\",\"received\":1000,\"size\":1000,\"speed\":0,"
        "\"phase\":\"processing\"}");
    ck_assert_str_eq(json(STAGED),
        "{\"state\":\"uploading\",\"received\":1000,\"size\":1000,\"speed\":0,"
        "\"phase\":\"processing\",\"stage\":\"resizing images\",\"percent\":40}");
    ck_assert_str_eq(json(ACCEPTED),
        "{\"state\":\"done\",\"received\":1000,\"size\":1000,"
        "\"phase\":\"processing\",\"stage\":\"queued\"}");
    ck_assert_str_eq(json(FAILED),
        "{\"state\":\"done\",\"received\":1000,\"size\":1000,"
        "\"phase\":\"failed\",\"message\":\"virus found\"}");
    ck_assert_str_eq(json(FINISHED),
        "{\"state\":\"done\",\"received\":1000,\"size\":1000,\"phase\":\"finished\"}");
    ck_assert_str_eq(render_as(STAGED, PROGRESS_FORMAT_LEGACY, "cb"),
        "cb({\"state\":\"uploading\",\"received\":1000,\"size\":1000,\"speed\":0,"
        "\"phase\":\"processing\",\"stage\":\"resizing images\",\"percent\":40});");
}
END_TEST

START_TEST(an_upload_still_arriving_or_ended_without_work_has_no_phase)
{
    ck_assert_ptr_null(strstr(json(UPLOADING), "phase"));
    ck_assert_ptr_null(strstr(json(CHUNKED), "phase"));
    ck_assert_ptr_null(strstr(json(DONE), "phase"));
    ck_assert_ptr_null(strstr(json(ABORTED), "phase"));
    ck_assert_ptr_null(strstr(json(STARTING), "phase"));
}
END_TEST

START_TEST(legacy_and_xml_say_what_they_always_said)
{
    const progress_snapshot plain_in_flight = { .state = PROGRESS_UPLOADING, .size = 1000,
                                                .received = 1000 };
    const progress_snapshot plain_done = { .state = PROGRESS_DONE, .status = 202, .size = 1000,
                                           .received = 1000 };
    const progress_snapshot *const with[] = { &STAGED, &ACCEPTED, &FAILED };
    const progress_snapshot *const without[] = { &plain_in_flight, &plain_done, &plain_done };
    for (size_t i = 0; i < 3; ++i) {
        char expected[PROGRESS_RENDER_MAX + 1];
        strcpy(expected, legacy(*without[i]));
        ck_assert_str_eq(legacy(*with[i]), expected);
        strcpy(expected, xml(*without[i]));
        ck_assert_str_eq(xml(*with[i]), expected);
    }
}
END_TEST

START_TEST(a_text_that_is_not_a_valid_stage_is_not_shown)
{
    progress_snapshot torn = STAGED;
    memcpy(torn.text, "half\"<script>", 14);
    ck_assert_str_eq(json(torn),
        "{\"state\":\"uploading\",\"received\":1000,\"size\":1000,\"speed\":0,"
        "\"phase\":\"processing\",\"percent\":40}");
    memset(torn.text, 'x', sizeof torn.text);   /* no NUL at all */
    ck_assert_ptr_null(strstr(json(torn), "stage"));
    torn.percent = 101;
    ck_assert_ptr_null(strstr(json(torn), "percent"));
}
END_TEST

START_TEST(the_longest_work_fits_with_the_longest_callback)
{
    char callback[PROGRESS_CALLBACK_MAX + 1];
    memset(callback, 'c', PROGRESS_CALLBACK_MAX);
    callback[PROGRESS_CALLBACK_MAX] = '\0';
    progress_snapshot big = { .state = PROGRESS_UPLOADING, .size = INT64_MAX, .received = 0,
                              .speed = 1, .status = 65535, .phase = PROGRESS_PHASE_PROCESSING,
                              .percent = 100 };
    memset(big.text, 'x', PROGRESS_TEXT_MAX);
    render_as(big, PROGRESS_FORMAT_JSON, callback);   /* asserts the bound */
    ck_assert_ptr_nonnull(strstr(body, "\"percent\":100}"));
}
END_TEST

static Suite *render_suite(void)
{
    Suite *s = suite_create("progress_render");
    TCase *tc = tcase_create("formats");
    tcase_add_test(tc, json_every_state);
    tcase_add_test(tc, json_done_and_error_with_zero_and_other_counts);
    tcase_add_test(tc, jsonp_wraps_the_json_answer);
    tcase_add_test(tc, a_callback_means_jsonp_in_every_format);
    tcase_add_test(tc, legacy_every_state);
    tcase_add_test(tc, xml_every_state);
    tcase_add_test(tc, largest_answers_fit_with_the_longest_callback);
    tcase_add_test(tc, format_names);
    tcase_add_test(tc, problems_are_json_objects_with_an_error_message);
    suite_add_tcase(s, tc);
    tc = tcase_create("work");
    tcase_add_test(tc, json_tells_the_work_beside_the_state);
    tcase_add_test(tc, an_upload_still_arriving_or_ended_without_work_has_no_phase);
    tcase_add_test(tc, legacy_and_xml_say_what_they_always_said);
    tcase_add_test(tc, a_text_that_is_not_a_valid_stage_is_not_shown);
    tcase_add_test(tc, the_longest_work_fits_with_the_longest_callback);
    suite_add_tcase(s, tc);
    tc = tcase_create("eta");
    tcase_add_test(tc, eta_is_whole_seconds_left_rounded_up);
    tcase_add_test(tc, eta_is_unknown_without_speed_size_or_upload);
    tcase_add_test(tc, a_short_buffer_gets_nothing);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(render_suite());
}
