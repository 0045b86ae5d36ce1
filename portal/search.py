"""Searching by any part of a few texts, in any case and any language's capitals.

A searched model keeps one column holding its texts case-folded by Python, one per line
(SQLite's lower() and LIKE fold only ASCII capitals: "Élodie" would not be found by "élodie"),
and searches it with LIKE '%text%' (a trigram index on PostgreSQL where pg_trgm is installed).
"""

from __future__ import annotations


def folded(*texts: str | None) -> str:
    """The column's value: the texts, case-folded, one per line."""
    return "\n".join(text or "" for text in texts).casefold()


def holding(column, text: str):
    """The condition on ``column`` (a ``folded`` one) for rows whose texts hold ``text``; its own
    wildcards are taken literally and it never spans two of the texts."""
    from portal.web.lists import like

    return column.like(like(text.replace("\n", " ").casefold()), escape="\\")


def insert_default(*columns: str):
    """The column's insert default: ``folded`` of those columns' values in the row inserted, for
    rows written without the ORM (an import's bulk insert; the ORM keeps the column itself)."""
    def default(context) -> str:
        values = context.get_current_parameters()
        return folded(*(values.get(column) for column in columns))

    return default


# Bidirectional embeddings, overrides and isolates: in a name they reorder what follows it on the
# page or in a mail ("moc.elpmaxe@..." shown as an address), and a name never needs them.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def one_line(value: str) -> str:
    """A name as kept: on one line (it goes into e-mail subjects, where a line break makes the
    message unsendable, and to backends), without control characters (escape, bell: they break
    exports and terminals) or bidirectional overrides, its spaces collapsed."""
    import unicodedata

    kept = "".join(" " if character.isspace() else character for character in value
                   if character.isspace() or (unicodedata.category(character) != "Cc"
                                              and character not in _BIDI_CONTROLS))
    return " ".join(kept.split())
