/* SPDX-License-Identifier: MIT */
/*
 * The freeze and thaw sequences (freezer.h): the order of the steps and
 * what a failure undoes, on primitive steps a caller provides. Pure logic
 * apart from those steps, so a fake drives every path in unit tests.
 */
#include "services/backup/freezer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void bk_output_add(char *out, size_t cap, const char *fmt, ...)
{
	size_t len = strnlen(out, cap);
	va_list ap;

	if (len + 1 >= cap)
		return;
	if (len) {
		out[len++] = '\n';
		out[len] = '\0';
	}
	va_start(ap, fmt);
	vsnprintf(out + len, cap - len, fmt, ap);
	va_end(ap);
}

static uint32_t ms_since(const struct bk_freezer_ops *ops, void *ud,
			 uint64_t t0)
{
	uint64_t d = (ops->now_us(ud) - t0) / 1000;

	return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* One hook; its output (if any) goes to out, prefixed by its name. */
static int run_hook(const struct bk_freezer_ops *ops, void *ud,
		    const char *name, const char *arg, char *out, size_t cap)
{
	char text[1024] = "";
	int r = ops->hook(ud, name, arg, text, sizeof(text));

	if (r < 0)
		bk_output_add(out, cap, "hook %s %s failed: %s", name, arg,
			      text[0] ? text : strerror(-r));
	else if (text[0])
		bk_output_add(out, cap, "hook %s %s: %s", name, arg, text);
	return r;
}

/* Hooks [0, n) get `arg` in reverse order. */
static void hooks_reverse(const struct bk_freezer_ops *ops, void *ud,
			  const struct bk_hooks *hooks, unsigned n,
			  const char *arg, char *out, size_t cap)
{
	while (n-- > 0)
		run_hook(ops, ud, hooks->name[n], arg, out, cap);
}

/* FITHAW mounts [0, n) in reverse order; the first real failure. */
static int thaw_reverse(const struct bk_freezer_ops *ops, void *ud,
			const struct vmic_bk_mounts *m, unsigned n, char *out,
			size_t cap, uint64_t *last_us)
{
	int first = 0;

	while (n-- > 0) {
		int r = ops->thaw(ud, m->path[n]);

		*last_us = ops->now_us(ud);
		if (r == -EINVAL)
			continue; /* thawed already: mounted twice */
		if (r < 0) {
			bk_output_add(out, cap, "FITHAW %s: %s", m->path[n],
				      strerror(-r));
			if (!first)
				first = r;
		}
	}
	return first;
}

/* Undo a freeze that failed at `frozen` mounts and `hooks_ran` hooks. */
static void freeze_undo(const struct bk_freezer_ops *ops, void *ud,
			const struct bk_hooks *hooks, unsigned hooks_ran,
			struct bk_freeze_result *res)
{
	thaw_reverse(ops, ud, &res->frozen, res->frozen.count, res->output,
		     sizeof(res->output), &res->last_thaw_us);
	res->frozen.count = 0;
	hooks_reverse(ops, ud, hooks, hooks_ran, "freeze-fail", res->output,
		      sizeof(res->output));
}

void bk_engine_freeze(const struct bk_freezer_ops *ops, void *ud,
		      const struct bk_hooks *hooks,
		      const struct vmic_bk_mounts *mounts,
		      struct bk_freeze_result *res)
{
	uint64_t t0 = ops->now_us(ud);
	unsigned i;
	int r;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < hooks->count; i++) {
		r = run_hook(ops, ud, hooks->name[i], "freeze", res->output,
			     sizeof(res->output));
		if (r < 0) {
			res->err = r;
			/* The failing hook may have done half its work. */
			freeze_undo(ops, ud, hooks, i + 1, res);
			return;
		}
	}
	res->hooks_ms = ms_since(ops, ud, t0);
	t0 = ops->now_us(ud);
	r = ops->sync(ud, mounts);
	res->sync_ms = ms_since(ops, ud, t0);
	if (r < 0) {
		/* Not fatal: FIFREEZE flushes each filesystem itself. */
		bk_output_add(res->output, sizeof(res->output), "sync: %s",
			      strerror(-r));
	}
	t0 = ops->now_us(ud);
	res->first_freeze_us = t0;
	for (i = 0; i < mounts->count; i++) {
		r = ops->freeze(ud, mounts->path[i]);
		if (r < 0 && r != -EBUSY) {
			bk_output_add(res->output, sizeof(res->output),
				      "FIFREEZE %s: %s", mounts->path[i],
				      strerror(-r));
			res->err = r;
			freeze_undo(ops, ud, hooks, hooks->count, res);
			return;
		}
		memcpy(res->frozen.path[res->frozen.count++], mounts->path[i],
		       sizeof(mounts->path[i]));
	}
	res->freeze_ms = ms_since(ops, ud, t0);
}

void bk_engine_thaw(const struct bk_freezer_ops *ops, void *ud,
		    const struct bk_hooks *hooks,
		    const struct vmic_bk_mounts *frozen,
		    struct bk_thaw_result *res)
{
	uint64_t t0 = ops->now_us(ud);
	int r;

	memset(res, 0, sizeof(*res));
	res->last_thaw_us = t0;
	res->err = thaw_reverse(ops, ud, frozen, frozen->count, res->output,
				sizeof(res->output), &res->last_thaw_us);
	res->thaw_ms = ms_since(ops, ud, t0);
	t0 = ops->now_us(ud);
	for (unsigned n = hooks->count; n-- > 0;) {
		r = run_hook(ops, ud, hooks->name[n], "thaw", res->output,
			     sizeof(res->output));
		if (r < 0 && !res->err)
			res->err = r;
	}
	res->hooks_ms = ms_since(ops, ud, t0);
}
