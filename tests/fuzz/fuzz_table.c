/* libFuzzer target: the table against a plain model.  Each two input
 * bytes are one operation (begin, update, finish, lookup, sweep with a
 * budget, fail_owner, the clock's next second, a begin that dies inside
 * the lock and a repair that may die too) on a small, crowded table that
 * evicts; after each, the table's invariants hold and every answer is the
 * model's. */
#include <assert.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "progress_table.h"

enum { MAX = 40, IDS = 64, OWNERS = 2 };   /* 51 slots: two pages of them */

typedef struct {
    int state;          /* 0: not held, else a progress_state */
    int64_t expires;
    int32_t owner;
    uint32_t ref;
} model_entry;

static progress_id make_id(uint32_t n)
{
    progress_id id;
    memset(&id, 0xa5, sizeof id);
    memcpy(id.bytes, &n, sizeof n);
    return id;
}

/* Whether the table holds n, expired or not. */
static int held(progress_table *t, uint32_t n)
{
    progress_snapshot s;
    const progress_id id = make_id(n);
    return progress_table_lookup(t, &id, INT64_MIN, &s) == 1;
}

static uint32_t model_count(const model_entry *m)
{
    uint32_t n = 0;
    for (int k = 0; k < IDS; ++k) n += m[k].state != 0;
    return n;
}

/* After a sweep or an eviction: entries the table no longer holds leave
 * the model; returns how many left. */
static uint32_t forget_freed(progress_table *t, model_entry *m)
{
    uint32_t gone = 0;
    for (int k = 0; k < IDS; ++k) {
        if (m[k].state > PROGRESS_UPLOADING && !held(t, (uint32_t)k)) {
            m[k].state = 0;
            ++gone;
        }
    }
    return gone;
}

static void check_begin(progress_table *t, model_entry *m, uint32_t n, int32_t owner,
                        uint32_t ref, int64_t now)
{
    const progress_id id = make_id(n);
    const int was_held = m[n].state != 0;
    int64_t earliest = INT64_MAX;
    for (int k = 0; k < IDS; ++k)
        if (m[k].state > PROGRESS_UPLOADING && m[k].expires < earliest) earliest = m[k].expires;
    const progress_begin_result r = progress_table_begin(t, &id, 100, owner, ref, now);
    if (m[n].state == PROGRESS_UPLOADING) {
        assert(r == PROGRESS_BEGIN_IN_FLIGHT);
        return;
    }
    if (!was_held && model_count(m) >= MAX && earliest == INT64_MAX) {
        assert(r == PROGRESS_BEGIN_FULL);
        return;
    }
    assert(r == PROGRESS_BEGIN_OK);
    if (!was_held && model_count(m) >= MAX) {
        /* exactly one finished entry of the earliest expiry made room */
        int evicted = 0;
        for (int k = 0; k < IDS; ++k) {
            if (m[k].state > PROGRESS_UPLOADING && !held(t, (uint32_t)k)) {
                assert(m[k].expires == earliest);
                m[k].state = 0;
                ++evicted;
            }
        }
        assert(evicted == 1);
    }
    m[n] = (model_entry){ PROGRESS_UPLOADING, 0, owner, ref };
}

/* A process that dies inside the lock is played by a thread that exits
 * holding the robust mutex: the next lock gets EOWNERDEAD and repairs.
 * The thread dies at its write number die_at to a slot, the write torn
 * (its first torn_bytes bytes scribbled), or ends its call normally if it
 * makes fewer writes. */
static _Thread_local int dying;
static uint32_t die_at, writes_seen, torn_bytes;

static void tear_and_exit(void *dst, size_t len)
{
    if (!dying || writes_seen++ != die_at) return;
    memset(dst, 0x5a, torn_bytes < len ? torn_bytes : len);
    pthread_exit(NULL);
}

typedef struct {
    progress_table *t;
    progress_id id;
    int32_t owner;
    uint32_t ref;
    int64_t now;
    int died;
} dying_call;

static void *begin_and_die(void *arg)
{
    dying_call * const c = arg;
    dying = c->died = 1;
    progress_table_begin(c->t, &c->id, 100, c->owner, c->ref, c->now);
    c->died = 0;
    return NULL;
}

static void *repair_and_die(void *arg)
{
    dying_call * const c = arg;
    dying = c->died = 1;
    progress_table_count(c->t);   /* the lock, so the repair */
    c->died = 0;
    return NULL;
}

static int run_dying(void *(*call)(void *), dying_call *c, uint32_t at, uint32_t torn)
{
    pthread_t thread;
    die_at = at;
    torn_bytes = torn;
    writes_seen = 0;
    if (pthread_create(&thread, NULL, call, c) != 0) abort();
    pthread_join(thread, NULL);
    return c->died;
}

