#!/bin/sh
# SPDX-License-Identifier: MIT
# What vmic does without a daemon: usage errors (exit 2), help, the
# daemon-not-running message (exit 1; `check` exits 3 UNKNOWN), and
# service names rejected before anything is sent. TAP output.
#
# usage: test-cli.sh PATH-TO-vmic

VMIC=${1:?usage: test-cli.sh PATH-TO-vmic}
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
# A socket path where nothing listens; never the system's own.
SOCK="$TMP/absent/ctl.sock"
unset VMIC_SOCKET NO_COLOR
n=0
failed=0

# run ARGS...: run vmic, keep exit status, stdout and stderr.
run() {
	"$VMIC" "$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
}

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	echo "#   $2"
	sed 's/^/#   stdout: /' "$TMP/out"
	sed 's/^/#   stderr: /' "$TMP/err"
}

# expect DESC RC STREAM TEXT: the last run exited RC and STREAM (out or
# err) contains TEXT (a fixed string).
expect() {
	if [ "$rc" -ne "$2" ]; then
		not_ok "$1" "exit status $rc, expected $2"
	elif ! grep -qF -- "$4" "$TMP/$3"; then
		not_ok "$1" "std$3 lacks: $4"
	else
		ok "$1"
	fi
}

# expect_not DESC STREAM TEXT: the last run's STREAM lacks TEXT.
expect_not() {
	if grep -qF -- "$3" "$TMP/$2"; then
		not_ok "$1" "std$2 has: $3"
	else
		ok "$1"
	fi
}

# Usage and help
run
expect "no command: usage, exit 2" 2 err "usage: vmic [--socket PATH]"
run --help
expect "--help lists the commands" 0 out "  status   Show a VM and its integration services"
run help
expect "help lists check" 0 out "  check    Monitoring plugin"
expect "help lists kvp" 0 out "  kvp      Read a VM's key-value pairs"
expect "help lists copy" 0 out "  copy     Copy files into a VM's guest"
run --version
expect "--version" 0 out "vmic 0."
run help add
expect "help COMMAND prints its usage" 0 out \
	"usage: vmic add NAME --channel URI [--power-off URI]"
run stop --help
expect "COMMAND --help prints its usage" 0 out \
	"usage: vmic stop NAME [--reboot] [--reason TEXT] [--timeout DURATION] [--force | --turn-off] [--json]"
run sta --help
expect "a unique prefix selects the command" 0 out "usage: vmic status NAME"
run st web1
expect "an ambiguous prefix names the candidates" 2 err \
	"'st' is ambiguous; it could be: status stop"
run frobnicate
expect "unknown command lists the valid ones" 2 err \
	"unknown command 'frobnicate'; valid commands: list, add, set, remove, status"
run copy web1 a
expect "copy without a destination" 2 err \
	"copy needs a VM, at least one source and a destination"
run copy --preserve --from-guest web1 a b
expect "copy --from-guest wants the guest's path absolute" 1 err \
	"a: name the guest's file by its absolute path"
run copy web1 - - /dst
expect "copy: '-' only as the one source" 2 err \
	"'-' (standard input) can only be the one source"
run kvp
expect "kvp without a verb" 2 err "missing list, get, set, delete or watch"
run kvp list
expect "kvp without a VM" 2 err "missing the VM's name"
run kvp frob web1
expect "kvp with an unknown verb" 2 err "unknown kvp command 'frob'"
run kvp list web1 --raw
expect "--raw is only for kvp get, and says what to use" 2 err \
	"--raw is for \`kvp get\`; --json gives the exact keys and values"
run kvp set web1 key
expect "kvp set without a value" 2 err "takes VM KEY VALUE"
run kvp get web1
expect "kvp get without a key" 2 err "takes VM KEY"
run kvp delete web1
expect "kvp delete without a key" 2 err "takes VM KEY..."
run help frobnicate
expect "help of an unknown command" 2 err "unknown command 'frobnicate'"
run --frob list
expect "unknown global option" 2 err "vmic: unknown option '--frob'"
run --socket
expect "global option without its value" 2 err \
	"option '--socket' needs a value"

