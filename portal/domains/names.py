"""Domain names as people type them, to the one form the portal stores (IDNA A-labels, lower case)."""

from __future__ import annotations

import re

import idna

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class DomainNameError(ValueError):
    pass


def normalize(raw: str) -> str:
    name = raw.strip().rstrip(".").lower()
    if not name:
        raise DomainNameError("Enter a domain name, such as example.org.")
    if "@" in name or "/" in name or " " in name or ":" in name:
        raise DomainNameError("Enter just the domain name, such as example.org (no address, path or port).")
    try:
        ascii_name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as error:
        if "label too long" in str(error).lower():
            raise DomainNameError("One part of the name is longer than the 63 characters a label may have.") from None
        if "too long" in str(error).lower():
            raise DomainNameError("A domain name is at most 253 characters long.") from None
        raise DomainNameError(f"“{raw.strip()}” is not a valid domain name ({error}).") from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise DomainNameError("A mail domain has at least two parts, such as example.org.")
    if len(ascii_name) > 253:
        raise DomainNameError("A domain name is at most 253 characters long.")
    for label in labels:
        if len(label) > 63:
            raise DomainNameError(f"“{label[:20]}…” is longer than the 63 characters a label may have.")
        if not _LABEL.match(label):
            raise DomainNameError(f"“{label}” is not a valid part of a domain name: letters, digits and "
                                  "inner hyphens only.")
    if labels[-1].isdigit():
        raise DomainNameError("That looks like an IP address; enter a domain name.")
    return ascii_name


def to_unicode(ascii_name: str) -> str:
    try:
        return idna.decode(ascii_name)
    except idna.IDNAError:
        return ascii_name
