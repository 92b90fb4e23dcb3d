/* lighttpd_version: which lighttpd 1.4 release a LIGHTTPD_VERSION_ID names.
 * lighttpd-free, and made of macros that #if can evaluate, so that
 * src/lighttpd_compat.h chooses its paths with them and the unit tests
 * check them over every patch number.
 *
 * The id depends on the build system that made lighttpd:
 *   autotools    printf("0x%x%02x%02x", 1, 4, patch): 1.4.69 is 0x10445,
 *                1.4.300 is 0x10412c;
 *   meson, CMake "0x104" followed by the patch's decimal digits:
 *                1.4.69 is 0x10469, 1.4.5 is 0x1045, 1.4.105 is 0x104105.
 * The two collide: 0x10469 is autotools' 1.4.105 and meson's 1.4.69, and
 * every id whose low byte is two decimal digits names two releases.  The
 * tree's version (config.h's PACKAGE_VERSION, which meson.build reads and
 * passes) settles it; an id alone is decoded only where it names one
 * release.  Patch numbers 0 to 999 are covered. */
#ifndef LIGHTTPD_VERSION_H
#define LIGHTTPD_VERSION_H

/* What LIGHTTPD_VERSION_PATCH gives when it cannot name a patch number. */
#define LIGHTTPD_VERSION_UNKNOWN   (-1)  /* no 1.4 release, or not the given one */
#define LIGHTTPD_VERSION_AMBIGUOUS (-2)  /* two releases: pass the version */

/* The id of lighttpd 1.4.PATCH as each build system writes it. */
#define LIGHTTPD_VERSION_ID_AUTOTOOLS(patch) \
    ((patch) < 0x100 ? 0x10400 + (patch) : 0x104000 + (patch))
#define LIGHTTPD_VERSION_ID_DIGITS(patch) \
    ((patch) < 10 ? 0x1040 + (patch) \
     : (patch) < 100 ? 0x10400 + (patch) / 10 * 0x10 + (patch) % 10 \
     : 0x104000 + (patch) / 100 * 0x100 + (patch) / 10 % 10 * 0x10 + (patch) % 10)

/* The patch number that ID has in each encoding, or LIGHTTPD_VERSION_UNKNOWN
 * if it is none of that encoding's ids. */
#define LIGHTTPD_VERSION_PATCH_AUTOTOOLS(id) \
    (((id) & ~0xff) == 0x10400 ? (id) & 0xff \
     : ((id) & ~0xfff) == 0x104000 && ((id) & 0xfff) >= 0x100 ? (id) & 0xfff \
     : LIGHTTPD_VERSION_UNKNOWN)

#define LIGHTTPD_VERSION_NIBBLE(id, n) (((id) >> (4 * (n))) & 0xf)
#define LIGHTTPD_VERSION_IS_DIGIT(id, n) (LIGHTTPD_VERSION_NIBBLE(id, n) <= 9)
#define LIGHTTPD_VERSION_IS_LEAD(id, n) \
    (LIGHTTPD_VERSION_NIBBLE(id, n) >= 1 && LIGHTTPD_VERSION_NIBBLE(id, n) <= 9)
#define LIGHTTPD_VERSION_PATCH_DIGITS(id) \
    (((id) & ~0xf) == 0x1040 && LIGHTTPD_VERSION_IS_DIGIT(id, 0) \
       ? (id) & 0xf \
     : ((id) & ~0xff) == 0x10400 && LIGHTTPD_VERSION_IS_LEAD(id, 1) \
       && LIGHTTPD_VERSION_IS_DIGIT(id, 0) \
       ? LIGHTTPD_VERSION_NIBBLE(id, 1) * 10 + LIGHTTPD_VERSION_NIBBLE(id, 0) \
     : ((id) & ~0xfff) == 0x104000 && LIGHTTPD_VERSION_IS_LEAD(id, 2) \
       && LIGHTTPD_VERSION_IS_DIGIT(id, 1) && LIGHTTPD_VERSION_IS_DIGIT(id, 0) \
       ? LIGHTTPD_VERSION_NIBBLE(id, 2) * 100 + LIGHTTPD_VERSION_NIBBLE(id, 1) * 10 \
         + LIGHTTPD_VERSION_NIBBLE(id, 0) \
     : LIGHTTPD_VERSION_UNKNOWN)

/* Whether ID is 1.4.PATCH in either encoding. */
#define LIGHTTPD_VERSION_ID_IS(id, patch) \
    ((id) == LIGHTTPD_VERSION_ID_AUTOTOOLS(patch) \
     || (id) == LIGHTTPD_VERSION_ID_DIGITS(patch))

/* The patch number of lighttpd 1.4 that ID names.  GIVEN is the patch
 * number of the tree's version when known (else negative): then ID must
 * be that release's id in one of the encodings.  Without it, an id that
 * names one release only is decoded, one that names two is
 * LIGHTTPD_VERSION_AMBIGUOUS. */
#define LIGHTTPD_VERSION_PATCH(id, given) \
    ((given) >= 0 \
       ? (LIGHTTPD_VERSION_ID_IS(id, given) ? (given) : LIGHTTPD_VERSION_UNKNOWN) \
     : LIGHTTPD_VERSION_PATCH_AUTOTOOLS(id) < 0 ? LIGHTTPD_VERSION_PATCH_DIGITS(id) \
     : LIGHTTPD_VERSION_PATCH_DIGITS(id) < 0 ? LIGHTTPD_VERSION_PATCH_AUTOTOOLS(id) \
     : LIGHTTPD_VERSION_AMBIGUOUS)

#endif
