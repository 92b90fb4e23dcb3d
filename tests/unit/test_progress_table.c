#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progress_render.h"
#include "progress_report.h"
#include "progress_table.h"

#include "run_suite.h"

static const uint8_t KEY[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
enum { OWNER = 100, OTHER = 200 };

static progress_table *table;

/* Under valgrind everything is slow: the largest tests then run smaller
 * (the same paths, fewer entries, rounds or lookups). */
static int under_valgrind(void)
{
    const char * const preload = getenv("LD_PRELOAD");
    return preload != NULL && strstr(preload, "vgpreload") != NULL;
}

/* n, or a fifth of it under valgrind */
static uint32_t scaled(uint32_t n)
{
    return under_valgrind() ? n / 5 : n;
}

static progress_table *new_table(uint32_t max_entries)
{
    void *mem = calloc(1, progress_table_bytes(max_entries));
    ck_assert_ptr_nonnull(mem);
    progress_table *t = progress_table_init(mem, max_entries, KEY);
    ck_assert_ptr_eq(t, mem);
    return t;
}

static void free_table(progress_table *t)
{
    progress_table_destroy(t);
    free(t);
}

static void teardown(void)
{
    if (table) free_table(table);
    table = NULL;
}

static progress_id make_id(uint32_t n)
{
    progress_id id;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes, &n, sizeof n);
    id.bytes[15] = 0x77;
    return id;
}

static progress_snapshot get(progress_table *t, uint32_t n, int64_t now)
{
    progress_snapshot s;
    const progress_id id = make_id(n);
    const int found = progress_table_lookup(t, &id, now, &s);
    ck_assert_int_eq(found, s.state != PROGRESS_STARTING);
    return s;
}

static progress_begin_result begin(progress_table *t, uint32_t n, int64_t size,
                                   uint32_t ref, int64_t now)
{
    const progress_id id = make_id(n);
    return progress_table_begin(t, &id, size, OWNER, ref, now);
}

static int finish(progress_table *t, uint32_t n, uint32_t ref,
                  progress_state state, int status, int64_t expires)
{
    const progress_id id = make_id(n);
    const progress_snapshot fin = { .state = state, .status = status,
                                    .size = 50, .received = 50 };
    return progress_table_finish(t, &id, OWNER, ref, &fin, expires);
}

START_TEST(unknown_id_is_starting)
{
    table = new_table(16);
    const progress_snapshot s = get(table, 1, 0);
    ck_assert_int_eq(s.state, PROGRESS_STARTING);
    ck_assert_int_eq(s.size, -1);
    ck_assert_int_eq(s.received, -1);
    ck_assert_uint_eq(progress_table_count(table), 0);
}
END_TEST

START_TEST(begin_update_finish)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 1000, 7, 5), PROGRESS_BEGIN_OK);
    progress_snapshot s = get(table, 1, 5);
    ck_assert_int_eq(s.state, PROGRESS_UPLOADING);
    ck_assert_int_eq(s.received, 0);
    ck_assert_int_eq(s.size, 1000);
    ck_assert_int_eq(s.speed, 0);
    ck_assert_int_eq(s.owner_pid, OWNER);
    ck_assert_uint_eq(s.owner_ref, 7);

    const progress_id id = make_id(1);
    progress_table_update(table, &id, OWNER, 7, 400, 1000, 0, 6);
    ck_assert_int_eq(get(table, 1, 6).received, 400);

    ck_assert_int_eq(finish(table, 1, 7, PROGRESS_DONE, 200, 66), 1);
    s = get(table, 1, 6);
    ck_assert_int_eq(s.state, PROGRESS_DONE);
    ck_assert_int_eq(s.status, 200);
    ck_assert_int_eq(s.received, 50);
    ck_assert_uint_eq(progress_table_count(table), 1);
}
END_TEST

/* Once a second, so the base is what the last update published. */
static void update_at(uint32_t n, int64_t received, int64_t now)
{
    const progress_id id = make_id(n);
    const int64_t base = get(table, n, now).received;
    progress_table_update(table, &id, OWNER, 7, received, 1000000, base, now);
}

START_TEST(speed_is_unknown_until_a_whole_second_is_measured)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 1000000, 7, 100), PROGRESS_BEGIN_OK);
    update_at(1, 5000, 100);   /* same second as the begin */
    ck_assert_int_eq(get(table, 1, 100).speed, 0);
    ck_assert_int_eq(get(table, 1, 100).received, 5000);
    update_at(1, 9000, 101);   /* the begin fell anywhere in second 100: */
    ck_assert_int_eq(get(table, 1, 101).speed, 0);   /* only a start */
    ck_assert_int_eq(get(table, 1, 101).received, 9000);
    update_at(1, 19000, 102);
    ck_assert_int_eq(get(table, 1, 102).speed, 10000);
}
END_TEST

/* An owner that publishes several times a second: base as the glue keeps it. */
static void publish_at(int64_t received, int64_t base, int64_t now)
{
    const progress_id id = make_id(1);
    progress_table_update(table, &id, OWNER, 7, received, 1000000, base, now);
}

START_TEST(speed_is_the_same_when_published_several_times_a_second)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 1000000, 7, 0), PROGRESS_BEGIN_OK);
    publish_at(1000, 0, 1);
    publish_at(5000, 1000, 1);
    publish_at(9000, 1000, 1);
    ck_assert_int_eq(get(table, 1, 1).received, 9000);  /* fresh */
    publish_at(11000, 1000, 2);
    ck_assert_int_eq(get(table, 1, 2).speed, 10000);     /* from 1000 */
    ck_assert_int_eq(get(table, 1, 2).received, 11000);
}
END_TEST

START_TEST(speed_follows_the_last_few_seconds)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 1000000, 7, 0), PROGRESS_BEGIN_OK);
    update_at(1, 1000, 1);
    update_at(1, 1000 + 8000, 2);              /* 8000/s */
    ck_assert_int_eq(get(table, 1, 2).speed, 8000);
    update_at(1, 9000 + 16000, 3);             /* 16000/s: (8000 + 16000) / 2 */
    ck_assert_int_eq(get(table, 1, 3).speed, 12000);
    update_at(1, 25000 + 16000, 4);
    ck_assert_int_eq(get(table, 1, 4).speed, 14000);
    update_at(1, 41000 + 30000, 6);            /* two seconds: 15000/s */
    ck_assert_int_eq(get(table, 1, 6).speed, 14500);
    /* a stall halves it every second, down to 0 */
    int64_t now = 6, last = 14500;
    while (last > 0) {
        update_at(1, 71000, ++now);
        const int64_t speed = get(table, 1, now).speed;
        ck_assert_int_eq(speed, last / 2);
        last = speed;
    }
    ck_assert_int_lt(now, 6 + 16);
    /* and it picks up again */
    update_at(1, 72000, ++now);
    ck_assert_int_eq(get(table, 1, now).speed, 500);
}
END_TEST

START_TEST(speed_survives_a_wrapping_32_bit_second)
{
    table = new_table(16);
    const int64_t start = ((int64_t)1 << 32) - 2;
    ck_assert_int_eq(begin(table, 1, 1000000, 7, start), PROGRESS_BEGIN_OK);
    update_at(1, 100, start + 1);
    update_at(1, 100 + 3000, start + 2);       /* second 2^32: 0 modulo 2^32 */
    ck_assert_int_eq(get(table, 1, start + 2).speed, 3000);
    update_at(1, 3100 + 2 * 5000, start + 4);
    ck_assert_int_eq(get(table, 1, start + 4).speed, 4000);
}
END_TEST

START_TEST(speed_ignores_counts_that_go_back_and_saturates)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 1000000, 7, 0), PROGRESS_BEGIN_OK);
    update_at(1, 500, 1);
    update_at(1, 100, 2);
    ck_assert_int_eq(get(table, 1, 2).speed, 0);
    update_at(1, INT64_MAX, 3);
    ck_assert_int_eq(get(table, 1, 3).speed, UINT32_MAX / 2);
    update_at(1, INT64_MAX, 4);
    ck_assert_int_eq(get(table, 1, 4).speed, UINT32_MAX / 4);
    /* a new upload with the id starts with no speed */
    ck_assert_int_eq(finish(table, 1, 7, PROGRESS_DONE, 200, 10), 1);
    ck_assert_int_eq(begin(table, 1, 1000, 8, 5), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(get(table, 1, 5).speed, 0);
}
END_TEST

START_TEST(only_the_owner_updates_and_finishes)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 1000, 7, 0), PROGRESS_BEGIN_OK);
    const progress_id id = make_id(1);
    progress_table_update(table, &id, OTHER, 7, 999, 1000, 0, 1);
    progress_table_update(table, &id, OWNER, 8, 999, 1000, 0, 1);
    ck_assert_int_eq(get(table, 1, 0).received, 0);
    const progress_snapshot fin = { .state = PROGRESS_DONE, .status = 200 };
    ck_assert_int_eq(progress_table_finish(table, &id, OTHER, 7, &fin, 10), 0);
    ck_assert_int_eq(finish(table, 1, 8, PROGRESS_DONE, 200, 10), 0);
    ck_assert_int_eq(get(table, 1, 0).state, PROGRESS_UPLOADING);
    /* finishing twice: the second call finds nothing in flight */
    ck_assert_int_eq(finish(table, 1, 7, PROGRESS_ERROR, 400, 10), 1);
    ck_assert_int_eq(finish(table, 1, 7, PROGRESS_DONE, 200, 10), 0);
    ck_assert_int_eq(get(table, 1, 0).state, PROGRESS_ERROR);
    /* finishing an unknown id does nothing */
    ck_assert_int_eq(finish(table, 2, 7, PROGRESS_DONE, 200, 10), 0);
}
END_TEST

