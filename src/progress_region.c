/* memfd_create, F_ADD_SEALS */
#define _GNU_SOURCE

#include "progress_region.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)
#define ALIGN 64 /* the counters' cache lines */
#define PAGE 4096 /* the table starts on a page: a group of its slots is one page */

static const char MAGIC[8] = "uplprog"; /* (and its NUL) */

struct region_header {
    char magic[8];
    uint32_t layout;         /* PROGRESS_REGION_LAYOUT */
    uint32_t table_layout;   /* PROGRESS_TABLE_LAYOUT */
    uint32_t slot_bytes;     /* progress_table_slot_bytes() */
    uint32_t max_entries;
    uint64_t counters_bytes; /* the counters follow the header */
    uint64_t table_at;
    uint64_t table_bytes;
    uint64_t total_bytes;
    uint64_t check;          /* of the bytes above: a torn or stray write */
};

static size_t align_up(size_t n)
{
    return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

size_t progress_region_header_bytes(void)
{
    return align_up(sizeof(struct region_header));
}

/* FNV-1a of the header up to its check. */
static uint64_t header_check(const struct region_header *h)
{
    const unsigned char *b = (const unsigned char *)h;
    uint64_t x = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < offsetof(struct region_header, check); ++i)
        x = (x ^ b[i]) * 0x100000001b3ULL;
    return x;
}

/* The header this build writes for max_entries (total_bytes 0: too big). */
static struct region_header header_for(uint32_t max_entries)
{
    struct region_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, sizeof MAGIC);
    h.layout = PROGRESS_REGION_LAYOUT;
    h.table_layout = PROGRESS_TABLE_LAYOUT;
    h.slot_bytes = (uint32_t)progress_table_slot_bytes();
    h.max_entries = max_entries;
    h.counters_bytes = progress_counters_bytes();
    h.table_at = (progress_region_header_bytes() + h.counters_bytes + PAGE - 1) & ~(uint64_t)(PAGE - 1);
    h.table_bytes = progress_table_bytes(max_entries);
    if (h.table_bytes != 0 && h.table_bytes <= SIZE_MAX - h.table_at
        && h.table_at + h.table_bytes <= (uint64_t)INT64_MAX)
        h.total_bytes = h.table_at + h.table_bytes;
    h.check = header_check(&h);
    return h;
}

static void say(char *why, size_t len, const char *fmt, int n)
{
    if (why && len) snprintf(why, len, fmt, n);
}

/* fd_text as an fd number: decimal digits only; -1 if not. */
static int parse_fd(const char *text)
{
    long n = 0;
    if (!*text) return -1;
    for (const char *c = text; *c; ++c) {
        if (*c < '0' || *c > '9' || n > (INT_MAX - 9) / 10) return -1;
        n = n * 10 + (*c - '0');
    }
    return (int)n;
}

static void place(progress_region *r, const struct region_header *h)
{
    r->counters = (progress_counters *)((char *)r->base + progress_region_header_bytes());
    r->max_entries = h->max_entries;
}

/* What the mapped region's header says of itself, against this build. */
static progress_region_result judge(progress_region *r, char *why, size_t len)
{
    const struct region_header *h = r->base;
    if (r->bytes < sizeof *h || 0 != memcmp(h->magic, MAGIC, sizeof MAGIC)) {
        say(why, len, "fd %d: no region header", r->fd);
        return PROGRESS_REGION_DAMAGED;
    }
    if (h->layout != PROGRESS_REGION_LAYOUT) {
        if (why && len)
            snprintf(why, len, "layout %u, this build's is %u", h->layout,
                     PROGRESS_REGION_LAYOUT);
        return PROGRESS_REGION_OTHER_LAYOUT;
    }
    if (h->check != header_check(h)) {
        say(why, len, "fd %d: its header's check does not match", r->fd);
        return PROGRESS_REGION_DAMAGED;
    }
    const struct region_header want = header_for(h->max_entries);
    if (h->table_layout != want.table_layout || h->slot_bytes != want.slot_bytes
        || h->counters_bytes != want.counters_bytes) {
        if (why && len)
            snprintf(why, len, "table layout %u with %u-byte entries and %u "
                     "bytes of counters, this build's is %u with %u and %u",
                     h->table_layout, h->slot_bytes, (unsigned)h->counters_bytes,
                     want.table_layout, want.slot_bytes,
                     (unsigned)want.counters_bytes);
        return PROGRESS_REGION_OTHER_LAYOUT;
    }
    if (0 != memcmp(h, &want, sizeof want) || want.total_bytes != r->bytes) {
        say(why, len, "fd %d: its header's sizes do not hold", r->fd);
        return PROGRESS_REGION_DAMAGED;
    }
    place(r, h);
    r->table = progress_table_attach((char *)r->base + h->table_at, h->max_entries);
    if (NULL == r->table) {
        say(why, len, "fd %d: the table's own header does not match", r->fd);
        return PROGRESS_REGION_DAMAGED;
    }
    return PROGRESS_REGION_FOUND;
}

