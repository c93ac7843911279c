/* SPDX-License-Identifier: MIT */
#include "control.h"

#include <errno.h>
#include <string.h>

#include "common/utf8.h"
#include "common/wire.h"
#include "frame.h"

int vmic_info_encode(const struct vmic_info *m, uint8_t *buf, size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_str(&w, m->hostname, VMIC_INFO_STR_MAX);
	vmic_wr_str(&w, m->os_name, VMIC_INFO_STR_MAX);
	vmic_wr_str(&w, m->os_id, VMIC_INFO_STR_MAX);
	vmic_wr_str(&w, m->os_version, VMIC_INFO_STR_MAX);
	vmic_wr_str(&w, m->kernel_release, VMIC_INFO_STR_MAX);
	vmic_wr_str(&w, m->kernel_version, VMIC_INFO_STR_MAX);
	vmic_wr_str(&w, m->arch, VMIC_INFO_STR_MAX);
	vmic_wr_u64(&w, m->uptime_ms);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_info_decode(const uint8_t *p, size_t n, struct vmic_info *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	vmic_rd_strcpy(&r, VMIC_INFO_STR_MAX, m->hostname, sizeof(m->hostname));
	vmic_rd_strcpy(&r, VMIC_INFO_STR_MAX, m->os_name, sizeof(m->os_name));
	vmic_rd_strcpy(&r, VMIC_INFO_STR_MAX, m->os_id, sizeof(m->os_id));
	vmic_rd_strcpy(&r, VMIC_INFO_STR_MAX, m->os_version,
		       sizeof(m->os_version));
	vmic_rd_strcpy(&r, VMIC_INFO_STR_MAX, m->kernel_release,
		       sizeof(m->kernel_release));
	vmic_rd_strcpy(&r, VMIC_INFO_STR_MAX, m->kernel_version,
		       sizeof(m->kernel_version));
	vmic_rd_strcpy(&r, VMIC_INFO_STR_MAX, m->arch, sizeof(m->arch));
	m->uptime_ms = vmic_rd_u64(&r);
	return r.err ? -EBADMSG : 0;
}

int vmic_error_encode(const struct vmic_error *m, uint8_t *buf, size_t cap)
{
	struct vmic_wr w;

	vmic_wr_init(&w, buf, cap);
	vmic_wr_u16(&w, m->code);
	vmic_wr_str(&w, m->message, VMIC_ERROR_MSG_MAX);
	return w.err ? -EMSGSIZE : (int)w.off;
}

int vmic_error_decode(const uint8_t *p, size_t n, struct vmic_error *m)
{
	struct vmic_rd r;

	vmic_rd_init(&r, p, n);
	m->code = vmic_rd_u16(&r);
	vmic_rd_strcpy(&r, VMIC_ERROR_MSG_MAX, m->message, sizeof(m->message));
	return r.err ? -EBADMSG : 0;
}

size_t vmic_frame_seal(uint8_t *buf, uint8_t service, uint8_t type,
		       uint16_t flags, uint32_t request_id, uint32_t stream_id,
		       size_t payload_len)
{
	struct vmic_frame f = {
		.service = service,
		.type = type,
		.flags = flags,
		.request_id = request_id,
		.stream_id = stream_id,
		.length = (uint32_t)payload_len,
	};

	vmic_frame_put_header(buf, &f);
	return VMIC_HDR_SIZE + payload_len;
}

size_t vmic_error_frame(uint8_t *buf, uint8_t service, uint32_t request_id,
			uint16_t code, const char *message)
{
	struct vmic_error e = { .code = code };
	int n;

	/* Sanitizing also cuts on a character boundary, keeping it UTF-8. */
	vmic_utf8_sanitize(e.message, sizeof(e.message), message,
			   strlen(message));
	n = vmic_error_encode(&e, buf + VMIC_HDR_SIZE, VMIC_ERROR_MAX_LEN);
	return vmic_frame_seal(buf, service, VMIC_T_ERROR, VMIC_F_REPLY,
			       request_id, 0, n < 0 ? 0 : (size_t)n);
}
