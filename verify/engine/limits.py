"""History limits that the policy may tune: windows, how many earlier signups per key are normal, reputation.

Counts are of earlier signups (occurred_at strictly before the one judged) in a window ending
at its occurred_at. A count limit is the count at or above which a reason fires. The windows
are measured when the signup is assessed; the other limits are read again when stored signals
are re-judged (policy simulation), so a simulated policy can move them but not the windows.
"""

from __future__ import annotations

DAY = 86_400

# name -> default
DEFAULT_LIMITS: dict[str, int] = {
    # the three sliding windows (seconds) and how far any one count goes
    "window_short_seconds": 3_600,
    "window_medium_seconds": DAY,
    "window_long_seconds": 30 * DAY,
    "count_cap": 1_000,
    # one identity behind many accounts (long window)
    "email_canonical_reuse": 1,  # earlier signups of the same mailbox under another spelling
    "phone_reuse": 1,  # earlier signups with this number for another mailbox
    "device_reuse": 3,  # earlier signups on this device for other mailboxes (a family shares a laptop)
    "payment_reuse": 2,  # earlier signups paid by this card for other mailboxes (a couple shares one)
    # consecutive numbers: earlier signups from other numbers of one 1000-number block
    "phone_block_short": 3,
    "phone_block_medium": 5,
    "phone_block_long": 10,
    # one address, one network (/24, /64), one ASN
    "ip_short": 10,
    "ip_medium": 30,
    "ip_network_short": 20,
    "ip_network_medium": 60,
    "asn_short": 50,
    "asn_burst_ratio": 4,  # the short count must also be this many times the ASN's usual rate
    "cellular_limit_factor": 3,  # carrier NAT puts many people behind one address: limits times this
    # email domains and templates (never for free-mail or relay domains)
    "email_domain_short": 10,
    "email_domain_medium": 20,
    "email_domain_long": 40,  # for a young domain only: slow-and-low campaigns
    "email_domain_new_days": 14,  # a domain first seen fewer days ago is young
    "email_domain_burst_ratio": 5,  # an established domain bursts at this many times its daily average
    "pattern_medium": 5,  # earlier local parts of one generated template on one domain
    "pattern_long": 10,
    # reputation from stored verdicts and feedback, decayed
    "reputation_half_life_days": 30,
    "reputation_sample": 50,  # most recent earlier assessments read per key (cost grows with it)
    "reputation_feedback_weight": 3,  # one feedback outweighs this many verdicts
    "reputation_min_fraud": 3,  # decayed fraud evidence a key needs before its record counts
    "reputation_fraud_percent": 50,  # share of the evidence that is fraud
    # revisions (engine/revisions.py): mailboxes on one key at which its earlier members are
    # re-judged (well above the reuse limits: a family of four on one laptop is no cluster)
    "cluster_email": 3,
    "cluster_phone": 3,
    "cluster_device": 8,
    "cluster_payment": 5,
    "revision_lookback_days": 30,  # how far back a fraud label or a new deny-list entry re-judges
}

# name -> (lowest, highest) value a policy may set.
LIMIT_RANGES: dict[str, tuple[int, int]] = {
    "window_short_seconds": (60, DAY),
    "window_medium_seconds": (3_600, 7 * DAY),
    "window_long_seconds": (DAY, 180 * DAY),
    "count_cap": (10, 100_000),
    "email_canonical_reuse": (1, 1_000),
    "phone_reuse": (1, 1_000),
    "device_reuse": (1, 1_000),
    "payment_reuse": (1, 1_000),
    "phone_block_short": (1, 100_000),
    "phone_block_medium": (1, 100_000),
    "phone_block_long": (1, 100_000),
    "ip_short": (1, 100_000),
    "ip_medium": (1, 100_000),
    "ip_network_short": (1, 100_000),
    "ip_network_medium": (1, 100_000),
    "asn_short": (1, 100_000),
    "asn_burst_ratio": (1, 100),
    "cellular_limit_factor": (1, 1_000),
    "email_domain_short": (1, 100_000),
    "email_domain_medium": (1, 100_000),
    "email_domain_long": (1, 100_000),
    "email_domain_new_days": (0, 3_650),
    "email_domain_burst_ratio": (1, 100),
    "pattern_medium": (1, 100_000),
    "pattern_long": (1, 100_000),
    "reputation_half_life_days": (1, 3_650),
    "reputation_sample": (10, 5_000),
    "reputation_feedback_weight": (1, 100),
    "reputation_min_fraud": (1, 100_000),
    "reputation_fraud_percent": (1, 100),
    "cluster_email": (2, 100_000),
    "cluster_phone": (2, 100_000),
    "cluster_device": (2, 100_000),
    "cluster_payment": (2, 100_000),
    "revision_lookback_days": (1, 365),
}
