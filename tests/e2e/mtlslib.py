# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared pieces of the mTLS end-to-end tests (test_mtls*.py): a set of
certificates made by the built weftctl and by certtool (for the ones
weftctl refuses to make), TLS clients on Python's ssl module, metric
lookups by label, and network-namespace helpers. Python standard library
only; the contract is docs/design/mtls.md's "Interface" section."""

import ctypes
import datetime
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import warnings

from weftlib import WEFT, Weft, admin_get, check, wait_for

WEFTCTL = os.environ.get("WEFTCTL_EXE") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(WEFT))), "ctl", "weftctl")

TRUST_DOMAIN = "cluster.local"


def spiffe(sa, ns="default", td=TRUST_DOMAIN):
    return f"spiffe://{td}/ns/{ns}/sa/{sa}"


def run(*args, check_rc=True):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    if check_rc and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    return p


# ---------------------------------------------------------------- certificates

CERTTOOL_TEMPLATE = """\
organization = "{org}"
cn = "{cn}"
serial = {serial}
activation_date = "{not_before}"
expiration_date = "{not_after}"
signing_key
encryption_key
tls_www_client
tls_www_server
"""


def _stamp(t):
    return t.strftime("%Y-%m-%d %H:%M:%S")


class Certs:
    """Every certificate the tests use, in one temporary directory:

    - ca:        the mesh CA of cluster.local (weftctl cert ca)
    - a, b, c:   workload leaves spiffe://cluster.local/ns/default/sa/{a,b,c},
                 30 days (weftctl cert issue)
    - b-short:   sa/b again, issued for 1 day
    - b2:        sa/b again, 60 days: what a rotation swaps in
    - b-dns:     sa/b with the DNS SAN b.default.svc, for curl
    - wrong-ca:  sa/a signed by a second cluster.local CA (ca2)
    - expired, not-yet-valid, no-san, other-td: signed by ca with certtool
                 (weftctl only issues valid, well-formed leaves)

    leaf(name) gives (chain file, key file); every chain is leaf then CA."""

    def __init__(self):
        for tool in (WEFTCTL, shutil.which("certtool")):
            if tool is None or not os.access(tool, os.X_OK):
                raise AssertionError(f"missing tool: {tool or 'certtool (gnutls-bin)'}")
        self.dir = tempfile.mkdtemp(prefix="weft-mtls-certs-")
        self._leaves = {}
        self.ca, self.ca_key = self._ca("ca", TRUST_DOMAIN)
        self.ca2, self.ca2_key = self._ca("ca2", TRUST_DOMAIN)
        for sa in ("a", "b", "c"):
            self._issue(sa, sa, days=30)
        self._issue("b-short", "b", days=1)
        self._issue("b2", "b", days=60)
        self._issue("b-dns", "b", days=30, dns="b.default.svc")
        self._issue("wrong-ca", "a", days=30, ca=(self.ca2, self.ca2_key))
        now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
        day = datetime.timedelta(days=1)
        self._certtool("expired", uri=spiffe("a"), not_before=now - 60 * day,
                       not_after=now - day)
        self._certtool("not-yet-valid", uri=spiffe("a"), not_before=now + 30 * day,
                       not_after=now + 60 * day)
        self._certtool("no-san", uri=None, not_before=now - day, not_after=now + 30 * day)
        self._certtool("other-td", uri=spiffe("a", td="other.example"),
                       not_before=now - day, not_after=now + 30 * day)

    def _ca(self, name, td):
        out = os.path.join(self.dir, name)
        run(WEFTCTL, "cert", "ca", "--trust-domain", td, "--out-dir", out)
        return os.path.join(out, "ca.pem"), os.path.join(out, "ca-key.pem")

    def _issue(self, name, sa, days, ca=None, dns=None):
        ca, ca_key = ca or (self.ca, self.ca_key)
        out = os.path.join(self.dir, name)
        run(WEFTCTL, "cert", "issue", "--namespace", "default", "--service-account", sa,
            "--ca", ca, "--ca-key", ca_key, "--out-dir", out, "--days", str(days),
            *(["--dns", dns] if dns else []))
        self._leaves[name] = (os.path.join(out, f"{sa}.pem"), os.path.join(out, f"{sa}-key.pem"))

    def _certtool(self, name, uri, not_before, not_after):
        out = os.path.join(self.dir, name)
        os.makedirs(out)
        key = os.path.join(out, "key.pem")
        leaf = os.path.join(out, "leaf.pem")
        tmpl = os.path.join(out, "template")
        run("certtool", "--generate-privkey", "--key-type", "ecdsa", "--curve", "secp256r1",
            "--outfile", key)
        text = CERTTOOL_TEMPLATE.format(org=TRUST_DOMAIN, cn=name,
                                        serial=int.from_bytes(os.urandom(8), "big") >> 2 | 1,
                                        not_before=_stamp(not_before),
                                        not_after=_stamp(not_after))
        if uri is not None:
            text += f'uri = "{uri}"\n'
        else:
            text += 'dns_name = "no-san.default.svc"\n'
        with open(tmpl, "w") as fh:
            fh.write(text)
        run("certtool", "--generate-certificate", "--load-privkey", key,
            "--load-ca-certificate", self.ca, "--load-ca-privkey", self.ca_key,
            "--template", tmpl, "--outfile", leaf)
        chain = os.path.join(out, "chain.pem")
        with open(chain, "w") as fh:
            fh.write(open(leaf).read() + open(self.ca).read())
        self._leaves[name] = (chain, key)

    def leaf(self, name):
        return self._leaves[name]

    def files(self, name):
        """{'cert.pem', 'key.pem', 'ca.pem'} contents for a kubelet volume"""
        cert, key = self.leaf(name)
        return {"cert.pem": open(cert, "rb").read(), "key.pem": open(key, "rb").read(),
                "ca.pem": open(self.ca, "rb").read()}

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def leaf_der(path):
    """the DER bytes of the first certificate of a PEM file"""
    text = open(path).read()
    end = "-----END CERTIFICATE-----"
    return ssl.PEM_cert_to_DER_cert(text[:text.index(end) + len(end)] + "\n")


