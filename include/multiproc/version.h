/* multiproc — version, export macro and the constants every module shares. */
#ifndef MULTIPROC_VERSION_H
#define MULTIPROC_VERSION_H

#define MP_VERSION_MAJOR  0
#define MP_VERSION_MINOR  1
#define MP_VERSION_PATCH  0
#define MP_VERSION_STRING "0.1.0"

/* The library is built with hidden visibility; MP_API marks what it exports. */
#if defined(MP_BUILDING_LIBRARY) && defined(__GNUC__)
#define MP_API __attribute__((visibility("default")))
#else
#define MP_API
#endif

/* Timeouts are seconds as a double, like Python. A negative value (use
 * MP_FOREVER) waits without limit; 0 never blocks. */
#define MP_FOREVER (-1.0)

#endif /* MULTIPROC_VERSION_H */
