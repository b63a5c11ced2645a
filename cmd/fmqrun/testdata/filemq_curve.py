#!/usr/bin/env python3
"""A libzmq (pyzmq) FILEMQ peer over CURVE, for fmqrun's interop tests.

  filemq_curve.py client ENDPOINT SERVER_PUBLIC_KEY
      A CURVE DEALER (fresh key pair): OHAI, ICANHAZ "/" with RESYNC=1 and
      SYNCED=1, NOM; prints "FILE <name> <size> <sha1>" for each file received
      whole, then "SYNCED" at the synced marker. "TIMEOUT" after 20 s.

  filemq_curve.py server SERVER_SECRET_KEY NAME
      A CURVE ROUTER on 127.0.0.1: prints "ENDPOINT <ep>", answers OHAI and
      ICANHAZ, and on the first NOM sends file NAME (its content is read from
      stdin) in 3 chunks, SIZE and SHA1 on the last, then the synced marker.
      Exits on KTHXBAI or after 20 s, printing "BYE" or "TIMEOUT".

  filemq_curve.py c-server SERVER_SECRET_KEY NAME...
      As server, but as the C reference does it: each NAME gets the content
      (read from stdin) as data chunks ending with a zero-length eof chunk,
      no headers, and no synced marker whatever the options ask.

Keys are Z85 (as fmqrun keygen writes them).
"""
import hashlib
import struct
import sys
import time

import zmq

SIG = b"\xaa\xa3"


def string(s):
    return bytes([len(s)]) + s


def longstr(s):
    return struct.pack(">I", len(s)) + s


def hashtable(d):
    out = struct.pack(">I", len(d))
    for k, v in d.items():
        out += string(k) + longstr(v)
    return out


class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        if self.i + n > len(self.b):
            raise ValueError("truncated")
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def num(self, n):
        return int.from_bytes(self.take(n), "big")

    def string(self):
        return self.take(self.num(1))

    def longstr(self):
        return self.take(self.num(4))

    def hashtable(self):
        return {self.string(): self.longstr() for _ in range(self.num(4))}


def cheezburger(seq, op, name, off, eof, headers, chunk):
    return (SIG + b"\x08" + struct.pack(">QB", seq, op) + longstr(name) + struct.pack(">QB", off, eof)
            + hashtable(headers) + longstr(chunk))


def client(ctx, endpoint, server_key):
    s = ctx.socket(zmq.DEALER)
    s.linger = 0
    pub, sec = zmq.curve_keypair()
    s.curve_serverkey, s.curve_publickey, s.curve_secretkey = server_key.encode(), pub, sec
    s.connect(endpoint)
    s.send(SIG + b"\x01" + string(b"FILEMQ") + b"\x00\x02")
    s.send(SIG + b"\x05" + longstr(b"/") + hashtable({b"RESYNC": b"1", b"SYNCED": b"1"}) + hashtable({}))
    s.send(SIG + b"\x07" + struct.pack(">QQ", 1 << 30, 0))
    files = {}
    deadline = time.time() + 20
    while time.time() < deadline:
        if not s.poll(200):
            continue
        r = Reader(s.recv())
        if r.take(2) != SIG:
            continue
        cmd = r.num(1)
        if cmd in (0x80, 0x81):
            print("REFUSED %d %s" % (cmd, r.string().decode()), flush=True)
            return 1
        if cmd != 0x08:
            continue
        r.num(8)
        op = r.num(1)
        name = r.longstr().decode()
        off = r.num(8)
        eof = r.num(1)
        r.hashtable()
        chunk = r.longstr()
        if op == 3:
            print("SYNCED", flush=True)
            s.send(SIG + b"\x0b")
            return 0
        if op != 1:
            continue
        data = files.setdefault(name, bytearray())
        if off != len(data):
            print("GAP %s at %d, have %d" % (name, off, len(data)), flush=True)
            return 1
        data += chunk
        if eof:
            print("FILE %s %d %s" % (name, len(data), hashlib.sha1(data).hexdigest()), flush=True)
    print("TIMEOUT", flush=True)
    return 1


def server(ctx, secret, names, c_style=False):
    content = sys.stdin.buffer.read()
    s = ctx.socket(zmq.ROUTER)
    s.linger = 0
    s.curve_secretkey = secret.encode()
    s.curve_publickey = zmq.curve_public(secret.encode())
    s.curve_server = True
    port = s.bind_to_random_port("tcp://127.0.0.1")
    print("ENDPOINT tcp://127.0.0.1:%d" % port, flush=True)
    subs = []
    sent = False
    deadline = time.time() + 20
    while time.time() < deadline:
        if not s.poll(200):
            continue
        ident, body = s.recv_multipart()
        r = Reader(body)
        if r.take(2) != SIG:
            continue
        cmd = r.num(1)
        if cmd == 0x01:
            s.send_multipart([ident, SIG + b"\x04"])
        elif cmd == 0x05:
            path = r.longstr()
            subs.append((path, r.hashtable()))
            s.send_multipart([ident, SIG + b"\x06"])
        elif cmd == 0x07 and not sent:
            sent = True
            n = max(1, (len(content) + 2) // 3)
            pieces = [content[i:i + n] for i in range(0, len(content), n)] or [b""]
            seq = 0
            for name in names:
                for i, piece in enumerate(pieces):
                    last = i == len(pieces) - 1 and not c_style
                    headers = {}
                    if last:
                        headers = {b"SIZE": str(len(content)).encode(),
                                   b"SHA1": hashlib.sha1(content).hexdigest().upper().encode()}
                    s.send_multipart([ident, cheezburger(seq, 1, name.encode(), i * n, 1 if last else 0, headers, piece)])
                    seq += 1
                if c_style:
                    s.send_multipart([ident, cheezburger(seq, 1, name.encode(), len(content), 1, {}, b"")])
                    seq += 1
            for path, opts in subs:
                if opts.get(b"SYNCED") == b"1" and not c_style:
                    s.send_multipart([ident, cheezburger(seq, 3, path, 0, 1, {}, b"")])
                    seq += 1
        elif cmd == 0x09:
            s.send_multipart([ident, SIG + b"\x0a"])
        elif cmd == 0x0b:
            print("BYE", flush=True)
            return 0
    print("TIMEOUT", flush=True)
    return 1


def main():
    ctx = zmq.Context()
    try:
        if sys.argv[1] == "client":
            return client(ctx, sys.argv[2], sys.argv[3])
        return server(ctx, sys.argv[2], sys.argv[3:], sys.argv[1] == "c-server")
    finally:
        ctx.destroy(linger=0)


if __name__ == "__main__":
    sys.exit(main())
