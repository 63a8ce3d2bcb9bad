"""The SSRF guard of push notifications: which webhook URLs the server may call.

A URL is refused when its host resolves to any address that is not globally routable (loopback, private,
link-local — the cloud metadata address 169.254.169.254 among them —, carrier-grade NAT, multicast, reserved,
unspecified; IPv4 inside IPv6 too), unless the operator's allow-list (``--push-allow``: IPs, CIDRs or host
names) admits the host or every address it resolves to. Outside the allow-list the scheme must be https.

It is checked when a config is set and again before every delivery, because DNS can change; the delivery then
connects to the very addresses that were checked (never to a second lookup), so a name cannot be re-pointed
between the check and the connection (DNS rebinding). https outside the allow-list adds that the peer proves it
holds the name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refused(ValueError):
    """The URL may not be called; the message says why (it names the host and the address)."""


class Unresolved(Refused):
    """The host does not resolve right now: nothing to check it against. Refused at delivery (retried later);
    a config may still be set with it (DNS may be down, the receiver not deployed yet): delivery checks again."""


class UrlGuard:
    def __init__(self, allow: Sequence[str] = (), *, resolve_timeout: float = 5.0) -> None:
        self.networks: list[Network] = []
        self.hosts: set[str] = set()
        for entry in (e.strip() for e in allow):
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.add(entry.lower().rstrip("."))
        self.resolve_timeout = resolve_timeout

    async def check(self, url: str) -> list[IP]:
        """The addresses ``url`` may be called at now (connect to these, not to a fresh lookup), else ``Refused``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Refused(f"{url!r} is not an absolute http(s) URL")
        host = parts.hostname.lower().rstrip(".")
        try:
            port = parts.port
        except ValueError:
            raise Refused(f"{url!r} has an invalid port") from None
        if parts.username or parts.password:
            raise Refused("a URL with credentials in it is refused; use the config's authentication instead")
        try:
            addresses = await self._resolve(host, port or (443 if parts.scheme == "https" else 80))
        except Unresolved:
            if parts.scheme != "https" and host not in self.hosts:
                raise Refused(f"{url!r}: https is required for a host outside --push-allow") from None
            raise
        allowed = host in self.hosts or all(any(a in n for n in self.networks) for a in addresses)
        if allowed:
            return addresses
        if parts.scheme != "https":
            raise Refused(f"{url!r}: https is required for a host outside --push-allow")
        for address in addresses:
            if not _public(address):
                raise Refused(
                    f"host {host} resolves to {address}, a {_kind(address)} address; webhooks may only call public "
                    "addresses unless --push-allow (A2A_PUSH_ALLOW) admits it"
                )
        return addresses

    async def _resolve(self, host: str, port: int) -> list[IP]:
        try:
            return [ipaddress.ip_address(host)]
        except ValueError:
            pass
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.resolve_timeout):
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as exc:
            raise Unresolved(f"host {host} does not resolve ({exc})") from None
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not found:
            raise Unresolved(f"host {host} does not resolve")
        return found


def _unwrap(address: IP) -> IP:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _public(address: IP) -> bool:
    address = _unwrap(address)
    return address.is_global and not address.is_multicast


def _kind(address: IP) -> str:
    address = _unwrap(address)
    for kind in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return "cloud metadata (link-local)" if str(address) == "169.254.169.254" else kind.replace("_", "-")
    return "non-public"
