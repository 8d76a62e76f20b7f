#!/usr/bin/env bash
# Puts Debian 12's Cyrus IMAP 3.6 where tests/harness/cyrus.py looks for it, without installing
# it: the cyrus-imapd package conflicts with dovecot-imapd (both provide imap-server), and the
# Dovecot harness needs dovecot-imapd.  So the two .debs (cyrus-imapd, cyrus-common) are fetched
# with `apt-get download` and unpacked with `dpkg-deb -x` into a cache directory:
#     ${IMAPFS_CYRUS_ROOT:-/var/cache/imapfs-tests/cyrus}/root/usr/lib/cyrus/bin/master ...
# The shared libraries the binaries need from outside the two packages (libxapian30, libical3)
# and saslpasswd2 (sasl2-bin) do not conflict: tests/run.sh apt-get installs them with the rest.
# A second run downloads nothing: the directory's VERSION names the package versions unpacked
# there, and only a different candidate version (a Debian update) fetches again.  Run as root
# (apt-get download, and the default directory is under /var/cache); needs no standard input.
# Exit status 0 when the tree is in place.
set -euo pipefail

dest=${IMAPFS_CYRUS_ROOT:-/var/cache/imapfs-tests/cyrus}
pkgs=(cyrus-imapd cyrus-common)

# candidate versions, from the local package lists only (no network)
candidates() {
	local p v out=()
	for p in "${pkgs[@]}"; do
		v=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
		[ -n "$v" ] && [ "$v" != "(none)" ] || return 1
		out+=("$p=$v")
	done
	echo "${out[*]}"
}

want=$(candidates) || {
	apt-get update -q >/dev/null
	want=$(candidates)
} || {
	echo "cyrus_unpack.sh: apt knows no candidate for ${pkgs[*]}" >&2
	exit 1
}
if [ -x "$dest/root/usr/lib/cyrus/bin/master" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$want" ]; then
	echo "cyrus_unpack.sh: $want already in $dest"
	exit 0
fi

mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d "$dest.new.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# readable and runnable by the unprivileged user the harness runs Cyrus as (and by _apt)
chmod 755 "$tmp"
# apt-get download writes into the current directory; as root it warns when the _apt user
# cannot write there, so the download directory is handed to _apt when that user exists.
mkdir "$tmp/debs"
if id _apt >/dev/null 2>&1; then chown _apt "$tmp/debs"; fi
# shellcheck disable=SC2086 # $want is "pkg=version pkg=version"
(cd "$tmp/debs" && apt-get download -q $want) || {
	apt-get update -q >/dev/null
	(cd "$tmp/debs" && apt-get download -q $want)
}
for deb in "$tmp"/debs/*.deb; do
	dpkg-deb -x "$deb" "$tmp/root"
done
[ -x "$tmp/root/usr/lib/cyrus/bin/master" ] || {
	echo "cyrus_unpack.sh: no usr/lib/cyrus/bin/master in the unpacked packages" >&2
	exit 1
}
rm -rf "$tmp/debs"
echo "$want" >"$tmp/VERSION"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "cyrus_unpack.sh: unpacked $want into $dest"
