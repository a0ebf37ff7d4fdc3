"""The engine alone, in process: assessments per second per core, beside the raw cost of the
library calls it makes (email-validator; phonenumbers parse, validity, region, carrier, E.164,
possibility and type; three maxminddb lookups) on the same inputs.

No database and no DNS: the MX check is off (the network is not the engine's cost), the
GeoIP databases are real .mmdb files built for the run. Run: `.venv/bin/python bench/engine_bench.py`.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import maxminddb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.library_calls import library_calls  # noqa: E402
from tests.support.mmdb import anonymous, asn, country, write_mmdb  # noqa: E402
from verify.assessing import Assessor, Signup  # noqa: E402
from verify.engine import identity  # noqa: E402
from verify.engine.decide import judge  # noqa: E402
from verify.engine.lists import ListIndex  # noqa: E402
from verify.engine.policy import parse_policy  # noqa: E402
from verify.engine.reasons import default_points  # noqa: E402
from verify.intel.dns import NullMxChecker  # noqa: E402
from verify.intel.geoip import GeoIP  # noqa: E402
from verify.intel.providers import Providers, disposable_seed  # noqa: E402
from verify.engine.lists import ListEntryValue  # noqa: E402
from verify.settings import Settings  # noqa: E402
from verify.store.snapshots import Snapshots  # noqa: E402

DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "acme-corp.io", "mailinator.com", "gmial.com"]


def signups(count: int, rng: random.Random) -> list[Signup]:
    now = datetime.now(timezone.utc)
    made = []
    for i in range(count):
        made.append(Signup(
            email=f"user.{rng.choice(['smith', 'garcia', 'nguyen'])}{i}@{rng.choice(DOMAINS)}",
            phone=f"+1415{rng.randint(2000000, 9999999)}",
            ip=str(ipaddress.ip_address(rng.choice([0x51024500, 0x2D370000, 0x92460000])) + rng.randint(1, 250)),
            country="US",
            device_id=f"d-{i}",
            occurred_at=now,
        ))
    return made


def build_geoip(folder: Path) -> Settings:
    city = {"81.2.69.0/24": country("GB"), "45.55.0.0/16": country("US"), "146.70.0.0/16": country("CH")}
    asns = {"81.2.69.0/24": asn(20712, "A&A"), "45.55.0.0/16": asn(14061, "DigitalOcean"), "146.70.0.0/16": asn(9009, "M247")}
    anon = {"45.55.0.0/16": anonymous(hosting_provider=True), "146.70.0.0/16": anonymous(anonymous_vpn=True)}
    return Settings(
        geoip_city_db=str(write_mmdb(folder / "city.mmdb", "GeoIP2-City", city)),
        geoip_asn_db=str(write_mmdb(folder / "asn.mmdb", "GeoLite2-ASN", asns)),
        geoip_anonymous_db=str(write_mmdb(folder / "anon.mmdb", "GeoIP2-Anonymous-IP", anon)),
    )


def rate(work, items) -> float:
    started = time.perf_counter()
    for item in items:
        work(item)
    return len(items) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20_000)
    args = parser.parse_args()
    rng = random.Random(1)
    batch = signups(args.count, rng)

    with tempfile.TemporaryDirectory() as scratch:
        settings = build_geoip(Path(scratch))
        geoip = GeoIP.from_settings(settings)
        readers = [maxminddb.open_database(path) for path in (settings.geoip_city_db, settings.geoip_asn_db, settings.geoip_anonymous_db)]
        assessor = Assessor(
            providers=Providers.load(settings.data_dir),
            mx_checker=NullMxChecker(),
            snapshots=Snapshots(base_points=default_points()),
            geoip=geoip,
        )
        domains, source = disposable_seed()
        lists = ListIndex(ListEntryValue("disposable-domains", "email_domain", "deny", d) for d in domains)
        policy = parse_policy({"thresholds": {"challenge": 40, "deny": 80}}, version=1, base_points=default_points())
        now = datetime.now(timezone.utc)

        def libraries(signup: Signup) -> None:
            library_calls(readers, email=signup.email, phone=signup.phone, country=signup.country, ip=signup.ip)

        def engine(signup: Signup) -> None:
            signals = assessor.gather(signup)
            keys = identity.signup_keys(signals, device_id=signup.device_id)
            judge(assessor.with_lists(signals, assessor.match_lists(signals, keys, lists, now=now), mx=None), policy)

        rate(engine, batch[:500])  # warm up
        library = rate(libraries, batch)
        ours = rate(engine, batch)
        for reader in readers:
            reader.close()

    print(f"Python {sys.version.split()[0]}, one core, {args.count} distinct signups")
    print(f"{'library calls alone':<28}{library:>10.0f} per second")
    print(f"{'engine (gather + judge)':<28}{ours:>10.0f} per second")
    print(f"{'cost ratio engine/library':<28}{library / ours:>10.2f}x  (target: within 3x)")


if __name__ == "__main__":
    main()
