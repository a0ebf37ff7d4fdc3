"""Look-alike characters (Unicode TS #39 confusables): homograph domains and look-alike mailboxes.

The table is Unicode's confusables.txt as shipped by `confusable_homoglyphs`; we only fold
toward ASCII. A character with an ASCII twin (Cyrillic о, Greek ο, fullwidth ｏ, script ɡ)
becomes that twin; ASCII stays as typed (rn/m or 1/l are typos, and the typo check reads
those); a letter with no ASCII twin (ü, ж, 例) stays itself, so honest internationalised
names keep their identity.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Collection

import idna
from confusable_homoglyphs import confusables


@functools.lru_cache(maxsize=4096)
def _ascii_twin(char: str) -> str:
    # The library's table lists, for each character, what it can be confused with, in both
    # directions; a non-ASCII look-alike of an ASCII letter or digit lists that one.
    for entry in confusables.confusables_data.get(char, ()):
        twin = entry["c"]
        if len(twin) == 1 and twin.isascii() and twin.isalnum():
            return twin
    return char


def ascii_skeleton(text: str) -> str:
    """The text with compatibility forms folded (NFKC: fullwidth, ligatures) and every
    non-ASCII look-alike of an ASCII letter or digit replaced by that letter or digit."""
    folded = unicodedata.normalize("NFKC", text)
    if folded.isascii():
        return folded
    return "".join(char if char.isascii() else _ascii_twin(char) for char in folded)


def unicode_domain(domain: str) -> str:
    """The Unicode form of a domain given in IDNA (xn--) or Unicode form; as given if it does not decode."""
    if not domain.isascii() or "xn--" not in domain:
        return domain
    try:
        return idna.decode(domain)
    except (idna.IDNAError, UnicodeError, ValueError):
        return domain


def homograph_of(domain: str, *targets: Collection[str]) -> str | None:
    """The domain of `targets` (one or more collections) this one imitates with look-alike characters, or None.

    `gmаil.com` (Cyrillic а, `xn--gmil-63d.com`) imitates gmail.com: no mail provider gives
    out such a name, and no person would choose it over the real one.
    """
    name = unicode_domain(domain).lower()
    if name.isascii():
        return None
    skeleton = ascii_skeleton(name).lower()
    if skeleton != name and skeleton.isascii() and any(skeleton in collection for collection in targets):
        return skeleton
    return None
