"""Test PKI made with the openssl CLI: a CA and leaf certificates in a temporary directory.

CertFactory(tmpdir) creates a fresh CA on construction; leaf() signs a P-256 leaf with the given
subjectAltNames and validity window and returns a Leaf with the PEM paths. self_signed() makes a
server certificate that is its own issuer (what a collector set up by hand often has). Nothing is cached
between instances, so concurrent test modules never share files.
"""

import datetime
import os
import subprocess
from dataclasses import dataclass

_CA_CONFIG = """\
[ ca ]
default_ca = test_ca

[ test_ca ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/issued
serial = $dir/serial
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none

[ policy_any ]
commonName = supplied

[ leaf_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = @alt_names

[ alt_names ]
{alt_names}
"""


@dataclass(frozen=True)
class Leaf:
    cert: str  # PEM certificate path
    key: str  # PEM private key path
    ca: str  # PEM path of the issuing CA certificate


def _run(args, cwd):
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {result.stderr.strip()}")


def _asn1_time(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%SZ")


class CertFactory:
    def __init__(self, directory, name="ca"):
        self.dir = os.path.join(directory, name)
        os.makedirs(os.path.join(self.dir, "issued"))
        with open(os.path.join(self.dir, "index.txt"), "w", encoding="ascii"):
            pass
        with open(os.path.join(self.dir, "serial"), "w", encoding="ascii") as f:
            f.write("1000\n")
        self.ca_cert = os.path.join(self.dir, "ca.pem")
        self.ca_key = os.path.join(self.dir, "ca.key")
        _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", self.ca_key,
              "-out", self.ca_cert, "-days", "2", "-subj", f"/CN=tokentap test {name}",
              "-addext", "basicConstraints=critical,CA:TRUE",
              "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)
        self._count = 0

    def leaf(self, ips=("127.0.0.1",), dns=("localhost",), not_before=None, not_after=None):
        """Signs a server certificate. Validity defaults to [now - 1h, now + 1 day]."""
        self._count += 1
        stem = os.path.join(self.dir, f"leaf{self._count}")
        now = datetime.datetime.now(datetime.timezone.utc)
        not_before = not_before or now - datetime.timedelta(hours=1)
        not_after = not_after or now + datetime.timedelta(days=1)
        alt_names = [f"IP.{i + 1} = {ip}" for i, ip in enumerate(ips)]
        alt_names += [f"DNS.{i + 1} = {name}" for i, name in enumerate(dns)]
        config = f"{stem}.cnf"
        with open(config, "w", encoding="ascii") as f:
            f.write(_CA_CONFIG.format(dir=self.dir, alt_names="\n".join(alt_names)))
        _run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
              "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{stem}.key",
              "-out", f"{stem}.csr", "-subj", f"/CN={(list(dns) + list(ips))[0]}"], self.dir)
        _run(["openssl", "ca", "-batch", "-config", config, "-cert", self.ca_cert,
              "-keyfile", self.ca_key, "-in", f"{stem}.csr", "-out", f"{stem}.pem",
              "-extensions", "leaf_ext", "-notext",
              "-startdate", _asn1_time(not_before), "-enddate", _asn1_time(not_after)], self.dir)
        return Leaf(cert=f"{stem}.pem", key=f"{stem}.key", ca=self.ca_cert)


def self_signed(directory, name="self-signed", ips=("127.0.0.1",), dns=("localhost",)):
    """A self-signed P-256 server certificate valid for a day; its `ca` is itself."""
    stem = os.path.join(directory, name)
    alt_names = ",".join([f"IP:{ip}" for ip in ips] + [f"DNS:{d}" for d in dns])
    _run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
          "-nodes", "-keyout", f"{stem}.key", "-out", f"{stem}.pem", "-days", "1",
          "-subj", f"/CN={(list(dns) + list(ips))[0]}",
          "-addext", "basicConstraints=critical,CA:FALSE",
          "-addext", "extendedKeyUsage=serverAuth",
          "-addext", f"subjectAltName={alt_names}"], directory)
    return Leaf(cert=f"{stem}.pem", key=f"{stem}.key", ca=f"{stem}.pem")
