#!/usr/bin/env bash
# Find or build a real Asterisk 22 for the lab.
#
# Prefers an asterisk binary already installed on the host.  Otherwise builds
# (once) a minimal Debian sid rootfs holding Debian's Asterisk package, cached
# in $CC_ASTERISK_ROOTFS (default /var/cache/cc_ari/asterisk-rootfs), and reuses
# it on every later run.  Prints nothing on success except progress lines.
# On failure the last line on stderr says what failed and where its log is (lab.py shows it).
set -euo pipefail

ROOTFS=${CC_ASTERISK_ROOTFS:-/var/cache/cc_ari/asterisk-rootfs}
PKGS="asterisk asterisk-modules asterisk-core-sounds-en-gsm asterisk-moh-opsound-gsm"

if [ -z "${CC_ASTERISK_FORCE_ROOTFS:-}" ] && command -v asterisk >/dev/null 2>&1; then
    echo "setup-asterisk: using installed $(command -v asterisk)"
    exit 0
fi

if [ -f "$ROOTFS/.cc_ari_ready" ]; then
    exit 0
fi

# fail WHAT: the log's last lines on stdout, then one line on stderr
fail() {
    [ -f "$tmp.log" ] && tail -20 "$tmp.log"
    echo "$1 failed (full log: $tmp.log; disk space? network to deb.debian.org?)" >&2
    exit 1
}
tmp="$ROOTFS.tmp"

if ! command -v debootstrap >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; } \
        || { echo "installing debootstrap with apt-get failed" >&2; exit 1; }
fi

echo "setup-asterisk: building Asterisk rootfs in $ROOTFS (one time, ~2 min)"
rm -rf "$tmp"
mkdir -p "$(dirname "$ROOTFS")"
debootstrap --variant=minbase --include=ca-certificates sid "$tmp" >"$tmp.log" 2>&1 \
    || fail "debootstrap of Debian sid into $tmp"
cp /etc/hosts /etc/resolv.conf "$tmp/etc/"
chroot "$tmp" apt-get -o Acquire::Check-Valid-Until=false update >>"$tmp.log" 2>&1 \
    || fail "apt-get update in the rootfs"
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    $PKGS >>"$tmp.log" 2>&1 || fail "installing Asterisk ($PKGS) in the rootfs"
chroot "$tmp" apt-get clean
rm -rf "$ROOTFS"
mv "$tmp" "$ROOTFS"
rm -f "$tmp.log"
touch "$ROOTFS/.cc_ari_ready"
echo "setup-asterisk: ready: $(chroot "$ROOTFS" /usr/sbin/asterisk -V)"
