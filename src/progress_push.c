/* progress_push: event streams at the progress URL and the worker's timer.
 * See progress_push.h for the contract, doc/mod_uploadprogress.md
 * ("Events") for the wire format. */
#include "first.h"

#include "progress_push.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "base.h"
#include "buffer.h"
#include "fdevent.h"
#include "http_header.h"
#include "request.h"
#include "sock_addr.h"

#include "lighttpd_compat.h"
#include "progress_render.h"
#include "request_ctx.h"

/* Above this many bytes of a stream still queued for its client, events
 * wait (the next one carries the latest answer): a slow reader holds a few
 * KiB, never a temporary file. */
#define PUSH_QUEUE_CAP 4096
#define PUSH_KEEPALIVE_MS 15000
/* The streams of each client in each worker, shared: a slot holds a
 * client's tag, a worker's slot and a count (see client_word()).  A
 * client's slots lie within PUSH_CLIENT_PROBE slots of its home. */
#define PUSH_CLIENT_SLOTS 4096
#define PUSH_CLIENT_PROBE 32
#define PUSH_CLIENT_COUNT_MASK 0xffffffu
_Static_assert(PROGRESS_PUSH_WORKER_SLOTS <= 256,
               "a client's word holds its worker's slot in 8 bits");

static const char event_progress[] = "event: progress\ndata: ";
static const char event_timeout[] = "event: timeout\ndata: ";
static const char keepalive[] = ": keep-alive\n\n";

/* --- the count of streams, shared by all workers ----------------------- */

typedef struct {
    _Atomic uint32_t total;
    struct {
        _Atomic int32_t pid;
        _Atomic uint32_t streams;
    } workers[PROGRESS_PUSH_WORKER_SLOTS];
    _Atomic uint64_t client_seed;     /* set once, by the first push made */
    _Atomic uint64_t clients[PUSH_CLIENT_SLOTS];
} push_shared;

/* A remote address as max_streams_per_client counts it: its hash. */
typedef uint64_t push_client;

typedef struct push_stream {
    request_ctx ctx;              /* REQUEST_CTX_STREAM: r->plugin_ctx holds it */
    progress_id id;
    push_client client;
    request_st *r;
    uint32_t index;               /* in progress_push.streams */
    uint32_t remove_timeout_ms;
    int64_t last_event_ms;
    int64_t last_write_ms;
    int64_t starting_since_ms;    /* -1 once the upload has begun */
    size_t last_len;
    char last[PROGRESS_RENDER_MAX];
} push_stream;

struct progress_push {
    progress_push_config config;
    push_shared *shared;
    int worker_slot;              /* -1: none claimed (yet) */
    uint64_t client_seed;

    server *srv;                  /* NULL until the timer is made */
    fdnode *fdn;
    int timer_fd;
    int64_t armed_for_ms;         /* 0: disarmed */
    int64_t next_push_ms;
    int64_t next_publish_ms;
    uint32_t uploads_in_flight;

    push_stream **streams;
    uint32_t nstreams;
};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

size_t progress_push_shared_bytes(void)
{
    return sizeof(push_shared);
}

progress_push *progress_push_create(const progress_push_config * const config, void * const shared)
{
    progress_push * const push = ck_calloc(1, sizeof(*push));
    push->config = *config;
    push->shared = shared;        /* zero-filled: no streams, no workers */
    push->worker_slot = -1;
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed)
        seed = (uint64_t)monotonic_ms() ^ ((uint64_t)getpid() << 32);
    uint64_t unset = 0;
    atomic_compare_exchange_strong(&push->shared->client_seed, &unset, seed | 1);
    push->client_seed = atomic_load(&push->shared->client_seed);
    push->timer_fd = -1;
    return push;
}

static void stream_free(progress_push * const push, push_stream * const s);

void progress_push_free(progress_push * const push)
{
    if (NULL == push) return;
    while (push->nstreams)
        stream_free(push, push->streams[push->nstreams - 1]);
    free(push->streams);
    if (NULL != push->fdn) {
        fdevent_fdnode_event_del(push->srv->ev, push->fdn);
        fdevent_unregister(push->srv->ev, push->fdn);
    }
    if (push->timer_fd >= 0) close(push->timer_fd);
    free(push);
}

