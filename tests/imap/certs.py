"""Throwaway test PKI made with the openssl CLI at test time (no private keys are committed).

make_pki(dir) creates:
  ca.pem / ca.key            a test CA
  good.pem / good.key        server cert for DNS:localhost and IP:127.0.0.1, IP:::1, signed by ca
  wronghost.pem / .key       server cert for DNS:wrong.example only, signed by ca
  other-ca.pem, unknown.pem / unknown.key   a second CA and a localhost cert signed by it
and returns a dict of those paths.
"""
import os
import subprocess


def _run(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def _ca(d, name, cn):
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={cn}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)


def _leaf(d, name, ca, san):
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n")
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    _run("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
         "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)


def make_pki(d):
    _ca(d, "ca", "imapfs test CA")
    _ca(d, "other-ca", "some other CA")
    _leaf(d, "good", "ca", "DNS:localhost,IP:127.0.0.1,IP:::1")
    _leaf(d, "wronghost", "ca", "DNS:wrong.example")
    _leaf(d, "unknown", "other-ca", "DNS:localhost,IP:127.0.0.1")
    p = lambda n: os.path.join(d, n)  # noqa: E731
    return {
        "ca": p("ca.pem"),
        "good": (p("good.pem"), p("good.key")),
        "wronghost": (p("wronghost.pem"), p("wronghost.key")),
        "unknown": (p("unknown.pem"), p("unknown.key")),
    }
