"""Why an address was refused, in the reader's language.

The address check (email_validator) explains a refusal in English only; its explanation is
mapped here onto the portal's own texts, by what it is about. Anything it may say that is not
listed reads as the general text, never as English inside a French sentence."""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from portal.i18n import _l

_TEXTS = {
    "no_at": _l("An address needs an @ sign."),
    "nothing_before": _l("Something must come before the @ sign."),
    "nothing_after": _l("Something must come after the @ sign."),
    "two_periods": _l("An address cannot have two periods in a row."),
    "starts_with_period": _l("The address cannot start with a period."),
    "period_before_at": _l("A period cannot come just before the @ sign."),
    "bad_end": _l("The address cannot end with a period or a hyphen."),
    "too_long": _l("The address is too long."),
    "domain_without_period": _l("The part after the @ sign must be a domain name with a period, such as "
                                "example.org."),
    "reserved_domain": _l("The part after the @ sign is a reserved name that cannot receive mail."),
    "unknown_top_level": _l("The part after the @ sign does not end with a real top-level domain."),
    "bad_domain": _l("The part after the @ sign is not a valid domain name."),
    "ip_literal": _l("An IP address in brackets is not accepted after the @ sign."),
    "display_name": _l("Write the address alone, without a name or < >."),
    "bad_local_characters": _l("The part before the @ sign holds characters an address cannot have."),
    "quoted_local": _l("The part before the @ sign cannot be in quotes."),
    "bad_characters": _l("The address holds characters an address cannot have."),
    "compatibility_form": _l("The part before the @ sign holds look-alike forms of characters (full-width letters, "
                             "ligatures…): type it with plain ones."),
    "no_small_letter": _l("The part before the @ sign holds a capital letter with no small letter of its own (such "
                          "as İ): type it in small letters."),
    "invisible": _l("The part before the @ sign holds an invisible character (a joiner, a variation selector, a "
                    "filler…): type it again without it."),
}
GENERAL = _l("The address has a form or characters an address cannot have.")

# The portal's own explanation when ``checked_address`` refuses look-alike forms, as the library
# words its own (never shown: ``address_problem`` reads it as the portal's text).
_COMPATIBILITY = "The part before the @-sign has characters in a compatibility form"
_COMPATIBILITY_EXPLANATION = _COMPATIBILITY + " (full-width letters, ligatures...): type it with plain ones."
_INVISIBLE = "The part before the @-sign has an invisible character"
_INVISIBLE_EXPLANATION = _INVISIBLE + " (a joiner, a variation selector, a filler...)."
_NO_SMALL_LETTER = "The part before the @-sign has a capital letter with no small letter of its own"

# Characters that show nothing (Unicode's default-ignorable code points, the Hangul fillers, the
# blank Braille cell): dup@ with one of them was a person apart from dup@, looking the same (a review).
_INVISIBLE_RANGES = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
                     (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x2800, 0x2800),
                     (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8),
                     (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))


def _invisible(text: str) -> bool:
    return any(low <= ord(character) <= high for character in text for low, high in _INVISIBLE_RANGES)


# (the start of the library's explanation, what it is about), most specific first.
_REASONS = (
    ("An email address must have an @-sign", "no_at"),
    ("There must be something before the @-sign", "nothing_before"),
    ("There must be something after the @-sign", "nothing_after"),
    ("An email address cannot have two periods in a row", "two_periods"),
    ("An email address cannot start with a", "starts_with_period"),
    ("An email address cannot have a period immediately before the @-sign", "period_before_at"),
    ("An email address cannot end with a", "bad_end"),
    ("An email address cannot have", "bad_domain"),  # a hyphen after the @, a period beside a hyphen...
    ("The email address is too long", "too_long"),
    ("The part after the @-sign is not valid. It should have a period", "domain_without_period"),
    ("The part after the @-sign is a special-use or reserved name", "reserved_domain"),
    ("The part after the @-sign is not valid. It is not within a valid top-level domain", "unknown_top_level"),
    ("The email address contains invalid characters after the @-sign", "bad_domain"),
    ("The part after the @-sign", "bad_domain"),
    ("After the @-sign", "bad_domain"),
    ("A bracketed IP address", "ip_literal"),
    ("The address in brackets", "ip_literal"),
    ("The IPv6 address in brackets", "ip_literal"),
    ("A display name and angle brackets", "display_name"),
    ("An open angle bracket", "display_name"),
    (_COMPATIBILITY, "compatibility_form"),
    (_INVISIBLE, "invisible"),
    (_NO_SMALL_LETTER, "no_small_letter"),
    ("Internationalized characters before the @-sign", "bad_local_characters"),
    ("The email address contains invalid characters before the @-sign", "bad_local_characters"),
    ("Quoting the part before the @-sign", "quoted_local"),
    ("The email address contains", "bad_characters"),
    ("The email address is not valid ASCII", "bad_characters"),
    ("The email address has the", "bad_characters"),
)


def address_problem(error: EmailNotValidError | str) -> str:
    """What to tell a person about ``error`` (or the check's explanation, as stored with an
    import's problems), in the language in force."""
    explanation = str(error)
    for start, about in _REASONS:
        if explanation.startswith(start):
            return str(_TEXTS[about])
    return str(GENERAL)


def checked_address(text: str) -> str:
    """``text`` as the portal keeps addresses: checked, lower-cased, the domain in its ASCII (IDNA)
    form. Raises EmailNotValidError with the reason. The part before the @ may not hold
    compatibility forms of characters (full-width letters, ligatures, superscripts): the check keeps
    them as typed, so ``ｄｕｐ@`` was a person apart from ``dup@``, looking the same (a review); nor
    invisible characters (``_INVISIBLE_RANGES``). Look-alikes of other scripts (a Cyrillic "р") are
    not refused: they are letters of their own alphabets."""
    checked = validate_email(text, check_deliverability=False)
    if _invisible(checked.local_part):
        raise EmailNotValidError(_INVISIBLE_EXPLANATION)
    # Checked again as kept, lower-cased: "İ" lower-cases to "i" and a combining dot (a review).
    local = checked.local_part.lower()
    if len(local) != len(checked.local_part):
        raise EmailNotValidError(_NO_SMALL_LETTER + " (such as İ).")
    if unicodedata.normalize("NFKC", checked.local_part) != checked.local_part \
            or unicodedata.normalize("NFKC", local) != local:
        raise EmailNotValidError(_COMPATIBILITY_EXPLANATION)
    return f"{checked.local_part}@{checked.ascii_domain}".lower()
