"""Where a webhook may go, without I/O: the URL rules and the addresses it may connect to.

The SSRF guard (webhooks/guard.py) resolves a name once, checks every address here and connects
to the one it checked. What is refused, always: private (RFC 1918), link-local, shared (CGNAT,
100.64/10), unique-local IPv6, IPv4-mapped and IPv4-embedding IPv6 (mapped, NAT64, 6to4,
Teredo: each can smuggle any IPv4 address), multicast, unspecified, reserved and documentation
ranges (anything not globally routable), and the cloud metadata addresses. Loopback is refused
too, except with the development switch (`CLEARPORT_WEBHOOKS_ALLOW_LOOPBACK=1`), which allows
`http` and loopback and nothing else.

Hosts are names or canonical literals: `http://2130706433/`, `http://0177.0.0.1/`,
`http://0x7f.1/` are refused as written, because resolvers read them as 127.0.0.1 while a
reader (or another parser) sees something else.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from clearport.core.errors import InvalidRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
URL_NOT_ALLOWED = "url_not_allowed"

# Instance metadata services: never a webhook, whatever range they sit in (Azure's is public).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server
        "192.0.0.192",  # Oracle Cloud
    )
)
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")

# A DNS label (LDH, IDNA already applied) and a name of them.
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# The last label all digits or hex with 0x: WHATWG URL parsers and inet_aton read the host as
# an IPv4 address, in whatever base each part is written.
_NUMERIC_LAST_LABEL = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)$")
_CANONICAL_IPV4 = re.compile(
    r"^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$"
)


@dataclass(frozen=True, slots=True)
class WebhookUrl:
    """A URL that passed the rules: where to connect and what to ask for there."""

    url: str
    scheme: str  # "https", or "http" in development
    host: str  # lower case; an IPv6 literal without brackets
    port: int
    target: str  # path and query, as sent in the request line
    literal: IPAddress | None  # the host, when it is an address

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if isinstance(self.literal, ipaddress.IPv6Address) else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def url_for(self, address: IPAddress) -> str:
        """The URL with the host replaced by the address it resolved to (the pin)."""
        shown = f"[{address}]" if isinstance(address, ipaddress.IPv6Address) else str(address)
        return f"{self.scheme}://{shown}:{self.port}{self.target}"


def _refuse(message: str, code: str = URL_NOT_ALLOWED) -> InvalidRequest:
    return InvalidRequest(message, field="url", code=code)


def parse_webhook_url(url: str, *, allow_http: bool) -> WebhookUrl:
    """The URL's parts, or InvalidRequest on `url`: https only (http too when `allow_http`),
    no credentials, no fragment, a host that is a DNS name or a canonical address literal."""
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(f"'url' is at most {MAX_URL_LENGTH} characters.", "parameter_invalid")
    if not url.isascii() or any(c.isspace() or ord(c) < 0x20 for c in url):
        raise _refuse(
            "'url' must be ASCII without spaces (IDNA-encode names).", "parameter_invalid"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("'url' is not a valid URL.", "parameter_invalid") from None
    if port == 0:
        raise _refuse("'url' has port 0.", "parameter_invalid")
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_http else ("https",)
    if scheme not in allowed:
        raise _refuse("'url' must use https." if not allow_http else "'url' must be http(s).")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise _refuse("'url' must not carry credentials.")
    if parts.fragment or url.endswith("#"):
        raise _refuse("'url' must not have a fragment.", "parameter_invalid")
    host = (parts.hostname or "").lower()
    if not host:
        raise _refuse("'url' has no host.", "parameter_invalid")
    literal = _literal(host)
    if literal is None:
        _check_name(host)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default_port = 443 if scheme == "https" else 80
    return WebhookUrl(
        url=url,
        scheme=scheme,
        host=host,
        port=default_port if port is None else port,
        target=target,
        literal=literal,
    )


def _literal(host: str) -> IPAddress | None:
    if ":" in host:  # urlsplit took it from brackets: only an IPv6 literal has colons
        if "%" in host:
            raise _refuse("'url' must not name an IPv6 zone.")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse("'url' has an invalid IPv6 address.", "parameter_invalid") from None
    if _CANONICAL_IPV4.fullmatch(host):
        return ipaddress.IPv4Address(host)
    return None


def _check_name(host: str) -> None:
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if _NUMERIC_LAST_LABEL.fullmatch(labels[-1]):
        raise _refuse(
            "'url' writes an IPv4 address in a form resolvers read differently (decimal, "
            "octal, hexadecimal or shortened): use the dotted-decimal form."
        )
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise _refuse("'url' has an invalid host name.", "parameter_invalid")


def refusal(address: IPAddress, *, allow_loopback: bool) -> str | None:
    """Why a webhook may not connect to `address`, or None when it may."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return "an IPv6 address carrying an IPv4 address (mapped, NAT64, 6to4 or Teredo)"
    if address.is_loopback:
        return None if allow_loopback else "a loopback address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "a shared (CGNAT) address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_private:
        if isinstance(address, ipaddress.IPv6Address):
            return "a private or unique-local address"
        return "a private address"
    if not address.is_global:
        return "an address that is not publicly routable"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def check_address(address: IPAddress, *, allow_loopback: bool) -> None:
    """InvalidRequest on `url` when `address` is refused."""
    reason = refusal(address, allow_loopback=allow_loopback)
    if reason is not None:
        raise _refuse(f"'url' leads to {reason}, where webhooks are never sent.")
