"""Sentinel scan: plant recognizable card numbers and CVCs, then prove they are nowhere at rest.

Reusable by every area that handles card data (vault, payments): build a `SentinelScan`, add the
PANs and CVCs your test sent, then `scan.assert_clean(database_url, log_file)`. Sources searched:
a full `pg_dump` of the test database (every table, including bytea columns, whose hex form is
searched too), the captured log file, `idempotency_keys.response_body`, every table whose name
mentions events or webhooks (the outbox, webhook endpoints, deliveries and their attempts), and
what webhook receivers were sent (`sent`: bodies and headers, by the test's receivers). Forms
searched per PAN: plain, grouped with spaces, grouped with dashes, and the hex of each (how
bytea is dumped). A CVC is a short number found everywhere by chance, so it is searched where
it would mean a leak: next to a `cvc`/`cvv` key, or next to its PAN.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql


def luhn_complete(body: str) -> str:
    """`body` plus the check digit that makes it Luhn-valid."""
    digits = [int(c) for c in body][::-1]
    total = 0
    for index, digit in enumerate(digits):
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return body + str((10 - total % 10) % 10)


def groups(pan: str) -> list[str]:
    """How people group a number: 4-6-5 for 15-digit Amex, 4-6-4 for 14-digit Diners, else 4s."""
    if len(pan) == 15:
        return [pan[:4], pan[4:10], pan[10:]]
    if len(pan) == 14:
        return [pan[:4], pan[4:10], pan[10:]]
    return [pan[i : i + 4] for i in range(0, len(pan), 4)]


def forms(pan: str) -> list[str]:
    plain = [pan, " ".join(groups(pan)), "-".join(groups(pan))]
    return plain + [p.encode().hex() for p in plain]


@dataclass
class Hit:
    source: str
    needle: str
    context: str


@dataclass
class SentinelScan:
    pans: list[str] = field(default_factory=list)
    cvcs: list[tuple[str, str | None]] = field(default_factory=list)  # (cvc, its PAN)
    secrets: list[str] = field(default_factory=list)  # other values: account numbers, IBANs

    def add_pan(self, pan: str) -> str:
        self.pans.append(pan)
        return pan

    def add_cvc(self, cvc: str, pan: str | None = None) -> str:
        self.cvcs.append((cvc, pan))
        return cvc

    def add_secret(self, value: str) -> str:
        self.secrets.append(value)
        return value

    def patterns(self) -> list[tuple[str, re.Pattern[str]]]:
        found: list[tuple[str, re.Pattern[str]]] = []
        for pan in self.pans:
            for form in forms(pan):
                found.append((form, re.compile(re.escape(form), re.IGNORECASE)))
        for cvc, pan in self.cvcs:
            key = rf"(?:cvc|cvv|cvv2|cvc2|csc|security_code)\W{{0,6}}{re.escape(cvc)}(?!\d)"
            found.append((f"cvc {cvc}", re.compile(key, re.IGNORECASE)))
            if pan is not None:
                for form in forms(pan)[:3]:
                    near = rf"{re.escape(form)}.{{0,64}}(?<!\d){re.escape(cvc)}(?!\d)"
                    found.append((f"cvc {cvc} by pan", re.compile(near, re.DOTALL)))
        for secret in self.secrets:
            for form in (secret, secret.encode().hex()):
                found.append((form, re.compile(re.escape(form), re.IGNORECASE)))
        return found

    def scan_texts(self, sources: dict[str, str]) -> list[Hit]:
        hits: list[Hit] = []
        for source, text in sources.items():
            for needle, pattern in self.patterns():
                for match in pattern.finditer(text):
                    start = max(0, match.start() - 40)
                    hits.append(Hit(source, needle, text[start : match.end() + 40]))
        return hits

    def sources(
        self, database_url: str, log_file: Path | None, sent: dict[str, str] | None = None
    ) -> dict[str, str]:
        found = {"pg_dump": pg_dump(database_url), **(sent or {})}
        if log_file is not None and log_file.exists():
            found["log"] = log_file.read_text(errors="replace")
        with psycopg.connect(database_url, autocommit=True) as conn:
            bodies = conn.execute(
                "SELECT coalesce(string_agg(encode(response_body, 'escape'), E'\\n'), '')"
                " FROM idempotency_keys"
            ).fetchone()
            found["idempotency_keys.response_body"] = str(bodies[0] if bodies else "")
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    " AND (tablename LIKE '%%event%%' OR tablename LIKE '%%webhook%%')"
                )
            ]
            for table in tables:
                query = sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(table))
                rows = conn.execute(query).fetchall()
                found[f"table {table}"] = "\n".join(str(r[0]) for r in rows)
        return found

    def assert_clean(
        self, database_url: str, log_file: Path | None, sent: dict[str, str] | None = None
    ) -> dict[str, str]:
        sources = self.sources(database_url, log_file, sent)
        hits = self.scan_texts(sources)
        assert not hits, "card data at rest:\n" + "\n".join(
            f"  {h.source}: {h.needle!r} in …{h.context!r}…" for h in hits[:20]
        )
        return sources


def _server_major(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SHOW server_version_num").fetchone()
    assert row is not None
    return int(row[0]) // 10_000


def _client_major(binary: str) -> int | None:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"(\d+)\.", out.stdout)
    return int(match.group(1)) if match else None


def pg_dump_binary(database_url: str) -> str:
    """pgserver's own pg_dump for the embedded server; with DATABASE_URL the system one when its
    major version matches the server's (pg_dump refuses newer servers), else pgserver's."""
    import pgserver

    bundled = str(Path(pgserver.__file__).parent / "pginstall" / "bin" / "pg_dump")
    system = shutil.which("pg_dump")
    external = bool(os.environ.get("DATABASE_URL")) and system is not None
    if external and system and _client_major(system) == _server_major(database_url):
        return system
    return bundled


def pg_dump(database_url: str) -> str:
    out = subprocess.run(
        [pg_dump_binary(database_url), "--no-owner", "--dbname", database_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "CREATE TABLE public.card_tokens" in out.stdout
    return out.stdout
