"""Replay three days of labelled, realistic signup traffic and report verdicts per group.

Honest people (home broadband, mobile-carrier NAT, an office onboarding a team, a campus,
travellers, VPN users, typos, relays, families sharing a device) are mixed with campaigns
of several styles. Each signup is posted in time order with its `occurred_at`, through the
real HTTP API of an in-process app on a fresh SQLite database, with GeoIP databases built
for the run and a loopback DNS server. The report says, per group, how many were allowed,
challenged and denied, and the reasons that fired most.

Then the challenges are answered, as they would be over the following hours: a campaign's
challenged account fails its challenge (a `fraud` label, source `challenge`), an honest
person passes it (`legitimate`). The revision jobs those labels queue are run, and the report
adds, per group, how many were flagged (challenge or deny) at signup, how many eventually (their
current verdict after revisions), and how many were revised up or down.

Run: `.venv/bin/python bench/traffic.py [--seed N]` (needs the test extras).
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import phonenumbers

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.dns_server import DEFAULT_ZONE, LoopbackDNS  # noqa: E402
from tests.support.mmdb import anonymous, asn, country, write_mmdb  # noqa: E402
from verify.app import create_app  # noqa: E402
from verify.cli import upgrade_database  # noqa: E402
from verify.revising import run_due  # noqa: E402
from verify.settings import Settings  # noqa: E402
from verify.store.keys import create_api_key  # noqa: E402

FIRST = ("james mary john patricia robert jennifer michael linda david elizabeth william barbara richard susan joseph "
         "jessica thomas sarah charles karen lukas emma noah olivia mateo sofia yuki haruto chen wei amara chidi ivan "
         "olga fatima omar priya arjun lucas julia pierre camille giulia marco anna jan eva tomasz zofia").split()
LAST = ("smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez gonzalez wilson "
        "anderson thomas taylor moore jackson martin lee thompson white harris clark lewis robinson walker young "
        "mueller schmidt schneider fischer weber rossi russo bianchi kowalski nowak tanaka suzuki nguyen tran okafor "
        "adeyemi petrov ivanov haddad khan patel sharma silva santos dubois moreau").split()
FREE = ["gmail.com"] * 10 + ["outlook.com", "hotmail.com"] * 2 + ["yahoo.com"] * 2 + ["icloud.com"] * 2 + ["proton.me", "gmx.de", "web.de"]

# network -> (country, asn, organisation, anonymity flags or None, connection type)
NETWORKS = {
    "comcast": ("73.0.0.0/8", "US", 7922, "Comcast Cable Communications, LLC", None, None),
    "telekom": ("91.0.0.0/10", "DE", 3320, "Deutsche Telekom AG", None, None),
    "bt": ("86.128.0.0/10", "GB", 2856, "British Telecommunications PLC", None, None),
    "tmobile": ("172.56.0.0/14", "US", 21928, "T-Mobile USA, Inc.", None, "Cellular"),
    "office": ("38.100.20.0/24", "US", 174, "Cogent Communications", None, "Corporate"),
    "campus": ("128.32.0.0/16", "US", 25, "University of California at Berkeley", None, None),
    "aws": ("3.0.0.0/9", "US", 16509, "Amazon.com, Inc.", {"hosting_provider": True}, None),
    "digitalocean": ("159.89.0.0/16", "US", 14061, "DigitalOcean, LLC", {"hosting_provider": True}, None),
    "hetzner": ("95.216.0.0/16", "FI", 24940, "Hetzner Online GmbH", {"hosting_provider": True}, None),
    "vpn": ("146.70.0.0/16", "CH", 9009, "M247 Europe SRL", {"anonymous_vpn": True}, None),
    "tor": ("185.220.101.0/24", "DE", 60729, "Zwiebelfreunde e.V.", {"tor_exit_node": True}, None),
    "resiproxy": ("24.0.0.0/12", "US", 7922, "Comcast Cable Communications, LLC", None, None),
}
FLAGGED_PROXIES = "24.0.0.0/14"  # the share of the proxy pool that the Anonymous IP database knows


def build_geoip(folder: Path) -> dict[str, str]:
    city, asns, anon = {}, {}, {}
    for cidr, code, number, organisation, flags, connection in NETWORKS.values():
        city[cidr] = country(code, **({"connection_type": connection} if connection else {}))
        asns[cidr] = asn(number, organisation)
        if flags:
            anon[cidr] = anonymous(**flags)
    anon[FLAGGED_PROXIES] = anonymous(residential_proxy=True)
    return {
        "geoip_city_db": str(write_mmdb(folder / "city.mmdb", "GeoIP2-City", city)),
        "geoip_asn_db": str(write_mmdb(folder / "asn.mmdb", "GeoLite2-ASN", asns)),
        "geoip_anonymous_db": str(write_mmdb(folder / "anon.mmdb", "GeoIP2-Anonymous-IP", anon)),
    }


@dataclass
class Signup:
    group: str
    fraud: bool
    body: dict
    at: datetime


class World:
    def __init__(self, seed: int, start: datetime) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.events: list[Signup] = []
        self.used_ips: set[str] = set()
        self.device_counter = 0

    # -- building blocks -----------------------------------------------------------------
    def when(self, *, day: float | None = None, within_hours: float = 72.0) -> datetime:
        hours = self.rng.uniform(0, within_hours) if day is None else day * 24 + self.rng.uniform(0, within_hours)
        return self.start + timedelta(hours=min(hours, 71.9))

    def ip(self, network: str, *, fixed: int | None = None) -> str:
        net = ipaddress.ip_network(NETWORKS[network][0])
        offset = fixed if fixed is not None else self.rng.randrange(1, net.num_addresses - 1)
        return str(net.network_address + offset)

    def name(self) -> tuple[str, str]:
        return self.rng.choice(FIRST), self.rng.choice(LAST)

    def honest_local(self) -> str:
        first, last = self.name()
        style = self.rng.random()
        if style < 0.3:
            return f"{first}.{last}"
        if style < 0.5:
            return f"{first}{last}{self.rng.randint(1, 99)}"
        if style < 0.65:
            return f"{first[0]}{last}{self.rng.choice(['', str(self.rng.randint(1960, 2006))])}"
        if style < 0.8:
            return f"{first}.{last}{self.rng.randint(1, 9999)}"
        if style < 0.9:
            return f"{first}_{last}"
        return f"{last}.{first}{self.rng.randint(10, 99)}"

    def phone(self, region: str = "US") -> str:
        while True:
            if region == "US":
                number = f"+1{self.rng.choice(['415', '212', '617', '512', '206', '303'])}{self.rng.randint(2000000, 9999999)}"
            elif region == "DE":
                number = f"+4915{self.rng.randint(100000000, 999999999)}"
            else:
                number = f"+447{self.rng.randint(400000000, 999999999)}"
            parsed = phonenumbers.parse(number)
            if phonenumbers.is_valid_number(parsed):
                return number

    def device(self) -> str:
        self.device_counter += 1
        return f"dev-{self.rng.getrandbits(48):012x}-{self.device_counter}"

    def add(self, group: str, fraud: bool, at: datetime, **body) -> None:
        body = {k: v for k, v in body.items() if v is not None}
        body.setdefault("device_id", self.device())
        self.events.append(Signup(group, fraud, body, at))

    # -- honest people -------------------------------------------------------------------
    def home_broadband(self, count: int) -> None:
        for _ in range(count):
            network, region = self.rng.choice([("comcast", "US"), ("comcast", "US"), ("telekom", "DE"), ("bt", "GB")])
            self.add("honest: home broadband", False, self.when(),
                     email=f"{self.honest_local()}@{self.rng.choice(FREE)}", ip=self.ip(network), country=region,
                     phone=self.phone(region) if self.rng.random() < 0.6 else None)

    def mobile_nat(self, count: int) -> None:
        gateways = [self.ip("tmobile", fixed=4096 + i) for i in range(12)]  # carrier-grade NAT: few addresses
        for _ in range(count):
            self.add("honest: mobile carrier NAT", False, self.when(),
                     email=f"{self.honest_local()}@{self.rng.choice(FREE)}", ip=self.rng.choice(gateways),
                     country="US", phone=self.phone("US"))

    def office_onboarding(self, count: int) -> None:
        gateway = self.ip("office", fixed=5)
        for i in range(count):
            first, last = self.name()
            at = self.when(day=1, within_hours=2) if i < count * 0.6 else self.when()
            self.add("honest: office team onboarding", False, at, email=f"{first}.{last}@acme-corp.io", ip=gateway, country="US")

    def campus(self, count: int) -> None:
        gateways = [self.ip("campus", fixed=256 * k + 10) for k in range(3)]
        for _ in range(count):
            first, last = self.name()
            local = f"{first}.{last}" if self.rng.random() < 0.5 else f"{first[0]}{last}{self.rng.randint(1, 99)}"
            self.add("honest: campus network", False, self.when(day=0, within_hours=30),
                     email=f"{local}@berkeley-students.edu", ip=self.rng.choice(gateways), country="US")

    def travellers(self, count: int) -> None:
        for _ in range(count):
            self.add("honest: travellers", False, self.when(),
                     email=f"{self.honest_local()}@{self.rng.choice(['gmx.de', 'web.de', 'gmail.com'])}",
                     ip=self.ip("comcast"), country="DE", phone=self.phone("DE"))

    def vpn_users(self, count: int) -> None:
        for _ in range(count):
            self.add("honest: VPN users", False, self.when(),
                     email=f"{self.honest_local()}@{self.rng.choice(FREE)}", ip=self.ip("vpn"), country="US")

    def typos(self, count: int) -> None:
        for _ in range(count):
            self.add("honest: typo in domain", False, self.when(),
                     email=f"{self.honest_local()}@{self.rng.choice(['gmial.com', 'hotmial.com', 'gmail.co', 'yahooo.com'])}",
                     ip=self.ip("comcast"), country="US")

    def relays(self, count: int) -> None:
        for _ in range(count):
            alias = "".join(self.rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(10))
            domain = self.rng.choice(["privaterelay.appleid.com", "mozmail.com", "duck.com", "simplelogin.com"])
            self.add("honest: privacy relays", False, self.when(), email=f"{alias}@{domain}", ip=self.ip("comcast"), country="US")

    def families(self, count: int) -> None:
        for _ in range(count):
            home, device = self.ip("comcast"), self.device()
            at = self.when()
            last = self.rng.choice(LAST)
            for member in range(self.rng.randint(2, 4)):
                self.add("honest: family, one laptop", False, at + timedelta(minutes=20 * member),
                         email=f"{self.rng.choice(FIRST)}.{last}@{self.rng.choice(FREE)}", ip=home, country="US",
                         device_id=device)

    # -- campaigns -----------------------------------------------------------------------
    def gmail_variants(self, count: int) -> None:
        bases = [f"{self.rng.choice(FIRST)}{self.rng.choice(LAST)}" for _ in range(5)]
        for _ in range(count):
            base = self.rng.choice(bases)
            dotted = "".join(c + ("." if self.rng.random() < 0.3 else "") for c in base[:-1]) + base[-1]
            tag = f"+{self.rng.randint(1, 9999)}" if self.rng.random() < 0.4 else ""
            self.add("campaign: gmail dot/plus variants", True, self.when(day=1, within_hours=6),
                     email=f"{dotted}{tag}@gmail.com", ip=self.ip("aws"), country="US")

    def catch_all_domain(self, count: int) -> None:
        for _ in range(count):
            first, last = self.name()
            self.add("campaign: fresh catch-all domain", True, self.when(day=2, within_hours=3),
                     email=f"{first}.{last}{self.rng.randint(1000, 9999)}@quickmail-pro.net",
                     ip=self.ip("resiproxy"), country="US")

    def sequential_phones(self, count: int) -> None:
        block = 3322010000
        devices = [self.device() for _ in range(3)]
        for i in range(count):
            first, last = self.name()
            self.add("campaign: sequential phone numbers", True, self.when(day=0.5, within_hours=8),
                     email=f"{first}{last}{self.rng.randint(1, 99)}@gmail.com", ip=self.ip("digitalocean"),
                     country="US", phone=f"+1{block + i}", device_id=self.rng.choice(devices))

    def slow_and_low(self, count: int) -> None:
        for i in range(count):
            first, last = self.name()
            self.add("campaign: slow and low from a hosting /24", True, self.start + timedelta(hours=i * 72 / count),
                     email=f"{first}.{last}{self.rng.randint(1, 999)}@{self.rng.choice(FREE)}",
                     ip=self.ip("hetzner", fixed=40 * 256 + self.rng.randint(2, 250)), country="US")

    def disposable(self, count: int) -> None:
        for _ in range(count):
            self.add("campaign: disposable inboxes", True, self.when(),
                     email=f"{self.honest_local()}@{self.rng.choice(['mailinator.com', 'guerrillamail.com', '10minutemail.com', 'yopmail.com'])}",
                     ip=self.ip("comcast"), country="US")

    def plus_tags(self, count: int) -> None:
        base = f"{self.rng.choice(FIRST)}.{self.rng.choice(LAST)}"
        for i in range(count):
            self.add("campaign: one outlook mailbox, plus tags, Tor/VPN", True, self.when(day=1.5, within_hours=10),
                     email=f"{base}+acct{i}@outlook.com", ip=self.ip(self.rng.choice(["tor", "vpn"])), country="US")

    def device_farm(self, count: int) -> None:
        devices = [self.device() for _ in range(4)]
        for _ in range(count):
            self.add("campaign: device farm on clean residential IPs", True, self.when(day=1, within_hours=24),
                     email=f"{self.honest_local()}@{self.rng.choice(FREE)}", ip=self.ip("comcast"), country="US",
                     device_id=self.rng.choice(devices))

    def mobile_proxy_burst(self, count: int) -> None:
        gateways = [self.ip("tmobile", fixed=9000 + i) for i in range(6)]
        for _ in range(count):
            first, last = self.name()
            self.add("campaign: burst through mobile proxies", True, self.when(day=2.2, within_hours=2),
                     email=f"{first}.{last}{self.rng.randint(10, 99)}@gmail.com", ip=self.rng.choice(gateways), country="US")


def build_world(seed: int, start: datetime) -> World:
    world = World(seed, start)
    world.home_broadband(900)
    world.mobile_nat(250)
    world.office_onboarding(40)
    world.campus(80)
    world.travellers(40)
    world.vpn_users(50)
    world.typos(25)
    world.relays(40)
    world.families(30)
    world.gmail_variants(150)
    world.catch_all_domain(300)
    world.sequential_phones(100)
    world.slow_and_low(72)
    world.disposable(60)
    world.plus_tags(60)
    world.device_farm(80)
    world.mobile_proxy_burst(150)
    world.events.sort(key=lambda signup: signup.at)
    return world


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--show", type=int, default=3, help="reasons to show per group")
    args = parser.parse_args()

    zone = dict(DEFAULT_ZONE)
    for domain in ("acme-corp.io.", "quickmail-pro.net.", "berkeley-students.edu."):
        zone[domain] = [("MX", f"10 mx.{domain}")]
    dns = LoopbackDNS(zone).start()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        settings = Settings(database_url=f"sqlite:///{folder}/traffic.db", dns_nameservers=(dns.nameserver,))
        settings = settings.with_overrides(**build_geoip(folder))
        app = create_app(settings)
        services = app.extensions["verify"]
        upgrade_database(services)
        with services.database.transaction() as session:
            key = create_api_key("traffic", ["assess"], session=session)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}

        now = datetime.now(timezone.utc)
        world = build_world(args.seed, now - timedelta(days=3, hours=2))
        verdicts: dict[str, Counter] = defaultdict(Counter)
        reasons: dict[str, Counter] = defaultdict(Counter)
        fraud_of = {}
        judged: list[tuple[Signup, dict]] = []
        for signup in world.events:
            body = {**signup.body, "occurred_at": signup.at.isoformat()}
            response = client.post("/v1/assessments", json=body, headers=headers)
            if response.status_code != 201:
                raise SystemExit(f"{response.status_code}: {response.get_data(as_text=True)}")
            result = response.get_json()
            verdicts[signup.group][result["verdict"]] += 1
            reasons[signup.group].update(reason["code"] for reason in result["reasons"])
            fraud_of[signup.group] = signup.fraud
            judged.append((signup, result))
        dns.stop()
        # The challenges are answered: farms fail them, people pass them.
        for signup, result in judged:
            if result["verdict"] == "challenge":
                label = {"label": "fraud" if signup.fraud else "legitimate", "source": "challenge"}
                answered = client.post(f"/v1/assessments/{result['id']}/feedback", json=label, headers=headers)
                if answered.status_code != 201:
                    raise SystemExit(f"{answered.status_code}: {answered.get_data(as_text=True)}")
        started = time.perf_counter()
        recorded = run_due(services.database, max_batches=100_000)
        elapsed = time.perf_counter() - started
        feed, cursor = [], None
        while True:
            page = client.get("/v1/revisions", query_string={"limit": 1000, **({"after": cursor} if cursor else {})}, headers=headers).get_json()
            if not page["items"]:
                break
            feed += page["items"]
            cursor = page["next_cursor"]

    print(f"{'group':<52}{'n':>5}{'allow':>8}{'chall.':>8}{'deny':>8}  top reasons")
    totals = {True: Counter(), False: Counter()}
    for group in sorted(verdicts, key=lambda g: (fraud_of[g], g)):
        counts = verdicts[group]
        n = sum(counts.values())
        totals[fraud_of[group]].update(counts)
        top = ", ".join(f"{code} {count}" for code, count in reasons[group].most_common(args.show))
        print(f"{group:<52}{n:>5}{counts['allow'] / n:>8.0%}{counts['challenge'] / n:>8.0%}{counts['deny'] / n:>8.0%}  {top}")
    honest, fraud = totals[False], totals[True]
    print(f"\nhonest signups: {sum(honest.values())}, allowed {honest['allow'] / sum(honest.values()):.1%}, "
          f"denied {honest['deny'] / sum(honest.values()):.1%}")
    print(f"campaign signups: {sum(fraud.values())}, stopped (challenge or deny) "
          f"{(fraud['challenge'] + fraud['deny']) / sum(fraud.values()):.1%}, denied {fraud['deny'] / sum(fraud.values()):.1%}")

    # After the challenges were answered and the revisions run.
    rank = {"allow": 0, "challenge": 1, "deny": 2}
    current = {result["id"]: result["verdict"] for _, result in judged}
    for item in feed:  # in feed order: the last revision of an assessment is its current verdict
        current[item["assessment_id"]] = item["verdict"]
    up = {item["assessment_id"] for item in feed if rank[item["verdict"]] > rank[item["previous_verdict"]]}
    down = {item["assessment_id"] for item in feed if rank[item["verdict"]] < rank[item["previous_verdict"]]}
    print(f"\nafter the challenges were answered: {recorded} revisions in {elapsed:.2f} s")
    print(f"{'group':<52}{'n':>5}{'flagged at signup':>19}{'eventually':>12}{'revised up':>12}{'down':>6}")
    summary = {True: Counter(), False: Counter()}
    for group in sorted(verdicts, key=lambda g: (fraud_of[g], g)):
        members = [result for signup, result in judged if signup.group == group]
        at_signup = sum(result["verdict"] != "allow" for result in members)
        eventually = sum(current[result["id"]] != "allow" for result in members)
        raised = sum(result["id"] in up for result in members)
        lowered = sum(result["id"] in down for result in members)
        summary[fraud_of[group]].update(n=len(members), at_signup=at_signup, eventually=eventually, up=raised, down=lowered)
        print(f"{group:<52}{len(members):>5}{at_signup / len(members):>19.0%}{eventually / len(members):>12.0%}{raised:>12}{lowered:>6}")
    fraud_sum, honest_sum = summary[True], summary[False]
    print(f"\ncampaign signups flagged at signup {fraud_sum['at_signup'] / fraud_sum['n']:.1%}, "
          f"eventually {fraud_sum['eventually'] / fraud_sum['n']:.1%}")
    print(f"honest signups revised up {honest_sum['up']} of {honest_sum['n']}; "
          f"cleared by their own challenge {honest_sum['down']}; flagged eventually {honest_sum['eventually'] / honest_sum['n']:.1%}")


if __name__ == "__main__":
    main()
