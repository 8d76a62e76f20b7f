#!/bin/sh
# scripts/demo.sh — try imapfs in one command on a fresh Debian 12, as root.
#
#   scripts/demo.sh          install missing packages, build, start a throwaway Dovecot with
#                            sample mail, mount it at ./mnt and print what to try
#   scripts/demo.sh stop     unmount ./mnt and stop the throwaway Dovecot
#
# Everything it creates lives in ./demo (Dovecot, its certificates, the imapfs config) and
# ./build; the Dovecot listens on 127.0.0.1 only.  Running it again while mounted says so.
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO="$ROOT/demo"
MNT="$ROOT/mnt"
BUILD="${IMAPFS_DEMO_BUILD:-$ROOT/build}"  # override for a different build dir
HARNESS="$ROOT/tests/harness/dovecot.py"
PY=/usr/bin/python3

# The packages CI installs (README), plus a compiler and Python for a bare system; scdoc renders
# the man page at build time.
PACKAGES="gcc python3 meson ninja-build pkg-config libfuse3-dev fuse3 libgmime-3.0-dev
libssl-dev libglib2.0-dev libxml2-dev dovecot-imapd clang-14 libclang-rt-14-dev isync
openssl valgrind gdb scdoc"

say() { printf '%s\n' "$*"; }
die() { printf 'demo.sh: %s\n' "$*" >&2; exit 1; }

is_mounted() {
	# field 5 of mountinfo is the mount point
	awk -v m="$1" '$5 == m { found = 1 } END { exit !found }' /proc/self/mountinfo
}

stop() {
	if is_mounted "$MNT"; then
		fusermount3 -u "$MNT" && say "unmounted $MNT"
	else
		say "$MNT is not mounted"
	fi
	if [ -f "$DEMO/dovecot/harness.json" ]; then
		$PY "$HARNESS" stop --dir "$DEMO/dovecot" && say "stopped the demo Dovecot"
		rm -f "$DEMO/dovecot/harness.json"
	fi
}

case "${1:-start}" in
stop) stop; exit 0 ;;
start) ;;
*) die "usage: scripts/demo.sh [stop]" ;;
esac

[ "$(id -u)" = 0 ] || die "run me as root (the throwaway Dovecot needs it)"

if is_mounted "$MNT"; then
	say "imapfs is already mounted at $MNT (scripts/demo.sh stop to unmount)."
	exit 0
fi

missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -n "$missing" ]; then
	say "installing:$missing"
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
fi

if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD"
fi
ninja -C "$BUILD"

mkdir -p "$DEMO"
if [ -f "$DEMO/dovecot/harness.json" ] &&
	$PY -c "import sys; sys.path.insert(0, '$ROOT/tests/harness'); import dovecot;
sys.exit(0 if dovecot.Dovecot.from_state('$DEMO/dovecot')._started else 1)"; then
	say "the demo Dovecot is already running"
else
	rm -rf "$DEMO/dovecot"
	$PY "$HARNESS" start --dir "$DEMO/dovecot" --seed >/dev/null
fi
# Only the connection details; the password stays in its 0600 file, read by pass_cmd.
envs=$($PY "$HARNESS" env --dir "$DEMO/dovecot")
get() { printf '%s\n' "$envs" | sed -n "s/^export $1='\(.*\)'\$/\1/p"; }

umask 077
cat >"$DEMO/config" <<EOF
# imapfs configuration for the demo (see imapfs --help)
[default]
host = $(get IMAPFS_TEST_HOST)
port = $(get IMAPFS_TEST_PORT_IMAPS)
tls = imaps
user = $(get IMAPFS_TEST_USER)
pass_cmd = cat $DEMO/dovecot/password
ca_file = $(get IMAPFS_TEST_CA_FILE)
refresh = 10
EOF

mkdir -p "$MNT"
"$BUILD/fs/imapfs" -o config="$DEMO/config" "$MNT"

cat <<EOF

imapfs is mounted at ./mnt (read-only).  Try:

    ls mnt
    ls mnt/INBOX
    cat mnt/INBOX/*/subject
    grep -rl --include=body invoice mnt/INBOX
    ls mnt/INBOX/6/attachments

The config is demo/config.  Stop with:  scripts/demo.sh stop
EOF
