/* robust, process-shared mutexes are POSIX.1-2008 */
#define _POSIX_C_SOURCE 200809L

#include "progress_table.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "test_plant.h"

enum { SLOT_FREE = 0 }; /* slot.state for an empty slot; else progress_state */
/* The slots are laid out in groups of one page each (see GROUP; the slots
 * begin on a page boundary of a page-aligned table).  Each group's entries
 * are counted, so that a lookup, a probe, the sweep pass over a group without entries without
 * reading it: a read of a page of a shared mapping that nothing has
 * touched would allocate it.  A group's count is never below its entries
 * (raised before a slot is filled, lowered after it is emptied), so a
 * count of 0 says "free" even in the middle of a write cut short. */
enum { PAGE = 4096 };
/* The expiry of an entry in flight: it has none until it finishes. */
#define NO_EXPIRY INT64_MAX

/* One entry in 96 bytes: 120 per entry at the table's load factor
 * (doc/processing.md, "Memory").  The processing record shares the bytes
 * of the speed, which only an upload in flight has. */
struct slot {
    progress_id id;
    int64_t size;
    int64_t received;
    int64_t expires;     /* last second it is shown; NO_EXPIRY in flight */
    union {
        struct {             /* in flight */
            uint32_t updated;    /* second of the last update, modulo 2^32 */
            uint32_t speed;      /* bytes per second, smoothed; see update_speed() */
        };
        int64_t deadline;    /* finished with its work open (a 202) */
    };
    int32_t owner_pid;
    uint32_t owner_ref;
    uint32_t home;       /* the slot the id hashes to, kept for deletion */
    uint16_t status : 10;  /* an HTTP status, 100-999 */
    uint16_t samples : 2;  /* updates of an earlier second seen, at most 2 */
    uint16_t phase : 2;    /* progress_phase */
    uint8_t state;
    int8_t percent;      /* PROGRESS_PERCENT_UNKNOWN or 0-100 */
    char text[PROGRESS_TEXT_MAX]; /* stage or message, NUL-padded (no NUL
                          * when full); see progress_table_report() */
};
_Static_assert(sizeof(struct slot) == 96, "a slot should be 96 bytes (<= 128 per entry)");

struct progress_table {
    pthread_mutex_t lock;
    uint64_t key[2];
    uint32_t max_entries;
    uint32_t nslots;     /* > max_entries, so every probe meets a free slot */
    uint32_t count;
    uint32_t sweep_cursor;
    /* No finished entry expires before next_expiry (INT64_MAX: none is
     * held), so the sweep skips while now <= next_expiry.  pass_min
     * gathers the same bound over the sweep's current pass through the
     * table; it becomes next_expiry when the pass ends. */
    int64_t next_expiry;
    int64_t pass_min;
    /* A journal for the next holder of the lock, should this one die
     * inside it (see repair()): 1 + the first and the last slot of the
     * stretch being rewritten (the last is the free slot that ends its
     * probe run), and 1 + the slot being overwritten (it may be torn);
     * 0 when no write is in progress. */
    uint32_t repair_from;
    uint32_t repair_to;
    uint32_t writing;
    /* An entry changed in place (an update, a finish, a report, a dead
     * owner's failure): 1 + its slot while it is being changed, and its
     * value from before, which the next holder puts back should this one
     * die in the middle, so that nobody ever reads a change half made. */
    uint32_t undo_at;
    struct slot undo;
    /* Slots the last begin visited (see progress_table_begin_visits). */
    uint32_t begin_visits;
    /* Where the next eviction looks from. */
    uint32_t evict_cursor;
    /* Entries whose work is open (phase PROCESSING stored): a gauge for the
     * status page, kept as phases change and entries go.  A death inside
     * the lock between a phase's write and this count may leave it one
     * off (it never goes below 0). */
    uint32_t open_work;
    atomic_uint lock_failures;
    atomic_ulong locks;  /* table_lock() calls, in any process */
    /* Odd while a repair is under way (or was cut short by a death): a
     * repair may leave a hole in a probe run for a moment, which a reader
     * without the lock must not trust (see read_once()).  Bumped to odd
     * when a repair begins and to even when it ends.  A line of its own:
     * every lock-free read loads it, and the holders of the lock write the
     * line above.  Made odd for good, too, by a lock call that fails: the
     * table is then done without, and readers fail on the lock as writers
     * do (they never answer from a table nobody can write). */
    _Alignas(64) atomic_uint repairs;
    /* the slots follow, from the first page boundary after this header */
};

/* Slots per group: the slots that fit in one page (42 of 96 bytes; the
 * page's last 64 bytes hold the group's sequence count), so that a group
 * is one page. */
enum { GROUP = PAGE / sizeof(struct slot) };
_Static_assert(GROUP >= 32 && GROUP <= 255, "a group's count should fit in a byte");
_Static_assert(PAGE - GROUP * sizeof(struct slot) >= sizeof(atomic_uint),
               "a group's page should have room for its sequence count");

/* The slots begin on a page of their own, so that each group of them is
 * one page when the table is page-aligned (as a mapping is). */
#define SLOTS_AT (((sizeof(struct progress_table) + PAGE - 1) / PAGE) * PAGE)

