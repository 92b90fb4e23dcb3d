#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "progress_counters.h"

#include "run_suite.h"

static progress_counters *fresh(void)
{
    void * const mem = calloc(1, progress_counters_bytes());
    ck_assert_ptr_nonnull(mem);
    return progress_counters_init(mem);
}

/* Every count of c equals the one in want (in enum order). */
static void assert_counts(progress_counters *c, const unsigned long want[PROGRESS_COUNT_N])
{
    for (int i = 0; i < PROGRESS_COUNT_N; ++i) {
        size_t len;
        ck_assert_msg(progress_counters_get(c, (progress_count)i) == want[i],
                      "%s is %lu, not %lu", progress_count_name((progress_count)i, &len),
                      progress_counters_get(c, (progress_count)i), want[i]);
    }
}

START_TEST(every_count_starts_at_zero)
{
    progress_counters * const c = fresh();
    assert_counts(c, (const unsigned long[PROGRESS_COUNT_N]){ 0 });
    free(c);
}
END_TEST

START_TEST(add_counts_one_and_only_its_own_count)
{
    progress_counters * const c = fresh();
    progress_counters_add(c, PROGRESS_COUNT_POLLS);
    progress_counters_add(c, PROGRESS_COUNT_POLLS);
    progress_counters_add(c, PROGRESS_COUNT_BAD_POLLS);
    progress_counters_add(c, PROGRESS_COUNT_UNTRACKED);
    assert_counts(c, (const unsigned long[PROGRESS_COUNT_N]){
        [PROGRESS_COUNT_POLLS] = 2, [PROGRESS_COUNT_BAD_POLLS] = 1,
        [PROGRESS_COUNT_UNTRACKED] = 1 });
    free(c);
}
END_TEST

START_TEST(in_flight_rises_on_begin_and_falls_on_either_end)
{
    progress_counters * const c = fresh();
    for (int i = 0; i < 5; ++i) progress_counters_began(c);
    assert_counts(c, (const unsigned long[PROGRESS_COUNT_N]){
        [PROGRESS_COUNT_TRACKED] = 5, [PROGRESS_COUNT_IN_FLIGHT] = 5 });
    progress_counters_ended(c, 0, 1);
    progress_counters_ended(c, 1, 3);
    assert_counts(c, (const unsigned long[PROGRESS_COUNT_N]){
        [PROGRESS_COUNT_TRACKED] = 5, [PROGRESS_COUNT_DONE] = 1,
        [PROGRESS_COUNT_ERROR] = 3, [PROGRESS_COUNT_IN_FLIGHT] = 1 });
    free(c);
}
END_TEST

START_TEST(names_are_distinct_and_prefixed_like_lighttpds_own)
{
    for (int i = 0; i < PROGRESS_COUNT_N; ++i) {
        size_t len;
        const char * const name = progress_count_name((progress_count)i, &len);
        ck_assert_uint_eq(len, strlen(name));
        ck_assert_int_eq(strncmp(name, "uploadprogress.", 15), 0);
        ck_assert_uint_gt(len, 15);
        for (int j = 0; j < i; ++j) {
            size_t other_len;
            ck_assert_str_ne(name, progress_count_name((progress_count)j, &other_len));
        }
    }
    size_t len;
    ck_assert_str_eq(progress_count_name(PROGRESS_COUNT_BAD_POLLS, &len),
                     "uploadprogress.bad_polls");
}
END_TEST

enum { PROCESSES = 4, ROUNDS = 20000 };

START_TEST(processes_sharing_the_block_lose_no_update)
{
    void * const mem = mmap(NULL, progress_counters_bytes(), PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(mem, MAP_FAILED);
    progress_counters * const c = progress_counters_init(mem);
    pid_t kids[PROCESSES];
    for (int k = 0; k < PROCESSES; ++k) {
        kids[k] = fork();
        ck_assert_int_ge(kids[k], 0);
        if (0 == kids[k]) {
            for (int i = 0; i < ROUNDS; ++i) {
                progress_counters_add(c, PROGRESS_COUNT_POLLS);
                progress_counters_began(c);
                progress_counters_ended(c, i & 1, 1);
            }
            _exit(0);
        }
    }
    for (int k = 0; k < PROCESSES; ++k) {
        int status;
        ck_assert_int_eq(waitpid(kids[k], &status, 0), kids[k]);
        ck_assert(WIFEXITED(status) && 0 == WEXITSTATUS(status));
    }
    assert_counts(c, (const unsigned long[PROGRESS_COUNT_N]){
        [PROGRESS_COUNT_POLLS] = PROCESSES * ROUNDS,
        [PROGRESS_COUNT_TRACKED] = PROCESSES * ROUNDS,
        [PROGRESS_COUNT_DONE] = PROCESSES * ROUNDS / 2,
        [PROGRESS_COUNT_ERROR] = PROCESSES * ROUNDS / 2 });
    munmap(mem, progress_counters_bytes());
}
END_TEST

static Suite *counters_suite(void)
{
    Suite *s = suite_create("progress_counters");
    TCase *tc = tcase_create("counts");
    tcase_add_test(tc, every_count_starts_at_zero);
    tcase_add_test(tc, add_counts_one_and_only_its_own_count);
    tcase_add_test(tc, in_flight_rises_on_begin_and_falls_on_either_end);
    tcase_add_test(tc, names_are_distinct_and_prefixed_like_lighttpds_own);
    suite_add_tcase(s, tc);
    tc = tcase_create("shared");
    tcase_add_test(tc, processes_sharing_the_block_lose_no_update);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(counters_suite());
}
