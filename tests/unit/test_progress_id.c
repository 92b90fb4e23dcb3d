#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "progress_id.h"

#include "run_suite.h"

static const char HEX_LOWER[] = "0123456789abcdef0123456789abcdef";

static int parse(const char *s, progress_id *id)
{
    return progress_id_parse(s, strlen(s), id);
}

START_TEST(parses_lower_upper_and_mixed_case_alike)
{
    progress_id a, b, c;
    ck_assert_int_eq(parse(HEX_LOWER, &a), 0);
    ck_assert_int_eq(parse("0123456789ABCDEF0123456789ABCDEF", &b), 0);
    ck_assert_int_eq(parse("0123456789aBcDeF0123456789AbCdEf", &c), 0);
    ck_assert(progress_id_equal(&a, &b));
    ck_assert(progress_id_equal(&a, &c));
    ck_assert_uint_eq(a.bytes[0], 0x01);
    ck_assert_uint_eq(a.bytes[7], 0xef);
    ck_assert_uint_eq(a.bytes[15], 0xef);
}
END_TEST

START_TEST(format_gives_back_lowercase_hex)
{
    progress_id id;
    char out[PROGRESS_ID_HEX_LEN + 1];
    ck_assert_int_eq(parse("FFEEDDCCBBAA99887766554433221100", &id), 0);
    progress_id_format(&id, out);
    ck_assert_str_eq(out, "ffeeddccbbaa99887766554433221100");
}
END_TEST

static const char *const malformed[] = {
    "",
    "0123456789abcdef0123456789abcde",     /* 31 digits */
    "0123456789abcdef0123456789abcdef0",   /* 33 digits */
    "0123456789abcdef0123456789abcdeg",    /* not hex */
    "0123456789abcdef 123456789abcdef",    /* space */
    "01234567-89ab-cdef-0123-456789abcdef",/* hyphens (a UUID) */
    "{0123456789abcdef0123456789abcdef}",
    "0x23456789abcdef0123456789abcdef",
    "0123456789abcdef0123456789abcd%20",
    "0123456789abcdef0123456789abcd\xc3\xa9", /* UTF-8 letter */
};

START_TEST(rejects_malformed_values)
{
    progress_id id;
    memset(&id, 0x5a, sizeof id);
    ck_assert_int_eq(parse(malformed[_i], &id), -1);
    for (size_t i = 0; i < sizeof id.bytes; ++i)
        ck_assert_uint_eq(id.bytes[i], 0x5a); /* untouched */
}
END_TEST

START_TEST(rejects_embedded_nul)
{
    char s[PROGRESS_ID_HEX_LEN];
    memcpy(s, HEX_LOWER, sizeof s);
    s[10] = '\0';
    progress_id id;
    ck_assert_int_eq(progress_id_parse(s, sizeof s, &id), -1);
}
END_TEST

static const char *query_value(const char *query)
{
    static char value[256];
    size_t len = 0;
    const char *v = progress_id_find_in_query(query, strlen(query), &len);
    if (v == NULL) return NULL;
    ck_assert_uint_lt(len, sizeof value);
    memcpy(value, v, len);
    value[len] = '\0';
    return value;
}

START_TEST(finds_the_parameter_anywhere_in_the_query)
{
    ck_assert_str_eq(query_value("X-Progress-ID=abc"), "abc");
    ck_assert_str_eq(query_value("callback=cb&X-Progress-ID=abc&_=123"), "abc");
    ck_assert_str_eq(query_value("_=1&X-Progress-ID=abc"), "abc");
    ck_assert_str_eq(query_value("x-progress-id=abc"), "abc");
    ck_assert_str_eq(query_value("X-PROGRESS-ID=abc&X-Progress-ID=def"), "abc");
    ck_assert_str_eq(query_value("X-Progress-ID="), "");
    ck_assert_str_eq(query_value("&&X-Progress-ID=a=b&"), "a=b");
}
END_TEST

START_TEST(ignores_other_parameters)
{
    ck_assert_ptr_null(query_value(""));
    ck_assert_ptr_null(query_value("callback=cb&_=1"));
    ck_assert_ptr_null(query_value("X-Progress-IDx=abc"));
    ck_assert_ptr_null(query_value("xX-Progress-ID=abc"));
    ck_assert_ptr_null(query_value("X-Progress-ID"));
    ck_assert_ptr_null(query_value("X-Progress-ID&a=X-Progress-ID=1"));
    ck_assert_ptr_null(query_value("a=X-Progress-ID=1"));
    ck_assert_ptr_null(progress_id_find_in_query(NULL, 0, &(size_t){0}));
}
END_TEST

START_TEST(does_not_read_past_the_given_length)
{
    const char q[] = "X-Progress-ID=abcdef";
    size_t len = 0;
    const char *v = progress_id_find_in_query(q, sizeof q - 1 - 3, &len);
    ck_assert_ptr_eq(v, q + 14);
    ck_assert_uint_eq(len, 3);
}
END_TEST

static Suite *id_suite(void)
{
    Suite *s = suite_create("progress_id");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, parses_lower_upper_and_mixed_case_alike);
    tcase_add_test(tc, format_gives_back_lowercase_hex);
    tcase_add_loop_test(tc, rejects_malformed_values, 0,
                        (int)(sizeof malformed / sizeof *malformed));
    tcase_add_test(tc, rejects_embedded_nul);
    suite_add_tcase(s, tc);
    tc = tcase_create("query");
    tcase_add_test(tc, finds_the_parameter_anywhere_in_the_query);
    tcase_add_test(tc, ignores_other_parameters);
    tcase_add_test(tc, does_not_read_past_the_given_length);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(id_suite());
}
