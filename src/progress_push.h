/* progress_push: event streams (Server-Sent Events) at the progress URL,
 * and the one timer of a worker that serves them and publishes the
 * worker's live counts for the other workers.
 *
 * Contract
 * - One progress_push per server, made in set_defaults (before lighttpd
 *   forks its workers): the count of streams of the whole server, and of
 *   each client, lives in shared memory the caller maps, so max_streams and
 *   max_streams_per_client hold for all workers together.
 * - A stream belongs to one request: progress_push_start() makes the
 *   request's response an event stream and keeps the stream in
 *   r->plugin_ctx[plugin_id], tagged REQUEST_CTX_STREAM (request_ctx.h);
 *   it ends on the final answer (the response ends too), or when
 *   progress_push_reset() sees its request go.
 * - Each worker has one timerfd in lighttpd's event loop, armed only while
 *   it serves streams (every push_ms) or has uploads in flight to publish
 *   (every publish_ms, only with several workers).  Otherwise it is
 *   disarmed: an idle worker wakes for nothing.
 * - Every event's data is what the answer callback renders as JSON: the
 *   bytes a JSON poll gets.  doc/mod_uploadprogress.md, "Events", gives the
 *   wire format. */
#ifndef PROGRESS_PUSH_H
#define PROGRESS_PUSH_H

#include "first.h"

#include <stdint.h>
#include <sys/types.h>

#include "base_decls.h"

#include "progress_id.h"
#include "progress_table.h"

/* Workers whose streams the shared count can hold (and the watcher give
 * back when they die); a worker beyond them refuses its streams.  (A
 * test-only build lowers it: tests/integration/test_fair_streams.py.) */
#ifndef PROGRESS_PUSH_WORKER_SLOTS
#define PROGRESS_PUSH_WORKER_SLOTS 256
#endif

/* Fills *snap with the answer a poll for id would get now; returns what
 * progress_table_lookup() does (< 0: the table cannot be read now). */
typedef int (*progress_push_answer_fn)(void *glue, const progress_id *id,
                                       progress_snapshot *snap);
/* Publishes this worker's live counts to the shared table. */
typedef void (*progress_push_publish_fn)(void *glue);

typedef struct progress_push_config {
    uint32_t push_ms;
    uint32_t publish_ms;
    uint32_t max_streams;
    uint32_t max_streams_per_client;   /* all workers together */
    int publishes;            /* several workers: uploads need publishing */
    size_t plugin_id;
    progress_push_answer_fn answer;
    progress_push_publish_fn publish;
    void *glue;
} progress_push_config;

typedef struct progress_push progress_push;

/* Bytes of the count of streams shared by all workers: zero-filled memory
 * mapped MAP_SHARED before the fork (it may follow the table's). */
size_t progress_push_shared_bytes(void);

/* shared: progress_push_shared_bytes() of that memory (it outlives push). */
progress_push *progress_push_create(const progress_push_config *config,
                                    void *shared);
void progress_push_free(progress_push *push);

/* Whether r asks for an event stream: a GET that accepts text/event-stream. */
int progress_push_requested(const request_st *r);

typedef enum {
    PROGRESS_PUSH_STARTED,
    PROGRESS_PUSH_FULL,          /* max_streams are served already */
    PROGRESS_PUSH_CLIENT_FULL,   /* this worker serves r's client
                                    max_streams_per_client streams */
    PROGRESS_PUSH_NO_TIMER,      /* timerfd_create failed: errno says why */
    PROGRESS_PUSH_NO_WORKER_SLOT /* more workers serve streams than the
                                    shared count has places for */
} progress_push_start_result;

/* Starts the event stream of r for id: headers, the first event, the
 * timer.  remove_timeout (seconds) bounds how long an id may stay
 * starting.  r is untouched unless it returns PROGRESS_PUSH_STARTED.  A
 * client is a remote address as lighttpd has it for r (after
 * mod_extforward): an IPv4 address, an IPv6 /64, or every Unix socket
 * peer together; its streams are counted for all workers in the shared
 * memory (a look at up to 32 slots of it). */
progress_push_start_result progress_push_start(progress_push *push, request_st *r,
                                               const progress_id *id,
                                               unsigned int remove_timeout);

/* lighttpd runs a stream's handler when its connection has news (events
 * are written by the timer): HANDLER_ERROR if the client has gone, which
 * ends the request (and frees the stream in the reset). */
handler_t progress_push_subrequest(const request_st *r);

/* r is being reset: if it carries a stream (its context's tag says so),
 * forget it (the client may be gone; nothing is written). */
void progress_push_reset(progress_push *push, request_st *r);

/* This worker's uploads in flight went from none to some or back: arms or
 * disarms the publishing.  srv is this worker's server. */
void progress_push_uploads(progress_push *push, server *srv, uint32_t in_flight);

/* In the watcher process: a worker is gone; its streams no longer count. */
void progress_push_worker_gone(progress_push *push, pid_t pid);

#endif
