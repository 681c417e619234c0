#!/usr/bin/env python3
"""The Linux kernel's MPTCP as the peer of interop tests (IPPROTO_MPTCP sockets).

  kernel_peer.py send HOST PORT BYTES   connect, send BYTES random bytes, read to EOF
  kernel_peer.py recv HOST PORT         listen once, read to EOF, close

Prints one JSON line: bytes, sha256, whether the socket still spoke MPTCP at
the end (MPTCP_INFO is refused on a socket that fell back to TCP), the
seconds from the first byte to the end of the stream with the goodput, and
extra_subflows_max: the most subflows beyond the initial one that
MPTCP_INFO (mptcpi_subflows, its first byte) reported during the transfer.
"""
import hashlib
import json
import os
import socket
import sys
import time

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1


def mptcp_alive(s):
    try:
        s.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)
        return True
    except OSError:
        return False


def extra_subflows(s):
    try:
        return s.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)[0]
    except (OSError, IndexError):
        return 0


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    h = hashlib.sha256()
    n = 0
    first = last = None
    extra = 0
    if mode == "send":
        total = int(sys.argv[4])
        # One random block, sent again and again: the sender must not be the bottleneck.
        block = os.urandom(1 << 20)
        s = socket.socket(family(host), socket.SOCK_STREAM, IPPROTO_MPTCP)
        s.settimeout(60)
        s.connect((host, port))
        first = time.monotonic()
        while n < total:
            chunk = block[: min(len(block), total - n)]
            s.sendall(chunk)
            h.update(chunk)
            n += len(chunk)
            extra = max(extra, extra_subflows(s))
        alive = mptcp_alive(s)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    else:
        ls = socket.socket(family(host), socket.SOCK_STREAM, IPPROTO_MPTCP)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind((host, port))
        ls.listen(1)
        ls.settimeout(60)
        s, _ = ls.accept()
        s.settimeout(60)
        alive = False
        while True:
            b = s.recv(65536)
            if not b:
                break
            if n == 0:
                alive = mptcp_alive(s)
                first = time.monotonic()
            h.update(b)
            n += len(b)
            if n % (1 << 20) < len(b):
                extra = max(extra, extra_subflows(s))
        alive = alive and mptcp_alive(s)
    last = time.monotonic()
    s.close()
    secs = last - first if first is not None else 0.0
    print(json.dumps({"bytes": n, "sha256": h.hexdigest(), "mptcp": alive, "seconds": secs,
                      "goodput_bps": n * 8 / secs if secs > 0 else 0,
                      "extra_subflows_max": extra}))


if __name__ == "__main__":
    main()
