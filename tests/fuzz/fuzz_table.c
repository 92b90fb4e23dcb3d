/* libFuzzer target: the table against a plain model.  Each two input
 * bytes are one operation (begin, update, finish, lookup, sweep with a
 * budget, fail_owner, the clock's next second) on a small, crowded table
 * that evicts; after each, the table's invariants hold and every answer
 * is the model's. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "progress_table.h"

enum { MAX = 8, IDS = 16, OWNERS = 2 };

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
        switch (data[i] % 8) {
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