START_TEST(an_id_in_flight_is_not_taken_over)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 1000, 7, 0), PROGRESS_BEGIN_OK);
    const progress_id id = make_id(1);
    progress_table_update(table, &id, OWNER, 7, 300, 1000, 0, 0);
    ck_assert_int_eq(begin(table, 1, 5, 8, 1), PROGRESS_BEGIN_IN_FLIGHT);
    const progress_snapshot s = get(table, 1, 1);
    ck_assert_int_eq(s.received, 300);
    ck_assert_int_eq(s.size, 1000);
    ck_assert_uint_eq(s.owner_ref, 7);
    ck_assert_uint_eq(progress_table_count(table), 1);
}
END_TEST

START_TEST(a_finished_id_is_taken_over_by_a_new_upload)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 1000, 7, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(finish(table, 1, 7, PROGRESS_DONE, 200, 60), 1);
    ck_assert_int_eq(begin(table, 1, 20, 9, 3), PROGRESS_BEGIN_OK);
    const progress_snapshot s = get(table, 1, 3);
    ck_assert_int_eq(s.state, PROGRESS_UPLOADING);
    ck_assert_int_eq(s.received, 0);
    ck_assert_int_eq(s.size, 20);
    ck_assert_int_eq(s.status, 0);
    ck_assert_uint_eq(progress_table_count(table), 1);
}
END_TEST

START_TEST(expires_after_its_second_and_sweeps_then)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 1000, 7, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(finish(table, 1, 7, PROGRESS_DONE, 200, 100), 1);
    ck_assert_int_eq(get(table, 1, 100).state, PROGRESS_DONE);
    ck_assert_uint_eq(progress_table_sweep(table, 100, 1000), 0);
    ck_assert_uint_eq(progress_table_count(table), 1);
    ck_assert_int_eq(get(table, 1, 101).state, PROGRESS_STARTING);
    ck_assert_uint_eq(progress_table_sweep(table, 101, 1000), 1);
    ck_assert_uint_eq(progress_table_count(table), 0);
}
END_TEST

START_TEST(uploads_in_flight_never_expire)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 1000, 7, 0), PROGRESS_BEGIN_OK);
    ck_assert_uint_eq(progress_table_sweep(table, INT64_MAX, 1000), 0);
    ck_assert_int_eq(get(table, 1, INT64_MAX).state, PROGRESS_UPLOADING);
}
END_TEST

START_TEST(sweep_looks_at_no_more_than_its_budget)
{
    table = new_table(1000);
    for (uint32_t n = 0; n < 1000; ++n) {
        ck_assert_int_eq(begin(table, n, 1, n, 0), PROGRESS_BEGIN_OK);
        ck_assert_int_eq(finish(table, n, n, PROGRESS_DONE, 200, 10), 1);
    }
    uint32_t freed = 0, calls = 0;
    while (progress_table_count(table) > 0) {
        const uint32_t f = progress_table_sweep(table, 11, 100);
        ck_assert_uint_le(f, 100);
        freed += f;
        ck_assert_uint_lt(++calls, 100);
    }
    ck_assert_uint_eq(freed, 1000);
    ck_assert_uint_ge(calls, 10);
}
END_TEST

