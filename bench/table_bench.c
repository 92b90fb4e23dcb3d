/* table_bench: times the table's own operations at a given size, without a
 * server: lookups, the once-a-second sweep when nothing and when every
 * entry expires in the same second, and a begin that must evict in a full
 * table.  Prints "name value unit" lines for bench/run.
 *
 *   table_bench [ENTRIES [SWEEP_BUDGET [PARTS]]]
 *
 * PARTS picks what runs: l(ookups) s(weep) e(viction) w(riters: lookups
 * while another process publishes counts), default "lsew".
 * For repeatable instruction counts run it under
 * valgrind --tool=callgrind --toggle-collect=progress_table_sweep. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progress_table.h"

static const uint8_t KEY[16] = { 7, 1, 7, 1, 7, 1, 7, 1, 7, 1, 7, 1, 7, 1, 7, 1 };

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static progress_id make_id(uint32_t n)
{
    progress_id id;
    memset(&id, 0, sizeof id);
    memcpy(id.bytes + 12, &n, sizeof n);
    return id;
}

static progress_table *new_table(uint32_t max_entries)
{
    void * const mem = calloc(1, progress_table_bytes(max_entries));
    if (mem == NULL) { perror("calloc"); exit(1); }
    return progress_table_init(mem, max_entries, KEY);
}

static void free_table(progress_table *t)
{
    progress_table_destroy(t);
    free(t);
}

/* n finished entries; entry i expires at second expires(i). */
static void fill(progress_table *t, uint32_t n, int64_t (*expires)(uint32_t))
{
    const progress_snapshot fin = { .state = PROGRESS_DONE, .status = 200,
                                    .size = 1, .received = 1 };
    for (uint32_t i = 0; i < n; ++i) {
        const progress_id id = make_id(i);
        progress_table_begin(t, &id, 1, 1, i, 0);
        progress_table_finish(t, &id, 1, i, &fin, expires(i));
    }
}

static int64_t expires_together(uint32_t i) { (void)i; return 100; }
static int64_t expires_over_50s(uint32_t i) { return 100 + i % 50; }

static void bench_lookup(uint32_t n)
{
    progress_table * const t = new_table(n);
    fill(t, n, expires_together);
    enum { LOOKUPS = 2000000 };
    progress_snapshot s;
    uint32_t hits = 0, x = 12345;
    const double t0 = now_ns();
    for (uint32_t k = 0; k < LOOKUPS; ++k) {
        x = x * 1103515245u + 12345u;     /* random entries: cache misses */
        const progress_id id = make_id(x % n);
        hits += (uint32_t)progress_table_lookup(t, &id, 50, &s);
    }
    const double ns = (now_ns() - t0) / LOOKUPS;
    printf("lookup_ns_%u %.1f ns (%u hits)\n", n, ns, hits);
    free_table(t);
}

/* Every entry expires in second 100; the trigger sweeps once a second. */
static void bench_sweep(uint32_t n, uint32_t budget)
{
    progress_table * const t = new_table(n);
    fill(t, n, expires_together);
    double t0 = now_ns();
    progress_table_sweep(t, 100, budget);    /* nothing has expired yet */
    printf("sweep_nothing_expired_ms %.3f ms\n", (now_ns() - t0) / 1e6);
    double worst = 0;
    uint32_t calls = 0;
    while (progress_table_count(t) > 0 && calls < 100000) {
        t0 = now_ns();
        progress_table_sweep(t, 101, budget);
        const double ms = (now_ns() - t0) / 1e6;
        if (ms > worst) worst = ms;
        ++calls;
    }
    printf("sweep_all_expired_worst_call_ms %.3f ms\n", worst);
    printf("sweep_all_expired_calls %u calls (%u left)\n", calls,
           progress_table_count(t));
    free_table(t);
}

