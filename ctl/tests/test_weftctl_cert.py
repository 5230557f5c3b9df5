# SPDX-License-Identifier: LGPL-2.1-or-later
"""weftctl cert end to end: the built weftctl makes mesh CAs and workload
certificates in temporary directories, and GnuTLS's certtool (from
gnutls-bin) checks what it wrote: the chain verifies, the SPIFFE ID and the
extensions are there, and a certificate from another CA does not verify."""

import calendar
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "tests", "e2e"))

from weftlib import Tap, check  # noqa: E402

WEFTCTL = os.environ.get("WEFTCTL") or os.path.join(
    os.environ.get("WEFT_BUILD_ROOT", "build"), "ctl", "weftctl")
SPIFFE_ID = "spiffe://cluster.local/ns/default/sa/reviews"
DAY = 24 * 3600


# ---------------------------------------------------------------- helpers

def run(*args, cwd=None):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)


def weftctl(*args, cwd=None):
    return run(WEFTCTL, *args, cwd=cwd)


def ok(p, what):
    check(p.returncode == 0, f"{what}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def certtool(*args):
    if shutil.which("certtool") is None:
        raise AssertionError("certtool not found: it comes with gnutls-bin, "
                             "which scripts/setup-debian.sh installs")
    return run("certtool", *args)


def cert_info(path):
    return ok(certtool("-i", "--infile", path), f"certtool -i {path}").stdout


def verify(ca, chain):
    p = certtool("--verify", "--load-ca-certificate", ca, "--infile", chain)
    return p.returncode == 0 and "Chain verification output: Verified" in p.stdout, p


def section(info, name):
    """The lines of one extension in certtool -i output, up to the next one."""
    m = re.search(r"\t\t" + re.escape(name) + r" \((critical|not critical)\):\n"
                  r"((?:\t\t\t.*\n)*)", info)
    check(m is not None, f"no {name} extension in:\n{info}")
    return m.group(1), m.group(2)


def cert_time(info, which):
    m = re.search(which + r": (\w{3} \w{3} +\d+ [\d:]+ UTC \d{4})", info)
    check(m is not None, f"no {which} in:\n{info}")
    return calendar.timegm(time.strptime(m.group(1), "%a %b %d %H:%M:%S UTC %Y"))


def pem_blocks(path):
    with open(path) as f:
        return re.findall(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n",
                          f.read(), re.S)


def make_ca(d, domain="cluster.local", *extra):
    ok(weftctl("cert", "ca", "--trust-domain", domain, "--out-dir", d, *extra), "weftctl cert ca")


def issue(d, *extra, ns="default", sa="reviews"):
    """Issue in @d with the CA of @d, as an operator would: cwd-relative defaults."""
    return weftctl("cert", "issue", "--namespace", ns, "--service-account", sa, *extra, cwd=d)


def mesh():
    """A temporary directory with a CA and reviews.pem issued from it."""
    d = tempfile.TemporaryDirectory(prefix="weftctl-")
    make_ca(d.name)
    ok(issue(d.name), "weftctl cert issue")
    return d


# ---------------------------------------------------------------- tests

def test_certtool_installed():
    check(shutil.which("certtool") is not None,
          "certtool not found: it comes with gnutls-bin, which scripts/setup-debian.sh installs")


def test_help_and_usage_errors():
    p = ok(weftctl("--help"), "weftctl --help")
    check("cert" in p.stdout, p.stdout)
    p = ok(weftctl("cert", "--help"), "weftctl cert --help")
    for sub in ("ca", "issue", "inspect", "--trust-domain", "--service-account"):
        check(sub in p.stdout, f"{sub} missing from:\n{p.stdout}")
    p = ok(weftctl("cert", "issue", "--help"), "weftctl cert issue --help")
    check("--ca-key" in p.stdout and "--dns" in p.stdout, p.stdout)
    for args in (["frobnicate"], ["cert"], ["cert", "sign"], ["cert", "ca"],
                 ["cert", "ca", "--trust-domain", "x", "--days", "0"],
                 ["cert", "issue", "--namespace", "default"],
                 ["cert", "inspect"], ["cert", "ca", "--bogus"]):
        p = weftctl(*args)
        check(p.returncode == 2, f"{args}: exit {p.returncode}, wanted 2\n{p.stderr}")
        check("--help" in p.stderr and p.stdout == "", f"{args}: {p.stdout}{p.stderr}")


def test_issued_chain_verifies_against_ca():
    with mesh() as d:
        good, p = verify(os.path.join(d, "ca.pem"), os.path.join(d, "reviews.pem"))
        check(good, f"certtool --verify failed:\n{p.stdout}{p.stderr}")


def test_ca_certificate_extensions():
    with tempfile.TemporaryDirectory() as d:
        p = ok(weftctl("cert", "ca", "--trust-domain", "cluster.local", "--out-dir", d), "ca")
        check("spiffe://cluster.local" in p.stdout, p.stdout)
        info = cert_info(os.path.join(d, "ca.pem"))
        crit, body = section(info, "Basic Constraints")
        check(crit == "critical" and "Certificate Authority (CA): TRUE" in body, info)
        crit, body = section(info, "Key Usage")
        check(crit == "critical" and "Certificate signing." in body and "CRL signing." in body
              and "Digital signature." not in body, info)
        _, body = section(info, "Subject Alternative Name")
        check(body.strip() == "URI: spiffe://cluster.local", body)
        section(info, "Subject Key Identifier")
        check("CN=weft mesh CA cluster.local" in info, info)
        check("Curve:\tSECP256R1" in info, info)
        # self-signed, about ten years
        check(re.search(r"Issuer: (.*)\n", info).group(1)
              == re.search(r"\tSubject: (.*)\n", info).group(1), info)
        span = cert_time(info, "Not After") - cert_time(info, "Not Before")
        check(abs(span - 3650 * DAY - 60) <= 5, f"CA lifetime {span}s")


def test_workload_certificate_extensions():
    with mesh() as d:
        info = cert_info(os.path.join(d, "reviews.pem"))
        _, body = section(info, "Subject Alternative Name")
        uris = re.findall(r"URI: (\S+)", body)
        check(uris == [SPIFFE_ID], f"URI SANs {uris}")
        crit, body = section(info, "Basic Constraints")
        check(crit == "critical" and "Certificate Authority (CA): FALSE" in body, info)
        crit, body = section(info, "Key Usage")
        check(crit == "critical" and "Digital signature." in body
              and "Certificate signing." not in body, info)
        _, body = section(info, "Key Purpose")
        check("TLS WWW Server." in body and "TLS WWW Client." in body, body)
        check("Curve:\tSECP256R1" in info, info)
        # the authority key id is the CA's subject key id
        _, aki = section(info, "Authority Key Identifier")
        _, ski = section(cert_info(os.path.join(d, "ca.pem")), "Subject Key Identifier")
        check(aki.strip() == ski.strip(), f"AKI {aki!r} != CA SKI {ski!r}")
        # a 128-bit serial, a notBefore a minute back, one day by default
        serial = re.search(r"Serial Number \(hex\): ([0-9a-f]+)", info).group(1)
        check(len(serial) == 32, f"serial {serial}")
        not_before = cert_time(info, "Not Before")
        check(55 <= time.time() - not_before <= 120, f"notBefore {time.time() - not_before}s ago")
        span = cert_time(info, "Not After") - not_before
        check(abs(span - DAY - 60) <= 5, f"lifetime {span}s")


def test_serials_differ():
    with mesh() as d:
        first = re.search(r"Serial Number \(hex\): (\w+)", cert_info(os.path.join(d, "reviews.pem")))
        ok(issue(d, "--force"), "reissue")
        second = re.search(r"Serial Number \(hex\): (\w+)", cert_info(os.path.join(d, "reviews.pem")))
        check(first.group(1) != second.group(1), "the same serial twice")


def test_chain_file_is_leaf_then_ca():
    with mesh() as d:
        blocks = pem_blocks(os.path.join(d, "reviews.pem"))
        check(len(blocks) == 2, f"{len(blocks)} certificates in reviews.pem")
        check(blocks[1] == pem_blocks(os.path.join(d, "ca.pem"))[0], "second is not the CA")


def test_key_files_are_0600_and_match():
    with mesh() as d:
        for name in ("ca-key.pem", "reviews-key.pem"):
            mode = os.stat(os.path.join(d, name)).st_mode & 0o777
            check(mode == 0o600, f"{name} mode {mode:o}")
        for crt, key in (("ca.pem", "ca-key.pem"), ("reviews.pem", "reviews-key.pem")):
            key_info = ok(certtool("-k", "--infile", os.path.join(d, key)), f"certtool -k {key}")
            key_id = re.search(r"sha256:([0-9a-f]+)", key_info.stdout.split("Public Key ID")[1])
            check(key_id.group(1) in cert_info(os.path.join(d, crt)),
                  f"{key} does not hold the key of {crt}")


def test_inspect_prints_identity_and_validity():
    with mesh() as d:
        p = ok(weftctl("cert", "inspect", os.path.join(d, "reviews.pem")), "inspect")
        out = p.stdout
        check("certificate 1 of 2" in out and "certificate 2 of 2" in out, out)
        leaf, ca = out.split("certificate 2 of 2")
        check(f"spiffe id:   {SPIFFE_ID}" in leaf, leaf)
        check("ca:          no" in leaf and "ca:          yes" in ca, out)
        check("issuer:      CN=weft mesh CA cluster.local" in leaf, leaf)
        # a day from the issue time, so a day or, a second later, 23 hours
        check(re.search(r"not after: .* \(expires in (1 day|23 hours)\)", leaf), leaf)
        check(re.search(r"not after: .* \(expires in (3650|3649) days\)", ca), ca)
        check("key:         ECDSA SECP256R1" in leaf, leaf)
        info = cert_info(os.path.join(d, "reviews.pem"))
        serial = re.search(r"Serial Number \(hex\): (\w+)", info).group(1)
        shown = re.search(r"serial: +([0-9a-f:]+)", leaf).group(1)
        check(shown.replace(":", "") == serial, f"{shown} vs {serial}")


def test_issue_options_trust_domain_dns_days_out_dir():
    with tempfile.TemporaryDirectory() as d:
        make_ca(d, "example.org")
        out = os.path.join(d, "certs", "ratings")
        ok(weftctl("cert", "issue", "--namespace", "shop", "--service-account", "ratings",
                   "--ca", os.path.join(d, "ca.pem"), "--ca-key", os.path.join(d, "ca-key.pem"),
                   "--out-dir", out, "--days", "30",
                   "--dns", "ratings.shop.svc", "--dns", "*.ratings.shop"), "issue")
        info = cert_info(os.path.join(out, "ratings.pem"))
        _, body = section(info, "Subject Alternative Name")
        check(re.findall(r"URI: (\S+)", body) == ["spiffe://example.org/ns/shop/sa/ratings"], body)
        check(re.findall(r"DNSname: (\S+)", body) == ["ratings.shop.svc", "*.ratings.shop"], body)
        span = cert_time(info, "Not After") - cert_time(info, "Not Before")
        check(abs(span - 30 * DAY - 60) <= 5, f"lifetime {span}s")
        # an explicit trust domain wins over the CA's
        ok(weftctl("cert", "issue", "--namespace", "shop", "--service-account", "cart",
                   "--trust-domain", "other.test", "--ca", os.path.join(d, "ca.pem"),
                   "--ca-key", os.path.join(d, "ca-key.pem"), "--out-dir", out), "issue")
        p = ok(weftctl("cert", "inspect", os.path.join(out, "cart.pem")), "inspect")
        check("spiffe://other.test/ns/shop/sa/cart" in p.stdout, p.stdout)


def test_refuses_to_overwrite_without_force():
    with mesh() as d:
        before = {n: open(os.path.join(d, n), "rb").read()
                  for n in ("ca.pem", "ca-key.pem", "reviews.pem", "reviews-key.pem")}
        p = weftctl("cert", "ca", "--trust-domain", "cluster.local", "--out-dir", d)
        check(p.returncode == 1 and "ca.pem already exists" in p.stderr
              and "--force" in p.stderr, f"exit {p.returncode}: {p.stderr}")
        p = issue(d)
        check(p.returncode == 1 and "reviews.pem already exists" in p.stderr, p.stderr)
        for n, data in before.items():
            check(open(os.path.join(d, n), "rb").read() == data, f"{n} changed")
        # only the key left from an earlier run still counts
        os.unlink(os.path.join(d, "ca.pem"))
        p = weftctl("cert", "ca", "--trust-domain", "cluster.local", "--out-dir", d)
        check(p.returncode == 1 and "ca-key.pem already exists" in p.stderr, p.stderr)
        check(not os.path.exists(os.path.join(d, "ca.pem")), "ca.pem written anyway")
        make_ca(d, "cluster.local", "--force")
        check(open(os.path.join(d, "ca-key.pem"), "rb").read() != before["ca-key.pem"],
              "--force kept the old key")
        ok(issue(d, "--force"), "issue --force")
        good, p = verify(os.path.join(d, "ca.pem"), os.path.join(d, "reviews.pem"))
        check(good, p.stdout)


def test_bad_names_refused():
    with tempfile.TemporaryDirectory() as d:
        make_ca(d)
        cases = [("Default", "reviews", "--namespace 'Default' is not a DNS label"),
                 ("-default", "reviews", "--namespace '-default' is not a DNS label"),
                 ("a" * 64, "reviews", "is not a DNS label"),
                 ("default", "re_views", "--service-account 're_views' is not a DNS label"),
                 ("default", "../etc", "--service-account '../etc' is not a DNS label"),
                 ("default", "", "--service-account '' is not a DNS label")]
        for ns, sa, message in cases:
            p = issue(d, ns=ns, sa=sa)
            check(p.returncode == 2, f"{ns}/{sa}: exit {p.returncode}")
            check(message in p.stderr, f"{ns}/{sa}: {p.stderr}")
        for extra, message in ((["--dns", "bad name"], "--dns 'bad name' is not a DNS name"),
                               (["--trust-domain", "Bad/TD"], "is not a trust domain")):
            p = issue(d, *extra)
            check(p.returncode == 2 and message in p.stderr, f"{extra}: {p.stderr}")
        p = weftctl("cert", "ca", "--trust-domain", "spiffe://x", "--out-dir", d, "--force")
        check(p.returncode == 2 and "is not a trust domain" in p.stderr, p.stderr)
        check(sorted(os.listdir(d)) == ["ca-key.pem", "ca.pem"], f"{os.listdir(d)}")


def test_mismatched_ca_key_refused():
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        make_ca(a)
        make_ca(b)
        p = weftctl("cert", "issue", "--namespace", "default", "--service-account", "reviews",
                    "--ca", os.path.join(a, "ca.pem"), "--ca-key", os.path.join(b, "ca-key.pem"),
                    "--out-dir", a)
        check(p.returncode == 1, f"exit {p.returncode}")
        check(os.path.join(b, "ca-key.pem") in p.stderr and "does not belong" in p.stderr,
              p.stderr)
        check(not os.path.exists(os.path.join(a, "reviews.pem")), "wrote a certificate anyway")
        # a leaf is no CA, and a missing CA file is named
        ok(issue(a), "issue")
        p = weftctl("cert", "issue", "--namespace", "default", "--service-account", "x",
                    "--ca", os.path.join(a, "reviews.pem"),
                    "--ca-key", os.path.join(a, "reviews-key.pem"), "--out-dir", a)
        check(p.returncode == 1 and "not a CA certificate" in p.stderr, p.stderr)
        p = weftctl("cert", "issue", "--namespace", "default", "--service-account", "x",
                    "--ca", os.path.join(a, "nope.pem"), "--out-dir", a)
        check(p.returncode == 1 and "nope.pem" in p.stderr, p.stderr)


def test_inspect_refuses_non_certificates():
    with mesh() as d:
        text = os.path.join(d, "notes.txt")
        with open(text, "w") as f:
            f.write("hello\n")
        broken = os.path.join(d, "broken.pem")
        with open(broken, "w") as f:
            f.write("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
        for path, message in ((text, "not a PEM certificate"),
                              (os.path.join(d, "reviews-key.pem"), "private key, not a certificate"),
                              (broken, "cannot parse the certificates"),
                              (os.path.join(d, "missing.pem"), "No such file")):
            p = weftctl("cert", "inspect", path)
            check(p.returncode == 1, f"{path}: exit {p.returncode}")
            check(path in p.stderr and message in p.stderr, f"{path}: {p.stderr}")
            check(p.stdout == "", p.stdout)


def test_other_ca_does_not_verify():
    with mesh() as first, mesh() as second:
        good, _ = verify(os.path.join(second, "ca.pem"), os.path.join(second, "reviews.pem"))
        check(good, "the second mesh does not verify against its own CA")
        good, p = verify(os.path.join(first, "ca.pem"), os.path.join(second, "reviews.pem"))
        check(not good, f"a certificate from another CA verified:\n{p.stdout}")
        check("NOT trusted" in p.stdout and "issuer is unknown" in p.stdout, p.stdout)


def main():
    tap = Tap()
    for t in (test_certtool_installed,
              test_help_and_usage_errors,
              test_issued_chain_verifies_against_ca,
              test_ca_certificate_extensions,
              test_workload_certificate_extensions,
              test_serials_differ,
              test_chain_file_is_leaf_then_ca,
              test_key_files_are_0600_and_match,
              test_inspect_prints_identity_and_validity,
              test_issue_options_trust_domain_dns_days_out_dir,
              test_refuses_to_overwrite_without_force,
              test_bad_names_refused,
              test_mismatched_ca_key_refused,
              test_inspect_refuses_non_certificates,
              test_other_ca_does_not_verify):
        tap.run(t)
    tap.done()


if __name__ == "__main__":
    main()
