"""The HTTP benchmark's two loads: the wrk script of each, and the same signups made in Python.

`honest` (bench/signups.lua): distinct, realistic signups. `campaign` (bench/campaign.lua):
what a farm sends, every phone in one number block. The Python functions mirror the scripts
(tests/bench/test_loads.py checks that their word lists agree), so the requests the benchmark
sends itself, for the per-stage breakdown and the round-trip count, are shaped like wrk's.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

BENCH = Path(__file__).resolve().parent

FIRST = ["james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david", "sofia",
         "lukas", "emma", "noah", "olivia", "mateo", "yuki", "chen", "amara", "ivan", "fatima"]
LAST = ["smith", "johnson", "williams", "brown", "garcia", "miller", "davis", "martinez", "lopez", "wilson",
        "mueller", "rossi", "kowalski", "tanaka", "nguyen", "okafor", "petrov", "haddad", "silva", "kim"]
HONEST_DOMAINS = ["gmail.com", "gmail.com", "gmail.com", "outlook.com", "yahoo.com", "icloud.com", "hotmail.com",
                  "proton.me", "gmx.de", "example-mail.com", "acme-corp.io", "mailinator.com", "gmial.com"]
COUNTRIES = ["US", "GB", "DE", "FR", "BR", "IN", "JP", "NG"]

CAMPAIGN_DOMAINS = ["mailinator.com", "yopmail.com", "example-mail.com", "gmial.com"]
CAMPAIGN_NETWORKS = ["45.61.160", "45.61.161", "45.61.162", "45.61.163"]
EMULATORS = ["emu-1", "emu-2", "emu-3"]

Signup = dict[str, str]


def honest_signup(rng: random.Random, *, thread_id: int, counter: int) -> Signup:
    """One signup as bench/signups.lua makes it."""
    serial = thread_id * 10_000_000 + counter
    return {
        "email": f"{rng.choice(FIRST)}.{rng.choice(LAST)}{serial}@{rng.choice(HONEST_DOMAINS)}",
        "ip": f"{rng.randint(11, 220)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        "phone": f"+1415{rng.randint(0, 9_999_999):07d}",
        "country": rng.choice(COUNTRIES),
        "device_id": f"dev-{thread_id}-{counter}",
        "user_agent": "Mozilla/5.0 (bench)",
    }


def campaign_signup(rng: random.Random, *, thread_id: int, counter: int) -> Signup:
    """One signup as bench/campaign.lua makes it."""
    serial = thread_id * 10_000_000 + counter
    device = f"farm-{thread_id}-{counter}"
    if rng.randint(1, 10) == 1:
        device = rng.choice(EMULATORS)
    return {
        "email": f"user{serial}@{rng.choice(CAMPAIGN_DOMAINS)}",
        "ip": f"{rng.choice(CAMPAIGN_NETWORKS)}.{rng.randint(1, 254)}",
        "phone": f"+14155550{rng.randint(0, 999):03d}",
        "country": "US",
        "device_id": device,
        "user_agent": "Mozilla/5.0 (Linux; Android 10; farm)",
    }


@dataclass(frozen=True)
class Load:
    name: str
    script: Path
    make_signup: Callable[..., Signup]

    def signups(self, count: int, *, thread_id: int, seed: int = 0) -> list[Signup]:
        """`count` signups; a thread id of its own keeps them apart from wrk's (ids 0 and up)."""
        rng = random.Random(seed)
        return [self.make_signup(rng, thread_id=thread_id, counter=counter) for counter in range(1, count + 1)]


LOADS = {
    "honest": Load("honest", BENCH / "signups.lua", honest_signup),
    "campaign": Load("campaign", BENCH / "campaign.lua", campaign_signup),
}
