/* progress_table: the uploads the server knows of, keyed by progress id.
 *
 * Contract
 * - The table lives in one block of caller-provided, zero-filled memory of
 *   progress_table_bytes(max_entries) bytes (page-aligned for the promise
 *   on pages below; any alignment of 16 works); it allocates nothing and holds
 *   no pointers, so the block may be a MAP_SHARED mapping used by several
 *   processes at once (each call that writes takes a process-shared robust
 *   mutex kept in the block).
 * - Lookups take no lock: they read the slots and check a sequence count
 *   per page of slots (a seqlock) that every writer holds odd while it
 *   writes there; a read that overlapped a write is tried again, and after
 *   64 tries (a writer dead in the middle of a write, or a slow one) it
 *   waits for the lock, whose next holder repairs.  So a lookup answers
 *   an entry as it was at one moment, never a torn one, and never waits
 *   on a live writer unless it keeps losing that race.
 * - Pages: a page of slots that no entry has touched is never read, by
 *   lookups, probes, the sweep, eviction or repair (each page holds 42
 *   slots, and a count per page says whether it holds entries).  So
 *   lookups of unknown ids leave the resident memory as it is, beyond
 *   the counts (a byte per page).
 * - At most max_entries entries; lookups, begin, update and finish are O(1)
 *   on average (open addressing with linear probing and a per-table random
 *   hash key, so clients cannot craft colliding ids; deletion by backward
 *   shift, so no tombstones pile up).
 * - An entry is in flight (PROGRESS_UPLOADING) from begin until finish;
 *   only the owner that began it (pid, ref) may update or finish it.  A
 *   finished entry stays until its expiry second has passed: lookups treat
 *   it as absent from then on, and sweep frees its slot.
 * - Times are whole seconds of one monotonic clock, chosen by the caller;
 *   any second, 0 included, is a valid expiry (an entry in flight has
 *   none, whatever `expires` a cut-short finish left).
 * - The mapping may outlive any process using it: nobody need destroy the
 *   lock.  A process killed inside the lock leaves nothing the next holder
 *   cannot repair from the slots themselves (robust mutex).  If the lock
 *   cannot be had at all (e.g. destroyed), each call refuses its work and
 *   says so (PROGRESS_BEGIN_NO_LOCK, -1, or 0 found/freed), and the
 *   failure is counted (progress_table_lock_failures). */
#ifndef PROGRESS_TABLE_H
#define PROGRESS_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "progress_id.h"

/* The server's work on an upload after its last byte (doc/processing.md):
 * a record beside the state, which keeps its four values. */
typedef enum progress_phase {
    PROGRESS_PHASE_NONE = 0,   /* nothing reported, no 202 */
    PROGRESS_PHASE_PROCESSING, /* a backend reported a stage, or answered 202 */
    PROGRESS_PHASE_FINISHED,   /* the work's outcome: finished */
    PROGRESS_PHASE_FAILED      /* failed, or the processing timeout passed */
} progress_phase;

/* A stage name or an outcome's message: at most this many bytes. */
#define PROGRESS_TEXT_MAX 32
/* percent of a snapshot when none was reported */
#define PROGRESS_PERCENT_UNKNOWN (-1)

typedef enum progress_state {
    PROGRESS_STARTING = 0, /* no entry: not begun yet, or swept */
    PROGRESS_UPLOADING,
    PROGRESS_DONE,
    PROGRESS_ERROR
} progress_state;

/* A copy of one entry, as it was at one moment. */
typedef struct progress_snapshot {
    progress_state state;
    int status;          /* final HTTP status once finished, else 0 */
    int64_t size;        /* request body length; -1 while unknown */
    int64_t received;    /* body bytes received; -1 if not recorded */
    int64_t speed;       /* bytes per second lately while in flight; 0 if
                          * not measured yet (see progress_table_update) */
    int32_t owner_pid;   /* process serving the upload */
    uint32_t owner_ref;  /* that process's own handle for the request */
    progress_phase phase;
    int percent;         /* 0-100 while processing; PROGRESS_PERCENT_UNKNOWN */
    int64_t deadline;    /* finish with PROCESSING (a 202): its last second */
    char text[PROGRESS_TEXT_MAX + 1]; /* the stage while processing, the
                          * outcome's message once final; "" for none */
} progress_snapshot;