START_TEST(full_table_evicts_the_finished_entries_that_expire_first)
{
    table = new_table(5);
    for (uint32_t n = 0; n < 5; ++n)
        ck_assert_int_eq(begin(table, n, 1, n, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(begin(table, 5, 1, 5, 0), PROGRESS_BEGIN_FULL);
    ck_assert_int_eq(get(table, 5, 0).state, PROGRESS_STARTING);
    ck_assert_int_eq(finish(table, 2, 2, PROGRESS_DONE, 200, 90), 1);
    ck_assert_int_eq(finish(table, 1, 1, PROGRESS_DONE, 200, 80), 1);
    ck_assert_int_eq(finish(table, 3, 3, PROGRESS_DONE, 200, 80), 1);
    ck_assert_int_eq(begin(table, 5, 1, 5, 0), PROGRESS_BEGIN_OK);
    /* one of the two of the earliest second is evicted */
    ck_assert_int_eq((get(table, 1, 0).state == PROGRESS_STARTING)
                     + (get(table, 3, 0).state == PROGRESS_STARTING), 1);
    ck_assert_int_eq(get(table, 2, 0).state, PROGRESS_DONE);
    ck_assert_int_eq(get(table, 5, 0).state, PROGRESS_UPLOADING);
    ck_assert_uint_eq(progress_table_count(table), 5);
    ck_assert_int_eq(begin(table, 6, 1, 6, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(get(table, 1, 0).state, PROGRESS_STARTING); /* then the other */
    ck_assert_int_eq(get(table, 3, 0).state, PROGRESS_STARTING);
    ck_assert_int_eq(get(table, 2, 0).state, PROGRESS_DONE);
    ck_assert_int_eq(begin(table, 7, 1, 7, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(get(table, 2, 0).state, PROGRESS_STARTING); /* then the next */
    ck_assert_int_eq(begin(table, 8, 1, 8, 0), PROGRESS_BEGIN_FULL);
}
END_TEST

START_TEST(a_dead_owners_uploads_become_errors)
{
    table = new_table(16);
    const progress_id a = make_id(1), b = make_id(2), c = make_id(3);
    ck_assert_int_eq(progress_table_begin(table, &a, 100, 41, 0, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(progress_table_begin(table, &b, 100, 41, 1, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(progress_table_begin(table, &c, 100, 42, 0, 0), PROGRESS_BEGIN_OK);
    progress_table_update(table, &a, 41, 0, 60, 100, 0, 0);
    const progress_snapshot done = { .state = PROGRESS_DONE, .status = 200,
                                     .size = 100, .received = 100 };
    ck_assert_int_eq(progress_table_finish(table, &b, 41, 1, &done, 9), 1);
    ck_assert_uint_eq(progress_table_fail_owner(table, 41, 500, 30), 1);
    progress_snapshot s;
    progress_table_lookup(table, &a, 0, &s);
    ck_assert_int_eq(s.state, PROGRESS_ERROR);
    ck_assert_int_eq(s.status, 500);
    ck_assert_int_eq(s.received, 60);
    ck_assert_int_eq(s.size, 100);
    ck_assert_int_eq(progress_table_lookup(table, &a, 31, &s), 0); /* expires */
    progress_table_lookup(table, &b, 0, &s);
    ck_assert_int_eq(s.state, PROGRESS_DONE);  /* finished ones stay as they were */
    progress_table_lookup(table, &c, 0, &s);
    ck_assert_int_eq(s.state, PROGRESS_UPLOADING); /* other owners' too */
}
END_TEST

START_TEST(many_entries_all_found_after_partial_sweeps)
{
    const uint32_t N = scaled(50000);
    table = new_table(N);
    for (uint32_t n = 0; n < N; ++n) {
        ck_assert_int_eq(begin(table, n, n, n, 0), PROGRESS_BEGIN_OK);
        if (n % 3 != 0)
            ck_assert_int_eq(finish(table, n, n, PROGRESS_DONE, 200, n % 3), 1);
    }
    ck_assert_uint_eq(progress_table_count(table), N);
    /* expire those with expiry second 1 */
    while (progress_table_sweep(table, 2, 4096) > 0)
        ;
    for (uint32_t round = 0; round < 3; ++round)
        progress_table_sweep(table, 2, UINT32_MAX);
    uint32_t left = 0;
    for (uint32_t n = 0; n < N; ++n) {
        const progress_snapshot s = get(table, n, 0);
        if (n % 3 == 1) {
            ck_assert_int_eq(s.state, PROGRESS_STARTING);
        } else {
            ck_assert_int_eq(s.state, n % 3 == 0 ? PROGRESS_UPLOADING : PROGRESS_DONE);
            ck_assert_int_eq(s.size, n % 3 == 0 ? (int64_t)n : 50);
            ++left;
        }
    }
    ck_assert_uint_eq(progress_table_count(table), left);
}
END_TEST

/* Whether the table holds an entry for n, expired or not (no ck_assert:
 * each would add a message to Check's log). */
static int held(progress_table *t, uint32_t n)
{
    progress_snapshot s;
    const progress_id id = make_id(n);
    return progress_table_lookup(t, &id, INT64_MIN, &s) == 1;
}

/* Random operations on a small, crowded table against a plain model. */
START_TEST(matches_a_simple_model_under_random_operations)
{
    enum { MAX = 24, IDS = 40 };
    const int STEPS = (int)scaled(200000);
    struct { int state; int64_t expires; uint32_t ref; } model[IDS];
    memset(model, 0, sizeof model);
    table = new_table(MAX);
    srand(12345);
    int64_t now = 0;
    for (int step = 0; step < STEPS; ++step) {
        const uint32_t n = (uint32_t)rand() % IDS;
        const int op = rand() % 10;
        if (op < 4) {
            int in_table = 0, in_flight = 0, expired_or_absent = model[n].state == 0;
            for (int k = 0; k < IDS; ++k) {
                in_table += model[k].state != 0;
                in_flight += model[k].state == PROGRESS_UPLOADING;
            }
            const progress_begin_result r = begin(table, n, 1, (uint32_t)step, now);
            if (model[n].state == PROGRESS_UPLOADING) {
                ck_assert_int_eq(r, PROGRESS_BEGIN_IN_FLIGHT);
            } else if (expired_or_absent && in_table >= MAX && in_flight >= MAX) {
                ck_assert_int_eq(r, PROGRESS_BEGIN_FULL);
            } else {
                ck_assert_int_eq(r, PROGRESS_BEGIN_OK);
                if (expired_or_absent && in_table >= MAX) {
                    /* one finished entry of the earliest second is evicted */
                    int64_t earliest = INT64_MAX;
                    for (int k = 0; k < IDS; ++k)
                        if (model[k].state > PROGRESS_UPLOADING && model[k].expires < earliest)
                            earliest = model[k].expires;
                    ck_assert_int_ne(earliest, INT64_MAX);
                    int evicted = 0;
                    for (int k = 0; k < IDS; ++k) {
                        if (model[k].state > PROGRESS_UPLOADING && model[k].expires == earliest
                            && !held(table, (uint32_t)k)) {
                            model[k].state = 0;
                            ++evicted;
                        }
                    }
                    ck_assert_int_eq(evicted, 1);
                }
                model[n].state = PROGRESS_UPLOADING;
                model[n].ref = (uint32_t)step;
            }
        } else if (op < 7) {
            const int was_in_flight = model[n].state == PROGRESS_UPLOADING;
            const int64_t expires = now + rand() % 5;
            ck_assert_int_eq(finish(table, n, model[n].ref, PROGRESS_DONE, 200, expires),
                             was_in_flight);
            if (was_in_flight) {
                model[n].state = PROGRESS_DONE;
                model[n].expires = expires;
            }
        } else if (op < 8) {
            ++now;
            progress_table_sweep(table, now, (uint32_t)(rand() % 8));
        } else {
            const progress_snapshot s = get(table, n, now);
            const int visible = model[n].state == PROGRESS_UPLOADING
                || (model[n].state == PROGRESS_DONE && now <= model[n].expires);
            ck_assert_int_eq(s.state, visible ? model[n].state : PROGRESS_STARTING);
        }
        /* entries the model holds that have expired are gone for lookups;
         * drop them from the model once swept or evicted */
        for (int k = 0; k < IDS; ++k) {
            if (model[k].state == PROGRESS_DONE && now > model[k].expires) {
                if (!held(table, (uint32_t)k)) model[k].state = 0;
            }
        }
    }
}
END_TEST

/* The sweep costs nothing until some entry can have expired; an entry
 * that finishes with an earlier expiry than all others is still swept. */
START_TEST(sweep_waits_for_the_soonest_expiry_even_a_new_one)
{
    table = new_table(100);
    for (uint32_t n = 0; n < 50; ++n) {
        ck_assert_int_eq(begin(table, n, 1, n, 0), PROGRESS_BEGIN_OK);
        ck_assert_int_eq(finish(table, n, n, PROGRESS_DONE, 200, 1000), 1);
    }
    ck_assert_uint_eq(progress_table_sweep(table, 5, UINT32_MAX), 0);
    ck_assert_int_eq(begin(table, 50, 1, 50, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(finish(table, 50, 50, PROGRESS_DONE, 200, 3), 1);
    ck_assert_uint_eq(progress_table_sweep(table, 3, UINT32_MAX), 0);
    ck_assert_uint_eq(progress_table_sweep(table, 4, UINT32_MAX), 1);
    ck_assert_int_eq(get(table, 50, 0).state, PROGRESS_STARTING);
    ck_assert_uint_eq(progress_table_sweep(table, 1000, UINT32_MAX), 0);
    ck_assert_uint_eq(progress_table_sweep(table, 1001, UINT32_MAX), 50);
    ck_assert_uint_eq(progress_table_count(table), 0);
}
END_TEST

/* Entries expiring together in long probe runs: each call does bounded
 * work (a freed entry costs at least two slots' worth), and small calls
 * free them all, leaving the others findable. */
START_TEST(a_sweep_call_frees_at_most_half_its_budget)
{
    enum { N = 20000 };
    table = new_table(N);
    for (uint32_t n = 0; n < N; ++n) {
        ck_assert_int_eq(begin(table, n, 1, n, 0), PROGRESS_BEGIN_OK);
        ck_assert_int_eq(finish(table, n, n, PROGRESS_DONE, 200, n % 4 ? 10 : 20), 1);
    }
    uint32_t freed = 0, calls = 0;
    while (progress_table_count(table) > N / 4) {
        const uint32_t f = progress_table_sweep(table, 11, 64);
        ck_assert_uint_le(f, 32);
        freed += f;
        ck_assert_uint_lt(++calls, 10 * N);
    }
    ck_assert_uint_eq(freed, N - N / 4);
    for (uint32_t n = 0; n < N; n += 4)
        ck_assert_int_eq(get(table, n, 11).state, PROGRESS_DONE);
}
END_TEST

/* An anonymous client churning a full table costs others' finished
 * entries one for one, oldest expiry first. */
START_TEST(eviction_frees_one_finished_entry_per_new_upload)
{
    enum { MAX = 64, NEW = 10 };
    table = new_table(MAX);
    for (uint32_t n = 0; n < MAX; ++n) {
        ck_assert_int_eq(begin(table, n, 1, n, 0), PROGRESS_BEGIN_OK);
        ck_assert_int_eq(finish(table, n, n, PROGRESS_DONE, 200, n < 32 ? 60 : 50), 1);
    }
    for (uint32_t n = MAX; n < MAX + NEW; ++n)
        ck_assert_int_eq(begin(table, n, 1, n, 0), PROGRESS_BEGIN_OK);
    ck_assert_uint_eq(progress_table_count(table), MAX);
    uint32_t kept_late = 0, kept_early = 0;
    for (uint32_t n = 0; n < MAX; ++n) {
        const int kept = get(table, n, 0).state == PROGRESS_DONE;
        if (n < 32) kept_late += kept; else kept_early += kept;
    }
    ck_assert_uint_eq(kept_late, 32);           /* the later second is untouched */
    ck_assert_uint_eq(kept_early, 32 - NEW);    /* one evicted per new upload */
}
END_TEST

/* An expiry second of 0 is a second like any other, not "never". */
START_TEST(a_finished_entry_with_expiry_zero_expires_after_second_zero)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 10, 1, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(finish(table, 1, 1, PROGRESS_DONE, 200, 0), 1);
    ck_assert_int_eq(get(table, 1, 0).state, PROGRESS_DONE);
    ck_assert_int_eq(get(table, 1, 1).state, PROGRESS_STARTING);
    ck_assert_uint_eq(progress_table_sweep(table, 1, UINT32_MAX), 1);
    ck_assert_uint_eq(progress_table_count(table), 0);
}
END_TEST

/* The size of any max_entries is exact or 0 (too large to address), never
 * a wrapped small number. */
START_TEST(table_bytes_never_wrap)
{
    const uint32_t sizes[] = { 1, 65536, 64u << 20, UINT32_MAX / 2, UINT32_MAX };
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; ++k) {
        const size_t bytes = progress_table_bytes(sizes[k]);
        /* 42 slots of 96 bytes a page, and a byte of count a page */
        const double want = ((double)sizes[k] * 1.25 + 1) * 4097.0 / 42;
        if (bytes != 0) ck_assert(bytes >= want && (double)bytes < want * 1.01 + 3 * 4096);
        else ck_assert(want > (double)SIZE_MAX || (double)sizes[k] * 1.25 + 1 > UINT32_MAX);
    }
}
END_TEST

/* A full, large table evicts a slice of the entries of the earliest
 * expiry second, not every one of them in one long scan. */
START_TEST(eviction_in_a_large_full_table_frees_a_slice_of_the_oldest)
{
    enum { SECONDS = 50 };
    const uint32_t N = scaled(100000);
    table = new_table(N);
    for (uint32_t n = 0; n < N; ++n) {
        ck_assert_int_eq(begin(table, n, 1, n, 0), PROGRESS_BEGIN_OK);
        ck_assert_int_eq(finish(table, n, n, PROGRESS_DONE, 200, 100 + n % SECONDS), 1);
    }
    ck_assert_int_eq(begin(table, N, 1, N, 0), PROGRESS_BEGIN_OK);
    const uint32_t evicted = N + 1 - progress_table_count(table);
    ck_assert_uint_ge(evicted, 1);
    ck_assert_uint_lt(evicted, N / SECONDS);
    for (uint32_t n = 0; n < N; ++n)
        if (n % SECONDS != 0)
            ck_assert_int_eq(get(table, n, 0).state, PROGRESS_DONE);
    ck_assert_int_eq(get(table, N, 0).state, PROGRESS_UPLOADING);
}
END_TEST

/* The layouts that made one eviction walk the whole table (issue 18): a
 * full table of 1,000,000 entries (40,000 under valgrind), and one begin
 * of a new id. */
enum { EVICT_WINDOW = 4096 };
static uint32_t big;   /* the size of the test's table */

static progress_table *new_big_table(void)
{
    big = under_valgrind() ? 40000 : 1000000;
    return new_table(big);
}

static void fill_finished(progress_table *t, uint32_t n, int64_t (*expires)(uint32_t))
{
    for (uint32_t k = 0; k < n; ++k) {
        ck_assert_int_eq(begin(t, k, 1, k, 0), PROGRESS_BEGIN_OK);
        if (expires(k) >= 0) ck_assert_int_eq(finish(t, k, k, PROGRESS_DONE, 200, expires(k)), 1);
    }
}

static int64_t one_earliest_then_later(uint32_t k) { return k == 0 ? 100 : 200; }
static int64_t one_per_second(uint32_t k) { return 100 + k; }
static int64_t all_in_flight_but_one(uint32_t k) { return k == big / 2 ? 100 : -1; }

static uint32_t visits_of_one_new_begin(progress_table *t, uint32_t n, progress_begin_result want)
{
    ck_assert_int_eq(begin(t, n, 1, n, 0), want);
    return progress_table_begin_visits(t);
}

/* A stale next_expiry: the one entry of the earliest second is taken over
 * by a new upload, so no finished entry expires then any more. */
START_TEST(one_begin_visits_two_windows_at_most_after_the_earliest_is_taken_over)
{
    table = new_big_table();
    fill_finished(table, big, one_earliest_then_later);
    ck_assert_int_eq(begin(table, 0, 1, 0, 0), PROGRESS_BEGIN_OK);
    const uint32_t visits = visits_of_one_new_begin(table, big, PROGRESS_BEGIN_OK);
    printf("stale next_expiry: %u slots visited\n", visits);
    ck_assert_uint_le(visits, 2 * EVICT_WINDOW);
    ck_assert_uint_eq(progress_table_count(table), big);
}
END_TEST

/* One entry per expiry second: the earliest is one of a million. */
START_TEST(one_begin_visits_two_windows_at_most_with_one_entry_per_second)
{
    table = new_big_table();
    fill_finished(table, big, one_per_second);
    for (uint32_t k = 0; k < 3; ++k) {
        const uint32_t visits = visits_of_one_new_begin(table, big + k, PROGRESS_BEGIN_OK);
        printf("one entry per second: %u slots visited\n", visits);
        ck_assert_uint_le(visits, 2 * EVICT_WINDOW);
    }
}
END_TEST

/* Every entry in flight but one: no begin walks the table to find it, and
 * the begins that follow do find it, a stretch further each. */
START_TEST(one_begin_visits_two_windows_at_most_when_all_but_one_are_in_flight)
{
    table = new_big_table();
    fill_finished(table, big, all_in_flight_but_one);
    uint32_t visits, tries = 0, most = 0;
    while (begin(table, big, 1, big, 0) != PROGRESS_BEGIN_OK) {
        visits = progress_table_begin_visits(table);
        most = visits > most ? visits : most;
        ck_assert_uint_le(++tries, progress_table_slots(table) / EVICT_WINDOW + 1);
    }
    visits = progress_table_begin_visits(table);
    most = visits > most ? visits : most;
    printf("all in flight but one: found after %u begins, at most %u slots visited\n",
           tries, most);
    ck_assert_uint_le(most, 2 * EVICT_WINDOW);
    ck_assert_int_eq(get(table, big / 2, 0).state, PROGRESS_STARTING);   /* evicted */
    ck_assert_int_eq(begin(table, big + 1, 1, big + 1, 0), PROGRESS_BEGIN_FULL);
    ck_assert_uint_le(progress_table_begin_visits(table), 2 * EVICT_WINDOW);
}
END_TEST

/* --- one table in shared memory, several processes ------------------- */

static progress_table *new_shared_table(uint32_t max_entries, size_t *bytes)
{
    *bytes = progress_table_bytes(max_entries);
    void *mem = mmap(NULL, *bytes, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(mem, MAP_FAILED);
    progress_table *t = progress_table_init(mem, max_entries, KEY);
    ck_assert_ptr_nonnull(t);
    return t;
}

static void wait_all_ok(int n)
{
    for (int i = 0; i < n; ++i) {
        int status;
        ck_assert_int_gt(wait(&status), 0);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
    }
}

enum { WORKERS = 4, PER_WORKER = 3000 };

/* Each worker runs its own uploads through the table, and reads what the
 * others publish; every answer it sees must be one a writer could give. */
static int hammer(progress_table *t, int w)
{
    const int32_t pid = (int32_t)getpid();
    for (uint32_t k = 0; k < PER_WORKER; ++k) {
        const progress_id id = make_id((uint32_t)w * PER_WORKER + k);
        if (progress_table_begin(t, &id, 1000, pid, k, 0) != PROGRESS_BEGIN_OK) return 1;
        for (int64_t r = 250; r <= 1000; r += 250)
            progress_table_update(t, &id, pid, k, r, 1000, r - 250, r / 250);
        const progress_snapshot fin = { .state = PROGRESS_DONE, .status = 200,
                                        .size = 1000, .received = 1000 };
        if (!progress_table_finish(t, &id, pid, k, &fin, 100)) return 2;
        const progress_id other = make_id((uint32_t)((w + 1) % WORKERS) * PER_WORKER + k);
        progress_snapshot s;
        if (progress_table_lookup(t, &other, 0, &s)
            && (s.received % 250 != 0 || s.received > 1000 || s.size != 1000))
            return 3;
    }
    return 0;
}

START_TEST(several_processes_share_one_table)
{
    size_t bytes;
    progress_table *t = new_shared_table(WORKERS * PER_WORKER, &bytes);
    for (int w = 0; w < WORKERS; ++w) {
        const pid_t child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) _exit(hammer(t, w));
    }
    wait_all_ok(WORKERS);
    ck_assert_uint_eq(progress_table_count(t), WORKERS * PER_WORKER);
    for (uint32_t n = 0; n < WORKERS * PER_WORKER; ++n) {
        const progress_snapshot s = get(t, n, 0);
        ck_assert_int_eq(s.state, PROGRESS_DONE);
        ck_assert_int_eq(s.received, 1000);
    }
    ck_assert_uint_eq(progress_table_sweep(t, 101, UINT32_MAX), WORKERS * PER_WORKER);
    progress_table_destroy(t);
    munmap(t, bytes);
}
END_TEST

START_TEST(one_id_is_in_flight_in_one_process_at_a_time)
{
    size_t bytes;
    progress_table *t = new_shared_table(64, &bytes);
    for (int w = 0; w < WORKERS; ++w) {
        const pid_t child = fork();
        ck_assert_int_ge(child, 0);
        if (child != 0) continue;
        const int32_t pid = (int32_t)getpid();
        int failures = 0;
        for (uint32_t k = 0; k < 20000; ++k) {
            const progress_id id = make_id(k % 8);
            if (progress_table_begin(t, &id, 10, pid, k, 0) != PROGRESS_BEGIN_OK) continue;
            /* while it is ours, nobody else may change it */
            progress_table_update(t, &id, pid, k, 5, 10, 0, 0);
            progress_snapshot s;
            progress_table_lookup(t, &id, 0, &s);
            failures += s.owner_pid != pid || s.owner_ref != k || s.received != 5;
            const progress_snapshot fin = { .state = PROGRESS_DONE, .status = 200,
                                            .size = 10, .received = 10 };
            failures += !progress_table_finish(t, &id, pid, k, &fin, 100);
        }
        _exit(failures != 0);
    }
    wait_all_ok(WORKERS);
    ck_assert_uint_le(progress_table_count(t), 8);
    progress_table_destroy(t);
    munmap(t, bytes);
}
END_TEST

/* A worker killed at any moment, even holding the lock, must not block the
 * others; its uploads in flight are then ended by fail_owner. */
START_TEST(a_process_killed_at_any_moment_blocks_nobody)
{
    size_t bytes;
    progress_table *t = new_shared_table(256, &bytes);
    srand(777);
    for (int round = 0; round < 40; ++round) {
        const pid_t child = fork();
        if (child == 0) {
            const int32_t pid = (int32_t)getpid();
            for (uint32_t k = 0;; ++k) {
                const progress_id id = make_id(k % 300);
                if (progress_table_begin(t, &id, 10, pid, k, 0) != PROGRESS_BEGIN_OK) continue;
                const progress_snapshot fin = { .state = PROGRESS_DONE, .status = 200,
                                                .size = 10, .received = 10 };
                if (k % 3) progress_table_finish(t, &id, pid, k, &fin, k % 5);
                progress_table_sweep(t, k % 7, 16);
            }
        }
        ck_assert_int_gt(child, 0);
        const struct timespec pause = { 0, (rand() % 2000) * 1000L };
        nanosleep(&pause, NULL);
        kill(child, SIGKILL);
        ck_assert_int_eq(waitpid(child, NULL, 0), child);
        /* the table still answers (the test's timeout catches a hang),
         * and its count is the slots in use */
        get(t, (uint32_t)round, 0);
        const char * const problem = progress_table_check(t);
        if (problem) ck_abort_msg("round %d: %s", round, problem);
        progress_table_fail_owner(t, (int32_t)child, 500, 0);
        progress_table_sweep(t, 10, UINT32_MAX);
    }
    /* nothing of the dead is left in flight */
    for (uint32_t n = 0; n < 300; ++n)
        ck_assert_int_ne(get(t, n, 0).state, PROGRESS_UPLOADING);
    progress_table_destroy(t);
    munmap(t, bytes);
}
END_TEST

/* Pages of the mapping at t that are resident. */
static size_t resident_pages(const void *t, size_t bytes)
{
    const long page = sysconf(_SC_PAGESIZE);
    const size_t pages = (bytes + (size_t)page - 1) / (size_t)page;
    unsigned char *resident = malloc(pages);
    ck_assert_ptr_nonnull(resident);
    ck_assert_int_eq(mincore((void *)t, bytes, resident), 0);
    size_t n = 0;
    for (size_t k = 0; k < pages; ++k) n += resident[k] & 1;
    free(resident);
    return n;
}

/* In a shared mapping a read of an untouched page allocates it: sweeping
 * a large, nearly empty table must not make the whole table resident. */
START_TEST(a_sweep_reads_no_group_of_slots_without_entries)
{
    size_t bytes;
    progress_table *t = new_shared_table(1u << 20, &bytes);   /* 80 MiB */
    ck_assert_int_eq(begin(t, 1, 1, 1, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(finish(t, 1, 1, PROGRESS_DONE, 200, 5), 1);
    ck_assert_uint_eq(progress_table_sweep(t, 6, UINT32_MAX), 1);
    /* the header, the entry's page, the per-group counts (20 KiB) */
    ck_assert_uint_lt(resident_pages(t, bytes), 16);
    progress_table_destroy(t);
    munmap(t, bytes);
}
END_TEST

/* A worker's death must not make a huge, nearly empty table resident:
 * fail_owner passes over groups without entries as the sweep does. */
START_TEST(fail_owner_reads_no_group_of_slots_without_entries)
{
    size_t bytes;
    progress_table *t = new_shared_table(1u << 20, &bytes);   /* 80 MiB */
    ck_assert_int_eq(begin(t, 1, 1, 1, 0), PROGRESS_BEGIN_OK);
    ck_assert_uint_eq(progress_table_fail_owner(t, OWNER, 500, 5), 1);
    ck_assert_uint_lt(resident_pages(t, bytes), 16);
    progress_table_destroy(t);
    munmap(t, bytes);
}
END_TEST

/* A poll or an event stream of an id nobody uses reads no slot: its home
 * group has no entries (in a large table, nearly always).  Lookups of
 * random ids in a huge table with a few entries make no page resident
 * beyond the group counts. */
START_TEST(lookups_of_unknown_ids_read_no_page_of_slots_without_entries)
{
    size_t bytes;
    progress_table *t = new_shared_table(1u << 20, &bytes);   /* 80 MiB */
    for (uint32_t n = 0; n < 100; ++n) {
        ck_assert_int_eq(begin(t, n, 1, n, 0), PROGRESS_BEGIN_OK);
        if (n % 2) ck_assert_int_eq(finish(t, n, n, PROGRESS_DONE, 200, 50), 1);
    }
    const size_t before = resident_pages(t, bytes);
    srand(99);
    progress_snapshot s;
    uint32_t found = 0;
    const uint32_t lookups = under_valgrind() ? 30000 : 300000;
    for (uint32_t k = 0; k < lookups; ++k) {
        progress_id id;
        for (size_t b = 0; b < sizeof id.bytes; ++b) id.bytes[b] = (uint8_t)rand();
        found += (uint32_t)progress_table_lookup(t, &id, 0, &s);
    }
    ck_assert_uint_eq(found, 0);
    for (uint32_t n = 0; n < 100; ++n)
        ck_assert_int_eq(get(t, n, 0).state, n % 2 ? PROGRESS_DONE : PROGRESS_UPLOADING);
    const size_t after = resident_pages(t, bytes);
    /* the group counts: a byte for each page of 42 slots, 31 KiB */
    const size_t counts = (progress_table_slots(t) / 42 + 4095) / 4096 + 1;
    printf("%u lookups of unknown ids: %zu resident pages -> %zu\n", lookups, before, after);
    ck_assert_uint_le(after, before + counts);
    progress_table_destroy(t);
    munmap(t, bytes);
}
END_TEST

static time_t monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* Deaths inside a repair, counted by the children that die there. */
static volatile uint32_t *repair_deaths;
static uint32_t writes, die_at_write;
static int repairing;

/* A child's hook: at its chosen write to a slot, tears it (a random prefix
 * of random bytes, as a death in the middle of the copy would) and dies. */
static void tear_and_die(void *dst, size_t len)
{
    if (writes++ != die_at_write) return;
    unsigned char * const bytes = dst;
    const size_t torn = (size_t)rand() % (len + 1);
    for (size_t k = 0; k < torn; ++k) bytes[k] = (unsigned char)rand();
    if (repairing) ++*repair_deaths;
    raise(SIGKILL);
}

/* A child that takes the lock first thing: if the last holder died inside
 * it, the child repairs, and dies at a random write of its repair or, if
 * the repair has fewer, checks the invariants.  Returns whether it died
 * (then a death inside a repair); fails the test if the check did. */
static int repair_and_maybe_die(progress_table *t, int round)
{
    const unsigned seed = (unsigned)rand();
    const pid_t child = fork();
    if (child == 0) {
        srand(seed);
        die_at_write = (uint32_t)rand() % 8;
        repairing = 1;
        progress_table_write_hook = tear_and_die;
        _exit(progress_table_check(t) == NULL ? 0 : 1);
    }
    ck_assert_int_gt(child, 0);
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return 1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        ck_abort_msg("round %d: the invariants fail after a repair", round);
    return 0;
}

/* Kills child after up to a millisecond. */
static void kill_at_random(pid_t child)
{
    ck_assert_int_gt(child, 0);
    const struct timespec pause = { 0, (rand() % 1000) * 1000L };
    nanosleep(&pause, NULL);
    kill(child, SIGKILL);
    ck_assert_int_eq(waitpid(child, NULL, 0), child);
}

/* Kills child after up to a millisecond; the table's invariants must hold
 * for the next holder of its lock. */
static void kill_at_random_and_check(progress_table *t, pid_t child, int round)
{
    kill_at_random(child);
    const char * const problem = progress_table_check(t);
    if (problem) ck_abort_msg("round %d: %s", round, problem);
}

/* Children churn a full table and are killed at random moments, mostly
 * inside the lock, or die at a random write (torn): each new upload
 * evicts a finished entry, and the eviction shifts the rest of its probe
 * run (long at the table's load), so many deaths cut a shift short.  The next holder is a child that
 * repairs and may itself die at any write of the repair (the write torn),
 * up to four times in a row, each repair taking over a repair cut short.
 * After each death the next holder of the lock finds the invariants
 * hold; at the end a sweep frees every entry.  1,000 deaths, 100 of them
 * inside a repair at least (about 2 s; under valgrind, what 20 s allow). */
START_TEST(a_death_inside_the_lock_leaves_a_consistent_table)
{
    enum { MAX = 1024, DEATHS = 1000, REPAIR_DEATHS = 100, CHAIN = 4 };
    size_t bytes;
    progress_table *t = new_shared_table(MAX, &bytes);
    repair_deaths = mmap(NULL, sizeof *repair_deaths, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne((void *)repair_deaths, MAP_FAILED);
    for (uint32_t n = 0; n < MAX; ++n) {
        ck_assert_int_eq(begin(t, n, 10, n, 0), PROGRESS_BEGIN_OK);
        ck_assert_int_eq(finish(t, n, n, PROGRESS_DONE, 200, 100), 1);
    }
    srand(4242);
    uint32_t deaths = 0, in_repair = 0;
    /* (under valgrind, where forks are slow, as many as 20 seconds allow) */
    const int valgrind = under_valgrind();
    const time_t stop = monotonic_seconds() + 20;
    int round = 0;
    for (; (deaths < DEATHS || in_repair < REPAIR_DEATHS)
           && !(valgrind && monotonic_seconds() >= stop); ++round) {
        const unsigned seed = (unsigned)rand();
        /* (no ck_assert in the child: a kill inside one would tear Check's log) */
        const pid_t child = fork();
        if (child == 0) {
            srand(seed);
            /* killed by the test at a random moment, or dying at a random
             * write (in a shift, most of them) if that comes first */
            die_at_write = (uint32_t)rand() % 4000;
            progress_table_write_hook = tear_and_die;
            const int32_t pid = (int32_t)getpid();
            const progress_snapshot fin = { .state = PROGRESS_DONE, .status = 200,
                                            .size = 10, .received = 10 };
            for (uint32_t k = 0;; ++k) {
                const progress_id id = make_id(MAX + (uint32_t)rand());
                progress_table_begin(t, &id, 10, pid, k, 0);
                progress_table_finish(t, &id, pid, k, &fin, 100);
            }
        }
        kill_at_random(child);
        ++deaths;
        for (int k = 0; k < CHAIN && repair_and_maybe_die(t, round); ++k) {
            ++deaths;
            ++in_repair;
        }
        const char * const problem = progress_table_check(t);
        if (problem) ck_abort_msg("round %d: %s", round, problem);
        progress_table_fail_owner(t, (int32_t)child, 500, 100);
    }
    printf("%d rounds: %u deaths, %u of them inside a repair\n", round, deaths, in_repair);
    ck_assert_uint_eq(*repair_deaths, in_repair);
    if (!valgrind) {
        ck_assert_uint_ge(deaths, DEATHS);
        ck_assert_uint_ge(in_repair, REPAIR_DEATHS);
    }
    /* (a death may lose the dead's own new upload, nothing else) */
    ck_assert_uint_le(progress_table_count(t), MAX);
    progress_table_sweep(t, 101, UINT32_MAX);
    ck_assert_uint_eq(progress_table_count(t), 0);
    progress_table_destroy(t);
    munmap(t, bytes);
    munmap((void *)repair_deaths, sizeof *repair_deaths);
}
END_TEST

/* --- the work after the last byte (doc/processing.md) --- */

static progress_report_result report(progress_table *t, uint32_t n, progress_phase phase,
                                     int percent, const char *text, int64_t now,
                                     int64_t expires)
{
    const progress_id id = make_id(n);
    return progress_table_report(t, &id, phase, percent, text, text ? strlen(text) : 0,
                                 now, expires);
}

static int finish_202(progress_table *t, uint32_t n, uint32_t ref, int64_t deadline,
                      int64_t expires)
{
    const progress_id id = make_id(n);
    const progress_snapshot fin = { .state = PROGRESS_DONE, .status = 202, .size = 50,
                                    .received = 50, .phase = PROGRESS_PHASE_PROCESSING,
                                    .deadline = deadline };
    return progress_table_finish(t, &id, OWNER, ref, &fin, expires);
}

START_TEST(a_report_for_an_unknown_id_creates_nothing)
{
    table = new_table(16);
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_PROCESSING, 5, "x", 0, 0),
                     PROGRESS_REPORT_UNKNOWN);
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_FINISHED, -1, NULL, 0, 0),
                     PROGRESS_REPORT_UNKNOWN);
    ck_assert_uint_eq(progress_table_count(table), 0);
    ck_assert_int_eq(get(table, 1, 0).state, PROGRESS_STARTING);
    /* an expired entry is as good as unknown */
    ck_assert_int_eq(begin(table, 2, 50, 0, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(finish(table, 2, 0, PROGRESS_DONE, 200, 3), 1);
    ck_assert_int_eq(report(table, 2, PROGRESS_PHASE_PROCESSING, 5, "x", 4, 10),
                     PROGRESS_REPORT_UNKNOWN);
}
END_TEST

START_TEST(stages_reported_in_flight_are_shown_in_order)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 50, 0, 0), PROGRESS_BEGIN_OK);
    progress_snapshot s = get(table, 1, 0);
    ck_assert_int_eq(s.phase, PROGRESS_PHASE_NONE);
    ck_assert_int_eq(s.percent, PROGRESS_PERCENT_UNKNOWN);
    ck_assert_str_eq(s.text, "");
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_PROCESSING, -1, "scanning", 1, 0),
                     PROGRESS_REPORT_OK);
    s = get(table, 1, 1);
    ck_assert_int_eq(s.state, PROGRESS_UPLOADING);
    ck_assert_int_eq(s.phase, PROGRESS_PHASE_PROCESSING);
    ck_assert_str_eq(s.text, "scanning");
    ck_assert_int_eq(s.percent, PROGRESS_PERCENT_UNKNOWN);
    /* a percent alone keeps the stage */
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_PROCESSING, 60, NULL, 1, 0),
                     PROGRESS_REPORT_OK);
    s = get(table, 1, 1);
    ck_assert_str_eq(s.text, "scanning");
    ck_assert_int_eq(s.percent, 60);
    /* a new stage, of the longest length, with no NUL in the slot */
    char longest[PROGRESS_TEXT_MAX + 1];
    memset(longest, 'r', PROGRESS_TEXT_MAX);
    longest[PROGRESS_TEXT_MAX] = '\0';
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_PROCESSING, -1, longest, 2, 0),
                     PROGRESS_REPORT_OK);
    s = get(table, 1, 2);
    ck_assert_str_eq(s.text, longest);
    ck_assert_int_eq(s.percent, PROGRESS_PERCENT_UNKNOWN);
    /* the response ends the work as it ends the upload; speed stays untouched */
    ck_assert_uint_eq(progress_table_open_work(table), 1);
    ck_assert_int_eq(finish(table, 1, 0, PROGRESS_DONE, 200, 100), 1);
    ck_assert_uint_eq(progress_table_open_work(table), 0);
    s = get(table, 1, 3);
    ck_assert_int_eq(s.state, PROGRESS_DONE);
    ck_assert_int_eq(s.phase, PROGRESS_PHASE_FINISHED);
    ck_assert_str_eq(s.text, "");
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_PROCESSING, 10, "late", 3, 0),
                     PROGRESS_REPORT_FINISHED);
    ck_assert_ptr_null(progress_table_check(table));
}
END_TEST

