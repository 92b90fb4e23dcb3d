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
    "01234567-89ab-cdef-0123-456789abcde", /* UUID one digit short */
    "01234567-89ab-cdef-0123-456789abcdef0",
    "0123456-789ab-cdef-0123-456789abcdef",/* hyphens misplaced */
    "01234567-89abc-def-0123-456789abcdef",
    "01234567-89ab-cdef-01234-56789abcdef",
    "01234567089ab-cdef-0123-456789abcdef",/* a digit for a hyphen */
    "01234567-89ab-cdef-0123-456789abcdeg",
    "-0123456789abcdef0123456789abcdef-",  /* 32 digits, 2 hyphens */
    "01234567_89ab_cdef_0123_456789abcdef",
    "0123456789abcdef0123456789abcd--",
    "{01234567-89ab-cdef-0123-456789abcdef}",
    "01234567-89ab-cdef-0123-456789abcd\xc3\xa9",
    "{0123456789abcdef0123456789abcdef}",
    "0x23456789abcdef0123456789abcdef",
    "0123456789abcdef0123456789abcd%20",
    "0123456789abcdef0123456789abcd\xc3\xa9", /* UTF-8 letter */
};

START_TEST(a_uuid_names_the_same_bits_as_its_32_hex_spelling)
{
    progress_id hex, uuid, upper;
    ck_assert_int_eq(parse("0123456789abcdef0123456789abcdef", &hex), 0);
    ck_assert_int_eq(parse("01234567-89ab-cdef-0123-456789abcdef", &uuid), 0);
    ck_assert_int_eq(parse("01234567-89AB-CDEF-0123-456789ABCDEF", &upper), 0);
    ck_assert(progress_id_equal(&hex, &uuid));
    ck_assert(progress_id_equal(&hex, &upper));
    char out[PROGRESS_ID_HEX_LEN + 1];
    ck_assert_int_eq(parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8", &uuid), 0);
    progress_id_format(&uuid, out);
    ck_assert_str_eq(out, "6ba7b8109dad11d180b400c04fd430c8");
}
END_TEST

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

START_TEST(rejects_a_nul_in_a_uuid)
{
    char s[] = "01234567-89ab-cdef-0123-456789abcdef";
    s[8] = '\0';
    progress_id id;
    ck_assert_int_eq(progress_id_parse(s, sizeof s - 1, &id), -1);
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

START_TEST(finds_any_named_parameter)
{
    const char q[] = "X-Progress-ID=abc&Callback=jQuery_1&callback=x";
    size_t len = 0;
    const char *v = progress_query_find(q, sizeof q - 1, PROGRESS_CALLBACK_NAME, &len);
    ck_assert_ptr_eq(v, q + 27);
    ck_assert_uint_eq(len, 8);
    ck_assert_ptr_null(progress_query_find(q, sizeof q - 1, "call", &len));
    ck_assert_ptr_null(progress_query_find("callbackx=1", 11, PROGRESS_CALLBACK_NAME, &len));
}
END_TEST

/* The poll's one-pass scan says what progress_query_find() says of each
 * parameter, whether or not its shortcut for a lone id takes the query. */
static void scan_agrees_with_find(const char *query, size_t len)
{
    progress_poll_query q;
    progress_poll_query_scan(query, len, &q);
    size_t id_len = 0, cb_len = 0;
    const char * const id = progress_query_find(query, len, PROGRESS_ID_NAME, &id_len);
    const char * const cb = progress_query_find(query, len, PROGRESS_CALLBACK_NAME, &cb_len);
    ck_assert_ptr_eq(q.id, id);
    ck_assert_ptr_eq(q.callback, cb);
    if (id) ck_assert_uint_eq(q.id_len, id_len);
    if (cb) ck_assert_uint_eq(q.callback_len, cb_len);
}

START_TEST(the_scan_finds_what_find_finds)
{
    static const char *queries[] = {
        "", "X-Progress-ID=abc", "callback=cb&X-Progress-ID=abc", "X-Progress-ID=abc&callback=cb",
        "callback=a&callback=b&x-progress-id=1&X-Progress-ID=2", "callback", "X-Progress-ID",
        "x-PROGRESS-id=0123456789abcdef0123456789abcdef",
        "callback=cb&X-Progress-ID=0123456789abcdef0123456789abcdef",
        "X-Progress-ID=0123456789abcdef0123456789abcdef&callback=cb",
    };
    for (size_t i = 0; i < sizeof queries / sizeof *queries; ++i)
        scan_agrees_with_find(queries[i], strlen(queries[i]));
    scan_agrees_with_find(NULL, 0);
}
END_TEST

/* Every byte of a lone id's query, and its length, changed in turn: where
 * the shortcut must give way to the walk (a '&' or '=' in the value, a
 * name that only looks alike) the answer stays the walk's. */
START_TEST(a_lone_id_and_everything_near_it_scan_as_the_walk_does)
{
    static const char base[] = "X-Progress-ID=0123456789abcdef0123456789abcdef";
    static const char others[] = { '&', '=', 'x', 'X', '%', '\0', 'i', 'I', '-', '_', (char)0xc9, (char)0x89 };
    char query[sizeof base + 1];
    for (size_t pos = 0; pos < sizeof base - 1; ++pos) {
        for (size_t k = 0; k < sizeof others; ++k) {
            memcpy(query, base, sizeof base);
            query[pos] = others[k];
            scan_agrees_with_find(query, sizeof base - 1);
        }
    }
    memcpy(query, base, sizeof base);
    scan_agrees_with_find(query, sizeof base - 2);
    query[sizeof base - 1] = 'f';
    scan_agrees_with_find(query, sizeof base);
}
END_TEST

static int callback_ok(const char *s)
{
    return progress_callback_is_valid(s, strlen(s));
}

START_TEST(accepts_the_callback_names_of_real_clients)
{
    ck_assert(callback_ok("cb"));
    ck_assert(callback_ok("_"));
    ck_assert(callback_ok("$"));
    ck_assert(callback_ok("jQuery1910123456789_1384000000000"));
    ck_assert(callback_ok("window.app.progress$cb"));
    ck_assert(callback_ok("a1"));
    ck_assert(callback_ok("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$"));
}
END_TEST

static const char *const bad_callbacks[] = {
    "",
    "1cb",                      /* leading digit */
    "alert(1)//",
    "<script>",
    "cb;alert(1)",
    "cb%28",                    /* not URL-decoded: '%' is refused */
    "cb cb",
    "cb\n",
    "caf\xc3\xa9",              /* non-ASCII letter */
    "cb-1",
    "a['b']",
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$a", /* 65 */
};

START_TEST(refuses_anything_else_as_a_callback)
{
    ck_assert(!callback_ok(bad_callbacks[_i]));
}
END_TEST

START_TEST(refuses_a_nul_in_a_callback)
{
    ck_assert(!progress_callback_is_valid("cb\0x", 4));
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
    tcase_add_test(tc, a_uuid_names_the_same_bits_as_its_32_hex_spelling);
    tcase_add_test(tc, rejects_a_nul_in_a_uuid);
    suite_add_tcase(s, tc);
    tc = tcase_create("query");
    tcase_add_test(tc, finds_the_parameter_anywhere_in_the_query);
    tcase_add_test(tc, ignores_other_parameters);
    tcase_add_test(tc, does_not_read_past_the_given_length);
    tcase_add_test(tc, finds_any_named_parameter);
    tcase_add_test(tc, the_scan_finds_what_find_finds);
    tcase_add_test(tc, a_lone_id_and_everything_near_it_scan_as_the_walk_does);
    suite_add_tcase(s, tc);
    tc = tcase_create("callback");
    tcase_add_test(tc, accepts_the_callback_names_of_real_clients);
    tcase_add_loop_test(tc, refuses_anything_else_as_a_callback, 0,
                        (int)(sizeof bad_callbacks / sizeof *bad_callbacks));
    tcase_add_test(tc, refuses_a_nul_in_a_callback);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(id_suite());
}