/* This worker's place in the shared count, claimed at its first stream:
 * whether it has one.  A worker without one serves no stream (a stream
 * counted in the total alone would stay counted after the worker died). */
static int claim_worker_slot(progress_push * const push)
{
    if (push->worker_slot >= 0) return 1;
    const int32_t pid = (int32_t)getpid();
    for (int i = 0; i < PROGRESS_PUSH_WORKER_SLOTS; ++i) {
        int32_t free_pid = 0;
        if (atomic_compare_exchange_strong(&push->shared->workers[i].pid,
                                           &free_pid, pid)) {
            push->worker_slot = i;
            return 1;
        }
    }
    return 0;
}

static int count_stream_in(progress_push * const push)
{
    uint32_t total = atomic_load(&push->shared->total);
    do {
        if (total >= push->config.max_streams) return 0;
    } while (!atomic_compare_exchange_weak(&push->shared->total, &total, total + 1));
    atomic_fetch_add(&push->shared->workers[push->worker_slot].streams, 1);
    return 1;
}

static void count_stream_out(progress_push * const push)
{
    atomic_fetch_sub(&push->shared->total, 1);
    atomic_fetch_sub(&push->shared->workers[push->worker_slot].streams, 1);
}

/* --- the streams of each client, shared ------------------------------------ */

static uint64_t client_word(const uint32_t tag, const int worker, const uint32_t count)
{
    return (uint64_t)tag << 32 | (uint64_t)(worker & 0xff) << 24 | count;
}

static uint32_t word_count(const uint64_t v) { return (uint32_t)v & PUSH_CLIENT_COUNT_MASK; }
static uint32_t word_tag(const uint64_t v) { return (uint32_t)(v >> 32); }
static int word_worker(const uint64_t v) { return (int)(v >> 24 & 0xff); }

/* Takes a place for one more stream of client c in this worker, unless its
 * streams in all workers are max_streams_per_client already.  Workers that
 * admit the same client at the same moment may each see the last place
 * free: the limit holds to within one stream a worker.  A window without
 * room (PUSH_CLIENT_PROBE slots from c's home, all other clients') refuses
 * the stream, as over the limit: admitted uncounted, one client could pass
 * the cap. */
static int count_client_in(progress_push * const push, const push_client c)
{
    const int worker = push->worker_slot;
    const uint32_t home = (uint32_t)c & (PUSH_CLIENT_SLOTS - 1);
    const uint32_t tag = (uint32_t)(c >> 32);
    for (;;) {
        uint32_t total = 0;
        _Atomic uint64_t *mine = NULL, *room = NULL;
        uint64_t mine_v = 0, room_v = 0;
        for (uint32_t i = 0; i < PUSH_CLIENT_PROBE; ++i) {
            _Atomic uint64_t * const slot =
              &push->shared->clients[(home + i) & (PUSH_CLIENT_SLOTS - 1)];
            const uint64_t v = atomic_load(slot);
            if (0 == word_count(v)) {
                if (NULL == room) { room = slot; room_v = v; }
            } else if (word_tag(v) == tag) {
                total += word_count(v);
                if (word_worker(v) == worker) { mine = slot; mine_v = v; }
            }
        }
        if (total >= push->config.max_streams_per_client) return 0;
        if (NULL != mine) {
            if (!atomic_compare_exchange_strong(mine, &mine_v, mine_v + 1))
                continue;
        } else if (NULL == room) {
            return 0;   /* no place to count it: uncounted, the cap would not hold */
        } else if (!atomic_compare_exchange_strong(room, &room_v,
                                                   client_word(tag, worker, 1))) {
            continue;
        }
        return 1;
    }
}

