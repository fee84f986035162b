#!/usr/bin/env bash
# Regenerates the seed corpora in test/fuzz/corpus/<target>/ from test/data (the KubeEdge wire
# captures, the kube-samples watch streams and requests) plus a few hand-written seeds that
# reach paths the captures do not. Seeds are named by the SHA-1 of their bytes, as libFuzzer
# names what it finds, so regenerating is idempotent and inputs found by `make fuzz` can be
# merged in next to them. Usage: test/fuzz/make-corpus.sh [target...]   (default: all)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export EDGEHUB_FUZZ_CORPUS="$here/corpus" EDGEHUB_TEST_DATA="$root/test/data"

python3 - "$@" <<'PY'
import glob, hashlib, json, os, sys

corpus = os.environ["EDGEHUB_FUZZ_CORPUS"]
data = os.environ["EDGEHUB_TEST_DATA"]
wanted = set(sys.argv[1:])


def seed(target, payload, max_len=None):
    if isinstance(payload, str):
        payload = payload.encode()
    if max_len is not None and len(payload) > max_len:
        return
    directory = os.path.join(corpus, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, hashlib.sha1(payload).hexdigest()), "wb") as f:
        f.write(payload)


def captured_messages():
    """(direction, payload) of every data message of the KubeEdge captures."""
    for path in sorted(glob.glob(os.path.join(data, "kubeedge-captures", "**", "*.jsonl"), recursive=True)):
        if path.endswith(".handshake.jsonl") or os.path.basename(path) == "markers.jsonl":
            continue
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if "payload" in record:
                    yield os.path.relpath(path, data), record["dir"], record["payload"]


def wire_decode():
    # Every upstream message (what an edge sends), and the edged captures both ways.
    for path, direction, payload in captured_messages():
        if direction == "up" or "/edged/" in path:
            seed("wire_decode", payload, 16384)


def parse_resource():
    for _, _, payload in captured_messages():
        resource = json.loads(payload).get("route", {}).get("resource")
        if resource:
            seed("parse_resource", resource)
    for text in ["device/default/thermo-1/twin/edge_updated", "device/default/thermo-1/state/update",
                 "k8s/ca.crt", "membership", "membership/detail", "twin", "node", "null/node/edge-1",
                 "default/podstatus", "kube-system/serviceaccounttoken/default"]:
        seed("parse_resource", text)


def content_json():
    # The content of every upstream message: strings hold JSON (patches, statuses), objects
    # are embedded.
    for _, direction, payload in captured_messages():
        if direction != "up":
            continue
        content = json.loads(payload).get("content")
        seed("content_json", content if isinstance(content, str) else json.dumps(content), 8192)
    for text in [
        '{"Status":{"conditions":[{"type":"Ready","status":"True"}]}}',
        '[{"UID":"u1","Name":"sample-pod","Status":{"phase":"Running"}}]',
        '{"UID":"u1","Name":"sample-pod","Status":{"phase":"Running","podIP":"10.0.0.5"}}',
        '{"metadata":{"labels":{"a":"b"},"annotations":{"c":"d"}},"spec":{"nodeName":"edge-1"}}',
        '{"gracePeriodSeconds":0,"preconditions":{"uid":"u1","resourceVersion":"5"}}',
        '{"metadata":{"name":"e1","namespace":"default"},"involvedObject":{"kind":"Pod"},"reason":"Started"}',
        '{"spec":{"audiences":["api"],"expirationSeconds":3600,"boundObjectRef":{"kind":"Pod","name":"p","uid":"u"}}}',
        '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
        '{"a":"\\u00e9\\ud83d\\ude00"}',
    ]:
        seed("content_json", text)


def watch_events():
    # The API server's watch streams: whole (first byte: the chunk-size seed) and line by line.
    for path in sorted(glob.glob(os.path.join(data, "kube-samples", "*", "*watch*.body"))):
        with open(path, "rb") as f:
            body = f.read()
        if not body:
            continue
        seed("watch_events", b"\x07" + body, 16384)
        seed("watch_events", b"\x00" + body, 16384)
        for line in body.split(b"\n"):
            if line:
                seed("watch_events", b"\x03" + line + b"\n", 16384)


