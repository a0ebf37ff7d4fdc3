"""The catalogue of reason codes: each stable code with its default points and meaning.

Points here are only the defaults written into policy version 1 (data/default_policy.json
must agree, and a test checks that); the policy in force decides.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReasonSpec:
    points: int
    description: str


CATALOGUE: dict[str, ReasonSpec] = {
    # email
    "email.invalid": ReasonSpec(100, "The address is not a valid email address."),
    "email.disposable": ReasonSpec(90, "The domain belongs to a disposable (throwaway) inbox provider."),
    "email.relay": ReasonSpec(10, "A privacy relay or forwarding alias: a real person stands behind it."),
    "email.undeliverable": ReasonSpec(80, "The domain cannot receive mail (null MX, or neither MX nor A)."),
    "email.role_account": ReasonSpec(20, "A role mailbox (admin@, info@, ...) rather than a person."),
    "email.typo_domain": ReasonSpec(45, "The domain looks like a typo of a large provider; a suggestion is given."),
    "email.confusable_domain": ReasonSpec(80, "The domain imitates a large provider with look-alike Unicode characters (a homograph)."),
    "email.random_local_part": ReasonSpec(25, "The local part looks machine-generated."),
    "email.canonical_reuse": ReasonSpec(60, "The same mailbox signed up before, under dot, plus or case variants."),
    "email.domain_burst": ReasonSpec(40, "A sudden burst of signups from one non-free email domain."),
    "email.domain_reputation": ReasonSpec(40, "The email domain has a record of fraud in stored verdicts and feedback."),
    "email.pattern_burst": ReasonSpec(45, "Many signups whose local parts follow one template."),
    # phone
    "phone.invalid": ReasonSpec(35, "The phone number cannot be parsed or is not a valid number."),
    "phone.voip": ReasonSpec(30, "A VoIP (virtual) number."),
    "phone.premium_or_special": ReasonSpec(40, "A premium-rate, shared-cost, toll-free, pager, UAN or personal number."),
    "phone.country_mismatch": ReasonSpec(15, "The phone's country differs from the IP's and the declared country."),
    "phone.reuse": ReasonSpec(50, "The same phone number signed up before."),
    "phone.range_burst": ReasonSpec(40, "Many signups from one block of consecutive numbers."),
    # ip
    "ip.invalid_or_private": ReasonSpec(30, "The IP is private, loopback, reserved or documentation space."),
    "ip.hosting": ReasonSpec(30, "The IP belongs to a hosting or datacenter network."),
    "ip.anonymous_vpn": ReasonSpec(25, "The IP is a known anonymous VPN exit."),
    "ip.tor": ReasonSpec(60, "The IP is a Tor exit node."),
    "ip.public_proxy": ReasonSpec(45, "The IP is a public proxy."),
    "ip.residential_proxy": ReasonSpec(45, "The IP is a residential proxy."),
    "ip.country_mismatch": ReasonSpec(10, "The IP's country differs from the declared country."),
    "ip.velocity": ReasonSpec(40, "Many signups from this IP address recently."),
    "ip.network_velocity": ReasonSpec(40, "Many signups from this IP network recently."),
    "ip.asn_velocity": ReasonSpec(20, "An unusual number of signups from this ASN recently."),
    "ip.network_reputation": ReasonSpec(35, "The IP network has a record of fraud in stored verdicts and feedback."),
    "ip.asn_reputation": ReasonSpec(20, "The ASN has a record of fraud in stored verdicts and feedback."),
    # device
    "device.reuse": ReasonSpec(50, "The same device signed up before."),
    "device.reputation": ReasonSpec(50, "The device has a record of fraud in stored verdicts and feedback."),
    # payment
    "payment.reuse": ReasonSpec(50, "The same payment method (its processor fingerprint) signed up other mailboxes before."),
    # cluster: later evidence, in revisions only (engine/revisions.py)
    "cluster.fraud_label": ReasonSpec(80, "A person labelled a linked assessment as fraud after this one was judged."),
    "cluster.list_match": ReasonSpec(100, "A deny-list entry added after this assessment was judged matches it."),
    "cluster.limit": ReasonSpec(50, "A key of this assessment went on to sign up more mailboxes than the policy allows."),
    # lists
    "list.deny": ReasonSpec(100, "A value is on a deny list."),
    "list.challenge": ReasonSpec(40, "A value is on a challenge list."),
    "list.allow": ReasonSpec(0, "A value is on an allow list."),
}


def default_points() -> dict[str, int]:
    """The catalogue's points, as a fresh dict."""
    return {code: spec.points for code, spec in CATALOGUE.items()}