/* Gives back the place of a stream of client c in this worker. */
static void count_client_out(progress_push * const push, const push_client c)
{
    const uint32_t home = (uint32_t)c & (PUSH_CLIENT_SLOTS - 1);
    const uint32_t tag = (uint32_t)(c >> 32);
    for (uint32_t i = 0; i < PUSH_CLIENT_PROBE; ++i) {
        _Atomic uint64_t * const slot =
          &push->shared->clients[(home + i) & (PUSH_CLIENT_SLOTS - 1)];
        const uint64_t v = atomic_load(slot);
        if (0 != word_count(v) && word_tag(v) == tag
            && word_worker(v) == push->worker_slot) {
            atomic_fetch_sub(slot, 1);   /* (only this worker counts it) */
            return;
        }
    }
}

/* In the watcher: worker slot w is gone; its clients' places go too. */
static void clients_of_worker_gone(push_shared * const shared, const int w)
{
    for (uint32_t i = 0; i < PUSH_CLIENT_SLOTS; ++i) {
        uint64_t v = atomic_load(&shared->clients[i]);
        while (0 != word_count(v) && word_worker(v) == w
               && !atomic_compare_exchange_weak(&shared->clients[i], &v,
                                                v & ~(uint64_t)PUSH_CLIENT_COUNT_MASK))
            ;
    }
}

void progress_push_worker_gone(progress_push * const push, const pid_t pid)
{
    for (int i = 0; i < PROGRESS_PUSH_WORKER_SLOTS; ++i) {
        if (atomic_load(&push->shared->workers[i].pid) != (int32_t)pid)
            continue;
        clients_of_worker_gone(push->shared, i);
        const uint32_t n = atomic_exchange(&push->shared->workers[i].streams, 0);
        atomic_fetch_sub(&push->shared->total, n);
        atomic_store(&push->shared->workers[i].pid, 0);
        return;
    }
}

/* --- the timer ----------------------------------------------------------- */

static handler_t push_on_timer(void *ctx, int revents);

static int timer_ready(progress_push * const push, server * const srv)
{
    if (NULL != push->fdn) return 1;
    push->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (push->timer_fd < 0) return 0;
    push->srv = srv;
    push->fdn = fdevent_register(srv->ev, push->timer_fd, push_on_timer, push);
    fdevent_fdnode_event_set(srv->ev, push->fdn, FDEVENT_IN);
    return 1;
}

static int publishing(const progress_push * const push)
{
    return push->config.publishes && push->uploads_in_flight > 0;
}