def tls_yaml(cert, key, bundle, expiry_warning=None):
    out = f"tls:\n  cert: {cert}\n  key: {key}\n  bundle: {bundle}\n"
    if expiry_warning:
        out += f"  expiry_warning: {expiry_warning}\n"
    return out


# ---------------------------------------------------------------- clients

def client_context(certs, leaf=None, verify=True, alpn=True):
    """a TLS client: presents @leaf (a Certs name) when given, checks the
    server's chain against the mesh CA (no host name: SPIFFE leaves have
    none)"""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if verify:
        ctx.load_verify_locations(certs.ca)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if leaf is not None:
        ctx.load_cert_chain(*certs.leaf(leaf))
    if alpn:
        ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def old_tls_context(certs, leaf="a"):
    """a client that speaks TLS 1.1 at most (OpenSSL needs security level
    0 for it)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.load_cert_chain(*certs.leaf(leaf))
    return ctx


class MtlsConn(http.client.HTTPConnection):
    """A keep-alive HTTP/1.1 connection over TLS from a chosen source
    address, optionally resuming @session. http.client reconnects on its
    own after a close; `connects` counts how often it did."""

    def __init__(self, port, ctx, src="127.0.0.1", host="127.0.0.1", session=None,
                 timeout=10):
        super().__init__(host, port, timeout=timeout, source_address=(src, 0))
        self.ctx, self.session, self.connects = ctx, session, 0

    def connect(self):
        super().connect()
        self.sock = self.ctx.wrap_socket(self.sock, session=self.session)
        self.connects += 1

    def get(self, path="/echo", method="GET", headers=None, body=None):
        self.request(method, path, body=body, headers=headers or {"Host": "service-b"})
        r = self.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def mtls_get(port, ctx, path="/echo", src="127.0.0.1", headers=None):
    """one request on a fresh TLS connection: (status, headers, body)"""
    c = MtlsConn(port, ctx, src=src)
    try:
        return c.get(path, headers=headers)
    finally:
        c.close()


def presented_cert(port, ctx):
    """the DER leaf the server presents to a new handshake"""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    with ctx.wrap_socket(s) as t:
        return t.getpeercert(binary_form=True)


class Attempt:
    """How a connection that should be refused went: outcome is 'refused'
    (handshake error, alert, reset or close without an HTTP answer),
    'served' (an HTTP answer came back) or 'hung' (nothing for @timeout)."""

    def __init__(self, peer, outcome, detail):
        self.peer, self.outcome, self.detail = peer, outcome, detail

    def __repr__(self):
        return f"<{self.outcome} from {self.peer}: {self.detail!r}>"


def _bound_socket(port, src, timeout):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    return s, f"{src}:{s.getsockname()[1]}"


def _read_to_close(s):
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            return data
        data += d


REQUEST = b"GET /echo HTTP/1.1\r\nHost: service-b\r\n\r\n"


def tls_attempt(port, ctx, src="127.0.0.1", timeout=5):
    """a TLS handshake with @ctx, then (if it completed on our side, as TLS
    1.3 lets a client think before the server checked its certificate) one
    request"""
    s, peer = _bound_socket(port, src, timeout)
    try:
        try:
            t = ctx.wrap_socket(s)
        except TimeoutError:
            return Attempt(peer, "hung", "no handshake answer")
        except (ssl.SSLError, OSError) as e:
            return Attempt(peer, "refused", f"handshake: {e}")
        try:
            t.sendall(REQUEST)
            data = _read_to_close(t)
        except TimeoutError:
            return Attempt(peer, "hung", "no answer to the request")
        except (ssl.SSLError, OSError) as e:
            return Attempt(peer, "refused", f"after handshake: {e}")
        finally:
            t.close()
        if data.startswith(b"HTTP/"):
            return Attempt(peer, "served", data[:200])
        return Attempt(peer, "refused", f"closed after {len(data)} bytes")
    finally:
        s.close()


def plain_attempt(port, data=REQUEST, src="127.0.0.1", timeout=5):
    """plaintext bytes to a port, read until it closes"""
    s, peer = _bound_socket(port, src, timeout)
    try:
        if data:
            s.sendall(data)
        got = _read_to_close(s)
    except TimeoutError:
        return Attempt(peer, "hung", "no close")
    except OSError as e:
        return Attempt(peer, "refused", str(e))
    finally:
        s.close()
    if got.startswith(b"HTTP/"):
        return Attempt(peer, "served", got[:200])
    return Attempt(peer, "refused", f"closed after {len(got)} bytes: {got[:16]!r}")


# ---------------------------------------------------------------- metrics and logs

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples_of(text):
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and not line.startswith("#"):
            out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return out


def metrics_text(w):
    return admin_get(w.admin_port, "/metrics")[2].decode()


def total(w, name, **want):
    """the sum of @name's samples whose labels include @want"""
    return sum(v for n, labels, v in samples_of(w.metrics_text())
               if n == name and all(labels.get(k) == str(x) for k, x in want.items()))