# Argument errors: the command's usage, exit 2
run add
expect "add without NAME" 2 err "vmic add: missing NAME"
expect "add without NAME prints the usage" 2 err "usage: vmic add NAME"
run add web1
expect "add without --channel" 2 err "--channel URI is required"
run add web1 --channel
expect "option without its value" 2 err "option '--channel' needs a value"
run add web1 --channel unix:/x --bogus
expect "unknown option of a command" 2 err "vmic add: unknown option '--bogus'"
run set web1 heartbeat
expect "set SERVICE without KEY=VALUE" 2 err "give KEY=VALUE after heartbeat"
run set web1 heartbeat interval
expect "set with a word that is not KEY=VALUE" 2 err "'interval' is not KEY=VALUE"
run set web1 heartbeat =2s
expect "set with an empty KEY" 2 err "'=2s' is not KEY=VALUE"
run set web1 bogus interval=2s
expect "set of an unknown service" 1 err "unknown service 'bogus'; valid services: heartbeat, shutdown, timesync, kvp"
run set web1 --channel unix:/x heartbeat interval=2s
expect "set of the VM and a service at once" 2 err "not both"
run status web1 bogus
expect "status of an unknown service" 1 err "unknown service 'bogus'"
run status web1 heartbeat extra
expect "status with three operands" 2 err "too many arguments"
run add web1 web2 --channel unix:/x
expect "extra operand" 2 err "unexpected argument 'web2'"
run set web1
expect "set without a change" 2 err "nothing to change"
run status
expect "status without NAME" 2 err "usage: vmic status NAME [SERVICE] [--json]"
run remove a b
expect "remove with two names" 2 err "unexpected argument 'b'"
# shellcheck disable=SC3044 # "enable" is an argument here, not the builtin
run enable web1
expect "enable without SERVICE" 2 err "vmic enable: missing SERVICE"
run stop web1 --force --turn-off
expect "--force with --turn-off" 2 err "exclude each other"
run stop web1 --timeout soon
expect "stop with a bad timeout" 2 err "--timeout 'soon' is not a duration"
run backup web1
expect "backup without a snapshot" 2 err "give the snapshot command after"
run backup web1 --qmp-snapshot /x.qcow2 -- true
expect "backup with both snapshots" 2 err "not both"
run backup web1 --qmp-device disk0 -- true
expect "--qmp-device without --qmp-snapshot" 2 err "goes with --qmp-snapshot"
run freeze web1 --timeout 10ms
expect "freeze with a timeout under 1 s" 2 err "from 1s to 1h"
run thaw web1 --timeout 5s
expect "thaw takes no --timeout" 2 err "--timeout is not an option"
run events --since yesterday
expect "events --since garbage" 2 err "--since 'yesterday' is neither"
run events --since 2025-02-30
expect "events --since an impossible date" 2 err "--since '2025-02-30'"
run events --limit 0
expect "events --limit 0" 2 err "--limit '0' is not a positive count"
run list extra
expect "list takes no operand" 2 err "unexpected argument 'extra'"
run check
expect "check with bad usage is UNKNOWN (3)" 3 out \
	"VMIC UNKNOWN - bad usage"

# Service names are checked before anything is sent
run --socket "$SOCK" enable web1 bogus
expect "unknown service rejected locally" 1 err \
	"vmic: unknown service 'bogus'; valid services: heartbeat, shutdown, timesync, kvp"
expect_not "unknown service: no connection attempted" err "not running"
run --socket "$SOCK" disable web1 SHUTDOWN
expect "service names are case-insensitive (then no daemon)" 1 err \
	"vmic-hostd is not running"

# No daemon: every command says so, exit 1
for cmd in "list" "status web1" "add web1 --channel unix:/x" "remove web1" \
	"set web1 --power-off qmp:/x" "enable web1 heartbeat" "events" \
	"events --follow" "stop web1" "version" "freeze web1" "thaw web1" \
	"backup web1 -- true"; do
	# shellcheck disable=SC2086 # word splitting of $cmd is intended
	run --socket "$SOCK" $cmd
	expect "$cmd without daemon" 1 err \
		"vmic: vmic-hostd is not running (no socket at $SOCK). Start it with \`systemctl start vmic-hostd\`"
done
expect "the message says how to point at another socket" 1 err \
	"pass --socket PATH or set VMIC_SOCKET=PATH"
run list --json --socket "$SOCK"
expect "--json and --socket after the verb" 1 err "no socket at $SOCK)"
VMIC_SOCKET="$SOCK.env" run list --json
expect "VMIC_SOCKET names the socket" 1 err "no socket at $SOCK.env"
VMIC_SOCKET="$SOCK.env" run --socket "$SOCK" list
expect "--socket wins over VMIC_SOCKET" 1 err "no socket at $SOCK)"
run --socket "$TMP/$(printf '%0120d' 0)" list
expect "socket path too long" 1 err "too long for a unix socket"
: >"$TMP/plain-file"
run --socket "$TMP/plain-file" list
expect "a file that is no socket: nobody listens" 1 err \
	"vmic-hostd is not running (nobody listens on $TMP/plain-file)"

run --socket "$SOCK" check web1
expect "check without daemon is UNKNOWN (3)" 3 out \
	"VMIC UNKNOWN - vmic-hostd is not running (no socket at $SOCK)"
run --socket "$SOCK" --json check web1
expect "check --json without daemon" 3 out '"state": "UNKNOWN"'

echo "1..$n"
[ "$failed" -eq 0 ]