def _ca_key_der():
    """The fixed fuzz CA's key as SEC1 DER: the HMAC key of join tokens."""
    import subprocess
    header = open(os.path.join(os.path.dirname(corpus), "fuzz_ca.hpp")).read()
    pem = header.split('kCaKeyPem = R"(', 1)[1].split(')"', 1)[0].strip() + "\n"
    return subprocess.run(["openssl", "ec", "-outform", "DER"], input=pem.encode(),
                          capture_output=True, check=True).stdout


def _b64(raw):
    import base64
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _jwt(header, claims, key):
    import hmac
    signing = _b64(header.encode()) + "." + _b64(claims.encode())
    return signing + "." + _b64(hmac.new(key, signing.encode(), "sha256").digest())


NOW = 1796083200  # the targets' fixed clock


def _tokens():
    key = _ca_key_der()
    return [
        _jwt('{"alg":"HS256","typ":"JWT"}', '{"exp":%d}' % (NOW + 3600), key),
        _jwt('{"alg":"HS256","typ":"JWT"}', '{"exp":%d}' % (NOW - 1), key),
        _jwt('{"alg":"HS256"}', '{"exp":%d.5}' % (NOW + 60), key),
        _jwt('{"alg":"HS256"}', '{}', key),
        _jwt('{"alg":"HS256"}', '{"exp":"%d"}' % (NOW + 60), key),
        _jwt('{"alg":"none"}', '{"exp":%d}' % (NOW + 60), key),
        _jwt('{"alg":"HS256"}', '{"exp":%d}' % (NOW + 60), b"not the key"),
        _jwt('{"alg":"HS512"}', '{"exp":%d}' % (NOW + 60), key),
    ]


def jwt_verify():
    for token in _tokens():
        seed("jwt_verify", token)
    seed("jwt_verify", "a.b.c")
    seed("jwt_verify", "0" * 64 + "." + _tokens()[0])  # a whole join token


