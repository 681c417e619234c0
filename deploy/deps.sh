#!/bin/sh
# Install every Debian package Fjord needs to build, test and run.
# Idempotent: when everything is present it prints nothing and exits 0.
set -eu

PKGS="make gcc pkg-config clang clang-format libclang-rt-14-dev
libcurl4-openssl-dev libmicrohttpd-dev libconfig-dev
libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3 python3-protobuf
libcunit1-dev libsqlite3-dev sqlite3 libjansson-dev libssl-dev libpcap-dev
iproute2 iptables iperf3 tshark ethtool curl procps psmisc
iputils-ping
nftables
openssl"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deploy/deps.sh: missing packages:$missing; run as root to install them" >&2
	exit 1
fi
echo "deploy/deps.sh: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
