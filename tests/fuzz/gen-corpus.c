/* SPDX-License-Identifier: MIT */
/*
 * Writes the seed corpora of the fuzz targets with the real encoders:
 *   gen-corpus SRCDIR  ->  SRCDIR/tests/fuzz/corpus/fuzz-frame/..., and
 *                          SRCDIR/tests/services/NAME/corpus/... for
 *                          each service's part (gen_corpus_NAME, from
 *                          tests/services/NAME/corpus.c)
 * The committed seeds were made this way; run it again (ninja -C
 * build-fuzz tests/fuzz/gen-corpus) when a wire format changes. Seeds
 * found by fuzzing and kept as regressions are committed by hand beside
 * them and left alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "corpus.h"
#include "fuzz.h"

#include "common/wire.h"
#include "proto/control.h"
#include "proto/frame.h"
#include "services/heartbeat/heartbeat.h"
#include "proto/hello.h"
#include "proto/session.h"
#include "services/shutdown/shutdown.h"

/* The corpus directory being written (one per service). */
static char outdir[4096];

void put(struct buf *b, const void *p, size_t n)
{
	if (b->n + n > sizeof(b->p))
		abort();
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

void save(const char *fuzzer, const char *name, const void *p,
		 size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", outdir, fuzzer);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, fuzzer, name);
	f = fopen(path, "we");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

void save_text(const char *fuzzer, const char *name, const char *s)
{
	save(fuzzer, name, s, strlen(s));
}

void frame(struct buf *b, uint8_t service, uint8_t type,
		  uint16_t flags, uint32_t req, uint32_t stream,
		  const uint8_t *payload, size_t len)
{
	uint8_t hdr[VMIC_HDR_SIZE];
	struct vmic_frame f = { .service = service, .type = type,
				.flags = flags, .request_id = req,
				.stream_id = stream, .length = (uint32_t)len };

	vmic_frame_put_header(hdr, &f);
	put(b, hdr, sizeof(hdr));
	put(b, payload, len);
}

static size_t hello_payload(uint8_t *out, size_t cap, uint8_t role,
			    uint64_t nonce, uint64_t echo, bool up,
			    unsigned offers)
{
	struct vmic_hello h = {
		.framework = VMIC_FRAMEWORK_VERSION,
		.role = role,
		.flags = up ? VMIC_HELLO_ESTABLISHED : 0,
		.nonce = nonce,
		.echo = echo,
	};
	int n;

	snprintf(h.software, sizeof(h.software), "%s 0.1.0",
		 role == VMIC_ROLE_HOST ? "vmic-hostd" : "vmic-guestd");
	for (unsigned i = 0; i < offers && i < VMIC_HELLO_MAX_OFFERS; i++)
		h.offers[h.count++] = (struct vmic_offer){
			(uint8_t)i, 1, (uint8_t)(1 + i % 3), VMIC_OFFER_ENABLED
		};
	n = vmic_hello_encode(&h, out, cap);
	if (n < 0)
		abort();
	return (size_t)n;
}

void hello_frame(struct buf *b, uint8_t role, uint64_t nonce,
			uint64_t echo, bool up)
{
	uint8_t p[512];
	size_t n = hello_payload(p, sizeof(p), role, nonce, echo, up, 3);

	frame(b, VMIC_SVC_CONTROL, VMIC_CTL_HELLO, 0, 0, 0, p, n);
}

static size_t info_payload(uint8_t *out, size_t cap)
{
	struct vmic_info m = { .uptime_ms = 360000 };
	int n;

	snprintf(m.hostname, sizeof(m.hostname), "web1");
	snprintf(m.os_name, sizeof(m.os_name), "Debian GNU/Linux 12");
	snprintf(m.os_id, sizeof(m.os_id), "debian");
	snprintf(m.os_version, sizeof(m.os_version), "12");
	snprintf(m.kernel_release, sizeof(m.kernel_release), "6.1.0");
	snprintf(m.kernel_version, sizeof(m.kernel_version), "#1 SMP");
	snprintf(m.arch, sizeof(m.arch), "x86_64");
	n = vmic_info_encode(&m, out, cap);
	if (n < 0)
		abort();
	return (size_t)n;
}

static size_t hb_reply_payload(uint8_t *out, size_t cap, bool critical)
{
	struct vmic_hb_reply m = { .seq = 42,
				   .health = critical ? VMIC_HEALTH_CRITICAL
						      : VMIC_HEALTH_OK };

	if (critical)
		snprintf(m.reason, sizeof(m.reason), "nginx.service failed");
	return (size_t)vmic_hb_reply_encode(&m, out, cap);
}

static size_t sd_request_payload(uint8_t *out, size_t cap)
{
	struct vmic_sd_request m = { .action = VMIC_SD_REBOOT,
				     .flags = VMIC_SD_F_FORCE };

	snprintf(m.reason, sizeof(m.reason), "kernel update \xE2\x9C\x93");
	return (size_t)vmic_sd_request_encode(&m, out, cap);
}

static size_t sd_reply_payload(uint8_t *out, size_t cap)
{
	struct vmic_sd_reply m = { .status = 0 };

	snprintf(m.message, sizeof(m.message), "running systemctl reboot");
	return (size_t)vmic_sd_reply_encode(&m, out, cap);
}

static size_t error_payload(uint8_t *out, size_t cap)
{
	struct vmic_error m = { .code = VMIC_E_DISABLED };

	snprintf(m.message, sizeof(m.message), "shutdown is disabled");
	return (size_t)vmic_error_encode(&m, out, cap);
}

static void gen_frame(void)
{
	uint8_t p[1024];
	struct buf b;
	size_t n;

	/* prefix: chunk seed, max chunk (+0x80: seal headers) */
	b.n = 0;
	put(&b, "\x07\x10", 2);
	hello_frame(&b, VMIC_ROLE_HOST, 0x1111, 0, false);
	save("fuzz-frame", "host-hello", b.p, b.n);

	b.n = 0;
	put(&b, "\x03\x05", 2);
	hello_frame(&b, VMIC_ROLE_GUEST, 0x2222, 0x1111, true);
	n = info_payload(p, sizeof(p));
	frame(&b, VMIC_SVC_CONTROL, VMIC_CTL_INFO, 0, 1, 0, p, n);
	n = hb_reply_payload(p, sizeof(p), true);
	frame(&b, VMIC_SVC_HEARTBEAT, VMIC_HB_REPLY, VMIC_F_REPLY, 9, 0, p, n);
	save("fuzz-frame", "guest-session", b.p, b.n);

	b.n = 0;
	put(&b, "\x01\x81", 2);
	vmic_hb_request_encode(41, p, sizeof(p));
	frame(&b, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, 0, 9, 0, p, 8);
	n = sd_request_payload(p, sizeof(p));
	frame(&b, VMIC_SVC_SHUTDOWN, VMIC_SD_REQUEST, 0, 10, 0, p, n);
	vmic_put_le32(p, 0x6);
	frame(&b, VMIC_SVC_CONTROL, VMIC_CTL_SERVICES, 0, 11, 0, p, 4);
	n = sd_reply_payload(p, sizeof(p));
	frame(&b, VMIC_SVC_SHUTDOWN, VMIC_SD_REPLY, VMIC_F_REPLY, 10, 0, p, n);
	save("fuzz-frame", "requests", b.p, b.n);

	/* Stale bytes, then a hello: what resync mode hunts through. */
	b.n = 0;
	put(&b, "\x05\x3f", 2);
	{
		static const char stale[] = "VVMI\x00VMIC\xff\xff\xff\x7f garbage V";

		put(&b, stale, sizeof(stale) - 1);
	}
	vmic_hb_request_encode(40, p, sizeof(p));
	frame(&b, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, 0, 8, 0, p, 8);
	hello_frame(&b, VMIC_ROLE_GUEST, 0x3333, 0, false);
	frame(&b, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, 0, 12, 0, p, 8);
	save("fuzz-frame", "resync", b.p, b.n);

	/* Streams: data, credit, reset. */
	b.n = 0;
	put(&b, "\x09\x82", 2);
	memset(p, 'd', 100);
	frame(&b, VMIC_SVC_HEARTBEAT, VMIC_T_STREAM_DATA, 0, 0, 5, p, 100);
	frame(&b, VMIC_SVC_HEARTBEAT, VMIC_T_STREAM_DATA, VMIC_F_END, 0, 5, p,
	      0);
	vmic_put_le32(p, 65536);
	frame(&b, VMIC_SVC_SHUTDOWN, VMIC_T_STREAM_CREDIT, 0, 0, 5, p, 4);
	n = error_payload(p, sizeof(p));
	frame(&b, VMIC_SVC_SHUTDOWN, VMIC_T_STREAM_RESET, 0, 0, 5, p, n);
	save("fuzz-frame", "streams", b.p, b.n);

	/* Errors: an error reply, an unknown service, a bad length. */
	b.n = 0;
	put(&b, "\x02\x84", 2);
	n = vmic_error_frame(p, VMIC_SVC_HEARTBEAT, 3, VMIC_E_UNKNOWN_TYPE,
			     "unknown message type 9");
	put(&b, p, n);
	frame(&b, VMIC_SVC_KVP, 1, 0, 4, 0, (const uint8_t *)"key", 3);
	frame(&b, VMIC_SVC_HEARTBEAT, VMIC_HB_REQUEST, 0, 5, 0,
	      (const uint8_t *)"short", 5);
	save("fuzz-frame", "errors", b.p, b.n);

	/* A header announcing more than a frame may hold. */
	b.n = 0;
	put(&b, "\x00\x01", 2);
	{
		struct vmic_frame f = { .service = 0, .type = VMIC_CTL_HELLO,
					.length = VMIC_MAX_PAYLOAD + 1 };
		uint8_t hdr[VMIC_HDR_SIZE];

		vmic_frame_put_header(hdr, &f);
		put(&b, hdr, sizeof(hdr));
	}
	save("fuzz-frame", "oversize", b.p, b.n);
}

/* fuzz-stream scripts (the operations are listed in fuzz-stream.c). */
enum { OP_DATA = 0, OP_CREDIT = 1, OP_RESET = 2, OP_OPEN_SEND = 3,
       OP_OPEN_RECV = 3 | 1 << 2, OP_CONSUME = 3 | 2 << 2,
       OP_SEND = 3 | 3 << 2, OP_OWNER_RESET = 3 | 4 << 2 };

/* Bit 7 of the op byte: the frame comes as another service's. */
#define OP_OTHER_SERVICE 0x80

static void op_data(struct buf *b, uint8_t op, uint8_t slot, uint8_t flags,
		    uint32_t len)
{
	uint8_t a[5] = { op, slot, flags };

	vmic_put_le16(a + 3, (uint16_t)(len / 2));
	put(b, a, sizeof(a));
}

static void op_bytes(struct buf *b, uint8_t op, uint8_t slot, const void *p,
		     uint8_t n)
{
	uint8_t a[3] = { op, slot, n };

	put(b, a, sizeof(a));
	put(b, p, n);
}

static void op_owner(struct buf *b, uint8_t op, uint8_t slot, uint8_t arg)
{
	uint8_t a[3] = { op, slot, arg };

	put(b, a, sizeof(a));
}

static void gen_stream(void)
{
	uint8_t p[64];
	struct buf b;
	size_t n;

	/* A receiver with a 1 MiB window, data, consumption, END. */
	b.n = 0;
	op_owner(&b, OP_OPEN_RECV, 0, 16);
	for (int i = 0; i < 6; i++)
		op_data(&b, OP_DATA, 0, 0, VMIC_STREAM_CHUNK);
	op_owner(&b, OP_CONSUME, 0, 64);
	op_data(&b, OP_DATA, 0, 0, VMIC_STREAM_CHUNK);
	op_data(&b, OP_DATA, 0, VMIC_F_END, 100);
	op_data(&b, OP_DATA, 0, 0, 10); /* after END: no such stream */
	save("fuzz-stream", "receive", b.p, b.n);

	/* A sender: credit, sending, a reset from the peer. */
	b.n = 0;
	op_owner(&b, OP_OPEN_SEND, 1, 0);
	op_owner(&b, OP_SEND, 1, 64);
	vmic_put_le32(p, 131072);
	op_bytes(&b, OP_CREDIT, 1, p, 4);
	op_owner(&b, OP_SEND, 1, 255);
	op_bytes(&b, OP_CREDIT, 1, p, 3);
	op_owner(&b, OP_OPEN_SEND, 2, 0);
	n = (size_t)vmic_error_encode(&(struct vmic_error){ .code = 10,
							    .message = "x" },
				      p, sizeof(p));
	op_bytes(&b, OP_RESET, 2, p, (uint8_t)n);
	op_owner(&b, OP_OWNER_RESET, 1, 0);
	save("fuzz-stream", "send", b.p, b.n);

	/* Frames for streams that are not there; a flow violation. */
	b.n = 0;
	op_data(&b, OP_DATA, 5, 0, 1000);
	vmic_put_le32(p, 4096);
	op_bytes(&b, OP_CREDIT, 6, p, 4);
	op_bytes(&b, OP_RESET, 7, "\x06\x00\x00\x00", 4);
	op_owner(&b, OP_OPEN_RECV, 3, 0);
	for (int i = 0; i < 5; i++)
		op_data(&b, OP_DATA, 3, 0, VMIC_STREAM_CHUNK);
	op_owner(&b, OP_OPEN_SEND, 4, 0);
	op_data(&b, OP_DATA | OP_OTHER_SERVICE, 4, 0, 10);
	op_data(&b, OP_DATA, 4, 0, 2 * VMIC_STREAM_CHUNK);
	save("fuzz-stream", "refusals", b.p, b.n);
}

static void gen_hello(void)
{
	uint8_t p[600];
	struct buf b;
	size_t n;

	n = hello_payload(p, sizeof(p), VMIC_ROLE_GUEST, 0x2222, 0, false, 3);
	save("fuzz-hello", "guest", p, n);
	n = hello_payload(p, sizeof(p), VMIC_ROLE_HOST, 0x1111, 0x2222, true,
			  VMIC_HELLO_MAX_OFFERS);
	memcpy(p + n, "\x01\x02later fields", 14);
	save("fuzz-hello", "host-32-offers-trailing", p, n + 14);

	/* Records: a guest that says hello, restarts, says hello again. */
	b.n = 0;
	n = hello_payload(p + 1, sizeof(p) - 1, VMIC_ROLE_GUEST, 0x7, 0, false,
			  2);
	p[0] = (uint8_t)n;
	put(&b, p, n + 1);
	n = hello_payload(p + 1, sizeof(p) - 1, VMIC_ROLE_GUEST, 0x7, 0xA5A5,
			  true, 2);
	p[0] = (uint8_t)n;
	put(&b, p, n + 1);
	n = hello_payload(p + 1, sizeof(p) - 1, VMIC_ROLE_GUEST, 0x8, 0xA5A5,
			  false, 3);
	p[0] = (uint8_t)n;
	put(&b, p, n + 1);
	save("fuzz-hello", "records-guest-restart", b.p, b.n);

	/* Records: host hellos the guest session answers. */
	b.n = 0;
	n = hello_payload(p + 1, sizeof(p) - 1, VMIC_ROLE_HOST, 0x9, 0x5A5A,
			  false, 4);
	p[0] = (uint8_t)n;
	put(&b, p, n + 1);
	n = hello_payload(p + 1, sizeof(p) - 1, VMIC_ROLE_HOST, 0x9, 0x5A5A,
			  true, 4);
	p[0] = (uint8_t)n;
	put(&b, p, n + 1);
	save("fuzz-hello", "records-host", b.p, b.n);
}

void save_message(const char *name, uint8_t service, uint8_t type,
		  const uint8_t *p, size_t n)
{
	uint8_t out[VMIC_HDR_SIZE + 8192];

	if (n + 2 > sizeof(out))
		abort();
	out[0] = service;
	out[1] = type;
	memcpy(out + 2, p, n);
	save("fuzz-messages", name, out, n + 2);
}

static void gen_messages(void)
{
	uint8_t p[1024];
	size_t n;

	n = hello_payload(p, sizeof(p), VMIC_ROLE_HOST, 1, 2, true, 5);
	save_message("hello", VMIC_SVC_CONTROL, VMIC_CTL_HELLO, p, n);
	n = info_payload(p, sizeof(p));
	save_message("info", VMIC_SVC_CONTROL, VMIC_CTL_INFO, p, n);
	n = error_payload(p, sizeof(p));
	save_message("error", VMIC_SVC_CONTROL, VMIC_T_ERROR, p, n);
	vmic_put_le32(p, 0x3F);
	save_message("services", VMIC_SVC_CONTROL, VMIC_CTL_SERVICES, p, 4);
	save_message("credit", VMIC_SVC_CONTROL, VMIC_T_STREAM_CREDIT, p,
		     4);
	save_message("sanitize", FUZZ_TEXT, 0,
		     (const uint8_t *)"\x10ok \xC3\xA9\xC2\x85\x1B[1m"
				      "\xED\xA0\x80",
		     15);
	save_message("error-frame", FUZZ_TEXT, 1,
		     (const uint8_t *)"no such file: \xFF\xFE", 16);
	save_message("duration", FUZZ_TEXT, 2,
		     (const uint8_t *)"1h2m3s450ms", 11);
}

static void gen_text(void)
{
	static const char *const uris[] = {
		"unix:/run/vmic/vm1.sock", "vsock:3", "vsock:42:5657",
		"hvsock:/run/fc/v.sock:1024", "hvsock:/tmp/a:b/v.sock",
		"unix-listen:/run/vmic.sock", "vsock-listen:", "vsock-listen:9",
		"virtio-serial:org.vmic.0", "auto",
		/* [agent] allowed-cids values go through the same target */
		"2, 1 3", "1,,2,4294967294",
	};
	static const char *const replies[] = {
		"OK 1073741824", "ok 5", "OK 4294967295", "NO such port",
		"OK ",
	};
	char name[32];

	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		snprintf(name, sizeof(name), "uri-%zu", i);
		save_text("fuzz-channel", name, uris[i]);
	}
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		snprintf(name, sizeof(name), "reply-%zu", i);
		save_text("fuzz-hvsock-reply", name, replies[i]);
	}
	save_text("fuzz-config", "all-keys",
		  "; every key of the fuzz table\n"
		  "[main]\n"
		  "flag = yes\n"
		  "small = 7\n"
		  "any = 4000000000\n"
		  "\n"
		  "[timing]\n"
		  "interval = 1m30s\n"
		  "name = vm one\n"
		  "[other]\n"
		  "level = high\n");
	save_text("fuzz-config", "odd",
		  "\xEF\xBB\xBF# BOM, continuation, inline comment\n"
		  "[MAIN]\n"
		  "FLAG=off ; trailing comment\n"
		  "small = 2\n"
		  "  continued\n"
		  "[unknown]\n"
		  "x = y\n"
		  "[timing]\n"
		  "interval = 10\n"
		  "name = ;semi\n");
	save_text("fuzz-config", "bad-values",
		  "[main]\nsmall = 51\nany = 99999999999\n"
		  "[timing]\ninterval = 9ms\nname = "
		  "this name is far longer than the field\n"
		  "[other]\nlevel = extreme\nno equals sign\n");

	/* fuzz-cli-text: what a guest may put in a KVP value or a name,
	 * and the CLI prints */
	save_text("fuzz-cli-text", "osc-title", "\x1b]0;pwned\x07 and \x1b]52;c;eA==\x1b\\");
	save_text("fuzz-cli-text", "c1-bidi",
		  "\xc2\x9b" "31m file\xe2\x80\xaetxt.exe \xe2\x81\xa6x\xe2\x81\xa9");
	save_text("fuzz-cli-text", "invalid", "a\xff\xc0\x80\xed\xa0\x80\xe2\x80");
	save_text("fuzz-cli-text", "plain",
		  "Debian GNU/Linux 12 (bookworm) gr\xc3\xbc\xc3\x9f \xf0\x9f\x98\x80 C:\\x");
}

/* Make dir and its missing parents (mkdir -p). */
static void make_dirs(const char *dir)
{
	char path[sizeof(outdir)];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *c = path + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			perror(path);
			exit(1);
		}
		*c = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
}

/* Write into SRCDIR/sub from now on. */
static void corpus_dir(const char *srcdir, const char *sub)
{
	snprintf(outdir, sizeof(outdir), "%s/%s", srcdir, sub);
	make_dirs(outdir);
}

int main(int argc, char **argv)
{
	char sub[256];

	if (argc != 2) {
		fprintf(stderr, "usage: %s SRCDIR\n", argv[0]);
		return 2;
	}
	corpus_dir(argv[1], "tests/fuzz/corpus");
	gen_frame();
	gen_stream();
	gen_hello();
	gen_messages();
	gen_text();
#define VMIC_SERVICE(name)                                             \
	if (gen_corpus_##name) {                                       \
		snprintf(sub, sizeof(sub), "tests/services/%s/corpus", \
			 #name);                                       \
		corpus_dir(argv[1], sub);                              \
		gen_corpus_##name();                                   \
	}
#include "services/list.h"
#undef VMIC_SERVICE
	return 0;
}
