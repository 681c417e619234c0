#!/usr/bin/env python3
"""The Linux kernel's MPTCP as the peer of interop tests (IPPROTO_MPTCP sockets).

  kernel_peer.py send HOST PORT BYTES   connect, send BYTES random bytes, read to EOF
  kernel_peer.py recv HOST PORT         listen once, read to EOF, close

Prints one JSON line: bytes, sha256 and whether the socket still spoke MPTCP at
the end (MPTCP_INFO is refused on a socket that fell back to TCP).
"""
import hashlib
import json
import os
import socket
import sys

IPPROTO_MPTCP = 262
SOL_MPTCP = 284
MPTCP_INFO = 1


def mptcp_alive(s):
    try:
        s.getsockopt(SOL_MPTCP, MPTCP_INFO, 256)
        return True
    except OSError:
        return False


def family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    h = hashlib.sha256()
    n = 0
    if mode == "send":
        total = int(sys.argv[4])
        s = socket.socket(family(host), socket.SOCK_STREAM, IPPROTO_MPTCP)
        s.settimeout(60)
        s.connect((host, port))
        while n < total:
            chunk = os.urandom(min(65536, total - n))
            s.sendall(chunk)
            h.update(chunk)
            n += len(chunk)
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
            h.update(b)
            n += len(b)
        alive = alive and mptcp_alive(s)
    s.close()
    print(json.dumps({"bytes": n, "sha256": h.hexdigest(), "mptcp": alive}))


if __name__ == "__main__":
    main()