typedef struct progress_table progress_table;

typedef enum progress_begin_result {
    PROGRESS_BEGIN_OK,
    PROGRESS_BEGIN_IN_FLIGHT, /* another upload with this id is in flight */
    PROGRESS_BEGIN_FULL,      /* max_entries uploads are in flight */
    PROGRESS_BEGIN_NO_LOCK    /* the lock cannot be had: nothing done */
} progress_begin_result;

/* Bytes of the block for max_entries; 0 if that is more than a size_t
 * (on a 32-bit system) can hold. */
size_t progress_table_bytes(uint32_t max_entries);

/* Lays the table out in mem (zero-filled, progress_table_bytes() long).
 * key seeds the hash.  Returns NULL if the lock cannot be set up. */
progress_table *progress_table_init(void *mem, uint32_t max_entries,
                                    const uint8_t key[16]);
/* The table progress_table_init() laid out in mem for max_entries, found
 * again by another process (the next generation of a graceful restart);
 * NULL if the block's own header says otherwise.  Nothing is written. */
progress_table *progress_table_attach(void *mem, uint32_t max_entries);

/* The layout of the block (struct progress_table and the slots): bump it
 * by hand whenever either changes, so that a block laid out by another
 * build is never attached (progress_region keeps it with the slot's size
 * in its header). */
#define PROGRESS_TABLE_LAYOUT 3
size_t progress_table_slot_bytes(void);

/* Destroys the lock: only for a table no other process can still use
 * (tests, private memory).  A shared table is just unmapped. */
void progress_table_destroy(progress_table *t);

/* Starts an entry in flight for id.  A finished entry with the same id is
 * taken over.  When the table is full, one finished entry is evicted to
 * make room: the one that expires first among 4,096 slots from where the
 * last eviction stopped (the earliest of the whole table in a table of up
 * to 4,096 slots, or when those slots hold one of its earliest expiry
 * second).  If they hold none (nearly every upload in flight), the answer
 * is PROGRESS_BEGIN_FULL, and the next begin looks at the next 4,096.  So
 * one begin visits at most 4,096 slots besides its probe runs (a few dozen
 * at the table's load): see progress_table_begin_visits. */
progress_begin_result progress_table_begin(progress_table *t,
                                           const progress_id *id,
                                           int64_t size, int32_t owner_pid,
                                           uint32_t owner_ref, int64_t now);

/* Publishes the owner's live counters of an entry in flight at second now,
 * as often as the owner likes (several times a second, say).  At the
 * first update of each new second the entry's speed is measured: the rate
 * from base to received since the update that began the second before,
 * averaged with the speed before it (the weight of each second halves
 * every second).  So base is the received of the owner's last update that
 * began a new second (0 before any); once a second, the last update's. */
void progress_table_update(progress_table *t, const progress_id *id,
                           int32_t owner_pid, uint32_t owner_ref,
                           int64_t received, int64_t size, int64_t base,
                           int64_t now);

/* Ends the owner's entry in flight with fin's state, status, size and
 * received; it expires after the second `expires`.  Its processing record:
 * an outcome reported already stays; fin->phase PROCESSING (a 202) keeps
 * the work open until fin->deadline (expires should come after it);
 * otherwise stages reported end as FINISHED for DONE, FAILED for ERROR,
 * and an entry with none keeps none.  Returns 1 if the entry was the
 * owner's and is now finished, 0 otherwise, -1 without the lock. */
int progress_table_finish(progress_table *t, const progress_id *id,
                          int32_t owner_pid, uint32_t owner_ref,
                          const progress_snapshot *fin, int64_t expires);