/* Maps and checks the region of fd (named by the previous generation). */
static progress_region_result find(progress_region *r, int fd, char *why, size_t len)
{
    const int seals = fcntl(fd, F_GET_SEALS);
    if (seals < 0 && EBADF == errno) {
        say(why, len, "fd %d is not open", fd);
        return PROGRESS_REGION_GONE;
    }
    if (seals != SEALS) {
        say(why, len, "fd %d is not a region (a sealed memfd)", fd);
        return PROGRESS_REGION_NOT_A_REGION;
    }
    struct stat st;
    r->fd = fd;
    if (0 != fstat(fd, &st) || st.st_size < (off_t)sizeof(struct region_header)
        || (uint64_t)st.st_size > SIZE_MAX) {
        say(why, len, "fd %d: too short for a region", fd);
        return PROGRESS_REGION_DAMAGED;
    }
    r->bytes = (size_t)st.st_size;
    r->base = mmap(NULL, r->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (MAP_FAILED == r->base) {
        r->base = NULL;
        say(why, len, "fd %d cannot be mapped", fd);
        return PROGRESS_REGION_DAMAGED;
    }
    const progress_region_result found = judge(r, why, len);
    if (PROGRESS_REGION_FOUND != found)
        progress_region_unmap(r);
    return found;
}

static int make(progress_region *r, uint32_t max_entries, const uint8_t key[16])
{
    const struct region_header h = header_for(max_entries);
    if (0 == h.total_bytes) {
        errno = EOVERFLOW;
        return -1;
    }
    r->fd = memfd_create("mod_uploadprogress", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (r->fd < 0) return -1;
    r->bytes = (size_t)h.total_bytes;
    if (0 != ftruncate(r->fd, (off_t)r->bytes)
        || 0 != fcntl(r->fd, F_ADD_SEALS, SEALS))
        goto fail;
    /* zero-filled; pages are touched only as entries use them */
    r->base = mmap(NULL, r->bytes, PROT_READ | PROT_WRITE, MAP_SHARED, r->fd, 0);
    if (MAP_FAILED == r->base) {
        r->base = NULL;
        goto fail;
    }
    place(r, &h);
    progress_counters_init(r->counters);
    r->table = progress_table_init((char *)r->base + h.table_at, max_entries, key);
    if (NULL == r->table) {
        errno = ENOTSUP; /* no process-shared robust mutex */
        goto fail;
    }
    memcpy(r->base, &h, sizeof h);
    return 0;
  fail: {
        const int e = errno;
        progress_region_unmap(r);
        close(r->fd);
        r->fd = -1;
        errno = e;
        return -1;
    }
}

progress_region_result progress_region_open(progress_region *r,
                                            const char *fd_text,
                                            uint32_t max_entries,
                                            const uint8_t key[16],
                                            char *why, size_t why_len)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    if (why && why_len) why[0] = '\0';
    progress_region_result result = PROGRESS_REGION_NEW;
    if (NULL != fd_text) {
        const int fd = parse_fd(fd_text);
        if (fd < 0) {
            if (why && why_len)
                snprintf(why, why_len, "\"%.16s\" is not an fd number", fd_text);
            result = PROGRESS_REGION_NOT_A_REGION;
        } else {
            result = find(r, fd, why, why_len);
            if (PROGRESS_REGION_FOUND == result) {
                /* (an exec that brought it along cleared the flag) */
                progress_region_inherit(r, 0);
                return result;
            }
            if (PROGRESS_REGION_OTHER_LAYOUT == result
                || PROGRESS_REGION_DAMAGED == result)
                close(fd); /* a region, but not one to use */
        }
        memset(r, 0, sizeof *r);
        r->fd = -1;
    }
    return 0 == make(r, max_entries, key) ? result : PROGRESS_REGION_FAILED;
}

void progress_region_fd_text(const progress_region *r, char *out, size_t len)
{
    snprintf(out, len, "%d", r->fd);
}

void progress_region_keep_from_exec(const char *fd_text)
{
    const int fd = NULL != fd_text ? parse_fd(fd_text) : -1;
    if (fd >= 0 && fcntl(fd, F_GET_SEALS) >= 0) {   /* a memfd: ours */
        const int flags = fcntl(fd, F_GETFD);
        if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
    }
}

int progress_region_inherit(const progress_region *r, int on)
{
    const int flags = fcntl(r->fd, F_GETFD);
    if (flags < 0) return -1;
    return fcntl(r->fd, F_SETFD, on ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC);
}

void progress_region_unmap(progress_region *r)
{
    if (NULL != r->base) munmap(r->base, r->bytes);
    r->base = NULL;
    r->counters = NULL;
    r->table = NULL;
}
