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
