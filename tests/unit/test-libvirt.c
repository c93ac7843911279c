/* SPDX-License-Identifier: MIT */
/*
 * hostd's libvirt source without libvirtd: the XML extraction on crafted
 * domain XML, and the loop's handling of the worker's messages (what
 * libvirt's lifecycle events become) fed into lv_handle on a real hostd
 * core (host-world.h). The worker's libvirt calls themselves are covered
 * by tests/libvirt/test_libvirt.py against libvirt's test driver, where
 * define/undefine/pause/migrate cannot be caused from outside hostd's
 * connection: those events are tested here, from the message on.
 */
#include "host-world.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/libvirt-internal.h"
#include "host/libvirt-xml.h"
#include "host/libvirt.h"

#define UUID1 "6695eb01-f6a4-8304-79aa-97f2502e193f"
#define UUID2 "6695eb01-f6a4-8304-79aa-97f2502e1940"
#define URI "test:///unit"

static int extract(const char *xml, struct lvx_domain *d, char *err)
{
	return lvx_extract(xml, strlen(xml), d, err, 256);
}

static void test_xml_unix(void **state)
{
	struct lvx_domain d;
	char err[256];

	(void)state;
	assert_int_equal(extract(
		"<domain type='kvm'><name>web1</name><uuid>" UUID1 "</uuid>"
		"<devices><channel type='unix'><source mode='bind' "
		"path='/run/other.sock'/><target type='virtio' "
		"name='org.qemu.guest_agent.0'/></channel>"
		"<channel type='unix'><source mode='bind' "
		"path='/run/vmic/web1.sock'/><target type='virtio' "
		"name='org.vmic.0'/></channel>"
		"<vsock model='virtio'><cid auto='no' address='7'/></vsock>"
		"</devices></domain>", &d, err), 0);
	assert_string_equal(d.name, "web1");
	assert_string_equal(d.uuid, UUID1);
	/* The channel wins over the vsock device. */
	assert_string_equal(d.channel, "unix:/run/vmic/web1.sock");
}

static void test_xml_vsock_and_none(void **state)
{
	struct lvx_domain d;
	char err[256];

	(void)state;
	assert_int_equal(extract("<domain><name>a</name><uuid>" UUID1
				 "</uuid><devices><vsock model='virtio'>"
				 "<cid auto='yes' address='1234'/></vsock>"
				 "</devices></domain>", &d, err), 0);
	assert_string_equal(d.channel, "vsock:1234");
	/* CIDs 0-2 are not a guest's; a channel of another type is not
	 * ours. */
	assert_int_equal(extract("<domain><name>a</name><uuid>" UUID1
				 "</uuid><devices><vsock><cid address='2'/>"
				 "</vsock><channel type='pty'><target "
				 "type='virtio' name='org.vmic.0'/></channel>"
				 "</devices></domain>", &d, err), 0);
	assert_string_equal(d.channel, "");
	assert_string_equal(d.name, "a");
}

static void test_xml_refused(void **state)
{
	static const struct {
		const char *xml, *why;
	} bad[] = {
		{ "<!DOCTYPE d [<!ENTITY x 'y'>]><domain/>", "DTD" },
		{ "<domain><name>a</name>", "does not parse" },
		{ "<other><name>a</name></other>", "not a <domain>" },
		{ "<domain><uuid>" UUID1 "</uuid></domain>", "no <name>" },
		{ "<domain><name>a</name><uuid>12</uuid></domain>", "<uuid>" },
		{ "<domain><name>a</name><uuid>" UUID1 "</uuid><devices>"
		  "<channel type='unix'><source path='rel.sock'/><target "
		  "type='virtio' name='org.vmic.0'/></channel></devices>"
		  "</domain>",
		  "not absolute" },
	};
	struct lvx_domain d;
	char err[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = '\0';
		assert_int_equal(extract(bad[i].xml, &d, err), -EINVAL);
		assert_non_null(strstr(err, bad[i].why));
		assert_string_equal(d.name, ""); /* nothing partial */
	}
}

static void test_xml_size_bound(void **state)
{
	size_t n = LVX_XML_MAX + 1;
	char *big = malloc(n);
	struct lvx_domain d;
	char err[256];

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	assert_int_equal(lvx_extract(big, n, &d, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "larger than 4 MiB"));
	free(big);
}

