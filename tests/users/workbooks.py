"""Workbooks as an administrator fills them: the account's template with rows added."""

from __future__ import annotations

import io

from openpyxl import load_workbook


def fill(template: bytes, users=(), account_rows=(), mailbox_rows=None, edit=None) -> bytes:
    """The template with rows added: users (first, last, email, Y/N), account (email, role, permission),
    mailbox_rows {address: [(email, role, permission)]}."""
    book = load_workbook(io.BytesIO(template))
    for row in users:
        book["Users"].append(list(row))
    for row in account_rows:
        book["Account"].append(list(row))
    for sheet in book.worksheets:
        if sheet["A1"].value == "Mailbox" and mailbox_rows and sheet["B1"].value in mailbox_rows:
            for row in mailbox_rows[sheet["B1"].value]:
                sheet.append(list(row))
    if edit:
        edit(book)
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()