START_TEST(an_upload_without_reports_ends_without_a_phase)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 50, 0, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(finish(table, 1, 0, PROGRESS_DONE, 200, 100), 1);
    ck_assert_int_eq(get(table, 1, 1).phase, PROGRESS_PHASE_NONE);
    /* nor can a report open work on it afterwards */
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_PROCESSING, 1, "x", 1, 0),
                     PROGRESS_REPORT_FINISHED);
    ck_assert_int_eq(get(table, 1, 1).phase, PROGRESS_PHASE_NONE);
    /* an error after stages is a failed work */
    ck_assert_int_eq(begin(table, 2, 50, 1, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(report(table, 2, PROGRESS_PHASE_PROCESSING, 1, "x", 0, 0),
                     PROGRESS_REPORT_OK);
    ck_assert_int_eq(finish(table, 2, 1, PROGRESS_ERROR, 500, 100), 1);
    ck_assert_int_eq(get(table, 2, 1).phase, PROGRESS_PHASE_FAILED);
}
END_TEST

START_TEST(a_202_leaves_the_work_open_until_its_outcome)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 50, 0, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_PROCESSING, 10, "queued", 0, 0),
                     PROGRESS_REPORT_OK);
    ck_assert_uint_eq(progress_table_open_work(table), 1);
    ck_assert_int_eq(finish_202(table, 1, 0, 30, 90), 1);
    ck_assert_uint_eq(progress_table_open_work(table), 1);
    progress_snapshot s = get(table, 1, 5);
    ck_assert_int_eq(s.state, PROGRESS_DONE);
    ck_assert_int_eq(s.status, 202);
    ck_assert_int_eq(s.phase, PROGRESS_PHASE_PROCESSING);
    ck_assert_str_eq(s.text, "queued");
    ck_assert_int_eq(s.percent, 10);
    ck_assert_int_eq(s.speed, 0);
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_PROCESSING, 70, "thumbnails", 6, 0),
                     PROGRESS_REPORT_OK);
    s = get(table, 1, 6);
    ck_assert_str_eq(s.text, "thumbnails");
    ck_assert_int_eq(s.percent, 70);
    /* the outcome; the entry then expires after remove-timeout from now */
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_FAILED, 70, "disk full", 7, 67),
                     PROGRESS_REPORT_OK);
    s = get(table, 1, 8);
    ck_assert_int_eq(s.state, PROGRESS_DONE);
    ck_assert_int_eq(s.phase, PROGRESS_PHASE_FAILED);
    ck_assert_str_eq(s.text, "disk full");
    ck_assert_int_eq(s.percent, PROGRESS_PERCENT_UNKNOWN);
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_FINISHED, -1, NULL, 8, 68),
                     PROGRESS_REPORT_FINISHED);
    ck_assert_int_eq(get(table, 1, 67).phase, PROGRESS_PHASE_FAILED);
    ck_assert_uint_eq(progress_table_open_work(table), 0);
    ck_assert_uint_eq(progress_table_sweep(table, 68, UINT32_MAX), 1);
    ck_assert_int_eq(get(table, 1, 68).state, PROGRESS_STARTING);
}
END_TEST