/* Arms the timer for the sooner of what is due, or disarms it. */
static void timer_rearm(progress_push * const push)
{
    int64_t due = 0;
    if (push->nstreams) due = push->next_push_ms;
    if (publishing(push) && (0 == due || push->next_publish_ms < due))
        due = push->next_publish_ms;
    if (due == push->armed_for_ms || push->timer_fd < 0) return;
    struct itimerspec its = { .it_value = { 0, 0 } };
    if (due) {
        its.it_value.tv_sec = (time_t)(due / 1000);
        its.it_value.tv_nsec = (long)(due % 1000) * 1000000;
    }
    timerfd_settime(push->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
    push->armed_for_ms = due;
}

void progress_push_uploads(progress_push * const push, server * const srv, const uint32_t in_flight)
{
    const int was = publishing(push);
    push->uploads_in_flight = in_flight;
    if (!push->config.publishes || was == publishing(push)) return;
    if (!was) {
        if (!timer_ready(push, srv)) return;
        push->next_publish_ms = monotonic_ms() + push->config.publish_ms;
    }
    timer_rearm(push);
}

/* --- streams --------------------------------------------------------------- */

int progress_push_requested(const request_st * const r)
{
    if (HTTP_METHOD_GET != r->http_method) return 0;
    const buffer * const accept =
      http_header_request_get(r, HTTP_HEADER_ACCEPT, CONST_STR_LEN("Accept"));
    return NULL != accept
        && NULL != strcasestr(accept->ptr, "text/event-stream");
}

static void stream_free(progress_push * const push, push_stream * const s)
{
    push_stream * const last = push->streams[--push->nstreams];
    push->streams[s->index] = last;
    last->index = s->index;
    count_stream_out(push);
    count_client_out(push, s->client);
    free(s);
}

static void stream_write(push_stream * const s, const int64_t now, const char * const head, const size_t head_len, const char * const data, const size_t len)
{
    char ev[sizeof(event_timeout) + PROGRESS_RENDER_MAX + 2];
    memcpy(ev, head, head_len);
    memcpy(ev + head_len, data, len);
    memcpy(ev + head_len + len, "\n\n", 2);
    http_chunk_append_mem(s->r, ev, head_len + len + 2);
    s->last_write_ms = now;
}

/* Ends the response with what is queued; the stream goes now. */
static void stream_close(progress_push * const push, push_stream * const s)
{
    request_st * const r = s->r;
    request_end_response(r);
    request_ctx_set(r, push->config.plugin_id, NULL);
    stream_free(push, s);
    request_wake(r);
}

/* The last event: the response ends after it, the stream goes now. */
static void stream_end(progress_push * const push, push_stream * const s, const int64_t now, const char * const head, const size_t head_len, const char * const data, const size_t len)
{
    stream_write(s, now, head, head_len, data, len);
    stream_close(push, s);
}

/* The upload has ended, and so has the work on it: a 202's open work
 * keeps the stream until its outcome (doc/processing.md). */
static int answer_is_final(const progress_snapshot * const snap)
{
    return (PROGRESS_DONE == snap->state || PROGRESS_ERROR == snap->state)
        && PROGRESS_PHASE_PROCESSING != snap->phase;
}

/* One tick of a stream (or its start, with force): sends what changed. */
static void stream_serve(progress_push * const push, push_stream * const s, const int64_t now, const int force)
{
    progress_snapshot snap;
    if (push->config.answer(push->config.glue, &s->id, &snap) < 0)
        return;   /* the table's lock cannot be had: try again next tick */
    char json[PROGRESS_RENDER_MAX];
    const char *content_type;
    const size_t len = progress_render(&snap, PROGRESS_FORMAT_JSON, NULL, 0,
                                       json, sizeof json, &content_type);
    if (answer_is_final(&snap)) {
        stream_end(push, s, now, event_progress, sizeof event_progress - 1, json, len);
        return;
    }
    if (PROGRESS_STARTING != snap.state)
        s->starting_since_ms = -1;
    else if (s->starting_since_ms < 0)
        s->starting_since_ms = now;
    else if (now - s->starting_since_ms >= s->remove_timeout_ms) {
        stream_end(push, s, now, event_timeout, sizeof event_timeout - 1, json, len);
        return;
    }

    if (!force && request_queued(s->r) > PUSH_QUEUE_CAP) return;
    const int changed = len != s->last_len || 0 != memcmp(json, s->last, len);
    if (force || (changed && now - s->last_event_ms >= push->config.push_ms)) {
        stream_write(s, now, event_progress, sizeof event_progress - 1, json, len);
        memcpy(s->last, json, len);
        s->last_len = len;
        s->last_event_ms = now;
    } else if (now - s->last_write_ms >= PUSH_KEEPALIVE_MS) {
        http_chunk_append_mem(s->r, keepalive, sizeof keepalive - 1);
        s->last_write_ms = now;
    } else {
        return;
    }
    request_wake(s->r);
}

/* An IPv4 address (also one mapped into IPv6), the /64 of an IPv6
 * address (what one host is given), or one client for every Unix socket
 * peer. */
static push_client client_of(const progress_push * const push, const request_st * const r)
{
    const sock_addr * const addr = request_remote_addr(r);
    size_t len = 0;
    const uint8_t *from = NULL;
    switch (sock_addr_get_family(addr)) {
      case AF_INET:
        from = (const uint8_t *)&addr->ipv4.sin_addr;
        len = 4;
        break;
     #ifdef HAVE_IPV6
      case AF_INET6:
        from = addr->ipv6.sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&addr->ipv6.sin6_addr)) {
            from += 12;
            len = 4;
        } else {
            len = 8;
        }
        break;
     #endif
      default:
        break;
    }
    /* FNV-1a from a per-server random seed: nobody can pick addresses
     * that share a home on purpose */
    uint64_t h = push->client_seed ^ 0xcbf29ce484222325u;
    h = (h ^ len) * 0x100000001b3u;
    for (size_t i = 0; i < len; ++i)
        h = (h ^ from[i]) * 0x100000001b3u;
    return h ^ h >> 29;
}

