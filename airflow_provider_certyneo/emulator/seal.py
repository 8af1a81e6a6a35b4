"""The emulator's throwaway test PKI and its PAdES seal, as Certyneo seals signed documents and audit trails.

One :class:`TestPki` per emulator state: a root CA, a seal certificate it issues (non-repudiation, as a
qualified seal has) and a timestamp authority it issues (``timeStamping``, critical), all on P-256 keys so
that making them costs milliseconds (the TSA's key is RSA-2048: pyHanko's in-process timestamp authority signs
with RSA only). It is kept as PEM text with the emulator's state file, so a restarted
emulator seals with the same root; the root is served at ``GET /_emulator/trust-root`` for tests and users
to trust. Test and live envelopes are sealed by the same test PKI: the real service's live seals chain to a
qualified trust service instead, which an emulator cannot be.

pyHanko and cryptography are imported inside the functions: the emulator's pytest plugin must stay cheap to
import. Nothing here imports the provider outside ``emulator/``.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

SEAL_FIELD = "CertyneoSeal"
SEAL_NAME = "Certyneo (emulator) electronic seal"
# room kept for the CMS signature (about 4 KB with its certificates and timestamp token): no dry-run signature
# to size it, which would cost a second timestamp
SEAL_BYTES = 8192
T = TypeVar("T")


@dataclass(frozen=True)
class TestPki:
    """PEM text of the root, the seal certificate and key, and the timestamp authority's certificate and
    key (keys unencrypted: this is a test PKI that exists only for the emulator)."""

    __test__ = False  # not a pytest test class

    root_pem: str
    seal_cert_pem: str
    seal_key_pem: str
    tsa_cert_pem: str
    tsa_key_pem: str


def new_pki(common_name: str = "Certyneo Emulator Test Root CA") -> TestPki:
    """A fresh root CA → seal certificate (non-repudiation) and timestamp authority, valid ten years."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    until = now + timedelta(days=3650)

    def name(cn: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "FR"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Certyneo Emulator (test only)"),
                x509.NameAttribute(NameOID.COMMON_NAME, cn),
            ]
        )

    def usage(**flags: bool) -> x509.KeyUsage:
        names = [
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ]
        return x509.KeyUsage(**{n: flags.get(n, False) for n in names})

    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = name(common_name)
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )

    def issue(
        cn: str, key_usage: x509.KeyUsage, eku: list[x509.ObjectIdentifier] | None, rsa_key: bool = False
    ) -> tuple[Any, Any]:
        key: Any = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if rsa_key
            else ec.generate_private_key(ec.SECP256R1())
        )
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(cn))
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(until)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(key_usage, critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
            )
        )
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=True)
        return builder.sign(root_key, hashes.SHA256()), key

    seal, seal_key = issue(SEAL_NAME, usage(digital_signature=True, content_commitment=True), None)
    tsa, tsa_key = issue(
        "Certyneo Emulator Test Timestamp Authority",
        usage(digital_signature=True),
        [ExtendedKeyUsageOID.TIME_STAMPING],
        rsa_key=True,
    )

    def cert_pem(cert: Any) -> str:
        return str(cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))

    def key_pem(key: Any) -> str:
        return str(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode("ascii")
        )

    return TestPki(cert_pem(root), cert_pem(seal), key_pem(seal_key), cert_pem(tsa), key_pem(tsa_key))


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end from sync code, also when this thread already runs an event loop (the
    emulator's routes do): then in a short-lived thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, re-raised there
            box["error"] = exc

    thread = threading.Thread(target=work, name="certyneo-seal")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


class Sealer:
    """Seals PDFs with a :class:`TestPki`: one PAdES signature (CMS, SHA-256) in a signature field, with a
    signature timestamp from the test TSA, covering the whole file."""

    def __init__(self, pki: TestPki) -> None:
        from asn1crypto import keys, x509
        from cryptography.hazmat.primitives import serialization
        from pyhanko.sign import signers
        from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        def cert(pem: str) -> x509.Certificate:
            from asn1crypto import pem as asn1_pem

            _, _, der = asn1_pem.unarmor(pem.encode("ascii"))
            return x509.Certificate.load(der)

        def key(pem: str) -> keys.PrivateKeyInfo:
            loaded = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
            der = loaded.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            return keys.PrivateKeyInfo.load(der)

        root = cert(pki.root_pem)
        self.signer = signers.SimpleSigner(
            signing_cert=cert(pki.seal_cert_pem),
            signing_key=key(pki.seal_key_pem),
            cert_registry=SimpleCertificateStore.from_certs([root]),
        )
        self.timestamper = DummyTimeStamper(
            tsa_cert=cert(pki.tsa_cert_pem),
            tsa_key=key(pki.tsa_key_pem),
            certs_to_embed=SimpleCertificateStore.from_certs([root]),
        )

    def seal(self, data: bytes, reason: str) -> bytes:
        """``data`` (a PDF) with the seal appended as one incremental update: nothing comes after it."""
        return run_sync(self._seal(data, reason))

    async def _seal(self, data: bytes, reason: str) -> bytes:
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import fields, signers

        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        meta = signers.PdfSignatureMetadata(
            field_name=SEAL_FIELD,
            md_algorithm="sha256",
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=reason,
            name=SEAL_NAME,
            location="Certyneo emulator",
        )
        pdf_signer = signers.PdfSigner(meta, signer=self.signer, timestamper=self.timestamper)
        out = await pdf_signer.async_sign_pdf(writer, bytes_reserved=SEAL_BYTES)
        value: bytes = out.getvalue()
        return value
