/* tests/unit/guard.h: byte strings that end right before an unreadable page.
 *
 * Owns: guard_dup()/guard_free() for tests. A copy of the input is placed so
 * that its last byte is the last byte of a readable page and the next page is
 * PROT_NONE: a parser that reads even one byte past the end faults at once,
 * which ASan alone does not promise for reads that land in another object.
 * Not here: anything a production file may include.
 */
#ifndef MIKA_TESTS_GUARD_H
#define MIKA_TESTS_GUARD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static inline size_t guard_pages_for(size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (len + page - 1) / page + 1; /* data pages + the guard page */
}

/* Returns a copy of s[0..len) ending at a guard page; free with guard_free
 * and the same len. Aborts the test program if the mapping fails. */
static inline char *guard_dup(const void *s, size_t len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = guard_pages_for(len);
    uint8_t *map = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                        -1, 0);
    if (map == MAP_FAILED) {
        perror("guard_dup: mmap");
        abort();
    }
    uint8_t *guard = map + (pages - 1) * page;
    if (mprotect(guard, page, PROT_NONE) != 0) {
        perror("guard_dup: mprotect");
        abort();
    }
    char *p = (char *)guard - len;
    if (len) {
        memcpy(p, s, len);
    }
    return p;
}

static inline char *guard_dup_str(const char *s)
{
    return guard_dup(s, strlen(s));
}

static inline void guard_free(char *p, size_t len)
{
    if (!p) {
        return;
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = guard_pages_for(len);
    uint8_t *guard = (uint8_t *)p + len;
    munmap(guard - (pages - 1) * page, pages * page);
}

#endif /* MIKA_TESTS_GUARD_H */
