"""Writing spreadsheets people open in Excel or LibreOffice, safely.

Every text the portal writes (names people typed, role descriptions, addresses) is stored as
text, never as a formula: a profile named ``=HYPERLINK(...)`` stays a name in the users
report. Text that a spreadsheet would take for a formula on editing also gets the "quote
prefix" style.
"""

from __future__ import annotations

from collections.abc import Iterable

from openpyxl.cell import WriteOnlyCell

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def cells(sheet, values: Iterable) -> list:
    """A row for ``sheet.append``: strings become text cells that can never be formulas."""
    row = []
    for value in values:
        if isinstance(value, str) and value:
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            if value.startswith(FORMULA_STARTS):
                cell.quotePrefix = True
            row.append(cell)
        else:
            row.append(value)
    return row


def looks_like_formula(text: str) -> bool:
    return text.startswith(FORMULA_STARTS)
