"""HTTPS for the instance: a certificate made for the deployment, pinned by its clients.

Why this and not the alternatives: an instance has no name or address before it runs, so
no CA can certify it in advance; ACM certificates serve load balancers and CloudFront, not
a process on an instance; an ALB would add a fixed monthly cost, two subnets and a domain
to a one-instance deployment. So `ec2 deploy` makes a P-256 key and a self-signed
certificate for each deployment, stores both in SSM Parameter Store as a SecureString
(`/pais/<deployment>/tls`, read only by the instance's role: the container's entrypoint
serves with it) and the certificate alone as a String (`/pais/<deployment>/tls-certificate`,
which `ec2 status` shows). Clients trust that one certificate and nothing else: the pin is
the certificate, so the address may change and the host name is not checked.

    import ssl, httpx
    context = ssl.create_default_context(cadata=certificate_pem)
    context.check_hostname = False   # the pin is the certificate, not a name
    httpx.get(f"https://{address}/readyz", verify=context)
"""

from __future__ import annotations

import datetime
import hashlib
import ssl

from .. import secret_store
from ..aws import Aws
from ..errors import DeployError
from ..ownership import SSM_PARAMETER, Ownership
from ..plan import Secret

VALID_DAYS = 825  # the longest validity clients such as Apple's accept for a server certificate
BUNDLE = "tls"  # SecureString: certificate and key
CERTIFICATE = "tls-certificate"  # String: the certificate alone


def ensure_certificate(aws: Aws, owner: Ownership, deployment: str, tags: dict[str, str]) -> tuple[str, str]:
    """(certificate PEM, ARN of the bundle parameter): the deployment's own, kept across
    `--replace` so that clients keep their pin, or made and stored now."""
    certificate = read_certificate(aws, deployment)
    bundle = secret_store.parameter_name(deployment, BUNDLE)
    if certificate is not None and secret_store.exists(aws, bundle):
        owner.require(SSM_PARAMETER, bundle, "serve as the instance's TLS key")
        return certificate, secret_store.parameter_arn(aws, bundle)
    certificate, key = make_certificate(deployment)
    arns = secret_store.store(aws, owner, deployment, {BUNDLE: Secret(certificate + key)}, tags)
    secret_store.store(aws, owner, deployment, {CERTIFICATE: certificate}, tags, kind="String")
    return certificate, arns[BUNDLE]


def read_certificate(aws: Aws, deployment: str) -> str | None:
    """The deployment's certificate (public), or None."""
    found = aws.find("ssm", "GetParameter", Name=secret_store.parameter_name(deployment, CERTIFICATE))
    return found["Parameter"]["Value"] if found else None


def make_certificate(deployment: str) -> tuple[str, str]:
    """(certificate PEM, private key PEM) for the deployment, made here."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError:  # pragma: no cover - requirements/base.txt installs it
        raise DeployError("HTTPS on EC2 needs the cryptography package: pip install cryptography") from None
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"pais-{deployment}")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        # Its own trust anchor: a CA certificate (OpenSSL accepts it as the whole chain)
        # that may also serve TLS.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"pais-{deployment}")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return certificate_pem, key_pem


def pinned_context(certificate_pem: str) -> ssl.SSLContext:
    """A client context that trusts exactly this certificate."""
    context = ssl.create_default_context(cadata=certificate_pem)
    context.check_hostname = False
    return context


def fingerprint(certificate_pem: str) -> str:
    """SHA-256 of the certificate (DER), as browsers and `openssl x509 -fingerprint` show it."""
    der = ssl.PEM_cert_to_DER_cert(certificate_pem)
    return ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())
