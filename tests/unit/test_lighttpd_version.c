#define _POSIX_C_SOURCE 200112L /* setenv */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "lighttpd_version.h"

#include "run_suite.h"

#define LAST_PATCH 999

/* The ids as lighttpd's own build files write them: configure.ac's
 * m4_format([0x%x%02x%02x]) and meson.build's/CMakeLists.txt's "0x104" +
 * the patch's digits, both read as a hex number. */
static long autotools_id(int patch)
{
    char s[32];
    snprintf(s, sizeof s, "0x%x%02x%02x", 1, 4, patch);
    return strtol(s, NULL, 16);
}

static long digits_id(int patch)
{
    char s[32];
    snprintf(s, sizeof s, "0x104%d", patch);
    return strtol(s, NULL, 16);
}

START_TEST(each_encoding_is_written_as_lighttpd_writes_it)
{
    ck_assert_int_eq(LIGHTTPD_VERSION_ID_AUTOTOOLS(_i), autotools_id(_i));
    ck_assert_int_eq(LIGHTTPD_VERSION_ID_DIGITS(_i), digits_id(_i));
}
END_TEST

START_TEST(each_encoding_reads_back_to_its_patch)
{
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH_AUTOTOOLS(autotools_id(_i)), _i);
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH_DIGITS(digits_id(_i)), _i);
}
END_TEST

START_TEST(the_given_version_settles_either_encoding)
{
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(autotools_id(_i), _i), _i);
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(digits_id(_i), _i), _i);
    /* the neighbour's id is refused, not taken for this release */
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(autotools_id(_i + 1), _i), LIGHTTPD_VERSION_UNKNOWN);
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(digits_id(_i + 1), _i), LIGHTTPD_VERSION_UNKNOWN);
}
END_TEST

/* Without the version an id is decoded only when one release has it:
 * never another release's number. */
static void check_alone(long id, int patch, long other_reading)
{
    const long got = LIGHTTPD_VERSION_PATCH(id, -1);
    if (other_reading >= 0 && other_reading != patch)
        ck_assert_int_eq(got, LIGHTTPD_VERSION_AMBIGUOUS);
    else
        ck_assert_int_eq(got, patch);
}

START_TEST(an_id_alone_is_decoded_or_called_ambiguous)
{
    const long a = autotools_id(_i), d = digits_id(_i);
    check_alone(a, _i, LIGHTTPD_VERSION_PATCH_DIGITS(a));
    check_alone(d, _i, LIGHTTPD_VERSION_PATCH_AUTOTOOLS(d));
}
END_TEST

START_TEST(the_debian_releases_and_the_collisions)
{
    /* bookworm, trixie, sid: autotools */
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x10445, 69), 69);
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x1044f, 79), 79);
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x10455, 85), 85);
    /* 0x10469: autotools' 1.4.105 and meson's 1.4.69 */
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x10469, 105), 105);
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x10469, 69), 69);
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x10469, -1), LIGHTTPD_VERSION_AMBIGUOUS);
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x10445, -1), LIGHTTPD_VERSION_AMBIGUOUS);
    /* one reading only: 0x1044f has a hex letter, 0x1045 is meson's 1.4.5 */
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x1044f, -1), 79);
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x1045, -1), 5);
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x10445, 70), LIGHTTPD_VERSION_UNKNOWN);
    /* not 1.4 */
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x10500, -1), LIGHTTPD_VERSION_UNKNOWN);
    ck_assert_int_eq(LIGHTTPD_VERSION_PATCH(0x20000, -1), LIGHTTPD_VERSION_UNKNOWN);
}
END_TEST

static Suite *version_suite(void)
{
    Suite *s = suite_create("lighttpd_version");
    TCase *tc = tcase_create("every patch number");
    tcase_add_loop_test(tc, each_encoding_is_written_as_lighttpd_writes_it, 0, LAST_PATCH + 1);
    tcase_add_loop_test(tc, each_encoding_reads_back_to_its_patch, 0, LAST_PATCH + 1);
    tcase_add_loop_test(tc, the_given_version_settles_either_encoding, 0, LAST_PATCH);
    tcase_add_loop_test(tc, an_id_alone_is_decoded_or_called_ambiguous, 0, LAST_PATCH + 1);
    suite_add_tcase(s, tc);
    tc = tcase_create("known ids");
    tcase_add_test(tc, the_debian_releases_and_the_collisions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* 4,000 checks of pure arithmetic: nothing for a fork per check
     * (Check's default) to isolate, and under ASan the forks took 100 s */
    setenv("CK_FORK", "no", 1);
    return run_suite(version_suite());
}
