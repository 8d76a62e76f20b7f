#!/usr/bin/env bash
# tests/dist/check_deb.sh WORKDIR — build the Debian package, install it on this machine and
# check the installed imapfs; a stage of tests/run.sh (as root, on Debian 12).
#
#   1. copies the source tree (without build directories, .git or demo state) to
#      WORKDIR/imapfs-VERSION and runs `dpkg-buildpackage -us -uc -b` there, so the source
#      tree is left as it was; the package lands in WORKDIR;
#   2. checks its Depends (computed shared-library dependencies, and fuse3), runs lintian
#      (output shown; any error fails);
#   3. installs it (apt-get install ./imapfs_VERSION_ARCH.deb) and checks, from the installed
#      files: imapfs --version, man -w imapfs, systemd-analyze verify of the installed user
#      unit, and a mount of the demo account (tests/harness/dovecot.py --seed, the sample mail
#      scripts/demo.sh uses) with /usr/bin/imapfs directly and through mount -t fuse.imapfs;
#   4. removes the package again if it was not installed before.
#
# Each check is one line of WORKDIR/testlog.json ({"name": ..., "result": "OK"|"FAIL"}), the
# format of meson's testlog.json, so tests/summarize.py counts them with the meson tests.
# A check that cannot run because an earlier one failed is recorded as failed, not left out.
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
work=${1:?usage: tests/dist/check_deb.sh WORKDIR}
mkdir -p "$work"
work=$(cd "$work" && pwd)
log=$work/testlog.json
: >"$log"
PY=/usr/bin/python3

record() { # record NAME OK|FAIL [why]
	printf '{"name": "%s", "result": "%s"}\n' "$1" "$2" >>"$log"
	if [ "$2" = OK ]; then echo "deb: $1 ... ok"; else echo "deb: $1 ... FAILED${3:+: $3}"; fi
}
check() { # check NAME COMMAND...: record whether COMMAND succeeds
	local name=$1
	shift
	if "$@"; then record "$name" OK; else record "$name" FAIL; fi
}

version=$(sed -n "s/^  version : '\(.*\)',\$/\1/p" meson.build)
arch=$(dpkg --print-architecture)
deb=$work/imapfs_${version}_${arch}.deb
changes=$work/imapfs_${version}_${arch}.changes
was_installed=0
dpkg-query -W -f='${Status}' imapfs 2>/dev/null | grep -q 'install ok installed' && was_installed=1

# -- 1. build in a copy -----------------------------------------------------------------------
build_deb() {
	local src=$work/imapfs-$version
	rm -rf "$src" "$work"/imapfs_* "$work"/imapfs-dbgsym_*
	mkdir -p "$src"
	tar -C "$top" --exclude=./.git --exclude='./build*' --exclude='./obj-*' \
		--exclude=./demo --exclude=./mnt --exclude=./fuzz/corpus-work \
		--exclude='./bench/.corpus-*' --exclude='__pycache__' -cf - . | tar -C "$src" -xf - ||
		return 1
	echo "== dpkg-buildpackage -us -uc -b (log: $work/dpkg-buildpackage.log)"
	if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/dpkg-buildpackage.log" 2>&1; then
		tail -n 40 "$work/dpkg-buildpackage.log"
		return 1
	fi
	ls "$work"/imapfs_* && [ -f "$deb" ]
}
check deb_build build_deb

# -- 2. the package ---------------------------------------------------------------------------
depends_ok() {
	[ -f "$deb" ] || return 1
	local dep
	dep=$(dpkg-deb -f "$deb" Depends)
	echo "Depends: $dep"
	# ${shlibs:Depends} found the libraries imapfs links; fuse3 (fusermount3) is required
	for want in 'libfuse3-3' 'libgmime-3.0-0' 'libssl3' 'libglib2.0-0' 'libc6' 'fuse3'; do
		printf '%s\n' "$dep" | tr ',' '\n' | grep -q "^ *$want\b" ||
			{ echo "Depends lacks $want"; return 1; }
	done
	dpkg-deb -c "$deb" | awk '{print $NF}' | grep -E 'bin/imapfs$|man1/imapfs\.1\.gz$|doc/imapfs/config\.example|systemd/user/imapfs@\.service$'
}
check deb_depends depends_ok

lintian_clean() {
	[ -f "$changes" ] || return 1
	echo "== lintian $changes"
	local out
	# every tag shown, pedantic ones too; only errors fail (lintian's own --fail-on default)
	out=$(lintian --info --display-info --pedantic "$changes" 2>&1)
	local rc=$?
	printf '%s\n' "$out"
	[ $rc -eq 0 ] || return 1
	! printf '%s\n' "$out" | grep -q '^E: '
}
check deb_lintian_no_errors lintian_clean

# -- 3. installed -----------------------------------------------------------------------------
install_deb() {
	[ -f "$deb" ] || return 1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		--reinstall "$deb" >"$work/apt-install.log" 2>&1 || { cat "$work/apt-install.log"; return 1; }
	local status
	status=$(dpkg-query -W -f='${Status} ${Version}' imapfs)
	echo "dpkg-query: $status"
	[ "$status" = "install ok installed $version" ]
}
check deb_install install_deb

version_ok() {
	local out
	out=$(/usr/bin/imapfs --version 2>&1) || return 1
	printf '%s\n' "$out"
	printf '%s\n' "$out" | head -n 1 | grep -qx "imapfs $version"
}
check deb_imapfs_version version_ok

man_ok() {
	local where
	where=$(man -w imapfs) || return 1
	echo "man -w imapfs: $where"
	[ "$where" = /usr/share/man/man1/imapfs.1.gz ] &&
		[ -z "$(MANWIDTH=80 man --warnings imapfs 2>&1 >/dev/null)" ]
}
check deb_man_w man_ok

unit_ok() {
	local d
	d=$(mktemp -d) || return 1
	mkdir -m 700 "$d/run"
	cp /usr/lib/systemd/user/imapfs@.service "$d/imapfs@work.service" || return 1
	XDG_RUNTIME_DIR=$d/run systemd-analyze verify --user "$d/imapfs@work.service"
	local rc=$?
	rm -rf "$d"
	return $rc
}
check deb_systemd_analyze_verify unit_ok

demo_mount_ok() {
	$PY "$top/tests/dist/deb_demo_mount.py" /usr/bin/imapfs
}
check deb_demo_mount demo_mount_ok

# -- 4. leave the machine as it was -----------------------------------------------------------
if [ $was_installed = 0 ] && dpkg-query -W imapfs >/dev/null 2>&1; then
	dpkg --purge imapfs >/dev/null && echo "deb: removed the package again"
fi
exit 0
