"""The benchmark's loads: the Python signups mirror the wrk scripts, and the campaign is hot
where a farm is (one phone block, a few networks) while the honest load is not."""

from __future__ import annotations

import ipaddress
import re

import pytest

from bench import loads
from verify.engine.identity import phone_keys


def lua_table(script: str, name: str) -> list[str]:
    body = re.search(rf"^local {name} = \{{(.*?)\}}", script, re.M | re.S).group(1)
    return re.findall(r'"([^"]*)"', body)


@pytest.mark.parametrize(("script", "table", "mirror"), [
    ("signups.lua", "first", loads.FIRST),
    ("signups.lua", "last", loads.LAST),
    ("signups.lua", "domains", loads.HONEST_DOMAINS),
    ("signups.lua", "countries", loads.COUNTRIES),
    ("campaign.lua", "domains", loads.CAMPAIGN_DOMAINS),
    ("campaign.lua", "networks", loads.CAMPAIGN_NETWORKS),
    ("campaign.lua", "emulators", loads.EMULATORS),
], ids=lambda value: value if isinstance(value, str) else "")
def test_the_python_word_lists_are_the_scripts(script, table, mirror):
    assert lua_table((loads.BENCH / script).read_text(), table) == mirror


def shape(signups: list[dict]) -> dict[str, int]:
    return {
        "phone_blocks": len({phone_keys(signup["phone"])[1] for signup in signups}),
        "networks": len({ipaddress.ip_network(f"{signup['ip']}/24", strict=False) for signup in signups}),
        "emails": len({signup["email"] for signup in signups}),
        "devices": len({signup["device_id"] for signup in signups}),
    }


def test_the_campaign_shares_one_phone_block_and_a_few_networks():
    signups = loads.LOADS["campaign"].signups(300, thread_id=90)
    found = shape(signups)
    assert (found["phone_blocks"], found["networks"], found["emails"]) == (1, 4, 300)
    assert 240 <= found["devices"] < 300  # mostly distinct, a few emulators reused
    assert all(re.fullmatch(r"user900000\d{3}@[a-z.-]+", signup["email"]) for signup in signups)


def test_the_honest_load_is_spread_out():
    found = shape(loads.LOADS["honest"].signups(300, thread_id=90))
    assert found["phone_blocks"] > 250 and found["networks"] > 290
    assert found["emails"] == found["devices"] == 300


def test_a_thread_id_keeps_the_python_signups_apart_from_wrks():
    ours = {signup["email"] for signup in loads.LOADS["campaign"].signups(50, thread_id=90)}
    wrks = {signup["email"] for signup in loads.LOADS["campaign"].signups(50, thread_id=1)}
    assert not ours & wrks
