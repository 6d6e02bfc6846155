# SPDX-License-Identifier: MIT
"""TLS termination on `protocol: https` listeners (issue #8): the certificate chosen by SNI (the
first one without SNI or for an unknown name), ALPN http/1.1, session resumption with TLS 1.3
and 1.2 and across a reload, TLS 1.1 refused, X-Forwarded-Proto: https at the upstream, OCSP
stapling, keys from $CREDENTIALS_DIRECTORY, a bounded handshake, and certificates or keys that do
not load: refused by --check with the file and the reason, and by a reload, which keeps serving
with the certificates it had."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lbtest import Client, curl, read_to_eof
from tls_helpers import _ca, _leaf

GNUTLS_CLI = shutil.which("gnutls-cli") or "/usr/bin/gnutls-cli"
OPENSSL = shutil.which("openssl")


@dataclass
class Certs:
    dir: Path
    ca: Path
    ca_key: Path
    a: tuple  # (cert, key) for a.example
    b: tuple  # b.example
    c: tuple  # c.example


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("listener-pki")
    ca = _ca(d, "ca")
    return Certs(dir=d, ca=ca[0], ca_key=ca[1], a=_leaf(d, "a", ca, ["a.example"]),
                 b=_leaf(d, "b", ca, ["b.example"]), c=_leaf(d, "c", ca, ["c.example"]))


def q(v):
    return json.dumps(str(v))


def https_yaml(up, pairs, listen="@LISTEN@", extra="", ocsp=None):
    """An https listener presenting `pairs` [(cert, key)], routing everything to `up`."""
    lines = ["access_log: true", "timeouts: {keepalive: 3s}", "listeners:",
             "  - name: https", f"    listen: {q(listen)}", "    protocol: https",
             "    certificates:"]
    for i, (cert, key) in enumerate(pairs):
        o = f", ocsp: {q(ocsp[i])}" if ocsp and ocsp[i] else ""
        lines.append(f"      - {{cert: {q(cert)}, key: {q(key)}{o}}}")
    lines += [extra, "upstreams:", "  - name: u",
              f"    nodes: [{{host: {up.host}, port: {up.port}}}]",
              "routes:", "  - {name: all, paths: [\"/*\"], upstreams: [{name: u}]}", ""]
    return "\n".join(lines)


def fetch(lb, ca, name, path="/", extra=()):
    """curl -v over HTTPS to `name` (resolved to the listener): (CompletedProcess, stderr)."""
    p = curl("-v", "--cacert", ca, "--resolve", f"{name}:{lb.port}:127.0.0.1", *extra,
             f"https://{name}:{lb.port}{path}", timeout=20)
    return p, p.stderr.decode(errors="replace")


def subject(stderr):
    for line in stderr.splitlines():
        line = line.strip()
        if line.startswith("* ") and "subject: " in line:
            return line.split("subject: ", 1)[1]
    return None


def gnutls_cli(lb, *args, sni="a.example", ca=None):
    cmd = [GNUTLS_CLI, "--port", str(lb.port)]
    if ca:
        cmd += ["--x509cafile", str(ca), "--verify-hostname", sni]
    else:
        cmd.append("--no-ca-verification")
    if sni:
        cmd += ["--sni-hostname", sni]
    cmd += [*args, "127.0.0.1"]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    return p, (p.stdout + p.stderr).decode(errors="replace")


def check(lbproxy_bin, path, env=None):
    e = dict(os.environ)
    e.pop("CREDENTIALS_DIRECTORY", None)
    e.update(env or {})
    return subprocess.run([str(lbproxy_bin), "--check", "--config", str(path)],
                          capture_output=True, text=True, timeout=30, env=e)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


# -- certificates by SNI, ALPN, the data path ---------------------------------------------
def test_certificate_by_sni(certs, upstream, lbproxy):
    up = upstream("u")
    lb = lbproxy(https_yaml(up, [certs.a, certs.b]))

    for name in ("a.example", "b.example"):
        p, err = fetch(lb, certs.ca, name, f"/{name}")
        assert p.returncode == 0, err
        assert subject(err) == f"CN={name}", err
        assert "ALPN: server accepted http/1.1" in err, err
        body = json.loads(p.stdout)
        assert body["path"] == f"/{name}"
        # Terminated here: the upstream is told the client spoke HTTPS.
        assert body["headers"]["x-forwarded-proto"] == "https", body
        assert body["headers"]["host"] == f"{name}:{lb.port}"

    # No SNI (an IP address is never sent as one), or a name no certificate has: the first.
    p = curl("-v", "-k", f"https://127.0.0.1:{lb.port}/ip", timeout=20)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0 and subject(err) == "CN=a.example", err
    p, out = gnutls_cli(lb, "--print-cert", sni="nobody.example")
    assert p.returncode == 0, out
    assert "subject `CN=a.example'" in out, out
    p, out = gnutls_cli(lb, "--print-cert", sni="b.example", ca=certs.ca)
    assert p.returncode == 0 and "subject `CN=b.example'" in out, out

    lines = lb.wait_log('"GET /b.example" 200 ')
    assert lines, lb.log_text()[-2000:]


def test_alpn(certs, upstream, lbproxy):
    up = upstream("u")
    lb = lbproxy(https_yaml(up, [certs.a]))
    p, out = gnutls_cli(lb, "--alpn=http/1.1", ca=certs.ca)
    assert p.returncode == 0 and "- Application protocol: http/1.1" in out, out
    # h2 alone: no protocol chosen, the handshake goes on (HTTP/1.1 is all there is).
    p, out = gnutls_cli(lb, "--alpn=h2", ca=certs.ca)
    assert p.returncode == 0 and "Handshake was completed" in out, out
    assert "Application protocol" not in out, out
    # curl offers h2 and http/1.1 and gets the latter.
    p, err = fetch(lb, certs.ca, "a.example")
    assert p.returncode == 0 and "ALPN: server accepted http/1.1" in err, err


# -- resumption --------------------------------------------------------------------------
@pytest.mark.parametrize("priority,version", [("NORMAL", "TLS1.3"),
                                              ("NORMAL:-VERS-TLS1.3", "TLS1.2")])
def test_resumption(certs, upstream, lbproxy, priority, version):
    up = upstream("u")
    lb = lbproxy(https_yaml(up, [certs.a, certs.b]))
    p, out = gnutls_cli(lb, "--resume", f"--priority={priority}", ca=certs.ca)
    assert p.returncode == 0, out
    assert f"- Description: ({version}-" in out, out
    assert "This is a resumed session" in out, out


def test_resumption_across_reload(certs, upstream, lbproxy):
    """The ticket keys outlive a reload: a session from before resumes after."""
    up = upstream("u")
    lb = lbproxy(https_yaml(up, [certs.a]))
    ctx = ssl.create_default_context(cafile=str(certs.ca))

    def get(session=None):
        with socket.create_connection(("127.0.0.1", lb.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="a.example", session=session) as s:
                s.sendall(b"GET /r HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
                data = read_to_eof(s)
                assert data.startswith(b"HTTP/1.1 200 "), data[:200]
                return s.session, s.session_reused

    session, reused = get()
    assert not reused
    session, reused = get(session)
    assert reused

    # A reload that changes something else: the certificates load again, the keys stay.
    lb.config_path.write_text(https_yaml(up, [certs.a]).replace("@LISTEN@",
                                                                f"127.0.0.1:{lb.port}")
                              .replace("keepalive: 3s", "keepalive: 4s"))
    os.kill(lb.pid, signal.SIGHUP)
    assert lb.wait_log("Configuration reloaded"), lb.log_text()[-2000:]
    _, reused = get(session)
    assert reused


# -- what is refused -----------------------------------------------------------------------
def test_tls11_refused(certs, upstream, lbproxy):
    up = upstream("u")
    lb = lbproxy(https_yaml(up, [certs.a]))
    p, out = gnutls_cli(lb, "--priority=NORMAL:-VERS-ALL:+VERS-TLS1.1", ca=certs.ca)
    assert p.returncode != 0, out
    assert "Handshake was completed" not in out, out
    p, out = gnutls_cli(lb, "--priority=NORMAL:-VERS-ALL:+VERS-TLS1.2", ca=certs.ca)
    assert p.returncode == 0 and "- Description: (TLS1.2-" in out, out
    # A client that does not speak TLS at all: its connection ends, the daemon goes on.
    with Client("127.0.0.1", lb.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
        assert c.is_closed(timeout=10)
    p, err = fetch(lb, certs.ca, "a.example")
    assert p.returncode == 0, err


def test_handshake_bounded(certs, upstream, lbproxy):
    """A client that connects and says nothing (no ClientHello) is dropped at the header
    timeout, counted from accept (2 s here; the keep-alive timeout is 30 s)."""
    up = upstream("u")
    lb = lbproxy(https_yaml(up, [certs.a]).replace("timeouts: {keepalive: 3s}",
                                                    "timeouts: {header: 2s, keepalive: 30s}"))
    with Client("127.0.0.1", lb.port) as c:
        start = time.monotonic()
        assert c.is_closed(timeout=15)
        assert 1.5 < time.monotonic() - start < 12


# -- where keys come from, and OCSP --------------------------------------------------------
def test_key_from_credentials_directory(certs, upstream, lbproxy, lbproxy_bin, tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    shutil.copy(certs.a[1], creds / "a.key")
    up = upstream("u")
    yaml = https_yaml(up, [(certs.a[0], "a.key")])

    f = tmp_path / "creds.yaml"
    f.write_text(yaml.replace("@LISTEN@", "127.0.0.1:1"))
    p = check(lbproxy_bin, f)
    assert p.returncode == 1
    assert "certificates[0].key a.key: a relative key is a credential's name, but " \
           "$CREDENTIALS_DIRECTORY is not set" in p.stderr, p.stderr
    p = check(lbproxy_bin, f, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert p.returncode == 0, p.stderr

    lb = lbproxy(yaml, env={"CREDENTIALS_DIRECTORY": str(creds)})
    p, err = fetch(lb, certs.ca, "a.example")
    assert p.returncode == 0 and subject(err) == "CN=a.example", err


def ocsp_response(certs, cert, out):
    """A "good" OCSP response for `cert`, signed by the CA (openssl ocsp as the responder)."""
    d = certs.dir
    serial = subprocess.run([OPENSSL, "x509", "-in", str(cert), "-noout", "-serial"],
                            capture_output=True, text=True, check=True,
                            timeout=30).stdout.strip().split("=")[1]
    subj = subprocess.run([OPENSSL, "x509", "-in", str(cert), "-noout", "-subject",
                           "-nameopt", "compat"], capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip().split("=", 1)[1].strip()
    index = d / f"{out}.index"
    index.write_text(f"V\t{time.strftime('%y%m%d%H%M%SZ', time.gmtime(time.time() + 86400 * 30))}"
                     f"\t\t{serial}\tunknown\t{subj}\n")
    req, resp = d / f"{out}.req", d / f"{out}.der"
    subprocess.run([OPENSSL, "ocsp", "-issuer", str(certs.ca), "-cert", str(cert), "-no_nonce",
                    "-reqout", str(req)], capture_output=True, check=True, timeout=30)
    subprocess.run([OPENSSL, "ocsp", "-index", str(index), "-rsigner", str(certs.ca), "-rkey",
                    str(certs.ca_key), "-CA", str(certs.ca), "-reqin", str(req), "-respout",
                    str(resp), "-ndays", "1"], capture_output=True, check=True, timeout=30)
    return resp


@pytest.mark.skipif(not OPENSSL, reason="openssl is needed to make an OCSP response")
def test_ocsp_stapling(certs, upstream, lbproxy, lbproxy_bin, tmp_path):
    resp = ocsp_response(certs, certs.a[0], "a-ocsp")
    up = upstream("u")
    lb = lbproxy(https_yaml(up, [certs.a, certs.b], ocsp=[resp, None]))

    def status(name):
        p = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{lb.port}",
                            "-servername", name, "-status", "-CAfile", str(certs.ca)],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        return p.stdout.decode(errors="replace")

    out = status("a.example")
    assert "OCSP Response Status: successful" in out, out
    assert "Cert Status: good" in out, out
    assert "OCSP response: no response sent" in status("b.example")

    # A response for another certificate is refused at load, not stapled.
    f = tmp_path / "ocsp.yaml"
    f.write_text(https_yaml(up, [certs.b], ocsp=[resp]).replace("@LISTEN@", "127.0.0.1:1"))
    p = check(lbproxy_bin, f)
    assert p.returncode == 1
    assert f"certificates[0].ocsp {resp}: The OCSP response provided doesn't match the " \
           "available certificates" in p.stderr, p.stderr


# -- certificates that do not load -----------------------------------------------------------
def test_check_refuses_bad_certificates(certs, upstream, lbproxy_bin, tmp_path):
    up = upstream("u")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n"
                       "-----END CERTIFICATE-----\n")
    missing = tmp_path / "missing.key"
    cases = [
        ([certs.a, (certs.b[0], missing)],
         f"listener 'https': certificates[1].key {missing}: No such file or directory"),
        ([(garbage, certs.a[1])], f"listener 'https': certificates[0].cert {garbage}: "),
        ([(certs.a[0], certs.b[1])],
         f"listener 'https': certificates[0] {certs.a[0]} and {certs.b[1]}: The certificate "
         "and the given key do not match."),
        ([(certs.a[0], tmp_path)], f"listener 'https': certificates[0].key {tmp_path}: "
                                   "Is a directory"),
    ]
    for pairs, want in cases:
        f = tmp_path / "bad.yaml"
        f.write_text(https_yaml(up, pairs).replace("@LISTEN@", "127.0.0.1:1"))
        p = check(lbproxy_bin, f)
        assert p.returncode == 1, p.stderr
        # At the certificate's entry in the file, naming the file and the reason.
        assert p.stderr.startswith(f"{f}:"), p.stderr
        assert want in p.stderr, p.stderr

    # The schema's own checks: keys of another protocol, a missing certificates:.
    f = tmp_path / "schema.yaml"
    f.write_text("listeners:\n"
                 "  - {name: s, listen: \"127.0.0.1:1\", protocol: https}\n"
                 "  - {name: h, listen: \"127.0.0.1:2\", certificates: [{cert: /a, key: b}]}\n")
    p = check(lbproxy_bin, f)
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        f"{f}:2:5: listeners[0]: missing required key 'certificates' (protocol is https)",
        f"{f}:3:52: listeners[1].certificates: only for protocol https (this listener's "
        "protocol is http)",
    ], p.stderr


def test_reload_with_bad_key_keeps_serving(certs, upstream, lbproxy, tmp_path):
    up = upstream("u")
    lb = lbproxy(https_yaml(up, [certs.a]))
    listen = f"127.0.0.1:{lb.port}"
    p, err = fetch(lb, certs.ca, "a.example")
    assert p.returncode == 0 and subject(err) == "CN=a.example", err

    # c.example with a key that is not there: refused, the running certificates stay.
    missing = tmp_path / "c-missing.key"
    lb.config_path.write_text(https_yaml(up, [certs.c, (certs.c[0], missing)], listen=listen))
    os.kill(lb.pid, signal.SIGHUP)
    lines = lb.wait_log("Reload failed, configuration unchanged")
    assert lines, lb.log_text()[-2000:]
    assert f"certificates[1].key {missing}: No such file or directory" in lb.log_text()
    for _ in range(3):
        p, err = fetch(lb, certs.ca, "a.example")
        assert p.returncode == 0 and subject(err) == "CN=a.example", err
    assert lb.alive()

    # The key fixed: the new certificate is served.
    lb.config_path.write_text(https_yaml(up, [certs.c, certs.a], listen=listen))
    os.kill(lb.pid, signal.SIGHUP)
    assert lb.wait_log("Configuration reloaded"), lb.log_text()[-2000:]
    assert wait_for(lambda: subject(fetch(lb, certs.ca, "c.example")[1]) == "CN=c.example")
    p, err = fetch(lb, certs.ca, "a.example")
    assert p.returncode == 0 and subject(err) == "CN=a.example", err
