"""Domain names as people type them, to the one form the portal stores (IDNA A-labels, lower case)."""

from __future__ import annotations

import re
from functools import lru_cache

import idna
from flask_babel import gettext as _

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class DomainNameError(ValueError):
    pass


def normalize(raw: str) -> str:
    name = raw.strip().rstrip(".").lower()
    if not name:
        raise DomainNameError(_("Enter a domain name, such as example.org."))
    if "@" in name or "/" in name or " " in name or ":" in name:
        raise DomainNameError(_("Enter just the domain name, such as example.org (no address, path or port)."))
    try:
        ascii_name = idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as error:
        if "label too long" in str(error).lower():
            raise DomainNameError(
                _("One part of the name is longer than the 63 characters a label may have.")) from None
        if "too long" in str(error).lower():
            raise DomainNameError(_("A domain name is at most 253 characters long.")) from None
        raise DomainNameError(_("“%(name)s” is not a valid domain name (%(error)s).", name=raw.strip(),
                                 error=str(error))) from None
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise DomainNameError(_("A mail domain has at least two parts, such as example.org."))
    if len(ascii_name) > 253:
        raise DomainNameError(_("A domain name is at most 253 characters long."))
    for label in labels:
        if len(label) > 63:
            raise DomainNameError(_("“%(part)s…” is longer than the 63 characters a label may have.", part=label[:20]))
        if not _LABEL.match(label):
            raise DomainNameError(_("“%(part)s” is not a valid part of a domain name: letters, digits and "
                                    "inner hyphens only.", part=label))
    if labels[-1].isdigit():
        raise DomainNameError(_("That looks like an IP address; enter a domain name."))
    return ascii_name


@lru_cache(maxsize=4096)
def to_unicode(ascii_name: str) -> str:
    # Pages show many names, each several times: decoding is slow and its answer never changes.
    try:
        return idna.decode(ascii_name)
    except idna.IDNAError:
        return ascii_name
