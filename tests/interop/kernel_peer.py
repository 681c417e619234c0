#!/usr/bin/env python3
"""The Linux kernel's MPTCP as the peer of interop tests (IPPROTO_MPTCP sockets).

  kernel_peer.py send HOST PORT BYTES [OPTIONS]  connect, send BYTES random bytes, read to EOF
  kernel_peer.py recv HOST PORT [OPTIONS]        listen once, read to EOF, close

Options:
  --interval MS           (recv) a progress line per MS on stderr while data
                          arrives: {"t": monotonic seconds, "bytes": in the
                          interval, "total": so far}
  --fastclose-after BYTES once BYTES are sent or received, close with
                          SO_LINGER {1, 0} (and, receiving, with data left
                          unread): Linux then sends MP_FASTCLOSE
  --close-unread-after BYTES  (recv) once BYTES are read, stop reading, let
                          more data arrive, and close() with it unread and
                          no SO_LINGER: Linux sends MP_FASTCLOSE for that too

A transfer that ends in an error (the peer reset the connection, or a
timeout) still prints its JSON line, with "error" set to the errno name, and
exits 3.

Prints one JSON line: bytes, sha256, whether the socket still spoke MPTCP at
the end (MPTCP_INFO is refused on a socket that fell back to TCP), the
seconds from the first byte to the end of the stream with the goodput, and
extra_subflows_max: the most subflows beyond the initial one that
MPTCP_INFO (mptcpi_subflows, its first byte) reported during the transfer.
"""
import errno
import hashlib
import json
import os
import socket
import struct
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


def options(argv):
    opts = {"interval": 0.0, "fastclose": 0, "unread": 0}
    i = 0
    while i < len(argv):
        if argv[i] == "--interval" and i + 1 < len(argv) and int(argv[i + 1]) > 0:
            opts["interval"] = int(argv[i + 1]) / 1000.0
        elif argv[i] == "--fastclose-after" and i + 1 < len(argv) and int(argv[i + 1]) > 0:
            opts["fastclose"] = int(argv[i + 1])
        elif argv[i] == "--close-unread-after" and i + 1 < len(argv) and int(argv[i + 1]) > 0:
            opts["unread"] = int(argv[i + 1])
        else:
            sys.exit("kernel_peer: bad option %r" % argv[i])
        i += 2
    return opts


def fast_close(s):
    # SO_LINGER on with a zero timeout: close() makes Linux send MP_FASTCLOSE.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "send":
        total = int(sys.argv[4])
        opts = options(sys.argv[5:])
    elif mode == "recv":
        opts = options(sys.argv[4:])
    else:
        sys.exit("kernel_peer: mode must be send or recv")
    h = hashlib.sha256()
    st = {"n": 0, "first": None, "extra": 0, "alive": False, "error": None, "closed": False}
    s = None
    try:
        if mode == "send":
            s = do_send(host, port, total, opts, h, st)
        else:
            s = do_recv(host, port, opts, h, st)
    except OSError as e:
        st["error"] = errno.errorcode.get(e.errno, "ETIMEDOUT" if e.errno is None else str(e.errno))
    last = time.monotonic()
    if s is not None and not st["closed"]:
        s.close()
    first = st["first"]
    n = st["n"]
    secs = last - first if first is not None else 0.0
    out = {"bytes": n, "sha256": h.hexdigest(), "mptcp": st["alive"], "seconds": secs,
           "goodput_bps": n * 8 / secs if secs > 0 else 0,
           "extra_subflows_max": st["extra"], "fastclosed": st["closed"]}
    if st["error"]:
        out["error"] = st["error"]
    print(json.dumps(out))
    sys.exit(3 if st["error"] else 0)


def do_send(host, port, total, opts, h, st):
    # One random block, sent again and again: the sender must not be the bottleneck.
    block = os.urandom(1 << 20)
    limit = opts["fastclose"] or total
    s = socket.socket(family(host), socket.SOCK_STREAM, IPPROTO_MPTCP)
    s.settimeout(60)
    s.connect((host, port))
    st["first"] = time.monotonic()
    while st["n"] < min(total, limit):
        chunk = block[: min(len(block), min(total, limit) - st["n"])]
        s.sendall(chunk)
        h.update(chunk)
        st["n"] += len(chunk)
        st["extra"] = max(st["extra"], extra_subflows(s))
    st["alive"] = mptcp_alive(s)
    if opts["fastclose"]:
        fast_close(s)
        st["closed"] = True
        return s
    s.shutdown(socket.SHUT_WR)
    while s.recv(65536):
        pass
    return s


def do_recv(host, port, opts, h, st):
    ls = socket.socket(family(host), socket.SOCK_STREAM, IPPROTO_MPTCP)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(1)
    ls.settimeout(60)
    # The listener stays open: Linux takes MP_JOIN SYNs on the listening socket.
    s, _ = ls.accept()
    s.settimeout(60)
    tick = tick_n = 0
    while True:
        b = s.recv(65536)
        now = time.monotonic()
        if not b:
            break
        if st["n"] == 0:
            st["alive"] = mptcp_alive(s)
            st["first"] = tick = now
        h.update(b)
        st["n"] += len(b)
        if st["n"] % (1 << 20) < len(b):
            st["extra"] = max(st["extra"], extra_subflows(s))
        if opts["interval"] and now - tick >= opts["interval"]:
            sys.stderr.write(json.dumps({"t": now, "bytes": st["n"] - tick_n, "total": st["n"]})
                             + "\n")
            tick, tick_n = now, st["n"]
        if opts["fastclose"] and st["n"] >= opts["fastclose"]:
            st["alive"] = mptcp_alive(s)
            fast_close(s)
            st["closed"] = True
            return s
        if opts["unread"] and st["n"] >= opts["unread"]:
            st["alive"] = mptcp_alive(s)
            time.sleep(0.2)  # the sender keeps going: data queues up unread
            s.close()
            st["closed"] = True
            return s
    st["alive"] = st["alive"] and mptcp_alive(s)
    return s


if __name__ == "__main__":
    main()
