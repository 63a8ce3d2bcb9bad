"""The SSRF guard decides from addresses, the allow-list and the scheme (no connection is made here)."""

from __future__ import annotations

import pytest

from a2a_server.consumers.guard import Refused, UrlGuard


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        ([], "https://8.8.8.8/hook"),
        ([], "https://[2001:4860:4860::8888]/hook"),
        (["10.0.0.0/8"], "http://10.1.2.3:8080/hook"),
        (["127.0.0.1"], "http://127.0.0.1:9/hook"),
        (["localhost"], "http://localhost:9/hook"),
        (["192.168.0.0/16", "fd00::/8"], "https://[fd00::1]/hook"),
    ],
)
async def test_admitted(allow: list[str], url: str) -> None:
    await UrlGuard(allow).check(url)


@pytest.mark.parametrize(
    ("allow", "url", "needle"),
    [
        ([], "https://localhost/hook", "loopback"),
        ([], "https://127.0.0.1/hook", "127.0.0.1, a loopback address"),
        ([], "https://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ([], "https://[fe80::1]/hook", "link-local"),
        ([], "https://100.64.0.1/hook", "non-public"),  # carrier-grade NAT: not private, not global either
        ([], "https://0.0.0.0/hook", "unspecified"),
        ([], "http://8.8.8.8/hook", "https is required"),
        (["127.0.0.1"], "http://127.0.0.2/hook", "https is required"),
        (["127.0.0.1"], "https://127.0.0.2/hook", "loopback"),
        (["10.0.0.0/8"], "https://172.16.0.1/hook", "private"),
        ([], "https://user:pw@8.8.8.8/hook", "credentials"),
        ([], "file:///etc/passwd", "not an absolute http(s) URL"),
        ([], "https://8.8.8.8:99999/hook", "invalid port"),
    ],
)
async def test_refused(allow: list[str], url: str, needle: str) -> None:
    with pytest.raises(Refused) as info:
        await UrlGuard(allow).check(url)
    assert needle in str(info.value)