/* A begin of n that may die at any of its writes, then a repair that may
 * die too; the next lock repairs.  Whatever the death cut short, the
 * table holds what the model held but for n (begun or not, or lost if it
 * was a finished entry being taken over) and at most one finished entry
 * of the earliest expiry (the eviction's); nothing in flight is lost. */
static void check_death_in_begin(progress_table *t, model_entry *m, uint32_t n,
                                 int32_t owner, uint32_t ref, int64_t now,
                                 uint8_t how, uint8_t when)
{
    int64_t earliest = INT64_MAX;
    for (int k = 0; k < IDS; ++k)
        if (m[k].state > PROGRESS_UPLOADING && m[k].expires < earliest) earliest = m[k].expires;
    dying_call c = { t, make_id(n), owner, ref, now, 0 };
    if (run_dying(begin_and_die, &c, when % 4, how % 65))
        run_dying(repair_and_die, &c, (when >> 2) % 4, (how >> 1) % 65);
    int lost = 0;
    for (int k = 0; k < IDS; ++k) {
        if (k == (int)n || m[k].state == 0 || held(t, (uint32_t)k)) continue;
        assert(m[k].state > PROGRESS_UPLOADING && m[k].expires == earliest);
        m[k].state = 0;
        ++lost;
    }
    assert(lost <= 1);
    progress_snapshot s;
    if (progress_table_lookup(t, &c.id, INT64_MIN, &s) != 1) {
        assert(m[n].state != PROGRESS_UPLOADING);
        m[n].state = 0;
    } else if (m[n].state != PROGRESS_UPLOADING && s.state == PROGRESS_UPLOADING) {
        assert(s.owner_pid == owner && s.owner_ref == ref);
        m[n] = (model_entry){ PROGRESS_UPLOADING, 0, owner, ref };
    } else {
        assert((int)s.state == m[n].state);
    }
}

static void check_lookup(progress_table *t, const model_entry *m, uint32_t n, int64_t now)
{
    progress_snapshot s;
    const progress_id id = make_id(n);
    const int found = progress_table_lookup(t, &id, now, &s);
    const int visible = m[n].state == PROGRESS_UPLOADING
                     || (m[n].state != 0 && now <= m[n].expires);
    assert(found == visible);
    assert((int)s.state == (visible ? m[n].state : PROGRESS_STARTING));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t key[16] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
    progress_table_write_hook = tear_and_exit;
    void * const mem = calloc(1, progress_table_bytes(MAX));
    progress_table * const t = progress_table_init(mem, MAX, key);
    assert(t != NULL);
    model_entry m[IDS];
    memset(m, 0, sizeof m);
    int64_t now = 0;
    for (size_t i = 0; i + 1 < size; i += 2) {
        const uint32_t n = data[i + 1] % IDS;
        const int32_t owner = 1 + (data[i + 1] >> 4) % OWNERS;
        const uint32_t ref = (uint32_t)i;
        const progress_id id = make_id(n);
        switch (data[i] % 9) {
        case 0: case 1:
            check_begin(t, m, n, owner, ref, now);
            break;
        case 2: {
            /* the owner's own ref most of the time, another now and then */
            const uint32_t r = data[i] & 0x80 ? ref : m[n].ref;
            const int mine = m[n].state == PROGRESS_UPLOADING && m[n].owner == owner
                          && m[n].ref == r;
            const progress_snapshot fin = { .state = PROGRESS_DONE, .status = 200,
                                            .size = 100, .received = 100 };
            const int64_t expires = now + (data[i] >> 3) % 4;
            assert(progress_table_finish(t, &id, owner, r, &fin, expires) == mine);
            if (mine) {
                m[n].state = PROGRESS_DONE;
                m[n].expires = expires;
            }
            break;
        }
        case 3:
            progress_table_update(t, &id, owner, m[n].ref, 50, 100, 0, now);
            break;
        case 4:
            check_lookup(t, m, n, now);
            break;
        case 5: {
            const uint32_t freed = progress_table_sweep(t, now, (data[i + 1] * 4u) % 64);
            assert(forget_freed(t, m) == freed);
            break;
        }
        case 6: {
            uint32_t failed = 0;
            for (int k = 0; k < IDS; ++k) {
                if (m[k].state == PROGRESS_UPLOADING && m[k].owner == owner) {
                    m[k].state = PROGRESS_ERROR;
                    m[k].expires = now + 1;
                    ++failed;
                }
            }
            assert(progress_table_fail_owner(t, owner, 500, now + 1) == failed);
            break;
        }
        case 7:
            check_death_in_begin(t, m, n, owner, ref, now, data[i + 1], data[i] >> 4);
            break;
        default:
            ++now;
        }
        assert(progress_table_check(t) == NULL);
        assert(progress_table_count(t) == model_count(m));
    }
    progress_table_destroy(t);
    free(mem);
    return 0;
}
