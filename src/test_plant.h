/* Faults planted on purpose, to show that the tests catch each kind
 * (tests/README.md, "Planted faults").  meson setup -Dtest_plant=KIND
 * compiles one in; in every other build these functions are empty. */
#ifndef TEST_PLANT_H
#define TEST_PLANT_H

#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* When a process that served requests frees the module (it exits):
 * exit_crash dies with SIGSEGV, oob writes a byte past a heap block. */
static inline void test_plant_at_exit(const int served_requests)
{
#if defined(UPLOADPROGRESS_TEST_PLANT_EXIT_CRASH)
    if (served_requests) raise(SIGSEGV);
#elif defined(UPLOADPROGRESS_TEST_PLANT_OOB)
    if (served_requests) {
        /* (through a pointer the compiler cannot see through, or it
         * drops the stores into a block that is freed at once) */
        void *(* volatile fill)(void *, int, size_t) = memset;
        char * const block = malloc(8);
        fill(block, 1, 9);
        free(block);
    }
#else
    (void)served_requests;
#endif
}

/* In the table, when an entry is begun: table_count makes the table's
 * count one more than the entries it holds, once in each process. */
static inline void test_plant_in_table(uint32_t * const count)
{
#if defined(UPLOADPROGRESS_TEST_PLANT_TABLE_COUNT)
    static int planted;
    if (!planted) {
        planted = 1;
        ++*count;
    }
#else
    (void)count;
#endif
}

/* In the core, on every id parsed: ubsan overflows a signed int. */
static inline void test_plant_in_core(void)
{
#if defined(UPLOADPROGRESS_TEST_PLANT_UBSAN)
    volatile int at_the_top = INT_MAX;
    at_the_top = at_the_top + 1;
#endif
}

#endif