START_TEST(a_202_whose_deadline_passes_reads_as_failed)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 50, 0, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(finish_202(table, 1, 0, 30, 90), 1);
    ck_assert_int_eq(get(table, 1, 30).phase, PROGRESS_PHASE_PROCESSING);
    const progress_snapshot s = get(table, 1, 31);
    ck_assert_int_eq(s.state, PROGRESS_DONE);
    ck_assert_int_eq(s.phase, PROGRESS_PHASE_FAILED);
    ck_assert_str_eq(s.text, "processing timed out");
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_FINISHED, -1, NULL, 31, 91),
                     PROGRESS_REPORT_FINISHED);
    ck_assert_uint_eq(progress_table_open_work(table), 1);   /* until it goes */
    ck_assert_uint_eq(progress_table_sweep(table, 90, UINT32_MAX), 0);
    ck_assert_uint_eq(progress_table_sweep(table, 91, UINT32_MAX), 1);
    ck_assert_uint_eq(progress_table_open_work(table), 0);
    /* taken over by a new upload of the same id */
    ck_assert_int_eq(begin(table, 2, 50, 1, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(finish_202(table, 2, 1, 30, 90), 1);
    ck_assert_uint_eq(progress_table_open_work(table), 1);
    ck_assert_int_eq(begin(table, 2, 50, 2, 40), PROGRESS_BEGIN_OK);
    ck_assert_uint_eq(progress_table_open_work(table), 0);
}
END_TEST

START_TEST(an_outcome_reported_in_flight_stays_through_the_response)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 50, 0, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_FINISHED, -1, "3 files", 0, 0),
                     PROGRESS_REPORT_OK);
    ck_assert_int_eq(get(table, 1, 0).state, PROGRESS_UPLOADING);
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_PROCESSING, 5, "x", 0, 0),
                     PROGRESS_REPORT_FINISHED);
    ck_assert_int_eq(finish_202(table, 1, 0, 30, 90), 1);
    const progress_snapshot s = get(table, 1, 40);
    ck_assert_int_eq(s.phase, PROGRESS_PHASE_FINISHED);
    ck_assert_str_eq(s.text, "3 files");
}
END_TEST

