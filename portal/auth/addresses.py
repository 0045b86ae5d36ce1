"""Why an address was refused, in the reader's language.

The address check (email_validator) explains a refusal in English only; its explanation is
mapped here onto the portal's own texts, by what it is about. Anything it may say that is not
listed reads as the general text, never as English inside a French sentence."""

from __future__ import annotations

from email_validator import EmailNotValidError
from flask_babel import gettext as _

# (the start of the library's explanation, what the portal says), most specific first.
_REASONS = (
    ("An email address must have an @-sign", lambda: _("An address needs an @ sign.")),
    ("There must be something before the @-sign", lambda: _("Something must come before the @ sign.")),
    ("There must be something after the @-sign", lambda: _("Something must come after the @ sign.")),
    ("An email address cannot have two periods in a row",
     lambda: _("An address cannot have two periods in a row.")),
    ("An email address cannot start with a", lambda: _("The address cannot start with a period.")),
    ("An email address cannot have a period immediately before the @-sign",
     lambda: _("A period cannot come just before the @ sign.")),
    ("An email address cannot end with a", lambda: _("The address cannot end with a period or a hyphen.")),
    ("An email address cannot have a", lambda: _("The part after the @ sign is not a valid domain name.")),
    ("An email address cannot have two letters followed by two dashes",
     lambda: _("The part after the @ sign is not a valid domain name.")),
    ("The email address is too long", lambda: _("The address is too long.")),
    ("The part after the @-sign is not valid. It should have a period",
     lambda: _("The part after the @ sign must be a domain name with a period, such as example.org.")),
    ("The part after the @-sign is a special-use or reserved name",
     lambda: _("The part after the @ sign is a reserved name that cannot receive mail.")),
    ("The part after the @-sign is not valid. It is not within a valid top-level domain",
     lambda: _("The part after the @ sign does not end with a real top-level domain.")),
    ("The email address contains invalid characters after the @-sign",
     lambda: _("The part after the @ sign is not a valid domain name.")),
    ("The part after the @-sign", lambda: _("The part after the @ sign is not a valid domain name.")),
    ("After the @-sign", lambda: _("The part after the @ sign is not a valid domain name.")),
    ("A bracketed IP address", lambda: _("An address on an IP address in brackets is not accepted.")),
    ("The address in brackets", lambda: _("An address on an IP address in brackets is not accepted.")),
    ("The IPv6 address in brackets", lambda: _("An address on an IP address in brackets is not accepted.")),
    ("A display name and angle brackets", lambda: _("Write the address alone, without a name or < >.")),
    ("An open angle bracket", lambda: _("Write the address alone, without a name or < >.")),
    ("Internationalized characters before the @-sign",
     lambda: _("The part before the @ sign holds characters an address cannot have.")),
    ("The email address contains invalid characters before the @-sign",
     lambda: _("The part before the @ sign holds characters an address cannot have.")),
    ("Quoting the part before the @-sign", lambda: _("The part before the @ sign cannot be in quotes.")),
    ("The email address contains", lambda: _("The address holds characters an address cannot have.")),
    ("The email address is not valid ASCII", lambda: _("The address holds characters an address cannot have.")),
    ("The email address has the", lambda: _("The address holds characters an address cannot have.")),
)


def address_problem(error: EmailNotValidError | str) -> str:
    """What to tell a person about ``error`` (or the check's explanation, as stored with an
    import's problems), in the language in force."""
    explanation = str(error)
    for start, text in _REASONS:
        if explanation.startswith(start):
            return text()
    return _("It holds characters or a form an address cannot have.")
