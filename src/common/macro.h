/* SPDX-License-Identifier: MIT */
/* Small helpers shared by every vmic program: cleanup attributes, sizes. */
#ifndef VMIC_MACRO_H
#define VMIC_MACRO_H

#include <errno.h>
#include <stdlib.h>
#include <sys/param.h>
#include <unistd.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* MIN and MAX come from <sys/param.h>, which libuv also includes. */
#define UNUSED __attribute__((unused))
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

/* `_cleanup_free_ char *s = NULL;` frees s when it leaves scope. */
#define _cleanup_free_ __attribute__((cleanup(freep)))
/* `_cleanup_close_ int fd = -1;` closes fd when it leaves scope. */
#define _cleanup_close_ __attribute__((cleanup(closep)))

/* Hand ownership out of a cleanup variable: returns the value, clears it. */
#define TAKE_PTR(p)                       \
	({                                \
		__typeof__(p) _tmp_ = (p); \
		(p) = NULL;               \
		_tmp_;                    \
	})
#define TAKE_FD(fd)               \
	({                        \
		int _tmp_ = (fd); \
		(fd) = -1;        \
		_tmp_;            \
	})

#endif
