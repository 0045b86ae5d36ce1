"""Looking records up and comparing them with what a domain must publish.

A record is ``ok`` (published as expected), ``missing``, ``wrong`` (something
else is published) or ``unknown`` (the DNS did not answer: a timeout or
SERVFAIL says nothing about the domain, so it never counts against it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import dns.exception
import dns.resolver

from portal.i18n import later

CHALLENGE_PREFIX = "_portal-challenge"

OK, MISSING, WRONG, UNKNOWN = "ok", "missing", "wrong", "unknown"


@dataclass
class RecordResult:
    name: str
    type: str
    expected: str
    purpose: str
    found: list[str]
    state: str
    message: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class Lookup:
    def __init__(self, resolvers: tuple[tuple[str, int], ...], timeout: float):
        if resolvers:
            self.resolver = dns.resolver.Resolver(configure=False)
            self.resolver.nameservers = [host for host, _ in resolvers]
            self.resolver.port = resolvers[0][1]
        else:
            self.resolver = dns.resolver.Resolver()
        self.resolver.lifetime = timeout
        self.resolver.timeout = timeout
        self.resolver.cache = None

    def values(self, name: str, rtype: str) -> tuple[list[str] | None, str]:
        """(values, problem): values is None when the DNS gave no usable answer."""
        try:
            answer = self.resolver.resolve(name, rtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return [], ""
        except dns.exception.Timeout:
            return None, later("the DNS did not answer in time")
        except dns.resolver.NoNameservers:
            return None, later("the DNS servers failed to answer (SERVFAIL)")
        except dns.exception.DNSException as error:
            return None, later("the DNS lookup failed (%(error)s)", error=error.__class__.__name__)
        found = []
        for item in answer.rrset or []:
            if rtype == "TXT":
                found.append(b"".join(item.strings).decode("utf-8", "replace"))
            elif rtype == "MX":
                found.append(f"{item.preference} {item.exchange.to_text().rstrip('.').lower()}")
            else:
                found.append(item.to_text().rstrip(".").lower())
        return found, ""


def _canonical(rtype: str, value: str) -> str:
    value = value.strip()
    if rtype in ("MX", "CNAME"):
        return value.rstrip(".").lower()
    return " ".join(value.split())


def compare(lookup: Lookup, name: str, rtype: str, expected: str, purpose: str) -> RecordResult:
    rtype = rtype.upper()
    found, problem = lookup.values(name, rtype)
    result = RecordResult(name=name, type=rtype, expected=expected, purpose=purpose, found=found or [],
                          state=UNKNOWN, message=problem)
    if found is None:
        return result
    want = _canonical(rtype, expected)
    have = [_canonical(rtype, value) for value in found]
    kind = _kind(name, rtype, want)
    if rtype == "MX":
        # The priority is advice; the host is what matters.
        want_host = want.split(" ", 1)[-1]
        matched = any(value.split(" ", 1)[-1] == want_host for value in have)
    elif kind == "spf":
        spf = [value for value in have if value.lower().startswith("v=spf1")]
        # Every mechanism asked for must be there; the "all" policy is the owner's choice.
        needed = [part for part in want.split()[1:] if part.lstrip("+-~?") != "all"]
        matched = bool(spf) and all(part in spf[0].split() for part in needed)
        have = spf or have
    elif kind == "dmarc":
        matched = any(value.lower().startswith("v=dmarc1") for value in have)
    elif kind == "dkim":
        key = _dkim_key(want)
        matched = any(_dkim_key(value) == key for value in have) if key else want in have
    else:
        matched = want in have
    if matched:
        result.state = OK
    elif have:
        result.state = WRONG
        result.message = later("a different value is published")
    else:
        result.state = MISSING
        result.message = later("nothing is published")
    return result


def _kind(name: str, rtype: str, value: str) -> str:
    """How to compare a TXT record: SPF, DMARC and DKIM allow harmless variations."""
    if rtype != "TXT":
        return rtype.lower()
    lowered = value.lower()
    if lowered.startswith("v=spf1"):
        return "spf"
    if name.lower().startswith("_dmarc.") or lowered.startswith("v=dmarc1"):
        return "dmarc"
    if "._domainkey." in name.lower() or lowered.startswith("v=dkim1"):
        return "dkim"
    return "txt"


def _dkim_key(value: str) -> str:
    for part in value.replace(" ", "").split(";"):
        if part.startswith("p="):
            return part[2:]
    return ""
