#!/bin/sh
# check-service-api.sh SRCDIR: services reach the daemons' cores only
# through their service API (docs/architecture.md, "The service seam").
#
# Every C file and header under src/services/ may include, in quotes:
#   common/*  proto/*               the shared libraries
#   transport/fdstream.h             streams to and from descriptors
#   host/service-api.h               the host daemon's API
#   guest/service-api.h              the agent's API
#   services/NAME/*                  its own folder (NAME: its folder)
# and nothing else of the tree: no other header of src/host/ or
# src/guest/ (their structs and the store stay private), no other part of
# src/transport/, no other service's header. The compiler enforces the
# rest (the cores' structs are incomplete types in the API headers); as a
# belt, this also fails on text that reads a core struct's members:
# "->h->", "->conn.", "svc_state", "->svc[".
#
# Prints each violation as FILE:LINE: what, and exits 1 when there is any.
set -u
src=${1:-.}/src/services
if [ ! -d "$src" ]; then
	echo "check-service-api: no $src directory" >&2
	exit 2
fi
cd "$src/.." || exit 2

bad=$(mktemp)
trap 'rm -f "$bad"' EXIT
files=$(find services -type f \( -name '*.c' -o -name '*.h' \) | sort)
n=$(echo "$files" | grep -c .)
if [ "$n" -eq 0 ]; then
	echo "check-service-api: no files under src/services" >&2
	exit 2
fi
# One pass over every file: FILENAME is services/FOLDER/...
# shellcheck disable=SC2086
awk '
FNR == 1 {
	split(FILENAME, part, "/")
	folder = part[2]
	allowed = "^(common/[^/]+|proto/[^/]+|transport/fdstream\\.h|" \
		  "host/service-api\\.h|guest/service-api\\.h|services/" \
		  folder "/[^/]+)$"
}
/^[ \t]*#[ \t]*include[ \t]*"/ {
	inc = $0
	sub(/^[^"]*"/, "", inc)
	sub(/".*$/, "", inc)
	if (inc !~ allowed)
		printf "src/%s:%d: includes \"%s\"; a service includes only " \
		       "host/service-api.h or guest/service-api.h of the " \
		       "daemons, common/, proto/, transport/fdstream.h and " \
		       "services/%s/\n", FILENAME, FNR, inc, folder
}
/->h->|->conn\.|svc_state|->svc\[/ {
	text = $0
	sub(/^[ \t]+/, "", text)
	printf "src/%s:%d: reads a core struct'"'"'s members: %s\n",
	       FILENAME, FNR, text
}
' $files >"$bad" || { echo "check-service-api: awk failed" >&2; exit 2; }
if [ -s "$bad" ]; then
	cat "$bad"
	echo "check-service-api: $(wc -l <"$bad") violation(s) in src/services;" \
		"see src/host/service-api.h and src/guest/service-api.h"
	exit 1
fi
echo "check-service-api: $n files of src/services use only the service APIs"
exit 0