static void test_snippet(void **state)
{
	char buf[512];

	(void)state;
	assert_true(lvx_channel_snippet("/run/vmic/a.sock", buf,
					sizeof(buf)) > 0);
	assert_non_null(strstr(buf, "path='/run/vmic/a.sock'"));
	assert_non_null(strstr(buf, "name='org.vmic.0'"));
	assert_int_equal(lvx_channel_snippet("/x'y", buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(lvx_channel_snippet("rel", buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(lvx_channel_snippet("/a\033[2J", buf, sizeof(buf)),
			 -EINVAL);
	assert_int_equal(lvx_channel_snippet("/run/a", buf, 16),
			 -ENAMETOOLONG);
}

/* ---- the loop's side, on a real core ---- */

static struct lv *lv_for(struct world *w)
{
	struct lv *lv = calloc(1, sizeof(*lv));

	assert_non_null(lv);
	lv->h = &w->h;
	lv->nuris = 2;
	snprintf(lv->uris[0].uri, sizeof(lv->uris[0].uri), URI);
	snprintf(lv->uris[1].uri, sizeof(lv->uris[1].uri), "test:///other");
	w->h.lv = lv;
	/* vm1 (the world's) becomes a domain of URI. */
	free(w->vm->power_off);
	w->vm->power_off = strdup("libvirt:" UUID1 ":" URI);
	return lv;
}

static void lv_free(struct world *w, struct lv *lv)
{
	for (size_t i = 0; i < lv->nuris; i++) {
		for (size_t j = 0; j < lv->uris[i].nseen; j++)
			free(lv->uris[i].seen[j]);
		free(lv->uris[i].seen);
	}
	w->h.lv = NULL;
	free(lv);
}

static void feed(struct lv *lv, enum lv_msg_kind kind, unsigned uri,
		 const char *name, const char *uuid, const char *channel,
		 uint64_t gap_us)
{
	struct lv_msg *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->kind = kind;
	m->uri = uri;
	m->gap_us = gap_us;
	snprintf(m->dom.name, sizeof(m->dom.name), "%s", name ? name : "");
	snprintf(m->dom.uuid, sizeof(m->dom.uuid), "%s", uuid ? uuid : "");
	snprintf(m->dom.channel, sizeof(m->dom.channel), "%s",
		 channel ? channel : "");
	lv_handle(lv, m);
}

static void synced(struct hostd *h, void *ud)
{
	(void)h;
	*(bool *)ud = true;
}

/* Let the store commit what was handed to it, and its callbacks run. */
static void settle(struct world *w)
{
	bool done = false;

	for (int round = 0; round < 3; round++) {
		done = false;
		events_flush(&w->h);
		events_sync(&w->h, synced, &done);
		/* NOWAIT rounds: the fake clock holds the VMs' timers, so
		 * a blocking run could wait for nothing. */
		for (int i = 0; i < 5000 && !done; i++) {
			uv_run(&w->loop, UV_RUN_NOWAIT);
			if (!done)
				usleep(1000);
		}
		assert_true(done);
	}
	world_pump(w);
}

static void test_stopped_and_resumed(void **state)
{
	struct world *w = *state;
	struct lv *lv = lv_for(w);

	world_answer_heartbeats(w);
	feed(lv, LV_MSG_STOPPED, 0, "vm1", UUID1, NULL, 0);
	assert_true(world_has_event(w, "libvirt", "shut off"));
	assert_string_equal(
		world_service_string(w, VMIC_SVC_HEARTBEAT, "state"),
		"No Contact");
	/* A domain of another URI is not ours to stop. */
	feed(lv, LV_MSG_STOPPED, 1, "vm1", UUID1, NULL, 0);
	/* A resume after 30 s paused: the time service resyncs. */
	feed(lv, LV_MSG_RESUMED, 0, "vm1", UUID1, NULL, 30 * SEC);
	assert_true(world_has_event(w, "timesync", "step its clock"));
	lv_free(w, lv);
}

static void test_defined_then_undefined(void **state)
{
	struct world *w = *state;
	struct lv *lv = lv_for(w);
	struct vm *vm;

	feed(lv, LV_MSG_DOMAIN, 0, "dom2", UUID2, "unix:/nonexistent/d.sock",
	     0);
	settle(w);
	vm = vm_find(&w->h, "dom2");
	assert_non_null(vm);
	assert_string_equal(libvirt_vm_uri(vm), URI);
	assert_string_equal(vm->power_off, "libvirt:" UUID2 ":" URI);
	assert_true(world_has_event(w, "vm-added", "found in libvirt"));
	/* Redefined with another channel: followed. */
	feed(lv, LV_MSG_DOMAIN, 0, "dom2", UUID2, "vsock:99", 0);
	settle(w);
	assert_string_equal(vm_find(&w->h, "dom2")->channel_uri,
			    "vsock:99:5657");
	/* The same name from the other URI does not take it over. */
	feed(lv, LV_MSG_DOMAIN, 1, "dom2", UUID1, "vsock:98", 0);
	settle(w);
	assert_string_equal(vm_find(&w->h, "dom2")->channel_uri,
			    "vsock:99:5657");
	/* Undefined: removed, its events kept. */
	feed(lv, LV_MSG_UNDEFINED, 0, "dom2", UUID2, NULL, 0);
	settle(w);
	assert_null(vm_find(&w->h, "dom2"));
	assert_true(world_has_event(w, "vm-removed", "undefined in libvirt"));
	assert_true(world_has_event(w, "vm-added", "found in libvirt"));
	/* Names libvirt allows and vmic does not are skipped, not cut. */
	feed(lv, LV_MSG_DOMAIN, 0, "bad name", UUID2, "vsock:97", 0);
	settle(w);
	assert_null(vm_find(&w->h, "bad name"));
	lv_free(w, lv);
}

static void test_listing_and_migration(void **state)
{
	struct world *w = *state;
	struct lv *lv = lv_for(w);

	/* vm1 is registered by hand here: a listing never touches it. */
	free(w->vm->power_off);
	w->vm->power_off = NULL;
	feed(lv, LV_MSG_DOMAIN, 0, "dom4", UUID1, "unix:/nonexistent/4.sock",
	     0);
	settle(w);
	assert_non_null(vm_find(&w->h, "dom4"));
	/* A listing without dom4: it was undefined while we were away. */
	feed(lv, LV_MSG_LIST_BEGIN, 0, NULL, NULL, NULL, 0);
	feed(lv, LV_MSG_DOMAIN, 0, "dom3", UUID2, "unix:/nonexistent/3.sock",
	     0);
	feed(lv, LV_MSG_LIST_END, 0, NULL, NULL, NULL, 0);
	settle(w);
	assert_null(vm_find(&w->h, "dom4"));
	assert_non_null(vm_find(&w->h, "dom3"));
	assert_non_null(vm_find(&w->h, "vm1"));
	assert_true(world_has_event(w, "vm-removed", "no longer defined"));
	/* Migrated away: it leaves this host. */
	feed(lv, LV_MSG_LEFT, 0, "dom3", UUID2, NULL, 0);
	settle(w);
	assert_null(vm_find(&w->h, "dom3"));
	assert_true(world_has_event(w, "vm-removed", "migrated"));
	lv_free(w, lv);
}

/* Domains whose XML we cannot read: one log line per 10 s per URI, the
 * rest counted (a domain's owner may redefine bad XML in a loop). */
static void test_skip_log_bounded(void **state)
{
	struct world *w = *state;
	struct lv *lv = lv_for(w);

	for (int i = 0; i < 1000; i++) {
		struct lv_msg *m = calloc(1, sizeof(*m));

		assert_non_null(m);
		m->kind = LV_MSG_STATE;
		m->status = -EINVAL;
		snprintf(m->text, sizeof(m->text), "skipped domain 'x': bad");
		lv_handle(lv, m);
	}
	assert_int_equal(lv->uris[0].skips_held, 999);
	assert_string_equal(lv->uris[0].state, ""); /* not a state change */
	lv_free(w, lv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xml_unix),
		cmocka_unit_test(test_xml_vsock_and_none),
		cmocka_unit_test(test_xml_refused),
		cmocka_unit_test(test_xml_size_bound),
		cmocka_unit_test(test_snippet),
		cmocka_unit_test_setup_teardown(test_stopped_and_resumed,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_defined_then_undefined,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_listing_and_migration,
						world_setup, world_teardown),
		cmocka_unit_test_setup_teardown(test_skip_log_bounded,
						world_setup, world_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
