"""Webhooks over https: the certificate is verified against the URL's host (here an IP in the SAN), a receiver
whose certificate chains to no trusted CA is refused, and ``push_ca_file`` trusts an internal CA."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from a2a_server import Settings, create_app
from tests.consumers.receiver import SECRET, Receiver, until


def self_signed(directory: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a2a-server push test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))  # fmt: skip
    return str(certfile), str(keyfile)


@pytest.fixture
async def tls_receiver(tmp_path: Path) -> AsyncIterator[Receiver]:
    r = Receiver(secrets={SECRET}, tls=self_signed(tmp_path))
    await r.start()
    yield r
    await r.stop()


async def run(receiver: Receiver, **settings: Any) -> Any:
    """Send a task with a webhook to ``receiver`` and return the config's delivery once it is done or failing."""
    app = create_app(Settings(skills=["echo"], store="memory", push_allow=["127.0.0.1"], push_retry_base=0.05,
                              push_retry_max=0.3, push_max_failures=2, **settings))  # fmt: skip
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:

        async def rpc(method: str, params: Any) -> Any:
            body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
            return (await client.post("/a2a", json=body, headers={"A2A-Version": "1.0"})).json()["result"]

        params = {"message": {"messageId": uuid4().hex, "role": "ROLE_USER", "parts": [{"text": "over tls"}]},
                  "configuration": {"taskPushNotificationConfig": {"url": receiver.url, "signingSecret": SECRET}}}
        task_id = (await rpc("SendMessage", params))["task"]["id"]  # fmt: skip

        async def settled() -> Any:
            d = (await rpc("GetTaskPushNotificationConfig", {"taskId": task_id, "id": task_id}))["delivery"]
            return d if d["state"] in ("done", "failing") else None

        await until(settled, what="delivery to finish or fail")
        return await settled()


async def test_a_receiver_with_an_untrusted_certificate_is_refused(tls_receiver: Receiver) -> None:
    delivery = await run(tls_receiver)
    assert delivery["state"] == "failing" and "CERTIFICATE_VERIFY_FAILED" in delivery["lastStatus"]
    assert tls_receiver.hits == []


async def test_push_ca_file_trusts_an_internal_ca(tls_receiver: Receiver) -> None:
    assert tls_receiver.tls is not None
    delivery = await run(tls_receiver, push_ca_file=Path(tls_receiver.tls[0]))
    assert delivery["state"] == "done" and delivery["lastStatus"] == "200"
    assert tls_receiver.hits and all(h.verified and h.status == 200 for h in tls_receiver.hits)
    assert tls_receiver.hits[-1].body["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"