/* Copies the entry for id into *out; returns 1 if there is one that has not
 * expired at now, else 0 (and *out says PROGRESS_STARTING); -1 (and
 * PROGRESS_STARTING) if the lock cannot be had.  Work left open by a 202
 * whose deadline has passed reads as FAILED, "processing timed out". */
int progress_table_lookup(progress_table *t, const progress_id *id,
                          int64_t now, progress_snapshot *out);

typedef enum progress_report_result {
    PROGRESS_REPORT_OK,
    PROGRESS_REPORT_UNKNOWN,  /* no such id (or expired) */
    PROGRESS_REPORT_FINISHED, /* its work has an outcome, or never had any
                               * open (ended without a 202), or timed out */
    PROGRESS_REPORT_NO_LOCK
} progress_report_result;

/* A backend's report on the work for id: an entry in flight, or one that
 * finished with its processing open (a 202) and before its deadline.
 * phase PROCESSING: text (if not NULL) becomes the stage and percent
 * (PROGRESS_PERCENT_UNKNOWN or 0-100) the percent; without a text the
 * stage stays.  phase FINISHED or FAILED: the outcome, text its message
 * (or NULL); the entry, if finished, then expires after the second
 * `expires`.  The caller validates text (progress_report). */
progress_report_result progress_table_report(progress_table *t,
                                             const progress_id *id,
                                             progress_phase phase, int percent,
                                             const char *text, size_t text_len,
                                             int64_t now, int64_t expires);

/* Frees the slots of entries expired at now, doing no more than `budget`
 * slots' worth of work per call (a slot looked at, or one looked at while
 * closing the gap a freed entry leaves), so a huge table never stalls the
 * caller; a cursor carries on from there next time.  Costs nothing until
 * the soonest expiry second of the finished entries has passed.  A budget
 * of UINT32_MAX frees every expired entry.  Returns how many were freed. */
uint32_t progress_table_sweep(progress_table *t, int64_t now, uint32_t budget);

/* Ends every entry in flight of a process that is gone (a worker that
 * died): ERROR with status, counts as last published, expiring after the
 * second `expires`.  A full scan, for a rare event.  Returns how many. */
uint32_t progress_table_fail_owner(progress_table *t, int32_t owner_pid,
                                   int status, int64_t expires);

/* For tests and the bench: the slots the last begin visited (its probes,
 * the eviction's look-out and the shift of the evicted entry's run),
 * counting each slot read or passed over. */
uint32_t progress_table_begin_visits(progress_table *t);

/* For tests only: called under the lock just before each write to a slot
 * that the journal records (an insert, a shift, a repair's) or that can
 * be undone (a change in place, and its undoing), with the
 * slot (len bytes), so that a test can tear the write and kill the
 * process there.  NULL (no call) unless a test sets it. */
extern void (*progress_table_write_hook)(void *dst, size_t len);

/* Calls that took the lock since the table was laid out, in any process:
 * writes, and the rare lookup that fell back on it. */
unsigned long progress_table_locks(progress_table *t);

/* Lock calls that failed since the table was laid out, in any process
 * (EOWNERDEAD is not a failure: it is repaired). */
uint32_t progress_table_lock_failures(progress_table *t);

/* Entries whose work is open: stages reported and no outcome yet, or a
 * 202's work.  One whose processing timeout has passed counts until its
 * entry goes (remove-timeout later) or its id is taken over. */
uint32_t progress_table_open_work(progress_table *t);

/* Entries held, expired ones not yet swept included. */
uint32_t progress_table_count(progress_table *t);

/* For tests: checks the table's invariants under the lock (the count is
 * the number of live slots, every group count matches its slots, every
 * entry is found by its id where it lies, no id is held twice).  Returns
 * NULL if they hold, else which one fails.  A full scan: never call it on
 * a live server's table. */
const char *progress_table_check(progress_table *t);

/* Slots in the table (max_entries / 0.8). */
uint32_t progress_table_slots(const progress_table *t);

#endif
