/* SPDX-License-Identifier: MIT */
/*
 * The Auto pool (2): what the guest says about itself, under Hyper-V's
 * key names (references.md), with values made the way hv_kvp_daemon
 * makes them: OSName from os-release NAME (uname's sysname without it),
 * OSMajorVersion and OSMinorVersion from VERSION_ID split at its first
 * dot, OSVersion the kernel release up to its first '-', OSBuildNumber
 * the whole kernel release, ProcessorArchitecture the machine, and the
 * interfaces' addresses (loopback left out) joined by ';'. The FQDN is
 * the host name when it has a dot, else the first name with a dot on an
 * /etc/hosts line that names the host (no DNS: the agent must not hang
 * on a resolver, and a static agent has no NSS).
 *
 * The facts are collected again when they may have changed: netlink
 * reports an address or link change, the kernel's host name changes
 * (/proc/sys/kernel/hostname wakes poll() with POLLPRI), and at every
 * session of the service. Nothing polls on a timer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/log.h"
#include "common/os-release.h"
#include "common/strbuf.h"
#include "common/utf8.h"
#include "services/kvp/guest.h"

/* A burst of netlink messages (an interface coming up) is one refresh. */
#define AUTO_SETTLE_MS 200

/* One record; a value that is not valid UTF-8 is cleaned. */
static void put(struct kvp_table *t, const char *key, const char *value)
{
	char clean[VMIC_KVP_VALUE_MAX + 1];

	vmic_utf8_sanitize(clean, sizeof(clean), value, strlen(value));
	kvp_table_set(t, key, strlen(key), clean, strlen(clean), 0, NULL,
		      NULL);
}

static void os_release(char *name, size_t nn, char *version, size_t vn)
{
	char line[512];
	FILE *f = vmic_os_release_open();

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (!vmic_os_release_value(line, "NAME", name, nn))
			vmic_os_release_value(line, "VERSION_ID", version, vn);
	}
	fclose(f);
}

/* Does a whitespace-separated list of names hold `name`? */
static bool names_hold(const char *list, const char *name)
{
	size_t n = strlen(name);

	while (*list) {
		size_t len;

		list += strspn(list, " \t");
		len = strcspn(list, " \t\n#");
		if (len == n && strncmp(list, name, n) == 0)
			return true;
		if (len == 0 || list[len] == '#' || list[len] == '\n' ||
		    list[len] == '\0')
			return false;
		list += len;
	}
	return false;
}

/* The host's FQDN (see the top of the file) into out. */
static void fqdn(const char *host, char *out, size_t n)
{
	char line[1024];
	FILE *f;

	snprintf(out, n, "%s", host);
	if (strchr(host, '.') || !(f = fopen("/etc/hosts", "re")))
		return;
	while (fgets(line, sizeof(line), f)) {
		char *names = line + strcspn(line, " \t");
		char *first;
		size_t len;

		if (line[0] == '#' || !*names || !names_hold(names, host))
			continue;
		/* The first name with a dot on the line. */
		for (first = names; *first;) {
			first += strspn(first, " \t");
			len = strcspn(first, " \t\n#");
			if (len == 0 || first[len] == '#')
				break;
			if (memchr(first, '.', len)) {
				snprintf(out, n, "%.*s", (int)len, first);
				fclose(f);
				return;
			}
			first += len;
		}
	}
	fclose(f);
}

/* The addresses of family af on every interface but loopback, joined
 * by ';', cut at an address that does not fit the value. */
static void addresses(const struct ifaddrs *list, int af, char *out, size_t n)
{
	char text[INET6_ADDRSTRLEN];
	size_t off = 0;

	out[0] = '\0';
	for (const struct ifaddrs *a = list; a; a = a->ifa_next) {
		const void *bin;

		if (!a->ifa_addr || a->ifa_addr->sa_family != af ||
		    (a->ifa_flags & IFF_LOOPBACK))
			continue;
		bin = af == AF_INET
			      ? (const void *)&((const struct sockaddr_in *)
							a->ifa_addr)->sin_addr
			      : (const void *)&((const struct sockaddr_in6 *)
							a->ifa_addr)->sin6_addr;
		if (!inet_ntop(af, bin, text, sizeof(text)))
			continue;
		if (off + strlen(text) + 2 > n)
			break;
		off = vmic_appendf(out, n, off, "%s%s", off ? ";" : "", text);
	}
}