START_TEST(a_dead_owners_work_fails_with_its_upload)
{
    table = new_table(16);
    ck_assert_int_eq(begin(table, 1, 50, 0, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(report(table, 1, PROGRESS_PHASE_PROCESSING, 5, "x", 0, 0),
                     PROGRESS_REPORT_OK);
    ck_assert_uint_eq(progress_table_fail_owner(table, OWNER, 500, 10), 1);
    ck_assert_uint_eq(progress_table_open_work(table), 0);
    const progress_snapshot s = get(table, 1, 1);
    ck_assert_int_eq(s.state, PROGRESS_ERROR);
    ck_assert_int_eq(s.phase, PROGRESS_PHASE_FAILED);
}
END_TEST

/* Children report stages on entries in flight and are killed at random
 * moments, mostly inside the lock, as a write of the text may be cut
 * short.  The table stays consistent, and every answer is still valid:
 * a torn text is printable or not shown (progress_render checks it). */
START_TEST(a_death_inside_a_report_leaves_answers_valid)
{
    enum { N = 64, ROUNDS = 300, MOST_SECONDS = 6 };
    size_t bytes;
    progress_table *t = new_shared_table(N, &bytes);
    for (uint32_t n = 0; n < N; ++n)
        ck_assert_int_eq(begin(t, n, 10, n, 0), PROGRESS_BEGIN_OK);
    static const char *const stages[] = { "a", "resizing the images 1234567890ab", "scan" };
    srand(2222);
    const time_t stop = monotonic_seconds() + MOST_SECONDS;
    for (int round = 0; round < ROUNDS && monotonic_seconds() < stop; ++round) {
        const unsigned seed = (unsigned)rand();
        const pid_t child = fork();
        if (child == 0) {
            srand(seed);
            for (;;) {
                const char *stage = stages[rand() % 3];
                report(t, (uint32_t)rand() % N, PROGRESS_PHASE_PROCESSING, rand() % 101,
                       stage, 0, 0);
            }
        }
        kill_at_random_and_check(t, child, round);
        for (uint32_t n = 0; n < N; ++n) {
            const progress_snapshot s = get(t, n, 0);
            ck_assert_int_eq(s.state, PROGRESS_UPLOADING);
            char out[PROGRESS_RENDER_MAX];
            const char *type;
            const size_t len = progress_render(&s, PROGRESS_FORMAT_JSON, NULL, 0, out,
                                               sizeof out, &type);
            for (size_t i = 0; i < len; ++i)
                ck_assert(out[i] >= 0x20 && out[i] < 0x7f && out[i] != '\\');
        }
    }
    ck_assert_uint_eq(progress_table_count(t), N);
    progress_table_destroy(t);
    munmap(t, bytes);
}
END_TEST

/* --- reads without the lock --- */

/* Lookups take no lock: polls do not queue behind writers. */
START_TEST(lookups_take_no_lock)
{
    table = new_table(64);
    ck_assert_int_eq(begin(table, 1, 100, 1, 0), PROGRESS_BEGIN_OK);
    ck_assert_int_eq(finish(table, 1, 1, PROGRESS_DONE, 200, 10), 1);
    ck_assert_int_eq(begin(table, 2, 100, 2, 0), PROGRESS_BEGIN_OK);
    const unsigned long locks = progress_table_locks(table);
    for (uint32_t n = 0; n < 1000; ++n)
        get(table, n % 3 + 1, 0);
    ck_assert_uint_eq(progress_table_locks(table), locks);
    /* each write takes it once */
    const progress_id id = make_id(2);
    progress_table_update(table, &id, OWNER, 2, 50, 100, 0, 1);
    ck_assert_uint_eq(progress_table_locks(table), locks + 1);
}
END_TEST

/* The writers of the next test keep these invariants in each entry
 * between any two of their writes: id n's size is 3 * received + n; in
 * flight, received is 0, 10, 20 or 30 (its percent's tens, when a stage
 * is reported); finished, 50 and DONE, or ERROR with the counts as they
 * were (a dead writer's); a stage's text is its percent's tens digit,
 * 32 times; without a stage there is no text. */
enum { LF_MAX = 64, LF_IDS = 96, LF_WRITERS = 2, LF_READERS = 2, LF_KILLS = 300,
       LF_SECONDS = 4 };

static int64_t lf_size(uint32_t n, int64_t received)
{
    return 3 * received + n;
}

static void lf_text(char text[PROGRESS_TEXT_MAX + 1], int percent)
{
    memset(text, '0' + percent / 10, PROGRESS_TEXT_MAX);
    text[PROGRESS_TEXT_MAX] = '\0';
}

/* A writer: uploads through the table until killed, or until it dies at
 * its chosen write (the slot torn) when it has one. */
static void lf_write(progress_table *t)
{
    const int32_t pid = (int32_t)getpid();
    char text[PROGRESS_TEXT_MAX + 1];
    for (uint32_t k = 0;; ++k) {
        const uint32_t n = (uint32_t)rand() % LF_IDS;
        const progress_id id = make_id(n);
        if (progress_table_begin(t, &id, lf_size(n, 0), pid, k, 0) != PROGRESS_BEGIN_OK) {
            progress_table_sweep(t, 1, 64);
            continue;
        }
        for (int64_t r = 10; r <= 30; r += 10) {
            progress_table_update(t, &id, pid, k, r, lf_size(n, r), r - 10, r / 10);
            lf_text(text, (int)r);
            progress_table_report(t, &id, PROGRESS_PHASE_PROCESSING, (int)r, text,
                                  PROGRESS_TEXT_MAX, 0, 0);
        }
        const progress_snapshot fin = { .state = PROGRESS_DONE, .status = 200,
                                        .size = lf_size(n, 50), .received = 50 };
        progress_table_finish(t, &id, pid, k, &fin, 0);
        if (k % 4 == 0) progress_table_sweep(t, 1, 16);
    }
}

/* Whether an answer for id n is one the writers' invariants allow. */
static int lf_consistent(uint32_t n, const progress_snapshot *s)
{
    char text[PROGRESS_TEXT_MAX + 1] = "";
    if (s->size != lf_size(n, s->received)) return 0;
    switch (s->state) {
    case PROGRESS_UPLOADING:
        if (s->status != 0 || s->received % 10 || s->received < 0 || s->received > 30)
            return 0;
        if (PROGRESS_PHASE_PROCESSING == s->phase) {
            if (s->percent % 10 || s->percent < 10 || s->percent > s->received) return 0;
            lf_text(text, s->percent);
        } else if (PROGRESS_PHASE_NONE != s->phase) {
            return 0;
        }
        break;
    case PROGRESS_DONE:   /* its stages end with it */
        if (s->status != 200 || s->received != 50 || PROGRESS_PHASE_FINISHED != s->phase)
            return 0;
        break;
    case PROGRESS_ERROR:  /* a dead writer's, failed */
        if (s->status != 500 || s->received % 10 || s->received < 0 || s->received > 30
            || (PROGRESS_PHASE_FAILED != s->phase && PROGRESS_PHASE_NONE != s->phase))
            return 0;
        break;
    default:
        return 0;
    }
    if (PROGRESS_PHASE_PROCESSING != s->phase && s->percent != PROGRESS_PERCENT_UNKNOWN)
        return 0;
    return strcmp(s->text, text) == 0;
}

/* What the readers tell the test, in memory shared with them. */
struct lf_shared {
    volatile int stop;
    volatile uint64_t answers[LF_READERS], found[LF_READERS], torn[LF_READERS];
};

/* A reader: looks random ids up until told to stop, checking each answer. */
static void lf_read(progress_table *t, struct lf_shared *sh, int r)
{
    uint64_t answers = 0, found = 0, torn = 0;
    while (!sh->stop) {
        const uint32_t n = (uint32_t)rand() % LF_IDS;
        const progress_id id = make_id(n);
        progress_snapshot s;
        const int f = progress_table_lookup(t, &id, 0, &s);
        torn += f < 0 || (f > 0 && !lf_consistent(n, &s))
                || (f == 0 && s.state != PROGRESS_STARTING);
        found += f > 0;
        ++answers;
    }
    sh->answers[r] = answers;
    sh->found[r] = found;
    sh->torn[r] = torn;
    _exit(0);
}

/* Readers and writers leave the CPU to the test first, so that it kills
 * writers at the moments it picks even on a busy machine. */
static void lf_nice(void)
{
    if (nice(10) == -1) _exit(3);
}

static pid_t lf_start_writer(progress_table *t)
{
    const unsigned seed = (unsigned)rand();
    const pid_t child = fork();
    if (child == 0) {
        srand(seed);
        lf_nice();
        if (rand() % 2) {   /* half of them die at a write, tearing it */
            die_at_write = (uint32_t)rand() % 2000;
            progress_table_write_hook = tear_and_die;
        }
        lf_write(t);
    }
    ck_assert_int_gt(child, 0);
    return child;
}

/* Waits for child to exit (it was told to stop): fails the test if it
 * has not within a minute (a reader stuck on a dead writer's entry). */
static void lf_wait_reader(pid_t child)
{
    int status;
    for (int k = 0; k < 60000 && waitpid(child, &status, WNOHANG) == 0; ++k) {
        const struct timespec ms = { 0, 1000000L };
        nanosleep(&ms, NULL);
    }
    if (waitpid(child, &status, WNOHANG) == 0) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        ck_abort_msg("a reader never finished its lookup");
    }
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Writers in two processes churn a small table (inserts, shifts of the
 * removals, changes in place, evictions) while two reader processes look
 * ids up without the lock and check each answer against the writers'
 * invariants.  Writers are killed at random moments, mostly inside the
 * lock, half of them tearing the slot they write as they die; their
 * leftovers are sometimes left for the readers to meet first.  No reader
 * ever sees a torn or impossible answer, nor a failure, and every reader
 * finishes: a dead writer's half-written entry never holds one up. */
START_TEST(reads_without_the_lock_are_whole_despite_writers_dying_mid_write)
{
    size_t bytes;
    progress_table *t = new_shared_table(LF_MAX, &bytes);
    struct lf_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne((void *)sh, MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    srand(2020);
    pid_t readers[LF_READERS], writers[LF_WRITERS];
    for (int r = 0; r < LF_READERS; ++r) {
        const unsigned seed = (unsigned)rand();
        readers[r] = fork();
        if (readers[r] == 0) {
            srand(seed);
            lf_nice();
            lf_read(t, sh, r);
        }
        ck_assert_int_gt(readers[r], 0);
    }
    for (int w = 0; w < LF_WRITERS; ++w) writers[w] = lf_start_writer(t);
    const unsigned long locks = progress_table_locks(t);
    uint32_t kills = 0;
    /* (on a loaded machine, or under ASan, fewer kills in the time) */
    for (const time_t stop = monotonic_seconds() + LF_SECONDS;
         kills < LF_KILLS && monotonic_seconds() < stop;) {
        const int w = (int)(kills % LF_WRITERS);
        kill_at_random(writers[w]);
        ++kills;
        if (kills % 4 == 0) {   /* the readers meet its leftovers first */
            const struct timespec pause = { 0, 2000000L };
            nanosleep(&pause, NULL);
        }
        progress_table_fail_owner(t, (int32_t)writers[w], 500, 0);
        writers[w] = lf_start_writer(t);
    }
    for (int w = 0; w < LF_WRITERS; ++w) kill_at_random(writers[w]);
    sh->stop = 1;
    for (int r = 0; r < LF_READERS; ++r) lf_wait_reader(readers[r]);
    uint64_t answers = 0, found = 0, torn = 0;
    for (int r = 0; r < LF_READERS; ++r) {
        ck_assert_uint_gt(sh->answers[r], 0);
        answers += sh->answers[r];
        found += sh->found[r];
        torn += sh->torn[r];
    }
    printf("%d readers, %d writers, %u writers killed: %llu answers checked "
           "(%llu found), %llu torn; %lu lock calls\n", LF_READERS, LF_WRITERS, kills,
           (unsigned long long)answers, (unsigned long long)found,
           (unsigned long long)torn, progress_table_locks(t) - locks);
    ck_assert_uint_eq(torn, 0);
    ck_assert_uint_gt(found, 0);
    ck_assert_uint_gt(kills, 0);
    const char * const problem = progress_table_check(t);
    if (problem) ck_abort_msg("%s", problem);
    progress_table_destroy(t);
    munmap(t, bytes);
    munmap((void *)sh, sizeof *sh);
}
END_TEST

static Suite *table_suite(void)
{
    Suite *s = suite_create("progress_table");
    TCase *tc = tcase_create("entries");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, unknown_id_is_starting);
    tcase_add_test(tc, begin_update_finish);
    tcase_add_test(tc, speed_is_unknown_until_a_whole_second_is_measured);
    tcase_add_test(tc, speed_is_the_same_when_published_several_times_a_second);
    tcase_add_test(tc, speed_follows_the_last_few_seconds);
    tcase_add_test(tc, speed_survives_a_wrapping_32_bit_second);
    tcase_add_test(tc, speed_ignores_counts_that_go_back_and_saturates);
    tcase_add_test(tc, only_the_owner_updates_and_finishes);
    tcase_add_test(tc, an_id_in_flight_is_not_taken_over);
    tcase_add_test(tc, a_finished_id_is_taken_over_by_a_new_upload);
    tcase_add_test(tc, expires_after_its_second_and_sweeps_then);
    tcase_add_test(tc, uploads_in_flight_never_expire);
    tcase_add_test(tc, sweep_looks_at_no_more_than_its_budget);
    tcase_add_test(tc, full_table_evicts_the_finished_entries_that_expire_first);
    tcase_add_test(tc, a_dead_owners_uploads_become_errors);
    tcase_add_test(tc, many_entries_all_found_after_partial_sweeps);
    tcase_add_test(tc, matches_a_simple_model_under_random_operations);
    tcase_add_test(tc, sweep_waits_for_the_soonest_expiry_even_a_new_one);
    tcase_add_test(tc, a_sweep_call_frees_at_most_half_its_budget);
    tcase_add_test(tc, eviction_in_a_large_full_table_frees_a_slice_of_the_oldest);
    tcase_add_test(tc, eviction_frees_one_finished_entry_per_new_upload);
    tcase_add_test(tc, a_finished_entry_with_expiry_zero_expires_after_second_zero);
    tcase_add_test(tc, table_bytes_never_wrap);
    tcase_add_test(tc, one_begin_visits_two_windows_at_most_after_the_earliest_is_taken_over);
    tcase_add_test(tc, one_begin_visits_two_windows_at_most_with_one_entry_per_second);
    tcase_add_test(tc, one_begin_visits_two_windows_at_most_when_all_but_one_are_in_flight);
    tcase_add_test(tc, a_report_for_an_unknown_id_creates_nothing);
    tcase_add_test(tc, stages_reported_in_flight_are_shown_in_order);
    tcase_add_test(tc, an_upload_without_reports_ends_without_a_phase);
    tcase_add_test(tc, a_202_leaves_the_work_open_until_its_outcome);
    tcase_add_test(tc, a_202_whose_deadline_passes_reads_as_failed);
    tcase_add_test(tc, an_outcome_reported_in_flight_stays_through_the_response);
    tcase_add_test(tc, a_dead_owners_work_fails_with_its_upload);
    tcase_add_test(tc, lookups_take_no_lock);
    suite_add_tcase(s, tc);
    tc = tcase_create("shared");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, several_processes_share_one_table);
    tcase_add_test(tc, one_id_is_in_flight_in_one_process_at_a_time);
    tcase_add_test(tc, a_process_killed_at_any_moment_blocks_nobody);
    tcase_add_test(tc, a_sweep_reads_no_group_of_slots_without_entries);
    tcase_add_test(tc, fail_owner_reads_no_group_of_slots_without_entries);
    tcase_add_test(tc, lookups_of_unknown_ids_read_no_page_of_slots_without_entries);
    tcase_add_test(tc, a_death_inside_the_lock_leaves_a_consistent_table);
    tcase_add_test(tc, a_death_inside_a_report_leaves_answers_valid);
    tcase_add_test(tc, reads_without_the_lock_are_whole_despite_writers_dying_mid_write);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return run_suite(table_suite());
}
