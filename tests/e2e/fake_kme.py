#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-only
#
# fake_kme.py DIR PORT: an ETSI GS QKD 014 stand-in for a vendor's two KMEs
# (one process, one key table), HTTPS with client certificates, for
# tests/e2e/qkdd_etsi014_host.sh. DIR holds ca.crt, kme.crt, kme.key. The
# file DIR/mode, if present, makes the next answers misbehave the way a
# broken or hostile vendor KME could ("SIDE:WHAT", SIDE enc or dec):
#   503      an Error with HTTP 503
#   count    one key fewer than asked
#   size     the first key 8 bytes short
#   base64   the first key not base64
#   dup      the second key_ID the first's
#   unknown  the first key_ID one not asked for (dec) or a fresh one
#   flip     the first key with a bit flipped (the keys differ)
#   big      a body of 2 MiB
import base64
import json
import os
import ssl
import sys
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

D, PORT = sys.argv[1], int(sys.argv[2])
KEYS = {}


def mode(side):
    try:
        with open(os.path.join(D, "mode")) as f:
            s, _, what = f.read().strip().partition(":")
    except OSError:
        return ""
    return what if s == side else ""


def b64(k):
    return base64.b64encode(k).decode()


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def reply(self, code, obj=None, raw=None):
        b = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def do_GET(self):
        self.reply(200, {"key_size": 256, "stored_key_count": 100000,
                         "max_key_count": 100000, "max_key_per_request": 16,
                         "max_key_size": 4096, "min_key_size": 64})

    def container(self, side, pairs):
        m = mode(side)
        if m == "503":
            return self.reply(503, {"message": "test: no keys now"})
        if m == "big":
            return self.reply(200, raw=b" " * (2 << 20))
        keys = [{"key_ID": i, "key": b64(k)} for i, k in pairs]
        if m == "count":
            keys = keys[:-1]
        elif m == "size":
            keys[0]["key"] = b64(pairs[0][1][:-8])
        elif m == "base64":
            keys[0]["key"] = "!" + keys[0]["key"][1:]
        elif m == "dup" and len(keys) > 1:
            keys[1]["key_ID"] = keys[0]["key_ID"]
        elif m == "unknown":
            keys[0]["key_ID"] = str(uuid.uuid4())
        elif m == "flip":
            k = pairs[0][1]
            keys[0]["key"] = b64(bytes([k[0] ^ 1]) + k[1:])
        self.reply(200, {"keys": keys})

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path.endswith("/enc_keys"):
            pairs = []
            for _ in range(req["number"]):
                i = str(uuid.uuid4())
                KEYS[i] = os.urandom(req["size"] // 8)
                pairs.append((i, KEYS[i]))
            return self.container("enc", pairs)
        pairs = []
        for e in req["key_IDs"]:
            k = KEYS.pop(e["key_ID"], None)
            if k is None:
                return self.reply(400, {"message": "key_ID %s unknown" % e["key_ID"]})
            pairs.append((e["key_ID"], k))
        self.container("dec", pairs)

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_kme: " + (fmt % args) + "\n")


s = ThreadingHTTPServer(("127.0.0.1", PORT), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.minimum_version = ssl.TLSVersion.TLSv1_2
c.load_cert_chain(os.path.join(D, "kme.crt"), os.path.join(D, "kme.key"))
c.load_verify_locations(os.path.join(D, "ca.crt"))
c.verify_mode = ssl.CERT_REQUIRED
s.socket = c.wrap_socket(s.socket, server_side=True)
print("ready", flush=True)
s.serve_forever()
