"""Writing spreadsheets people open in Excel or LibreOffice, safely.

Every text the portal writes (names people typed, role descriptions, addresses) is stored as
text, never as a formula: a profile named ``=HYPERLINK(...)`` stays a name in the users
report. Text that a spreadsheet would take for a formula on editing also gets the "quote
prefix" style.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def cells(sheet, values: Iterable) -> list:
    """A row for ``sheet.append``: strings become text cells that can never be formulas. A control
    character the file format cannot hold (a profile named "Bob<ESC>", a pasted bell) is written
    as U+FFFD, where it would otherwise stop the whole workbook from being written."""
    row = []
    for value in values:
        if isinstance(value, str) and value:
            cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
            cell.data_type = "s"
            if value.startswith(FORMULA_STARTS):
                cell.quotePrefix = True
            row.append(cell)
        else:
            row.append(value)
    return row


def looks_like_formula(text: str) -> bool:
    return text.startswith(FORMULA_STARTS)


# Where a cell may start once a spreadsheet splits a CSV line (a ';' in French or German settings
# splits "x;=2+3" into a cell "=2+3") and trims the spaces (Unicode and zero-width ones too), then
# what a formula starts with (full-width forms included).
_FORMULA_AT = re.compile(r"(^|[,;\t|])([\s\u200b-\u200d\u2060\ufeff]*)(?=[=+\-@\uff1d\uff0b\uff0d\uff20])")


def csv_text(text: str) -> str:
    """``text`` for a CSV cell that no spreadsheet takes for a formula, whichever separator it
    splits the line on and whether it trims spaces: OWASP's apostrophe before any formula start
    where a cell may begin; the writer quotes every cell as well."""
    text = _FORMULA_AT.sub(r"\1\2'", text)
    return "'" + text if looks_like_formula(text) else text
