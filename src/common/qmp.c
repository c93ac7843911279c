/* SPDX-License-Identifier: MIT */
#include "common/qmp.h"

#include <jansson.h>
#include <string.h>

#include "common/utf8.h"

enum qmp_kind qmp_parse_line(const char *line, size_t n, char *err,
			     size_t errsz)
{
	json_t *msg = json_loadb(line, n, JSON_REJECT_DUPLICATES, NULL);
	const char *desc = NULL;
	enum qmp_kind kind;

	if (errsz)
		err[0] = '\0';
	if (!json_is_object(msg))
		kind = QMP_MALFORMED;
	else if (json_object_get(msg, "event"))
		kind = QMP_EVENT;
	else if (json_object_get(msg, "error"))
		kind = QMP_ERROR;
	else if (json_object_get(msg, "return"))
		kind = QMP_RETURN;
	else if (json_object_get(msg, "QMP"))
		kind = QMP_GREETING;
	else
		kind = QMP_OTHER;
	if (kind == QMP_ERROR && errsz) {
		json_unpack(msg, "{s:{s:s}}", "error", "desc", &desc);
		if (!desc || !*desc)
			desc = "QEMU gave no description";
		vmic_utf8_sanitize(err, errsz, desc, strlen(desc));
	}
	json_decref(msg);
	return kind;
}
