"""Replay three days of mixed traffic and check that campaigns are caught while honest people pass.

Honest: home users on many networks, an office behind one NAT address, mobile users behind
carrier NAT, travellers, VPN users, a retry, a family sharing a laptop. Campaigns: Gmail dot
and plus variants of one mailbox, a fresh catch-all domain with template local parts from a
data centre, sequential phone numbers, one device reused, a data-centre burst, and a slow
and low campaign on a young domain through unflagged residential addresses.

The network signals the GeoIP readers will give are stood in for by `pretend_geoip`.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from tests.support.history_traffic import add_mail_domains, person, post, pretend_geoip

NETWORKS = {
    "62.30.112.0/24": {"asn": 64501, "as_org": "Office Fibre", "is_hosting_provider": False},
    "172.56.0.0/16": {"asn": 64502, "as_org": "Mobile Carrier", "connection_type": "Cellular", "is_hosting_provider": False},
    "81.0.0.0/8": {"asn": 64503, "as_org": "Home Broadband", "is_hosting_provider": False},
    "5.0.0.0/8": {"asn": 64504, "as_org": "Hotel Wi-Fi abroad", "country": "FR", "is_hosting_provider": False},
    "185.220.0.0/16": {"asn": 64505, "as_org": "Commercial VPN", "is_anonymous_vpn": True, "is_hosting_provider": False},
    "34.0.0.0/8": {"asn": 64510, "as_org": "Cloud Hosting", "is_hosting_provider": True},
}
FREE = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me")


def honest_traffic(rng: random.Random) -> list[tuple[float, str, dict]]:
    events = []
    for n in range(260):  # home users on many networks and free mail, a few with digits as people use them
        name = person(n) + (str(rng.randint(70, 99)) if rng.random() < 0.3 else "")
        fields = {"ip": f"81.{rng.randint(1, 250)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", "device_id": f"home-{n}"}
        if rng.random() < 0.5:
            area = rng.choice((212, 206, 303, 312, 404, 415, 512, 617, 702, 919))  # geographic, not toll-free
            fields["phone"] = f"+1{area}{rng.randint(201, 989)}{rng.randint(0, 9999):04d}"
        events.append((rng.uniform(0, 3 * 1440), f"{name}@{rng.choice(FREE)}", fields))
    for n in range(15):  # an office onboarding its staff over a morning, behind one address
        events.append((600 + n * 12, f"{person(300 + n)}@contoso-labs.example", {"ip": "62.30.112.10", "device_id": f"office-{n}"}))
    for n in range(90):  # mobile users behind carrier NAT: an evening peak of 40 in an hour on two addresses
        minute = 1440 + 1200 + rng.uniform(0, 60) if n < 40 else rng.uniform(0, 3 * 1440)
        events.append((minute, f"{person(400 + n)}@{rng.choice(FREE)}", {"ip": f"172.56.0.{1 + n % 2}", "device_id": f"phone-{n}"}))
    for n in range(12):  # travellers: foreign hotel networks
        events.append((rng.uniform(0, 3 * 1440), f"{person(500 + n)}@{rng.choice(FREE)}", {"ip": f"5.{n}.7.20", "country": "US", "device_id": f"trip-{n}"}))
    for n in range(12):  # VPN users sharing three exits
        events.append((rng.uniform(0, 3 * 1440), f"{person(520 + n)}@{rng.choice(FREE)}", {"ip": f"185.220.1.{1 + n % 3}", "device_id": f"vpn-{n}"}))
    events.append((100, "ann.adams@gmail.com", {"ip": "81.3.3.3", "device_id": "home-0"}))  # a retry of the first home user
    events.append((2000, "lena.chen@gmail.com", {"ip": "81.9.9.9", "device_id": "family-laptop"}))
    events.append((2100, "omar.chen@outlook.com", {"ip": "81.9.9.9", "device_id": "family-laptop"}))
    return events


def campaigns(rng: random.Random) -> dict[str, list[tuple[float, str, dict]]]:
    def proxy_ip() -> str:  # residential proxies: addresses nobody has flagged
        return f"81.{rng.randint(1, 250)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"

    def variant(mailbox: str) -> str:
        dotted = "".join(c + ("." if rng.random() < 0.3 else "") for c in mailbox[:-1]) + mailbox[-1]
        return f"{dotted}+{rng.randint(1, 99999)}@{rng.choice(['gmail.com', 'googlemail.com'])}"

    firsts, lasts = ("james", "mary", "liam", "emma", "noah", "olga", "ryan", "sara"), ("wilson", "brown", "clark", "scott", "young", "adams")
    return {
        "gmail-variants": [(1500 + n * 12, variant("jonathanmiller"), {"ip": proxy_ip(), "device_id": f"gv-{n}"}) for n in range(30)],
        "catch-all-template": [
            (2000 + n * 2, f"{rng.choice(firsts)}.{rng.choice(lasts)}{rng.randint(1000, 9999)}@bulkreg.example",
             {"ip": f"34.12.{n % 4}.{rng.randint(1, 254)}", "device_id": f"ca-{n}"})
            for n in range(60)
        ],
        "sequential-phones": [
            (500 + n * 30, f"{rng.choice(firsts)}{rng.choice(lasts)}{rng.randint(10, 99)}@gmail.com",
             {"phone": f"+1202555{n + 100:04d}", "ip": proxy_ip(), "device_id": f"sp-{n}"})
            for n in range(40)
        ],
        "one-device": [
            (3000 + n * 20, f"{rng.choice(firsts)}.{rng.choice(lasts)}{rng.randint(100, 999)}@outlook.com",
             {"ip": proxy_ip(), "device_id": "emulator-7f3a"})
            for n in range(25)
        ],
        "datacenter-burst": [
            (3500 + n * 0.5, f"{rng.choice(firsts)}{rng.choice(lasts)}{rng.randint(1, 9999)}@gmail.com",
             {"ip": f"34.90.7.{1 + n % 6}", "device_id": f"dc-{n}"})
            for n in range(100)
        ],
        "slow-and-low": [
            (n * 110, f"{rng.choice(firsts)}.{rng.choice(lasts)}{rng.randint(1000, 9999)}@fresh-deals.shop",
             {"ip": proxy_ip(), "device_id": f"sl-{n}"})
            for n in range(40)
        ],
    }


@pytest.fixture
def replay(client, assess_headers, services, dns_server):
    add_mail_domains(dns_server)
    pretend_geoip(services, NETWORKS)
    rng = random.Random(20260131)
    events = [(minute, email, fields, "honest") for minute, email, fields in honest_traffic(rng)]
    for name, signups in campaigns(rng).items():
        events += [(minute, email, fields, name) for minute, email, fields in signups]
    verdicts: dict[str, Counter] = defaultdict(Counter)
    for minute, email, fields, source in sorted(events, key=lambda event: event[0]):
        verdicts[source][post(client, assess_headers, email, minute, **fields)["verdict"]] += 1
    return verdicts


def rate(counter: Counter, *verdicts: str) -> float:
    return sum(counter[v] for v in verdicts) / sum(counter.values())


def test_campaigns_are_caught_and_honest_people_pass(replay, capsys):
    honest = replay.pop("honest")
    caught = Counter()
    for counter in replay.values():
        caught.update(counter)
    with capsys.disabled():
        print(f"\nhonest {dict(honest)}: challenged {rate(honest, 'challenge'):.1%}, denied {rate(honest, 'deny'):.1%}")
        for name, counter in sorted(replay.items()):
            print(f"{name}: {dict(counter)}: caught {rate(counter, 'challenge', 'deny'):.1%}, denied {rate(counter, 'deny'):.1%}")
        print(f"all campaigns: caught {rate(caught, 'challenge', 'deny'):.1%}, denied {rate(caught, 'deny'):.1%}")
    assert honest["deny"] == 0
    assert rate(honest, "challenge") <= 0.03
    assert rate(caught, "challenge", "deny") >= 0.85
    for name, counter in replay.items():
        assert rate(counter, "challenge", "deny") >= 0.7, name
    # The campaigns that show more than volume are denied, not only challenged.
    assert rate(replay["catch-all-template"], "deny") >= 0.75
    # A burst from a hosting network with clean-looking identities shows network evidence only:
    # it is challenged, every signup of it, but not denied until a person reports fraud on that
    # network (decide.network_ceiling; tests/engine/test_network_alone.py).
    assert rate(replay["datacenter-burst"], "challenge", "deny") == 1.0