static void set_stream_headers(request_st * const r)
{
    http_header_response_set(r, HTTP_HEADER_CONTENT_TYPE,
                             CONST_STR_LEN("Content-Type"),
                             CONST_STR_LEN("text/event-stream"));
    http_header_response_set(r, HTTP_HEADER_CACHE_CONTROL,
                             CONST_STR_LEN("Cache-Control"),
                             CONST_STR_LEN("no-store"));
    /* nginx in front: pass each event on as it comes */
    http_header_response_set(r, HTTP_HEADER_OTHER,
                             CONST_STR_LEN("X-Accel-Buffering"),
                             CONST_STR_LEN("no"));
}

progress_push_start_result progress_push_start(progress_push * const push, request_st * const r, const progress_id * const id, const unsigned int remove_timeout)
{
    if (!timer_ready(push, request_server(r))) return PROGRESS_PUSH_NO_TIMER;
    if (!claim_worker_slot(push)) return PROGRESS_PUSH_NO_WORKER_SLOT;
    const push_client client = client_of(push, r);
    if (!count_client_in(push, client))
        return PROGRESS_PUSH_CLIENT_FULL;
    if (!count_stream_in(push)) {
        count_client_out(push, client);
        return PROGRESS_PUSH_FULL;
    }

    push_stream * const s = ck_calloc(1, sizeof(*s));
    s->ctx.kind = REQUEST_CTX_STREAM;
    s->id = *id;
    s->client = client;
    s->r = r;
    s->remove_timeout_ms = remove_timeout > UINT32_MAX / 1000
                         ? UINT32_MAX : remove_timeout * 1000;
    s->starting_since_ms = -1;
    if (0 == (push->nstreams & 15)) /* grow in steps of 16 */
        ck_realloc_u32((void **)&push->streams, push->nstreams, 16,
                       sizeof(*push->streams));
    s->index = push->nstreams++;
    push->streams[s->index] = s;
    request_ctx_set(r, push->config.plugin_id, &s->ctx);

    set_stream_headers(r);
    r->http_status = 200;
    r->resp_body_finished = 0;
    request_stream_response(r);

    const int64_t now = monotonic_ms();
    if (1 == push->nstreams) push->next_push_ms = now + push->config.push_ms;
    stream_serve(push, s, now, 1); /* (may end it: a final answer) */
    timer_rearm(push);
    return PROGRESS_PUSH_STARTED;
}

handler_t progress_push_subrequest(const request_st * const r)
{
    return request_client_closed(r) ? HANDLER_ERROR : HANDLER_GO_ON;
}

void progress_push_reset(progress_push * const push, request_st * const r)
{
    if (REQUEST_CTX_STREAM != request_ctx_kind(r, push->config.plugin_id))
        return;
    push_stream * const s = (push_stream *)request_ctx_get(r, push->config.plugin_id);
    request_ctx_set(r, push->config.plugin_id, NULL);
    stream_free(push, s);
    timer_rearm(push);
}

static handler_t push_on_timer(void * const ctx, const int revents)
{
    progress_push * const push = ctx;
    uint64_t expirations;
    UNUSED(revents);
    if (read(push->timer_fd, &expirations, sizeof expirations) < 0
        && EAGAIN != errno)
        return HANDLER_GO_ON;
    push->armed_for_ms = 0; /* a one-shot that has fired */
    const int64_t now = monotonic_ms();
    if (publishing(push) && now >= push->next_publish_ms) {
        push->config.publish(push->config.glue);
        push->next_publish_ms = now + push->config.publish_ms;
    }
    if (server_shutting_down(push->srv)) {
        /* no final event: EventSource connects again, to the next server */
        while (push->nstreams)
            stream_close(push, push->streams[push->nstreams - 1]);
    }
    if (push->nstreams && now >= push->next_push_ms) {
        /* from the end: a stream that ends swaps the last one into its place */
        for (uint32_t i = push->nstreams; i-- > 0; )
            stream_serve(push, push->streams[i], now, 0);
        push->next_push_ms = now + push->config.push_ms;
    }
    timer_rearm(push);
    return HANDLER_GO_ON;
}