def _csrs():
    """DER CSRs as edgecore makes them (EC P-256) and a few it would not."""
    import subprocess, tempfile
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, keygen, subject in [
            ("ec", ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout"], "/O=system:nodes/CN=system:node:edge-1"),
            ("rsa", ["openssl", "genrsa", "2048"], "/O=system:nodes/CN=system:node:edge-1"),
            ("p384", ["openssl", "ecparam", "-name", "secp384r1", "-genkey", "-noout"], "/O=system:nodes/CN=system:node:edge-1"),
            ("other", ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout"], "/O=system:nodes/CN=system:node:edge-2"),
            ("org", ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout"], "/O=system:masters/CN=system:node:edge-1"),
            ("two", ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout"], "/O=system:nodes/CN=system:node:edge-1/CN=x"),
        ]:
            key = os.path.join(tmp, name + ".key")
            with open(key, "wb") as f:
                f.write(subprocess.run(keygen, capture_output=True, check=True).stdout)
            made.append(subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", subject, "-outform", "DER"],
                                       capture_output=True, check=True).stdout)
    return made


def csr_sign():
    for csr in _csrs():
        seed("csr_sign", csr)
        seed("csr_sign", csr + b"\x01")  # odd last byte: with ExtKeyUsages [2]


def _http(method, target, headers=(), body=b""):
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1"] + list(headers)
    if body:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def admin_http():
    for target in ["/metrics", "/healthz", "/readyz", "/debug/nodes", "/debug/nodes?node=edge-1",
                   "/debug/nodes?node=edge%2F1", "/nope"]:
        seed("admin_http", _http("GET", target, ["User-Agent: curl/7.88.1", "Accept: */*"]))
    seed("admin_http", _http("GET", "/metrics", ["User-Agent: Prometheus/2.45.0",
         "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
         "Accept-Encoding: gzip"]))
    seed("admin_http", _http("GET", "/healthz", ["User-Agent: kube-probe/1.36"]) +
         _http("GET", "/readyz", ["User-Agent: kube-probe/1.36"]))
    seed("admin_http", _http("POST", "/debug/nodes?node=x", ["Transfer-Encoding: chunked"]) + b"3\r\nabc\r\n0\r\n\r\n")


def cert_service_http():
    token = _tokens()[0]
    for csr in _csrs()[:2]:
        seed("cert_service_http", _http("GET", "/edge.crt", ["User-Agent: Go-http-client/1.1",
             "Authorization: Bearer " + token, "Content-Type: application/octet-stream",
             "ExtKeyUsages: [2]", "NodeName: edge-1"], csr))
    seed("cert_service_http", _http("GET", "/edge.crt", ["Authorization: Bearer " + _tokens()[1], "NodeName: edge-1"], _csrs()[3]))
    seed("cert_service_http", _http("GET", "/edge.crt", ["NodeName: edge-1"], b"x"))
    seed("cert_service_http", _http("GET", "/ca.crt", ["User-Agent: Go-http-client/1.1"]))
    seed("cert_service_http", _http("GET", "/node/edge-1", ["User-Agent: Go-http-client/1.1"]))


def devapi_http():
    # The kube-samples requests (what client-go and kubectl sent to a real API server).
    import shlex
    for path in sorted(glob.glob(os.path.join(data, "kube-samples", "v1.36.3", "*.request"))):
        words = shlex.split(open(path).read().replace("\n", " "), posix=False)
        if len(words) < 2:
            continue
        method, target, headers, body = words[0], words[1], [], b""
        i = 2
        while i + 1 < len(words):
            if words[i] == "-H":
                # "Name: value" was split at the space after the colon.
                name, value = words[i + 1], ""
                j = i + 2
                while j < len(words) and not words[j].startswith("-"):
                    value += (" " if value else "") + words[j]
                    j += 1
                headers.append(name + " " + value)
                i = j
            elif words[i] == "--data":
                body = " ".join(words[i + 1:]).encode()
                break
            else:
                i += 1
        seed("devapi_http", _http(method, target, ["User-Agent: kubectl/v1.32.4 (linux/amd64)"] + headers, body), 8192)
    pod = ('{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default","labels":{"a":"b"}},'
           '"spec":{"nodeName":"edge-1","containers":[{"name":"c","image":"busybox"}]}}')
    json_ct = ["Content-Type: application/json", "Accept: application/json"]
    seed("devapi_http", _http("POST", "/api/v1/namespaces/default/pods", json_ct, pod) +
         _http("PATCH", "/api/v1/namespaces/default/pods/p/status", ["Content-Type: application/merge-patch+json"],
               '{"status":{"phase":"Running"}}') +
         _http("GET", "/api/v1/pods?labelSelector=a%3Db&fieldSelector=spec.nodeName%3Dedge-1") +
         _http("DELETE", "/api/v1/namespaces/default/pods/p", json_ct, '{"gracePeriodSeconds":0}'))
    seed("devapi_http", _http("POST", "/api/v1/namespaces/default/pods", json_ct, pod) +
         _http("PATCH", "/api/v1/namespaces/default/pods/p", ["Content-Type: application/strategic-merge-patch+json"],
               '{"metadata":{"labels":{"x":"y"}}}') +
         _http("PATCH", "/api/v1/namespaces/default/pods/p", ["Content-Type: application/json-patch+json"],
               '[{"op":"replace","path":"/metadata/labels/a","value":"c"}]') +
         _http("GET", "/api/v1/namespaces/default/pods", ["Accept: application/json;as=Table;v=v1;g=meta.k8s.io"]))
    seed("devapi_http", _http("GET", "/api/v1/namespaces/default/pods?watch=1&resourceVersion=0&allowWatchBookmarks=true"))



targets = {name: fn for name, fn in list(globals().items()) if callable(fn) and name not in
           ("seed", "captured_messages") and not name.startswith("_") and name == name.lower() and fn.__module__ == "__main__"}
for name, fn in targets.items():
    if not wanted or name in wanted:
        fn()
PY
