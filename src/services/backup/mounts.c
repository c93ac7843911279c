/* SPDX-License-Identifier: MIT */
/* The filesystems a freeze covers (mounts.h). */
#include "services/backup/mounts.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct mnt {
	char dev[VMIC_BK_PATH_MAX + 1];
	char dir[VMIC_BK_PATH_MAX + 1];
	char type[64];
	bool ro;
};

/* The kernel writes space, tab, newline and backslash as \ooo. */
static void unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n && o + 1 < cap; i++) {
		if (s[i] == '\\' && i + 3 < n &&
		    s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
		    s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
			out[o++] = (char)((s[i + 1] - '0') * 64 +
					  (s[i + 2] - '0') * 8 +
					  (s[i + 3] - '0'));
			i += 3;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
}

/* The next whitespace-separated field of *p. */
static bool field(const char **p, const char **s, size_t *n)
{
	while (**p == ' ' || **p == '\t')
		(*p)++;
	*s = *p;
	while (**p && **p != ' ' && **p != '\t' && **p != '\n')
		(*p)++;
	*n = (size_t)(*p - *s);
	return *n > 0;
}

static bool opts_ro(const char *s, size_t n)
{
	return (n == 2 || (n > 2 && s[2] == ',')) && strncmp(s, "ro", 2) == 0;
}

/* One line of the table; false for a line that does not parse. */
static bool parse_line(const char *line, struct mnt *m)
{
	const char *p = line, *s;
	size_t n;

	if (!field(&p, &s, &n))
		return false;
	unescape(s, n, m->dev, sizeof(m->dev));
	if (!field(&p, &s, &n))
		return false;
	unescape(s, n, m->dir, sizeof(m->dir));
	if (!field(&p, &s, &n))
		return false;
	snprintf(m->type, sizeof(m->type), "%.*s", (int)n, s);
	if (!field(&p, &s, &n))
		return false;
	m->ro = opts_ro(s, n);
	return true;
}

/* The last line of the table mounted on dir (the visible mount). */
static bool find_mount(const char *table, const char *dir, struct mnt *out)
{
	struct mnt m;
	bool found = false;

	for (const char *l = table; l && *l;) {
		const char *nl = strchr(l, '\n');

		if (parse_line(l, &m) && strcmp(m.dir, dir) == 0) {
			*out = m;
			found = true;
		}
		l = nl ? nl + 1 : NULL;
	}
	return found;
}

/* dir is in the comma-separated list. */
static bool in_list(const char *list, const char *dir)
{
	size_t len = strlen(dir);

	for (const char *p = list; p && *p;) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		while (n && (*p == ' ' || *p == '\t')) {
			p++;
			n--;
		}
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == len && strncmp(p, dir, n) == 0)
			return true;
		p = end ? end + 1 : NULL;
	}
	return false;
}

static bool listed(const struct vmic_bk_mounts *o, const char *dir)
{
	for (unsigned i = 0; i < o->count; i++)
		if (strcmp(o->path[i], dir) == 0)
			return true;
	return false;
}

static int add(struct vmic_bk_mounts *o, const char *dir, char *err,
	       size_t n)
{
	if (listed(o, dir))
		return 0;
	if (o->count >= VMIC_BK_MOUNTS_MAX) {
		snprintf(err, n, "more than %d filesystems to freeze; "
				 "name fewer in [backup] include",
			 VMIC_BK_MOUNTS_MAX);
		return -E2BIG;
	}
	snprintf(o->path[o->count++], sizeof(o->path[0]), "%s", dir);
	return 0;
}

/* Move `/` to the end: the root filesystem is frozen last. */
static void root_last(struct vmic_bk_mounts *o)
{
	char tmp[VMIC_BK_PATH_MAX + 1];

	for (unsigned i = 0; i + 1 < o->count; i++) {
		if (strcmp(o->path[i], "/") != 0)
			continue;
		memcpy(tmp, o->path[i], sizeof(tmp));
		memmove(o->path[i], o->path[i + 1],
			(o->count - i - 1) * sizeof(o->path[0]));
		memcpy(o->path[o->count - 1], tmp, sizeof(tmp));
		return;
	}
}

static int select_included(const char *table, const char *include,
			   struct vmic_bk_mounts *o, char *err, size_t n)
{
	char dir[VMIC_BK_PATH_MAX + 1];
	struct mnt m;
	int r;

	for (const char *p = include; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		snprintf(dir, sizeof(dir), "%.*s", (int)len, p);
		p = end ? end + 1 : NULL;
		if (!dir[0])
			continue;
		if (!find_mount(table, dir, &m)) {
			snprintf(err, n, "'%s' (in [backup] include or "
					 "--freeze-only) is not a mount point",
				 dir);
			return -EINVAL;
		}
		if (m.ro) {
			snprintf(err, n, "'%s' is mounted read-only: nothing "
					 "to freeze; leave it out of "
					 "[backup] include",
				 dir);
			return -EINVAL;
		}
		if ((r = add(o, dir, err, n)) < 0)
			return r;
	}
	return 0;
}

/* The rules of Hyper-V's Linux VSS daemon (shared/references.md). */
static bool freezable(const struct mnt *m)
{
	return strncmp(m->dev, "/dev/", 5) == 0 &&
	       strncmp(m->dev, "/dev/loop", 9) != 0 && !m->ro &&
	       strcmp(m->type, "vfat") != 0;
}

static int select_all(const char *table, const char *exclude,
		      struct vmic_bk_mounts *o, char *err, size_t n)
{
	struct mnt m, visible;
	int r;

	for (const char *l = table; l && *l;) {
		const char *nl = strchr(l, '\n');
		bool ok = parse_line(l, &m);

		l = nl ? nl + 1 : NULL;
		/* A later mount over the same point hides this one. */
		if (!ok || !find_mount(table, m.dir, &visible) ||
		    strcmp(visible.dev, m.dev) != 0 || !freezable(&visible) ||
		    in_list(exclude, m.dir))
			continue;
		if ((r = add(o, m.dir, err, n)) < 0)
			return r;
	}
	return 0;
}

int bk_mounts_select(const char *table, const char *include,
		     const char *exclude, struct vmic_bk_mounts *out,
		     char *err, size_t n)
{
	int r;

	memset(out, 0, sizeof(*out));
	err[0] = '\0';
	if (include && include[strspn(include, " \t,")])
		r = select_included(table, include, out, err, n);
	else
		r = select_all(table, exclude, out, err, n);
	if (r < 0) {
		out->count = 0;
		return r;
	}
	root_last(out);
	return 0;
}