/* A full table of finished entries over 50 seconds: one more upload. */
static void bench_evict(uint32_t n)
{
    progress_table * const t = new_table(n);
    fill(t, n, expires_over_50s);
    const progress_id id = make_id(n);
    const double t0 = now_ns();
    const progress_begin_result r = progress_table_begin(t, &id, 1, 1, n, 0);
    printf("evict_begin_ms %.3f ms (%s, %u entries left)\n", (now_ns() - t0) / 1e6,
           r == PROGRESS_BEGIN_OK ? "tracked" : "not tracked", progress_table_count(t));
    printf("evict_begin_visits %u slots (bound 8192: doc/security.md)\n",
           progress_table_begin_visits(t));
    free_table(t);
}

enum { IN_FLIGHT = 1000 };

/* Lookups a second of random uploads among IN_FLIGHT, for about half a
 * second. */
static double lookups_per_s(progress_table *t)
{
    progress_snapshot s;
    uint32_t x = 777, hits = 0;
    uint64_t lookups = 0;
    const double t0 = now_ns();
    double t1 = t0;
    while (t1 - t0 < 5e8) {
        for (int k = 0; k < 1000; ++k, ++lookups) {
            x = x * 1103515245u + 12345u;
            const progress_id id = make_id(x % IN_FLIGHT);
            hits += (uint32_t)progress_table_lookup(t, &id, 0, &s);
        }
        t1 = now_ns();
    }
    if (hits != lookups) fprintf(stderr, "table_bench: %u hits of %llu\n", hits,
                                 (unsigned long long)lookups);
    return (double)lookups * 1e9 / (t1 - t0);
}

/* Lookups (polls, event ticks) of IN_FLIGHT uploads in a shared table,
 * alone, then while another process publishes their counts without a
 * pause (the writes every worker makes, at their most): the readers take
 * no lock, so they do not queue behind the writer (on a machine with a
 * core for each).  The lock calls that lookups made are the table's lock
 * calls less the writer's. */
static void bench_lookup_with_writer(void)
{
    const size_t bytes = progress_table_bytes(2 * IN_FLIGHT);
    void * const mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) { perror("mmap"); exit(1); }
    progress_table * const t = progress_table_init(mem, 2 * IN_FLIGHT, KEY);
    for (uint32_t i = 0; i < IN_FLIGHT; ++i) {
        const progress_id id = make_id(i);
        progress_table_begin(t, &id, 1000000, 1, i, 0);
    }
    const double alone = lookups_per_s(t);
    const unsigned long locks = progress_table_locks(t);
    unsigned long * const written = mmap(NULL, sizeof *written, PROT_READ | PROT_WRITE,
                                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (written == MAP_FAILED) { perror("mmap"); exit(1); }
    const pid_t writer = fork();
    if (writer == 0) {
        for (uint32_t k = 0;; ++k) {
            const progress_id id = make_id(k % IN_FLIGHT);
            progress_table_update(t, &id, 1, k % IN_FLIGHT, k, 1000000, 0, k >> 16);
            *(volatile unsigned long *)written = k + 1;
        }
    }
    const double beside = lookups_per_s(t);
    kill(writer, SIGKILL);
    waitpid(writer, NULL, 0);
    const unsigned long lookup_locks = progress_table_locks(t) - locks - *written;
    printf("lookups_per_s_%u_in_flight %.0f lookups/s alone\n", IN_FLIGHT, alone);
    printf("lookups_per_s_beside_a_writer %.0f lookups/s (%.2fx alone; the writer: "
           "%lu updates)\n", beside, beside / alone, *written);
    printf("lookup_locks_beside_a_writer %lu locks (lookups that fell back on the lock, give or take the writer's last)\n",
           lookup_locks);
    munmap(written, sizeof *written);
    munmap(mem, bytes);
}

int main(int argc, char **argv)
{
    const uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
    const uint32_t budget = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 8192;
    const char * const parts = argc > 3 ? argv[3] : "lsew";
    if (n < 10) {
        fprintf(stderr, "usage: table_bench [ENTRIES>=10 [BUDGET [PARTS]]]\n");
        return 2;
    }
    if (strchr(parts, 'l')) {
        bench_lookup(10);
        bench_lookup(n);
    }
    if (strchr(parts, 's')) bench_sweep(n, budget);
    if (strchr(parts, 'e')) bench_evict(n);
    if (strchr(parts, 'w')) bench_lookup_with_writer();
    return 0;
}
