# SPDX-License-Identifier: MIT
"""TLS for the integration tests: a throw-away PKI made with certtool, and an HTTPS upstream.

  make_pki(dir)       a Pki: a test CA; `good` for httpbin.org and mock.api7.ai (and the IPs
                      127.0.0.2, 127.0.0.3); `wrong` for wrong-name.test; `expired` (good's
                      names, validity over in 2020); `unknown` (good's names, signed by a CA
                      nobody trusts). Each is a (cert_path, key_path) pair.
  TlsUpstreamServer   the recording UpstreamServer (upstream.py) behind Python's ssl, counting
                      handshakes, resumed sessions (server side: SSLSocket.session_reused),
                      the SNI each client sent, and failed handshakes.
"""

import shutil
import ssl
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from upstream import UpstreamServer

CERTTOOL = shutil.which("certtool") or "/usr/bin/certtool"


@dataclass
class Pki:
    ca: Path
    good: tuple
    wrong: tuple
    expired: tuple
    unknown: tuple
    unknown_ca: Path


def _certtool(*args):
    subprocess.run([CERTTOOL, *map(str, args)], check=True, capture_output=True, timeout=60)


def _key(path):
    # ECDSA: fast to make, and every TLS stack here speaks it.
    _certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", path)
    return path


def _ca(d, name):
    key = _key(d / f"{name}.key")
    tmpl = d / f"{name}.tmpl"
    tmpl.write_text(f'cn = "lbproxy test CA {name}"\nca\ncert_signing_key\n'
                    'expiration_days = 30\n')
    cert = d / f"{name}.pem"
    _certtool("--generate-self-signed", "--load-privkey", key, "--template", tmpl,
              "--outfile", cert)
    return cert, key


def _leaf(d, name, ca, names, ips=(), validity='expiration_days = 30\n'):
    key = _key(d / f"{name}.key")
    tmpl = d / f"{name}.tmpl"
    lines = [f'cn = "{names[0]}"', "tls_www_server", "signing_key", "encryption_key"]
    lines += [f'dns_name = "{n}"' for n in names]
    lines += [f'ip_address = "{ip}"' for ip in ips]
    tmpl.write_text("\n".join(lines) + "\n" + validity)
    cert = d / f"{name}.pem"
    _certtool("--generate-certificate", "--load-privkey", key, "--load-ca-certificate", ca[0],
              "--load-ca-privkey", ca[1], "--template", tmpl, "--outfile", cert)
    return cert, key


def make_pki(d):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    ca = _ca(d, "ca")
    other = _ca(d, "other-ca")
    names = ["httpbin.org", "mock.api7.ai"]
    return Pki(
        ca=ca[0],
        good=_leaf(d, "good", ca, names, ips=("127.0.0.2", "127.0.0.3")),
        wrong=_leaf(d, "wrong", ca, ["wrong-name.test"]),
        expired=_leaf(d, "expired", ca, names,
                      validity='activation_date = "2020-01-01 00:00:00"\n'
                               'expiration_date = "2020-02-01 00:00:00"\n'),
        unknown=_leaf(d, "unknown", other, names),
        unknown_ca=other[0],
    )


class TlsUpstreamServer(UpstreamServer):
    """UpstreamServer over TLS. `max_version` (an ssl.TLSVersion) caps the protocol, to test
    TLS 1.2 next to 1.3; `legacy` lets it speak TLS 1.0 and 1.1 too; `num_tickets` is how many
    TLS 1.3 session tickets it sends after each handshake (OpenSSL's default: 2)."""

    def __init__(self, name, host, cert, port=0, max_version=None, legacy=False,
                 num_tickets=None):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        if num_tickets is not None:
            self.ctx.num_tickets = num_tickets
        if legacy:
            # OpenSSL 3 refuses TLS < 1.2 at its default security level.
            self.ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.ctx.minimum_version = ssl.TLSVersion.TLSv1
        if max_version is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                self.ctx.maximum_version = max_version
        self.ctx.sni_callback = self._on_sni
        super().__init__(name, host, port)

    @property
    def url(self):
        return f"https://{self.host}:{self.port}"

    def reset(self):
        super().reset()
        with self._lock:
            self.handshakes = 0        # completed TLS handshakes
            self.resumed = 0           # of which resumed a session
            self.versions = []         # protocol version of each handshake
            self.sni = []              # server name of each ClientHello (None: no SNI)
            self.handshake_errors = []  # why handshakes failed

    def _on_sni(self, sslobj, server_name, ctx):
        with self._lock:
            self.sni.append(server_name)
        return None

    def _serve(self, c, peer, conn_id):
        c.settimeout(10)
        try:
            s = self.ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError) as e:
            with self._lock:
                self.handshake_errors.append(str(e))
                self._socks.discard(c)
            c.close()
            return
        with self._lock:
            # stop() shuts down what it finds in _socks: the TLS socket now owns the fd.
            self._socks.discard(c)
            self._socks.add(s)
            self.handshakes += 1
            self.resumed += 1 if s.session_reused else 0
            self.versions.append(s.version())
        super()._serve(s, peer, conn_id)
