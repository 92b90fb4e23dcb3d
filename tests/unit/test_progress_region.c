/* The region's code itself, so that a test can forge a header whose check
 * still holds (header_check, struct region_header). */
#include "../../src/progress_region.c"

#include <check.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "run_suite.h"

static const uint8_t KEY[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const progress_id ID = { { 0xab, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 } };

static progress_region fresh(uint32_t max_entries)
{
    progress_region r;
    char why[160];
    ck_assert_int_eq(progress_region_open(&r, NULL, max_entries, KEY, why, sizeof why),
                     PROGRESS_REGION_NEW);
    ck_assert_int_ge(r.fd, 3);
    ck_assert_ptr_nonnull(r.table);
    ck_assert_ptr_nonnull(r.counters);
    return r;
}

/* Opens what r names, as the next generation would. */
static progress_region_result reopen(const progress_region *r, progress_region *next,
                                     uint32_t max_entries, char *why, size_t len)
{
    char text[16];
    progress_region_fd_text(r, text, sizeof text);
    return progress_region_open(next, text, max_entries, KEY, why, len);
}

static void close_region(progress_region *r)
{
    progress_region_unmap(r);
    close(r->fd);
}

static int fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static struct region_header *header(progress_region *r)
{
    return r->base;
}

/* Rewrites the header's check after a forged change, so that only the
 * change itself can be refused. */
static void recheck(progress_region *r)
{
    header(r)->check = header_check(header(r));
}

START_TEST(a_fresh_region_is_a_sealed_memfd_closed_on_exec)
{
    progress_region r = fresh(8);
    ck_assert_int_eq(fcntl(r.fd, F_GET_SEALS), SEALS);
    ck_assert_int_ne(fcntl(r.fd, F_GETFD) & FD_CLOEXEC, 0);
    ck_assert_int_ne(ftruncate(r.fd, 0), 0);   /* it cannot shrink under a mapping */
    ck_assert_uint_eq(r.max_entries, 8);
    ck_assert_int_eq(progress_table_count(r.table), 0);
    ck_assert_uint_eq(progress_counters_get(r.counters, PROGRESS_COUNT_TRACKED), 0);
    close_region(&r);
}
END_TEST

START_TEST(the_next_generation_finds_the_table_and_counters)
{
    progress_region r = fresh(8);
    ck_assert_int_eq(progress_table_begin(r.table, &ID, 100, 7, 0, 1), PROGRESS_BEGIN_OK);
    progress_counters_began(r.counters);
    progress_region next;
    char why[160];
    ck_assert_int_eq(reopen(&r, &next, 8, why, sizeof why), PROGRESS_REGION_FOUND);
    ck_assert_int_eq(next.fd, r.fd);
    ck_assert_ptr_ne(next.base, r.base);         /* another mapping, */
    progress_snapshot snap;                      /* the same bytes */
    ck_assert_int_eq(progress_table_lookup(next.table, &ID, 1, &snap), 1);
    ck_assert_int_eq(snap.state, PROGRESS_UPLOADING);
    ck_assert_int_eq(snap.size, 100);
    ck_assert_uint_eq(progress_counters_get(next.counters, PROGRESS_COUNT_IN_FLIGHT), 1);
    const progress_snapshot fin = { .state = PROGRESS_DONE, .status = 200,
                                    .size = 100, .received = 100 };
    ck_assert_int_eq(progress_table_finish(next.table, &ID, 7, 0, &fin, 60), 1);
    ck_assert_int_eq(progress_table_lookup(r.table, &ID, 2, &snap), 1);
    ck_assert_int_eq(snap.state, PROGRESS_DONE);
    progress_region_unmap(&r);
    close_region(&next);
}
END_TEST

START_TEST(a_found_region_keeps_its_size_whatever_is_asked)
{
    progress_region r = fresh(8);
    progress_region next;
    char why[160];
    ck_assert_int_eq(reopen(&r, &next, 1000, why, sizeof why), PROGRESS_REGION_FOUND);
    ck_assert_uint_eq(next.max_entries, 8);
    ck_assert_uint_eq(progress_table_slots(next.table), progress_table_slots(r.table));
    progress_region_unmap(&r);
    close_region(&next);
}
END_TEST

START_TEST(unmapping_leaves_the_fd_for_the_next_generation)
{
    progress_region r = fresh(8);
    const int fd = r.fd;
    progress_region_unmap(&r);
    ck_assert_ptr_null(r.base);
    ck_assert(fd_open(fd));
    progress_region next;
    char why[160];
    ck_assert_int_eq(reopen(&r, &next, 8, why, sizeof why), PROGRESS_REGION_FOUND);
    close_region(&next);
}
END_TEST

START_TEST(an_exec_takes_the_fd_along_only_when_asked)
{
    progress_region r = fresh(8);
    ck_assert_int_eq(progress_region_inherit(&r, 1), 0);
    ck_assert_int_eq(fcntl(r.fd, F_GETFD) & FD_CLOEXEC, 0);
    progress_region next;
    char why[160];
    /* the next generation closes it on exec again */
    ck_assert_int_eq(reopen(&r, &next, 8, why, sizeof why), PROGRESS_REGION_FOUND);
    ck_assert_int_ne(fcntl(r.fd, F_GETFD) & FD_CLOEXEC, 0);
    progress_region_unmap(&r);
    close_region(&next);
}
END_TEST

/* Forges the header of a region with change(), opens it as the next
 * generation would, and expects a fresh region and `want`; returns why. */
static void expect_refused(void (*change)(progress_region *), progress_region_result want,
                           const char *why_has)
{
    progress_region r = fresh(8);
    ck_assert_int_eq(progress_table_begin(r.table, &ID, 100, 7, 0, 1), PROGRESS_BEGIN_OK);
    const int old_fd = r.fd;
    change(&r);
    progress_region next;
    char why[160];
    ck_assert_int_eq(reopen(&r, &next, 8, why, sizeof why), want);
    ck_assert_msg(strstr(why, why_has) != NULL, "why: %s", why);
    ck_assert_int_ne(next.fd, -1);
    ck_assert_ptr_nonnull(next.table);
    ck_assert_int_eq(fcntl(next.fd, F_GET_SEALS), SEALS);
    progress_snapshot snap;   /* a fresh table: nothing of the old one */
    ck_assert_int_eq(progress_table_lookup(next.table, &ID, 1, &snap), 0);
    ck_assert_uint_eq(progress_counters_get(next.counters, PROGRESS_COUNT_TRACKED), 0);
    ck_assert(!fd_open(old_fd) || old_fd == next.fd);  /* the refused one is closed */
    progress_region_unmap(&r);
    close_region(&next);
}

static void other_region_layout(progress_region *r)
{
    header(r)->layout += 1;   /* (the check need not hold then) */
}

static void other_table_layout(progress_region *r)
{
    header(r)->table_layout += 1;
    recheck(r);
}

static void other_slot_size(progress_region *r)
{
    header(r)->slot_bytes *= 2;
    recheck(r);
}

static void other_counters(progress_region *r)
{
    header(r)->counters_bytes += 64;
    recheck(r);
}

static void torn_max_entries(progress_region *r)
{
    header(r)->max_entries = 9;  /* the check no longer holds */
}

static void forged_max_entries(progress_region *r)
{
    header(r)->max_entries = 1000;   /* check holds; the sizes do not */
    recheck(r);
}

static void bad_magic(progress_region *r)
{
    header(r)->magic[0] ^= 1;
}

static void table_header_overwritten(progress_region *r)
{
    memset((char *)r->base + header(r)->table_at, 0xff, 64);
}

START_TEST(another_build_is_never_attached)
{
    expect_refused(other_region_layout, PROGRESS_REGION_OTHER_LAYOUT, "layout 2, this build's is 1");
    char other_table[48];
    snprintf(other_table, sizeof other_table, "table layout %d", PROGRESS_TABLE_LAYOUT + 1);
    expect_refused(other_table_layout, PROGRESS_REGION_OTHER_LAYOUT, other_table);
    char doubled[48];
    snprintf(doubled, sizeof doubled, "%zu-byte entries", 2 * progress_table_slot_bytes());
    expect_refused(other_slot_size, PROGRESS_REGION_OTHER_LAYOUT, doubled);
    expect_refused(other_counters, PROGRESS_REGION_OTHER_LAYOUT, "bytes of counters");
}
END_TEST

START_TEST(a_damaged_header_is_never_attached)
{
    expect_refused(torn_max_entries, PROGRESS_REGION_DAMAGED, "check");
    expect_refused(forged_max_entries, PROGRESS_REGION_DAMAGED, "sizes");
    expect_refused(bad_magic, PROGRESS_REGION_DAMAGED, "no region header");
    expect_refused(table_header_overwritten, PROGRESS_REGION_DAMAGED, "table's own header");
}
END_TEST

START_TEST(a_closed_fd_gives_a_fresh_region)
{
    progress_region r = fresh(8);
    close_region(&r);
    progress_region next;
    char why[160];
    ck_assert_int_eq(reopen(&r, &next, 8, why, sizeof why), PROGRESS_REGION_GONE);
    ck_assert_ptr_nonnull(next.table);
    ck_assert_ptr_nonnull(strstr(why, "not open"));
    close_region(&next);
}
END_TEST

/* A new generation closes the region on exec when it starts, before
 * lighttpd starts anything (a piped log, a FastCGI backend); another fd it
 * names is left as it is. */
START_TEST(a_new_generation_keeps_the_region_from_exec_at_once)
{
    progress_region r = fresh(8);
    ck_assert_int_eq(progress_region_inherit(&r, 1), 0);
    char text[16];
    progress_region_fd_text(&r, text, sizeof text);
    progress_region_keep_from_exec(text);
    ck_assert_int_ne(fcntl(r.fd, F_GETFD) & FD_CLOEXEC, 0);
    progress_region_keep_from_exec(NULL);
    close_region(&r);
    int pipe_fds[2];
    ck_assert_int_eq(pipe(pipe_fds), 0);
    snprintf(text, sizeof text, "%d", pipe_fds[0]);
    progress_region_keep_from_exec(text);
    ck_assert_int_eq(fcntl(pipe_fds[0], F_GETFD) & FD_CLOEXEC, 0);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}
END_TEST

START_TEST(an_fd_that_is_no_region_is_left_alone)
{
    int pipe_fds[2];
    ck_assert_int_eq(pipe(pipe_fds), 0);
    char text[16];
    snprintf(text, sizeof text, "%d", pipe_fds[0]);
    progress_region next;
    char why[160];
    ck_assert_int_eq(progress_region_open(&next, text, 8, KEY, why, sizeof why),
                     PROGRESS_REGION_NOT_A_REGION);
    ck_assert(fd_open(pipe_fds[0]));
    ck_assert_ptr_nonnull(next.table);
    close_region(&next);
    /* a memfd without the seals is someone else's too */
    const int other = memfd_create("other", MFD_ALLOW_SEALING);
    ck_assert_int_ge(other, 0);
    snprintf(text, sizeof text, "%d", other);
    ck_assert_int_eq(progress_region_open(&next, text, 8, KEY, why, sizeof why),
                     PROGRESS_REGION_NOT_A_REGION);
    ck_assert(fd_open(other));
    close_region(&next);
    close(other);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}
END_TEST

START_TEST(a_value_that_is_no_fd_number_gives_a_fresh_region)
{
    static const char *const values[] = { "", "abc", "-3", "3x", "99999999999999999999" };
    for (size_t i = 0; i < sizeof values / sizeof *values; ++i) {
        progress_region next;
        char why[160];
        ck_assert_int_eq(progress_region_open(&next, values[i], 8, KEY, why, sizeof why),
                         PROGRESS_REGION_NOT_A_REGION);
        ck_assert_ptr_nonnull(strstr(why, "not an fd number"));
        close_region(&next);
    }
}
END_TEST

START_TEST(too_many_entries_fail_with_eoverflow)
{
    progress_region r;   /* (more slots than a table can number) */
    ck_assert_int_eq(progress_region_open(&r, NULL, UINT32_MAX, KEY, NULL, 0),
                     PROGRESS_REGION_FAILED);
    ck_assert_int_eq(errno, EOVERFLOW);
}
END_TEST

/* A forked process (a worker) and the parent share one region. */
START_TEST(a_child_writes_what_the_parent_reads)
{
    progress_region r = fresh(8);
    const pid_t pid = fork();
    if (0 == pid) {
        progress_region next;
        char why[160];
        const int ok = reopen(&r, &next, 8, why, sizeof why) == PROGRESS_REGION_FOUND
          && progress_table_begin(next.table, &ID, 5, 9, 0, 1) == PROGRESS_BEGIN_OK;
        _exit(ok ? 0 : 1);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_int_eq(status, 0);
    progress_snapshot snap;
    ck_assert_int_eq(progress_table_lookup(r.table, &ID, 1, &snap), 1);
    ck_assert_int_eq(snap.owner_pid, 9);
    close_region(&r);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("progress_region");
    TCase *tc = tcase_create("region");
    tcase_add_test(tc, a_fresh_region_is_a_sealed_memfd_closed_on_exec);
    tcase_add_test(tc, the_next_generation_finds_the_table_and_counters);
    tcase_add_test(tc, a_found_region_keeps_its_size_whatever_is_asked);
    tcase_add_test(tc, unmapping_leaves_the_fd_for_the_next_generation);
    tcase_add_test(tc, a_new_generation_keeps_the_region_from_exec_at_once);
    tcase_add_test(tc, an_exec_takes_the_fd_along_only_when_asked);
    tcase_add_test(tc, another_build_is_never_attached);
    tcase_add_test(tc, a_damaged_header_is_never_attached);
    tcase_add_test(tc, a_closed_fd_gives_a_fresh_region);
    tcase_add_test(tc, an_fd_that_is_no_region_is_left_alone);
    tcase_add_test(tc, a_value_that_is_no_fd_number_gives_a_fresh_region);
    tcase_add_test(tc, too_many_entries_fail_with_eoverflow);
    tcase_add_test(tc, a_child_writes_what_the_parent_reads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(suite());
}