static struct slot *slot_at(const progress_table *t, uint32_t i)
{
    char * const page = (char *)(uintptr_t)t + SLOTS_AT + (size_t)(i / GROUP) * PAGE;
    return (struct slot *)(void *)page + i % GROUP;
}

static uint32_t slots_for(uint32_t max_entries)
{
    /* load factor at most 0.8 when full */
    return max_entries + max_entries / 4 + 1;
}

static uint32_t groups_for(uint32_t nslots)
{
    return (nslots + GROUP - 1) / GROUP;
}

/* The sequence count of group g (a seqlock that readers without the lock
 * check their copies against): even while its slots are at rest, odd
 * while one is being written (see slot_write_begin()).  It lies in the
 * group's own page, after its slots, so a reader reads it only where it
 * reads slots: a group without entries is never looked into. */
static atomic_uint *group_seq(const progress_table *t, uint32_t g)
{
    char * const page = (char *)(uintptr_t)t + SLOTS_AT + (size_t)g * PAGE;
    return (atomic_uint *)(void *)(page + GROUP * sizeof(struct slot));
}

size_t progress_table_bytes(uint32_t max_entries)
{
    /* in 64 bits, to see whether the size fits in a size_t */
    const uint64_t nslots = (uint64_t)max_entries + max_entries / 4 + 1;
    if (nslots > UINT32_MAX) return 0;
    const uint64_t groups = groups_for((uint32_t)nslots);
    const uint64_t bytes = SLOTS_AT + groups * PAGE + groups;
    return bytes <= SIZE_MAX ? (size_t)bytes : 0;
}

/* Entries in each group of slots: one byte a group, after the slots. */
static uint8_t *group_entries(const progress_table *t)
{
    return (uint8_t *)(uintptr_t)t + SLOTS_AT + (size_t)groups_for(t->nslots) * PAGE;
}

progress_table *progress_table_init(void *mem, uint32_t max_entries,
                                    const uint8_t key[16])
{
    progress_table * const t = mem;
    pthread_mutexattr_t attr;
    int rc = pthread_mutexattr_init(&attr);
    if (rc == 0) rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (rc == 0) rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    if (rc == 0) rc = pthread_mutex_init(&t->lock, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) return NULL;
    memcpy(t->key, key, sizeof t->key);
    t->max_entries = max_entries;
    t->nslots = slots_for(max_entries);
    t->next_expiry = t->pass_min = INT64_MAX;
    return t;
}

progress_table *progress_table_attach(void *mem, uint32_t max_entries)
{
    /* (both are written once, by init) */
    progress_table * const t = mem;
    if (t->max_entries != max_entries || t->nslots != slots_for(max_entries))
        return NULL;
    return t;
}

size_t progress_table_slot_bytes(void)
{
    return sizeof(struct slot);
}

void progress_table_destroy(progress_table *t)
{
    pthread_mutex_destroy(&t->lock);
}

static void repair(progress_table *t);

/* Takes the lock: 0, or -1 if it cannot be had (counted; the caller must
 * then leave the table alone).  A process that died holding it may have
 * left a write half done: repair that first. */
static int table_lock(progress_table *t)
{
    int rc = pthread_mutex_lock(&t->lock);
    atomic_fetch_add_explicit(&t->locks, 1, memory_order_relaxed);
    if (rc == EOWNERDEAD) {
        repair(t);
        rc = pthread_mutex_consistent(&t->lock);
        if (rc != 0) pthread_mutex_unlock(&t->lock);
    }
    if (rc == 0) return 0;
    atomic_fetch_add_explicit(&t->lock_failures, 1, memory_order_relaxed);
    atomic_fetch_or_explicit(&t->repairs, 1, memory_order_relaxed);
    return -1;
}

static void table_unlock(progress_table *t)
{
    if (pthread_mutex_unlock(&t->lock) != 0)
        atomic_fetch_add_explicit(&t->lock_failures, 1, memory_order_relaxed);
}

/* Orders the stores around it as written, for a process killed between
 * them (the compiler may not move stores across it). */
static void store_fence(void)
{
    atomic_signal_fence(memory_order_seq_cst);
}

/* Marks a write to slot i as under way for readers without the lock: its
 * group's sequence count goes odd before any byte of the slot changes
 * (the count is raised before an entry is stored in a group, so an odd
 * count is always in a group whose count says it holds entries). */
