"""The SSRF guard's rules: every hostile URL class is refused before anything is sent, with the
resolver behind its port (a table here, no DNS)."""

from __future__ import annotations

import pytest

from clearport.core.errors import InvalidRequest
from clearport.core.uow import FakeUnitOfWork, Transaction
from clearport.webhooks.fake import FakeResolver
from clearport.webhooks.guard import LoopbackSwitch, UrlGuard

NAMES = {
    "hooks.example.com": ["93.184.215.14"],
    "metadata.example.com": ["169.254.169.254"],
    "private.example.com": ["10.1.2.3"],
    "split.example.com": ["93.184.215.14", "192.168.1.10"],
    "v6.example.com": ["2606:4700:4700::1111"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
    "localhost": ["127.0.0.1", "::1"],
}

# (url, why it is refused). Every one: 400 at create, refused (and logged) at delivery.
HOSTILE = [
    ("https://127.0.0.1/hooks", "loopback"),
    ("https://127.8.9.10/hooks", "loopback"),
    ("https://[::1]/hooks", "loopback"),
    ("https://localhost/hooks", "loopback"),
    ("https://10.0.0.8/hooks", "private"),
    ("https://172.16.5.4/hooks", "private"),
    ("https://192.168.0.1/hooks", "private"),
    ("https://169.254.10.10/hooks", "link-local"),
    ("https://[fe80::1]/hooks", "link-local"),
    ("https://100.64.0.1/hooks", "CGNAT"),
    ("https://100.127.255.254/hooks", "CGNAT"),
    ("https://[fc00::1]/hooks", "unique-local"),
    ("https://[fd12:3456::1]/hooks", "unique-local"),
    ("https://[::ffff:127.0.0.1]/hooks", "mapped"),
    ("http://[::ffff:127.0.0.1]/hooks", "mapped, http"),
    ("https://[::ffff:a00:1]/hooks", "mapped private"),
    ("https://[64:ff9b::a9fe:a9fe]/hooks", "NAT64 of the metadata address"),
    ("https://[2002:7f00:1::]/hooks", "6to4 of loopback"),
    ("https://224.0.0.1/hooks", "multicast"),
    ("https://[ff02::1]/hooks", "multicast"),
    ("https://0.0.0.0/hooks", "unspecified"),
    ("https://[::]/hooks", "unspecified"),
    ("https://255.255.255.255/hooks", "broadcast"),
    ("https://240.0.0.1/hooks", "reserved"),
    ("https://192.0.2.10/hooks", "documentation"),
    ("https://169.254.169.254/latest/meta-data/", "metadata"),
    ("https://[fd00:ec2::254]/hooks", "metadata (IPv6)"),
    ("https://168.63.129.16/hooks", "metadata (Azure, a public range)"),
    ("https://100.100.100.200/hooks", "metadata (Alibaba)"),
    ("https://metadata.example.com/hooks", "a name resolving to 169.254.169.254"),
    ("https://private.example.com/hooks", "a name resolving to a private address"),
    ("https://split.example.com/hooks", "a name resolving to one public, one private"),
    ("https://mapped.example.com/hooks", "a name resolving to a mapped loopback"),
    ("https://2130706433/hooks", "decimal IPv4"),
    ("https://0177.0.0.1/hooks", "octal IPv4"),
    ("https://0x7f.0.0.1/hooks", "hexadecimal IPv4"),
    ("https://0x7f000001/hooks", "hexadecimal IPv4"),
    ("https://127.1/hooks", "shortened IPv4"),
    ("https://017700000001/hooks", "octal IPv4, one part"),
    ("https://hooks.0x7f/hooks", "a numeric last label"),
    ("http://hooks.example.com/hooks", "http"),
    ("ftp://hooks.example.com/hooks", "another scheme"),
    ("https://user:pw@hooks.example.com/hooks", "credentials"),
    ("https://hooks.example.com@127.0.0.1/hooks", "credentials that hide the host"),
    ("https://[::1%25eth0]/hooks", "an IPv6 zone"),
    ("https://nowhere.example.com/hooks", "does not resolve"),
    ("https://hooks.example.com/hooks#x", "a fragment"),
    ("https://hooks.exa mple.com/hooks", "a space"),
    ("https://hööks.example.com/hooks", "not ASCII"),
    ("https://hooks.example.com:0/hooks", "port 0"),
    ("https://hooks.example.com:99999/hooks", "port out of range"),
    ("https:///hooks", "no host"),
]


class NoLiveKeys:
    async def live_keys_exist(self, tx: Transaction) -> bool:
        return self.live

    def __init__(self, live: bool = False) -> None:
        self.live = live


def guard(*, loopback: bool = False, live: bool = False, env_live: bool = False) -> UrlGuard:
    switch = LoopbackSwitch(loopback, FakeUnitOfWork(), NoLiveKeys(live), live_environment=env_live)
    return UrlGuard(FakeResolver(NAMES), switch)


@pytest.mark.parametrize(("url", "why"), HOSTILE, ids=[why for _, why in HOSTILE])
async def test_hostile_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await guard().pin(url)
    assert refused.value.field == ("url",)
    assert refused.value.code in {"url_not_allowed", "url_unresolvable", "parameter_invalid"}


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/hooks",
        "https://hooks.example.com:8443/a/b?c=d",
        "https://93.184.215.14/hooks",
        "https://v6.example.com/hooks",
        "https://[2606:4700:4700::1111]/hooks",
        "HTTPS://HOOKS.EXAMPLE.COM/hooks",
    ],
)
async def test_public_addresses_are_pinned(url: str) -> None:
    pinned = await guard().pin(url)
    assert not pinned.address.is_private and pinned.address.is_global
    assert pinned.url.url_for(pinned.address).startswith("https://")


async def test_the_first_address_resolved_is_pinned_and_the_host_kept_for_tls() -> None:
    pinned = await guard().pin("https://hooks.example.com:8443/in?x=1")
    assert str(pinned.address) == "93.184.215.14"
    assert pinned.url.url_for(pinned.address) == "https://93.184.215.14:8443/in?x=1"
    assert pinned.url.host == "hooks.example.com"
    assert pinned.url.host_header == "hooks.example.com:8443"


async def test_loopback_switch_allows_http_and_loopback_only() -> None:
    dev = guard(loopback=True)
    for allowed in ("http://127.0.0.1:9/hooks", "https://localhost/hooks", "http://[::1]/h"):
        await dev.pin(allowed)
    for refused in (
        "http://10.0.0.8/hooks",
        "http://169.254.169.254/",
        "http://metadata.example.com/",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://2130706433/hooks",
        "http://[fe80::1]/hooks",
    ):
        with pytest.raises(InvalidRequest):
            await dev.pin(refused)


@pytest.mark.parametrize(("live_keys", "live_environment"), [(True, False), (False, True)])
async def test_loopback_switch_is_refused_when_live(
    live_keys: bool, live_environment: bool
) -> None:
    refused = guard(loopback=True, live=live_keys, env_live=live_environment)
    for url in ("http://127.0.0.1:9/hooks", "https://127.0.0.1/hooks"):
        with pytest.raises(InvalidRequest):
            await refused.pin(url)
