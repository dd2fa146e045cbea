#!/usr/bin/env python3
"""Readiness probe for a CQL server (Cassandra / ScyllaDB). Dependency-free.

Usage: cql_probe.py HOST PORT [TIMEOUT_SECONDS]

Sends a CQL native protocol v4 OPTIONS request and expects a SUPPORTED
response (opcode 0x06). Exit 0 when the server answers properly, 1 otherwise.
A listening socket is not enough: Cassandra opens the port only at the very end
of start-up, but this checks that the protocol handler really answers.
"""
import socket
import struct
import sys

OPCODE_OPTIONS = 0x05
OPCODE_SUPPORTED = 0x06
OPCODE_ERROR = 0x00


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def probe(host, port, timeout):
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        # v4 request header: version, flags, stream id (i16), opcode, body length (i32)
        sock.sendall(struct.pack(">BBhBi", 0x04, 0x00, 1, OPCODE_OPTIONS, 0))
        version, _flags, stream, opcode, length = struct.unpack(">BBhBi", recv_exact(sock, 9))
        if length < 0 or length > 1 << 20:
            return False, "bad body length %d" % length
        body = recv_exact(sock, length)
        if version != 0x84 or stream != 1:
            return False, "unexpected header: version=0x%02x stream=%d opcode=0x%02x" % (version, stream, opcode)
        if opcode == OPCODE_SUPPORTED:
            return True, "SUPPORTED (%d bytes)" % length
        if opcode == OPCODE_ERROR and len(body) >= 6:
            (code,) = struct.unpack(">i", body[:4])
            (mlen,) = struct.unpack(">H", body[4:6])
            return False, "ERROR 0x%04x: %s" % (code, body[6:6 + mlen].decode("utf-8", "replace"))
        return False, "unexpected opcode 0x%02x" % opcode


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write("usage: cql_probe.py HOST PORT [TIMEOUT_SECONDS]\n")
        return 2
    host, port = argv[1], int(argv[2])
    timeout = float(argv[3]) if len(argv) == 4 else 3.0
    try:
        ok, detail = probe(host, port, timeout)
    except (OSError, ConnectionError, struct.error) as exc:
        ok, detail = False, "%s: %s" % (type(exc).__name__, exc)
    if not ok:
        sys.stderr.write("cql_probe %s:%d: %s\n" % (host, port, detail))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