static void slot_write_begin(progress_table *t, uint32_t i)
{
    atomic_uint * const seq = group_seq(t, i / GROUP);
    atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

/* Ends it: every byte of the slot is stored before the count goes even,
 * and the count before whatever the writer stores next (a group count
 * lowered after its slot is emptied). */
static void slot_write_end(progress_table *t, uint32_t i)
{
    atomic_uint * const seq = group_seq(t, i / GROUP);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(seq, atomic_load_explicit(seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

/* Opens a write of the slots from `from` up to the free slot `to` that
 * ends their probe run (all a write may disturb); `writing` names the slot
 * about to be overwritten.  repair_from, set last, opens the journal. */
static void journal_open(progress_table *t, uint32_t from, uint32_t to)
{
    t->repair_to = to + 1;
    store_fence();
    t->repair_from = from + 1;
    store_fence();
}

void (*progress_table_write_hook)(void *dst, size_t len);

static void journal_writing(progress_table *t, uint32_t i)
{
    t->writing = i + 1;
    store_fence();
    slot_write_begin(t, i);
    if (progress_table_write_hook)
        progress_table_write_hook(slot_at(t, i), sizeof(struct slot));
}

static void journal_written(progress_table *t)
{
    slot_write_end(t, t->writing - 1);
    t->writing = 0;
}

static void journal_close(progress_table *t)
{
    store_fence();
    t->writing = t->repair_from = 0;
}

/* Opens a change of the entry in slot i in place: its value is kept for
 * the next holder of the lock, then readers are warned. */
static void change_begin(progress_table *t, uint32_t i)
{
    t->undo = *slot_at(t, i);
    store_fence();
    t->undo_at = i + 1;
    store_fence();
    slot_write_begin(t, i);
    if (progress_table_write_hook)
        progress_table_write_hook(slot_at(t, i), sizeof(struct slot));
}

static void change_end(progress_table *t, uint32_t i)
{
    slot_write_end(t, i);
    t->undo_at = 0;
}

/* Puts back the entry a death left half changed (again, if a death cut
 * this short too: undo_at stays until it is whole). */
static void undo_change(progress_table *t)
{
    const uint32_t i = t->undo_at - 1;
    slot_write_begin(t, i);
    if (progress_table_write_hook)
        progress_table_write_hook(slot_at(t, i), sizeof(struct slot));
    *slot_at(t, i) = t->undo;
    slot_write_end(t, i);
    t->undo_at = 0;
}

/* The 128-bit product of a and b, its halves in *a (low) and *b (high). */
static void mul128(uint64_t *a, uint64_t *b)
{
#ifdef __SIZEOF_INT128__
    const unsigned __int128 x = (unsigned __int128)*a * *b;
    *a = (uint64_t)x;
    *b = (uint64_t)(x >> 64);
#else
    const uint64_t lo_lo = (*a & 0xffffffff) * (*b & 0xffffffff);
    const uint64_t hi_lo = (*a >> 32) * (*b & 0xffffffff);
    const uint64_t lo_hi = (*a & 0xffffffff) * (*b >> 32);
    const uint64_t hi_hi = (*a >> 32) * (*b >> 32);
    const uint64_t cross = (lo_lo >> 32) + (hi_lo & 0xffffffff) + lo_hi;
    *a = cross << 32 | (lo_lo & 0xffffffff);
    *b = hi_hi + (hi_lo >> 32) + (cross >> 32);
#endif
}

/* The 16 id bytes under the table's secret key, as wyhash mixes 16 bytes
 * with its seed: the two keyed halves multiplied into 128 bits, then the
 * two halves of that product, each xored with a constant, multiplied again
 * and folded.  Still keyed (a client that cannot know the key cannot
 * choose ids that pile up in one probe run; doc/security.md), at a tenth
 * of SipHash-1-3's instructions on a poll's path. */
static uint64_t id_hash(const uint64_t key[2], const progress_id *id)
{
    uint64_t a, b;
    memcpy(&a, id->bytes, sizeof a);
    memcpy(&b, id->bytes + sizeof a, sizeof b);
    a ^= key[0];
    b ^= key[1];
    mul128(&a, &b);
    a ^= 0xa0761d6478bd642fULL;   /* wyhash's first two secret words */
    b ^= 0xe7037ed1a0b428dbULL;
    mul128(&a, &b);
    return a ^ b;
}

static uint32_t home_slot(const progress_table *t, const progress_id *id)
{
    /* maps the hash onto [0, nslots) without a division */
    return (uint32_t)(((id_hash(t->key, id) >> 32) * t->nslots) >> 32);
}

static uint32_t next_slot(const progress_table *t, uint32_t i)
{
    return ++i == t->nslots ? 0 : i;
}

/* Slots from a to b, b included, going forwards. */
static uint32_t slots_from_to(const progress_table *t, uint32_t a, uint32_t b)
{
    return (b >= a ? b - a : b + t->nslots - a) + 1;
}

/* Whether slot i is free; in a group without entries it is not read. */
static int slot_free(const progress_table *t, uint32_t i)
{
    return group_entries(t)[i / GROUP] == 0 || slot_at(t, i)->state == SLOT_FREE;
}

/* The free slot that ends the probe run through slot i. */
static uint32_t run_end(const progress_table *t, uint32_t i)
{
    while (!slot_free(t, i)) i = next_slot(t, i);
    return i;
}

/* Index of id's slot if present (*found = 1), else of the free slot where
 * it would go (*found = 0).  An id whose home group has no entries costs
 * one byte of the group counts, and no slot is read. */
static uint32_t probe(const progress_table *t, const progress_id *id,
                      uint32_t home, int *found)
{
    uint32_t i = home;
    while (!slot_free(t, i)) {
        if (progress_id_equal(&slot_at(t, i)->id, id)) {
            *found = 1;
            return i;
        }
        i = next_slot(t, i);
    }
    *found = 0;
    return i;
}

static int slot_in_flight(const struct slot *s)
{
    return s->state == PROGRESS_UPLOADING;
}

/* (a finish cut short by a death may leave an expiry on an entry still
 * in flight: the state decides) */
static int slot_expired(const struct slot *s, int64_t now)
{
    return !slot_in_flight(s) && now > s->expires;
}

static int slot_owned_by(const struct slot *s, int32_t pid, uint32_t ref)
{
    return slot_in_flight(s) && s->owner_pid == pid && s->owner_ref == ref;
}

/* A finished entry with this expiry is (still) in the table. */
static void note_expiry(progress_table *t, int64_t expires)
{
    if (expires < t->next_expiry) t->next_expiry = expires;
    if (expires < t->pass_min) t->pass_min = expires;
}

/* An entry's work was open and is no more. */
static void work_closed(progress_table *t)
{
    if (t->open_work > 0) --t->open_work;
}

/* Empties slot i and shifts later members of its probe run back, so every
 * entry stays reachable from its home slot without tombstones.  The run's
 * end is found first, for the journal.  Returns the slots it looked at,
 * for the sweep's budget. */
static uint32_t remove_at(progress_table *t, uint32_t i)
{
    const uint32_t end = run_end(t, next_slot(t, i));
    uint32_t looked = slots_from_to(t, i, end);
    if (PROGRESS_PHASE_PROCESSING == slot_at(t, i)->phase) work_closed(t);
    journal_open(t, i, end);
    for (uint32_t j = next_slot(t, i); j != end; j = next_slot(t, j)) {
        ++looked;
        const struct slot * const s = slot_at(t, j);
        const uint32_t k = s->home;
        /* the entry at j stays if its home lies cyclically in (i, j] */
        const int stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            /* it may move to a slot the sweep's pass has been past */
            if (!slot_in_flight(s)) note_expiry(t, s->expires);
            journal_writing(t, i);
            *slot_at(t, i) = *s;
            journal_written(t);
            i = j;
        }
    }
    journal_writing(t, i);
    memset(slot_at(t, i), 0, sizeof(struct slot));
    journal_written(t);
    --group_entries(t)[i / GROUP];
    --t->count;
    journal_close(t);
    return looked;
}

/* One write of a repair, journaled like the others: a death in the middle
 * of it leaves slot i for the next repair to empty. */
static void repair_write(progress_table *t, uint32_t i, const struct slot *from)
{
    struct slot * const dst = slot_at(t, i);
    journal_writing(t, i);
    if (from) *dst = *from;
    else memset(dst, 0, sizeof *dst);
    journal_written(t);
}

/* Puts the entry of slot k where a probe from its home finds it: leaves it
 * where the probe meets it at k; empties k where the probe meets its id
 * before (a copy a shift cut short left); else copies it to the free slot
 * the probe meets, and only then empties k.  So at any moment the entry
 * is in one slot or two, never none, and each group's count is at least
 * its entries (see GROUP). */
static void settle(progress_table *t, uint32_t k)
{
    const struct slot * const at_k = slot_at(t, k);
    const uint32_t home = home_slot(t, &at_k->id);
    int found;
    const uint32_t i = probe(t, &at_k->id, home, &found);
    if (found && i == k) return;
    if (!found) {
        ++group_entries(t)[i / GROUP];
        struct slot moved = *at_k;
        moved.home = home;
        /* it may move to a slot the sweep's pass has been past */
        if (!slot_in_flight(&moved)) note_expiry(t, moved.expires);
        repair_write(t, i, &moved);
    }
    repair_write(t, k, NULL);
    --group_entries(t)[k / GROUP];
}

static void recount_group(progress_table *t, uint32_t g)
{
    uint8_t n = 0;
    if (group_entries(t)[g] == 0) return;   /* none there: not read */
    for (uint32_t i = g * GROUP; i < t->nslots && i < (g + 1) * GROUP; ++i)
        n += slot_at(t, i)->state != SLOT_FREE;
    group_entries(t)[g] = n;
}

/* Makes even every group's sequence count that a death left odd (only a
 * group with entries can have one: see slot_write_begin()). */
static void close_cut_writes(progress_table *t)
{
    for (uint32_t g = 0; g < groups_for(t->nslots); ++g) {
        if (group_entries(t)[g] == 0) continue;   /* not read */
        atomic_uint * const seq = group_seq(t, g);
        const unsigned int n = atomic_load_explicit(seq, memory_order_relaxed);
        if (n % 2) atomic_store_explicit(seq, n + 1, memory_order_relaxed);
    }
}

/* After a death inside the lock.  A write left half done disturbed only
 * the slots from the journal's `from` up to `to`, the free slot that ended
 * their probe run when it began.  Empty the slot that was being
 * overwritten (it may be torn: it held the entry being removed, a copy of
 * one moved before it, the dead process's new upload, or a copy a repair
 * was making), settle every entry from `from` up to `to` where a probe
 * finds it (which drops the copies a shift cut short leaves and closes
 * the holes), recount those groups and the total.  Every step leaves a
 * state this same repair fixes: the journal stays open until the end, the
 * walk does not depend on where free slots are, and settle never empties
 * a slot before the entry is whole elsewhere.  So a death inside a repair
 * is repaired by the next one.  Readers without the lock are told to keep
 * away for the while (t->repairs odd; a repair cut short leaves it odd
 * for the next one), and the sequence counts a dead writer left odd are
 * made even first, so that its half-written slot reads as what the
 * repair leaves of it. */
static void repair(progress_table *t)
{
    const unsigned int repairs = atomic_load_explicit(&t->repairs, memory_order_relaxed);
    if (repairs % 2 == 0) {
        atomic_store_explicit(&t->repairs, repairs + 1, memory_order_relaxed);
        atomic_thread_fence(memory_order_seq_cst);
    }
    close_cut_writes(t);
    if (t->undo_at != 0) undo_change(t);
    if (t->repair_from != 0) {
        const uint32_t from = t->repair_from - 1, to = t->repair_to - 1;
        if (t->writing != 0) repair_write(t, t->writing - 1, NULL);
        for (uint32_t k = from; k != to; k = next_slot(t, k))
            if (!slot_free(t, k)) settle(t, k);
        for (uint32_t g = from / GROUP;; g = g + 1 == groups_for(t->nslots) ? 0 : g + 1) {
            recount_group(t, g);
            if (g == to / GROUP) break;
        }
    }
    uint32_t count = 0;
    for (uint32_t g = 0; g < groups_for(t->nslots); ++g)
        count += group_entries(t)[g];
    t->count = count;
    journal_close(t);
    atomic_thread_fence(memory_order_release);
    atomic_fetch_add_explicit(&t->repairs, 1, memory_order_relaxed);
}

/* Makes room in a full table: frees the finished entry that expires first
 * among the EVICT_WINDOW slots from the eviction's cursor on, or the first
 * of them whose expiry is the table's earliest (next_expiry, when still
 * exact), and moves the cursor there.  One eviction thus looks at a
 * bounded stretch whatever the layout (stale next_expiry, sparse expiry
 * seconds, a table of uploads in flight): it frees the oldest of about
 * 3,000 entries, the very oldest in a table of up to 4,096 slots.  Adds
 * the slots it looked at to *visits.  Returns 0 if the stretch holds no
 * finished entry (at once if the table holds none). */
enum { EVICT_WINDOW = 4096 };
static int evict_oldest(progress_table *t, uint32_t *visits)
{
    if (t->next_expiry == INT64_MAX) return 0;
    const uint32_t window = t->nslots < EVICT_WINDOW ? t->nslots : EVICT_WINDOW;
    uint32_t i = t->evict_cursor, oldest = UINT32_MAX, looked = 0;
    int64_t oldest_expires = INT64_MAX;
    while (looked < window && oldest_expires > t->next_expiry) {
        ++looked;
        if (!slot_free(t, i)) {
            const struct slot * const s = slot_at(t, i);
            if (!slot_in_flight(s) && s->expires < oldest_expires) {
                oldest = i;
                oldest_expires = s->expires;
            }
        }
        i = next_slot(t, i);
    }
    *visits += looked;
    if (oldest == UINT32_MAX) {
        t->evict_cursor = i;
        return 0;
    }
    t->evict_cursor = oldest;
    *visits += remove_at(t, oldest);
    return 1;
}

progress_begin_result progress_table_begin(progress_table *t,
                                           const progress_id *id,
                                           int64_t size, int32_t owner_pid,
                                           uint32_t owner_ref, int64_t now)
{
    const uint32_t home = home_slot(t, id);
    progress_begin_result result = PROGRESS_BEGIN_OK;
    int found;
    if (table_lock(t) != 0) return PROGRESS_BEGIN_NO_LOCK;
    uint32_t i = probe(t, id, home, &found);
    uint32_t visits = slots_from_to(t, home, i);
    if (found && slot_in_flight(slot_at(t, i))) {
        result = PROGRESS_BEGIN_IN_FLIGHT;
    } else if (!found && t->count >= t->max_entries && !evict_oldest(t, &visits)) {
        result = PROGRESS_BEGIN_FULL;
    } else {
        if (!found) {   /* an eviction may have moved slots */
            i = probe(t, id, home, &found);
            visits += slots_from_to(t, home, i);
        }
        /* taking over an entry in place disturbs its run up to its end */
        const uint32_t to = found ? run_end(t, next_slot(t, i)) : i;
        if (found) visits += slots_from_to(t, i, to) - 1;
        journal_open(t, i, to);
        if (!found) {
            ++group_entries(t)[i / GROUP];
            ++t->count;
            test_plant_in_table(&t->count);
        } else if (PROGRESS_PHASE_PROCESSING == slot_at(t, i)->phase) {
            work_closed(t);   /* a timed-out work's id, taken over */
        }
        journal_writing(t, i);
        *slot_at(t, i) = (struct slot){ .id = *id, .size = size,
                                     .expires = NO_EXPIRY, .updated = (uint32_t)now,
                                     .owner_pid = owner_pid, .owner_ref = owner_ref,
                                     .home = home, .state = PROGRESS_UPLOADING,
                                     .percent = PROGRESS_PERCENT_UNKNOWN };
        journal_written(t);
        journal_close(t);
    }
    t->begin_visits = visits;
    table_unlock(t);
    return result;
}

/* The rate since the last update, averaged half and half with the speed
 * before it: each second's weight halves every second after, so the speed
 * follows the last few seconds and a stall brings it down to 0.  The first
 * update of a later second than the begin only starts the first measure (the
 * begin fell anywhere in its second); updates within one second move the
 * counts but not the rate. */
static void update_speed(struct slot *s, int64_t received, int64_t now)
{
    const uint32_t elapsed = (uint32_t)now - s->updated;
    if (elapsed == 0) return;
    if (s->samples > 0) {
        const int64_t gained = received > s->received ? received - s->received : 0;
        const int64_t rate = gained / elapsed < UINT32_MAX ? gained / elapsed : UINT32_MAX;
        s->speed = (uint32_t)(s->samples > 1 ? (s->speed + rate) / 2 : rate);
    }
    if (s->samples < 2) ++s->samples;
    s->updated = (uint32_t)now;
}

void progress_table_update(progress_table *t, const progress_id *id,
                           int32_t owner_pid, uint32_t owner_ref,
                           int64_t received, int64_t size, int64_t base,
                           int64_t now)
{
    int found;
    const uint32_t home = home_slot(t, id);
    if (table_lock(t) != 0) return;
    const uint32_t i = probe(t, id, home, &found);
    struct slot * const s = slot_at(t, i);
    if (found && slot_owned_by(s, owner_pid, owner_ref)) {
        change_begin(t, i);
        if ((uint32_t)now != s->updated)
            s->received = base;  /* the speed is measured from here */
        update_speed(s, received, now);
        s->received = received;
        s->size = size;
        change_end(t, i);
    }
    table_unlock(t);
}

/* The state last: a death before it leaves the entry in flight, whole. */
static void end_in_flight(struct slot *s, progress_state state, int64_t expires)
{
    s->expires = expires;
    store_fence();
    s->state = (uint8_t)state;
}

static int phase_is_final(unsigned int phase)
{
    return PROGRESS_PHASE_FINISHED == phase || PROGRESS_PHASE_FAILED == phase;
}

/* Whether a report may still change the entry's work. */
static int work_open(const struct slot *s, int64_t now)
{
    if (phase_is_final(s->phase)) return 0;
    return slot_in_flight(s) || (PROGRESS_PHASE_PROCESSING == s->phase && now <= s->deadline);
}

/* Text first, the phase last (a report's writes are in place, without the
 * journal, and undone by the next holder if this one dies among them;
 * readers check the text all the same: progress_render). */
static void set_work(progress_table *t, struct slot *s, progress_phase phase, int percent,
                     const char *text, size_t len)
{
    const int was_open = PROGRESS_PHASE_PROCESSING == s->phase;
    if (NULL != text) {
        memset(s->text, 0, sizeof s->text);
        memcpy(s->text, text, len < sizeof s->text ? len : sizeof s->text);
    }
    s->percent = (int8_t)percent;
    store_fence();
    s->phase = phase;
    if (!was_open && PROGRESS_PHASE_PROCESSING == phase) ++t->open_work;
    else if (was_open && PROGRESS_PHASE_PROCESSING != phase) work_closed(t);
}

/* The response ends the work that stages were reported for, as it ended
 * the upload; an outcome reported already stays. */
static void end_work(progress_table *t, struct slot *s, progress_state state)
{
    if (PROGRESS_PHASE_PROCESSING == s->phase)
        set_work(t, s, PROGRESS_DONE == state ? PROGRESS_PHASE_FINISHED : PROGRESS_PHASE_FAILED,
                 PROGRESS_PERCENT_UNKNOWN, "", 0);
}

int progress_table_finish(progress_table *t, const progress_id *id,
                          int32_t owner_pid, uint32_t owner_ref,
                          const progress_snapshot *fin, int64_t expires)
{
    int found, finished = 0;
    const uint32_t home = home_slot(t, id);
    if (table_lock(t) != 0) return -1;
    const uint32_t i = probe(t, id, home, &found);
    struct slot * const s = slot_at(t, i);
    if (found && slot_owned_by(s, owner_pid, owner_ref)) {
        note_expiry(t, expires);
        change_begin(t, i);
        s->status = (uint16_t)fin->status;
        s->size = fin->size;
        s->received = fin->received;
        if (PROGRESS_PHASE_PROCESSING == fin->phase && !phase_is_final(s->phase)) {
            s->deadline = fin->deadline;   /* (the speed is no more) */
            set_work(t, s, PROGRESS_PHASE_PROCESSING, s->percent, NULL, 0);
        } else {
            end_work(t, s, fin->state);
        }
        end_in_flight(s, fin->state, expires);
        change_end(t, i);
        finished = 1;
    }
    table_unlock(t);
    return finished;
}

/* The work a 202 left open is over when its deadline has passed. */
static void timed_out(progress_snapshot *out)
{
    static const char message[] = "processing timed out";
    out->phase = PROGRESS_PHASE_FAILED;
    out->percent = PROGRESS_PERCENT_UNKNOWN;
    memcpy(out->text, message, sizeof message);
}

/* The answer for the entry s (a copy, or the slot under the lock) at now:
 * 1 and *out, or 0 if it has expired. */
static int snapshot_of(const struct slot *s, int64_t now, progress_snapshot *out)
{
    if (slot_expired(s, now)) return 0;
    const int in_flight = slot_in_flight(s);
    *out = (progress_snapshot){ .state = (progress_state)s->state,
                                .status = s->status, .size = s->size,
                                .received = s->received,
                                .speed = in_flight ? s->speed : 0,
                                .owner_pid = s->owner_pid,
                                .owner_ref = s->owner_ref,
                                .phase = (progress_phase)s->phase,
                                .percent = s->percent,
                                .deadline = in_flight ? 0 : s->deadline };
    if (PROGRESS_PHASE_NONE != s->phase) {   /* (else the text is "") */
        memcpy(out->text, s->text, sizeof s->text);
        if (PROGRESS_PHASE_PROCESSING == s->phase && !in_flight && now > s->deadline)
            timed_out(out);
    }
    return 1;
}

static int lookup_locked(progress_table *t, const progress_id *id, uint32_t home,
                         int64_t now, progress_snapshot *out)
{
    int found;
    if (table_lock(t) != 0) return -1;
    const struct slot * const s = slot_at(t, probe(t, id, home, &found));
    found = found && snapshot_of(s, now, out);
    table_unlock(t);
    return found;
}

/* A read without the lock: the groups of slots it has looked into, each
 * with its sequence count as it was before the read looked (see
 * read_once()).  A probe run rarely leaves its home group. */
enum { READ_GROUPS = 4 };
struct read_view {
    uint32_t groups;
    uint32_t group[READ_GROUPS];
    unsigned int seq[READ_GROUPS];
};

/* Takes group g into the view (once): 0 if a write to it is under way, or
 * the view is full; the read is then given up. */
static int view_enter(const progress_table *t, struct read_view *v, uint32_t g)
{
    if (v->groups > 0 && v->group[v->groups - 1] == g) return 1;
    if (v->groups == READ_GROUPS) return 0;
    const unsigned int seq = atomic_load_explicit(group_seq(t, g), memory_order_acquire);
    if (seq % 2) return 0;
    v->group[v->groups] = g;
    v->seq[v->groups++] = seq;
    return 1;
}

/* Whether no write has touched the groups of the view since the read
 * looked into them, nor has a repair begun since `repairs` was read: then
 * every slot the read saw was as it saw it, all at one moment. */
static int view_still(const progress_table *t, const struct read_view *v,
                      unsigned int repairs)
{
    atomic_thread_fence(memory_order_acquire);
    for (uint32_t k = 0; k < v->groups; ++k)
        if (atomic_load_explicit(group_seq(t, v->group[k]), memory_order_relaxed) != v->seq[k])
            return 0;
    return atomic_load_explicit(&t->repairs, memory_order_relaxed) == repairs;
}

/* A group's count, read without the lock (the holder may be changing it). */
static uint8_t group_entries_now(const progress_table *t, uint32_t g)
{
    return ((const volatile uint8_t *)group_entries(t))[g];
}

/* One lookup without the lock (a seqlock read): probes as probe() does,
 * copying the slot found, then checks that no write touched the groups it
 * read meanwhile.  A writer holds each group's count odd while it writes
 * one of its slots, so a slot read in the middle of a write, or a probe
 * run changed under the read (a shift), fails the check.  A writer that
 * died in the middle of a write leaves its group's count odd: the read
 * fails until the next holder of the lock repairs.  Between writes the
 * slots always let a probe find every entry (a shift copies an entry
 * before it clears its old slot), except during a repair: then reads fail
 * (t->repairs odd or changed).  A group whose count says no entries is
 * not read at all, and ends the probe (its slots are all free).  Returns
 * 1 (found, *out filled), 0 (no such entry, or expired), -1 (try again). */
static int read_once(const progress_table *t, const progress_id *id, uint32_t home,
                     int64_t now, progress_snapshot *out)
{
    const unsigned int repairs = atomic_load_explicit(&t->repairs, memory_order_acquire);
    if (repairs % 2) return -1;
    struct read_view v = { .groups = 0 };
    struct slot copy;
    int found = -1;   /* (a run as long as the table: only a torn read sees one) */
    for (uint32_t looked = 0, i = home; found < 0 && looked < t->nslots;
         ++looked, i = next_slot(t, i)) {
        const uint32_t g = i / GROUP;
        if (group_entries_now(t, g) == 0) {
            found = 0;
        } else if (!view_enter(t, &v, g)) {
            return -1;
        } else {
            const struct slot * const s = slot_at(t, i);
            if (s->state == SLOT_FREE) {
                found = 0;
            } else if (progress_id_equal(&s->id, id)) {
                memcpy(&copy, s, sizeof copy);
                found = 1;
            }
        }
    }
    if (found < 0 || !view_still(t, &v, repairs)) return -1;
    return found && snapshot_of(&copy, now, out);
}

/* Tries without the lock this many times, then waits for the lock: a
 * writer that holds a group's count odd for long is dead (its lock's
 * next holder repairs) or slow, and either way the lock gets the answer. */
enum { READ_TRIES = 64 };

int progress_table_lookup(progress_table *t, const progress_id *id,
                          int64_t now, progress_snapshot *out)
{
    const uint32_t home = home_slot(t, id);
    int found = -1;
    for (int tries = 0; found < 0 && tries < READ_TRIES; ++tries)
        found = read_once(t, id, home, now, out);
    if (found < 0) found = lookup_locked(t, id, home, now, out);
    if (found <= 0) *out = (progress_snapshot){ .state = PROGRESS_STARTING,
                                                .size = -1, .received = -1 };
    return found;
}
progress_report_result progress_table_report(progress_table *t,
                                             const progress_id *id,
                                             progress_phase phase, int percent,
                                             const char *text, size_t text_len,
                                             int64_t now, int64_t expires)
{
    int found;
    progress_report_result result = PROGRESS_REPORT_OK;
    const uint32_t home = home_slot(t, id);
    if (table_lock(t) != 0) return PROGRESS_REPORT_NO_LOCK;
    const uint32_t i = probe(t, id, home, &found);
    struct slot * const s = slot_at(t, i);
    if (!found || slot_expired(s, now)) {
        result = PROGRESS_REPORT_UNKNOWN;
    } else if (!work_open(s, now)) {
        result = PROGRESS_REPORT_FINISHED;
    } else {
        change_begin(t, i);
        if (PROGRESS_PHASE_PROCESSING == phase) {
            set_work(t, s, phase, percent, text, text_len);
        } else {
            set_work(t, s, phase, PROGRESS_PERCENT_UNKNOWN, NULL != text ? text : "",
                     NULL != text ? text_len : 0);
            if (!slot_in_flight(s)) {   /* (else its finish sets the expiry) */
                note_expiry(t, expires);
                s->expires = expires;
            }
        }
        change_end(t, i);
    }
    table_unlock(t);
    return result;
}

/* Walks the table backwards from the cursor: the slots after it are then
 * ones the walk has been past, so freeing a run of expired entries shifts
 * nothing (each removal meets a free slot next), where walking forwards
 * would shift the rest of the run back once per entry freed.  A pass
 * through the whole table makes next_expiry exact again. */
static uint32_t sweep_slice(progress_table *t, int64_t now, uint32_t budget)
{
    uint32_t freed = 0;
    for (uint32_t work = 0; work < budget && now > t->next_expiry; ++work) {
        const uint32_t i = t->sweep_cursor;
        uint32_t done_down_to = i;
        if (group_entries(t)[i / GROUP] == 0) {
            done_down_to = i - i % GROUP;   /* nothing there: skip, unread */
        } else {
            const struct slot * const s = slot_at(t, i);
            /* a removal may shift another entry into slot i: look again */
            while (s->state != SLOT_FREE && slot_expired(s, now)) {
                work += remove_at(t, i);
                ++freed;
            }
            if (s->state != SLOT_FREE && !slot_in_flight(s) && s->expires < t->pass_min)
                t->pass_min = s->expires;
        }
        if (done_down_to == 0) {
            t->next_expiry = t->pass_min;
            t->pass_min = INT64_MAX;
            t->sweep_cursor = t->nslots - 1;
        } else {
            t->sweep_cursor = done_down_to - 1;
        }
    }
    return freed;
}

uint32_t progress_table_sweep(progress_table *t, int64_t now, uint32_t budget)
{
    if (table_lock(t) != 0) return 0;
    const uint32_t freed = sweep_slice(t, now, budget);
    table_unlock(t);
    return freed;
}

uint32_t progress_table_fail_owner(progress_table *t, int32_t owner_pid,
                                   int status, int64_t expires)
{
    uint32_t failed = 0;
    if (table_lock(t) != 0) return 0;
    for (uint32_t i = 0; i < t->nslots; ++i) {
        if (group_entries(t)[i / GROUP] == 0) {
            i += GROUP - 1 - i % GROUP;   /* nothing there: skip, unread */
            continue;
        }
        struct slot * const s = slot_at(t, i);
        if (slot_in_flight(s) && s->owner_pid == owner_pid) {
            note_expiry(t, expires);
            change_begin(t, i);
            s->status = (uint16_t)status;
            end_work(t, s, PROGRESS_ERROR);
            end_in_flight(s, PROGRESS_ERROR, expires);
            change_end(t, i);
            ++failed;
        }
    }
    table_unlock(t);
    return failed;
}

/* One field of the header, read under the lock (0 when it cannot be had). */
static uint32_t read_locked(progress_table *t, const uint32_t *field)
{
    if (table_lock(t) != 0) return 0;
    const uint32_t value = *field;
    table_unlock(t);
    return value;
}

uint32_t progress_table_count(progress_table *t)
{
    return read_locked(t, &t->count);
}

static const char *check_slots(progress_table *t)
{
    uint32_t live = 0;
    for (uint32_t g = 0; g < groups_for(t->nslots); ++g) {
        uint32_t in_group = 0;
        for (uint32_t i = g * GROUP; i < t->nslots && i < (g + 1) * GROUP; ++i) {
            const struct slot * const s = slot_at(t, i);
            if (s->state == SLOT_FREE) continue;
            ++in_group;
            int found;
            if (s->home != home_slot(t, &s->id)) return "an entry's home is not its id's";
            if (probe(t, &s->id, s->home, &found) != i || !found)
                return "an entry is not found by its id (or its id is held twice)";
        }
        if (group_entries(t)[g] != in_group) return "a group count differs from its slots";
        live += in_group;
    }
    return live == t->count ? NULL : "the count differs from the live slots";
}

uint32_t progress_table_begin_visits(progress_table *t)
{
    return read_locked(t, &t->begin_visits);
}

uint32_t progress_table_open_work(progress_table *t)
{
    return read_locked(t, &t->open_work);
}

unsigned long progress_table_locks(progress_table *t)
{
    return atomic_load_explicit(&t->locks, memory_order_relaxed);
}

uint32_t progress_table_lock_failures(progress_table *t)
{
    return atomic_load_explicit(&t->lock_failures, memory_order_relaxed);
}

const char *progress_table_check(progress_table *t)
{
    if (table_lock(t) != 0) return "the lock cannot be had";
    const char * const problem = check_slots(t);
    table_unlock(t);
    return problem;
}

uint32_t progress_table_slots(const progress_table *t)
{
    return t->nslots;
}