def series(w, name, **want):
    return [(labels, v) for n, labels, v in samples_of(w.metrics_text())
            if n == name and all(labels.get(k) == str(x) for k, x in want.items())]


def failures(w, **want):
    return total(w, "weft_tls_handshake_failures_total", **want)


def access_lines(w):
    """the accesslog plugin's JSON lines (stdout shares weft's log file)"""
    out = []
    for line in w.logs().splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def access_line(w, path, timeout=5):
    """waits for the access log line of the request to @path"""
    def find():
        for obj in access_lines(w):
            if obj.get("path") == path:
                return obj
        return None
    return wait_for(find, timeout, what=f"access log line for {path}")


class MtlsWeft(Weft):
    """weftlib's Weft with the /metrics text readable through a hook, so the
    namespaced subclass can reach an admin port in another namespace"""

    def metrics_text(self):
        return metrics_text(self)


# ---------------------------------------------------------------- network namespaces

CLONE_NEWNET = 0x40000000
_libc = None


def in_netns(ns, func, *args):
    """runs @func in a thread that entered network namespace @ns (setns
    changes only the calling thread); sockets made there stay in @ns"""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    box = {}

    def body():
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                e = ctypes.get_errno()
                raise OSError(e, f"setns {ns}: {os.strerror(e)}")
        finally:
            os.close(fd)
        box["value"] = func(*args)

    def guarded():
        try:
            body()
        except BaseException as e:     # handed to the caller's thread
            box["error"] = e

    t = threading.Thread(target=guarded)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


class NsWeft(MtlsWeft):
    """a weft inside a network namespace: started through `ip netns exec`
    (which execs, so the process is weft itself), its admin port reached
    from a thread inside the namespace"""

    def __init__(self, ns, config_text, **kw):
        super().__init__(config_text, **kw)
        self.ns = ns

    def start(self, wait=True, config_path=None):
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, WEFT,
                                      "--config", config_path or self.dir,
                                      "--log-level", "debug"] + self.args,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def admin(self, path):
        """the admin listener lives inside the namespace"""
        return in_netns(self.ns, admin_get, self.admin_port, path)

    def metrics_text(self):
        return self.admin("/metrics")[2].decode()


class Netns:
    """two namespaces joined by a veth pair: ns1 holds 10.231.0.1/24, ns2
    10.231.0.2/24. Names carry the pid, so parallel runs do not collide."""

    def __init__(self, tag="wmt"):
        if shutil.which("ip") is None:
            raise OSError("the ip command (iproute2) is not installed")
        pid = os.getpid()
        self.ns1, self.ns2 = f"{tag}1-{pid}", f"{tag}2-{pid}"
        self.veth1, self.veth2 = f"{tag}a{pid}"[:15], f"{tag}b{pid}"[:15]
        self.ip1, self.ip2 = "10.231.0.1", "10.231.0.2"
        self.made = []

    def _ip(self, *args):
        p = subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)
        if p.returncode != 0:
            raise OSError(f"ip {' '.join(args)}: {p.stderr.strip()}")

    def setup(self):
        for ns in (self.ns1, self.ns2):
            self._ip("netns", "add", ns)
            self.made.append(ns)
        self._ip("link", "add", self.veth1, "type", "veth", "peer", "name", self.veth2)
        for ns, dev, addr in ((self.ns1, self.veth1, self.ip1), (self.ns2, self.veth2, self.ip2)):
            self._ip("link", "set", dev, "netns", ns)
            self._ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            self._ip("-n", ns, "link", "set", dev, "up")
            self._ip("-n", ns, "link", "set", "lo", "up")
        return self

    def exec(self, ns, *cmd, timeout=30, text=True):
        return subprocess.run(["ip", "netns", "exec", ns] + list(cmd), capture_output=True,
                              text=text, timeout=timeout)

    def cleanup(self):
        """deleting a namespace deletes the veth end inside it, and so the pair"""
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        self.made = []
        subprocess.run(["ip", "link", "del", self.veth1], capture_output=True, timeout=20)


def check_weft_alive(w):
    check(w.proc.poll() is None, f"weft exited with {w.proc.returncode}:\n{w.logs()[-3000:]}")