void kvp_auto_collect(struct kvp_table *t)
{
	char host[256] = "", full[256], name[256] = "", version[256] = "";
	char major[256], *minor, osver[256], addr[VMIC_KVP_VALUE_MAX + 1];
	struct ifaddrs *ifs = NULL;
	struct utsname u;

	if (gethostname(host, sizeof(host)) < 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	fqdn(host, full, sizeof(full));
	put(t, "FullyQualifiedDomainName", full);
	put(t, "IntegrationServicesVersion", VMIC_VERSION);
	if (getifaddrs(&ifs) == 0) {
		addresses(ifs, AF_INET, addr, sizeof(addr));
		put(t, "NetworkAddressIPv4", addr);
		addresses(ifs, AF_INET6, addr, sizeof(addr));
		put(t, "NetworkAddressIPv6", addr);
		freeifaddrs(ifs);
	}
	if (uname(&u) < 0)
		memset(&u, 0, sizeof(u));
	os_release(name, sizeof(name), version, sizeof(version));
	put(t, "OSName", name[0] ? name : u.sysname);
	snprintf(major, sizeof(major), "%s", version);
	minor = strchr(major, '.');
	if (minor)
		*minor++ = '\0';
	put(t, "OSMajorVersion", major);
	put(t, "OSMinorVersion", minor ? minor : "");
	snprintf(osver, sizeof(osver), "%.*s",
		 (int)strcspn(u.release, "-"), u.release);
	put(t, "OSVersion", osver);
	put(t, "OSBuildNumber", u.release);
	put(t, "ProcessorArchitecture", u.machine);
}

/* ---- what says the facts changed ---- */

void kvp_guest_handle_closed(uv_handle_t *h)
{
	struct kvp_guest *k = h->data;

	k->handles--;
}

static void on_settled(uv_timer_t *t)
{
	struct kvp_guest *k = t->data;

	k->auto_due = true;
	kvp_files_kick(k);
}

/* Something changed: collect once things have settled. */
static void facts_changed(struct kvp_guest *k)
{
	if (!k->stopping && !uv_is_active((uv_handle_t *)&k->auto_timer))
		uv_timer_start(&k->auto_timer, on_settled, AUTO_SETTLE_MS, 0);
}

static void on_netlink(uv_poll_t *p, int status, int events UNUSED)
{
	struct kvp_guest *k = p->data;
	char buf[8192];

	if (status < 0)
		return;
	/* Drain: the messages themselves do not matter, only that some
	 * came (ENOBUFS, an overrun, means the same). */
	while (recv(k->nl_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0 ||
	       errno == ENOBUFS)
		;
	facts_changed(k);
}

static void on_hostname(uv_poll_t *p, int status, int events UNUSED)
{
	struct kvp_guest *k = p->data;
	char buf[256];

	if (status < 0)
		return;
	/* Read it, so the next change is reported again. */
	if (lseek(k->host_fd, 0, SEEK_SET) == 0)
		(void)!read(k->host_fd, buf, sizeof(buf));
	facts_changed(k);
}

static int netlink_open(void)
{
	struct sockaddr_nl sa = {
		.nl_family = AF_NETLINK,
		.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR |
			     RTMGRP_IPV6_IFADDR,
	};
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
			NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

/* Start watching fd with cb on p for events; false when it cannot. */
static bool poll_start(struct kvp_guest *k, uv_poll_t *p, int fd, int events,
		       uv_poll_cb cb)
{
	if (uv_poll_init(agent_loop(k->g), p, fd) < 0)
		return false;
	p->data = k;
	k->handles++;
	if (uv_poll_start(p, events, cb) < 0) {
		uv_close((uv_handle_t *)p, kvp_guest_handle_closed);
		return false;
	}
	return true;
}

void kvp_auto_watch_start(struct kvp_guest *k)
{
	char buf[256];

	uv_timer_init(agent_loop(k->g), &k->auto_timer);
	k->auto_timer.data = k;
	k->handles++;
	k->nl_fd = netlink_open();
	if (k->nl_fd >= 0 &&
	    !poll_start(k, &k->nl_poll, k->nl_fd, UV_READABLE, on_netlink)) {
		close(k->nl_fd);
		k->nl_fd = -1;
	}
	if (k->nl_fd < 0)
		log_info("kvp: no netlink route events; the Auto pool's "
			 "addresses are refreshed at each session only");
	k->host_fd = open("/proc/sys/kernel/hostname", O_RDONLY | O_CLOEXEC);
	if (k->host_fd >= 0 &&
	    (read(k->host_fd, buf, sizeof(buf)) < 0 ||
	     !poll_start(k, &k->host_poll, k->host_fd, UV_PRIORITIZED,
			 on_hostname))) {
		close(k->host_fd);
		k->host_fd = -1;
	}
}

void kvp_auto_watch_stop(struct kvp_guest *k)
{
	uv_close((uv_handle_t *)&k->auto_timer, kvp_guest_handle_closed);
	if (k->nl_fd >= 0) {
		uv_close((uv_handle_t *)&k->nl_poll, kvp_guest_handle_closed);
		close(k->nl_fd);
		k->nl_fd = -1;
	}
	if (k->host_fd >= 0) {
		uv_close((uv_handle_t *)&k->host_poll, kvp_guest_handle_closed);
		close(k->host_fd);
		k->host_fd = -1;
	}
}
