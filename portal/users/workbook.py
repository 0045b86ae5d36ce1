"""The mass-creation workbook: the template, reading an upload safely, and the plan.

Sheets (reference 004): Roles, Permissions, Users (first name, last name,
e-mail, personal mailbox Y/N/empty), Account (e-mail, role, permission: one
grant a row) and Mailbox sheets (the mailbox's address in B1, then e-mail,
role, permission rows): the template holds one for at most MAILBOX_SHEETS
mailboxes, shared ones first, and the admin copies one for any other mailbox.
Everything is validated before anything is written; the preview shows every
problem at once.

Rules: a user whose address is not on an active domain of the account fails
the whole import; a user referred to by a wrong row on the Account or a
Mailbox sheet is not created (the others are).

Languages: the template is written in the language of the person who downloads it (sheet
names, headers, notes); a workbook is read in any of the portal's languages, and with the
reference's English names, which every template made before carries. The preview's problems
are kept as a code and values and put into words when shown, in the reader's language.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from xml.parsers import expat
from dataclasses import dataclass, field

from email_validator import EmailNotValidError
from flask import current_app
from flask_babel import gettext as _
from openpyxl import Workbook, load_workbook
from openpyxl.comments import Comment
from openpyxl.styles import Font
from openpyxl.worksheet.datavalidation import DataValidation
from sqlalchemy import case

from portal.accounts.models import Account, Membership
from portal.auth.addresses import address_problem, checked_address
from portal.auth.models import User
from portal.domains import ownership
from portal.domains.models import ENABLED, Domain
from portal.extensions import db
from portal.i18n import LANGUAGES, StoredReason, _l, in_language, label, later, later_plural
from portal.mailboxes.models import DELETED, SHARED, Mailbox
from portal.roles import catalogue
from portal.roles.services import (account_permissions, is_owner, mailbox_permissions, mailbox_permissions_of,
                                   outranks, roles_for)
from portal.spreadsheets import cells, looks_like_formula
from portal.timeutil import utcnow

USERS_HEADER = (_l("First name"), _l("Last name"), _l("E-mail"), _l("Personal mailbox (Y/N)"),
                _l("Recovery address (optional)"))
GRANT_HEADER = (_l("E-mail"), _l("Role"), _l("Permission"))
# The reference's sheets, by the English names that are also their keys here.
ROLES, PERMISSIONS, USERS, ACCOUNT = "Roles", "Permissions", "Users", "Account"
MAILBOX_MARKER = "Mailbox"  # A1 of a mailbox sheet, in English
# The template holds a sheet for at most this many mailboxes (a sheet, with its lists, for each of
# 10,000 mailboxes took 37 s and 21 MB); the admin copies one for any other mailbox.
MAILBOX_SHEETS = 20
MAX_CELL = 254
MAX_NAME = 100
NAMES_TOGETHER = 199  # the full name, "first last", is kept in 200 characters
# Bounds on what an upload may expand to; a 50,000-user workbook needs a fraction of them.
MAX_UNCOMPRESSED = 64 * 1024 * 1024
MAX_ENTRY = 48 * 1024 * 1024
MAX_ENTRIES = 2000
MAX_RATIO = 100
RATIO_FROM = 256 * 1024
MAX_XML_DEPTH = 40
_ARCHIVE_SUFFIXES = (".zip", ".xlsx", ".xlsm", ".docx", ".gz", ".bin", ".jar", ".7z", ".rar")
SHOWN_PROBLEMS = 1000


class WorkbookRefused(StoredReason, ValueError):
    """The upload is refused whole; the message (a ``later`` text, kept with the run and in the
    audit log, read in each reader's language) says why."""


# -- the words of the workbook, in each language ------------------------------------

_SHEET_NAMES = {ROLES: _l("Roles"), PERMISSIONS: _l("Permissions"), USERS: _l("Users"), ACCOUNT: _l("Account")}


def sheet_name(key: str) -> str:
    """The name of one of the reference's sheets in the current language."""
    return str(_SHEET_NAMES[key])


def _mailbox_marker() -> str:
    return _("Mailbox")


def _yes_no() -> tuple[str, str]:
    """The letters that answer "personal mailbox?" in the current language."""
    return _("Y"), _("N")


def _in_every_language(make) -> set:
    """What ``make()`` gives in each of the portal's languages (English among them)."""
    found = set()
    for code in LANGUAGES:
        with in_language(code):
            found.add(make())
    return found


def _sheet_names(key: str) -> set[str]:
    return {key.casefold()} | _in_every_language(lambda: sheet_name(key).casefold())


def find_sheet(titles, key: str) -> str | None:
    """The title, among ``titles``, of one of the reference's sheets, in whatever language."""
    spellings = _sheet_names(key)
    return next((title for title in titles if title.casefold() in spellings), None)


def _header_starts() -> dict[str, set[tuple[str, ...]]]:
    """The first cells of a header row, as every language writes them: rows to skip."""
    return {"users": _in_every_language(lambda: tuple(str(h).casefold() for h in USERS_HEADER[:3])),
            "grants": _in_every_language(lambda: str(GRANT_HEADER[0]).casefold())}


def _role_texts(role) -> tuple[str, str]:
    """A role's name and description as the reader reads them (a system role's in their
    language; the reader accepts those names in every language, and the stored one)."""
    definition = catalogue.SYSTEM_BY_KEY.get(role.system_key or "")
    if definition is None:
        return role.name, role.description or ""
    return str(definition.name), str(definition.description)


def _roles_by_name(roles) -> dict:
    """Roles by their names in lower case: as stored, and a system role's in every language."""
    found = {}
    for role in roles:
        found[role.name.lower()] = role
        if role.system_key in catalogue.SYSTEM_BY_KEY:
            for name in _in_every_language(lambda: _role_texts(role)[0].lower()):
                found.setdefault(name, role)
    return found


# -- the template ------------------------------------------------------------------

def _mailbox_sheet_title(index: int, address: str, taken: set[str]) -> str:
    title = address if len(address) <= 31 and not any(c in address for c in "[]:*?/\\") else \
        _("Mailbox %(number)s", number=index)
    while title.lower() in taken:
        number = f"{index}-{len(taken)}"
        title = _("Mailbox %(number)s", number=number)
    taken.add(title.lower())
    return title


def _note(cell, text: str, height: int = 110) -> None:
    cell.comment = Comment(text, _("Mail portal"), width=320, height=height)


def _template_mailboxes(account: Account, actor: User | None) -> tuple[list[str], bool]:
    """The addresses of the mailboxes the template has a sheet for, and whether the account has
    more: at most MAILBOX_SHEETS, shared ones first (those people are given rights on; a personal
    mailbox is its owner's), each kind by address, among those ``actor`` may give access to (a
    review: the template named every mailbox to someone who may only create users). Addresses
    only: no alias, domain or owner is read."""
    from portal.roles.models import Grant

    query = db.select(Mailbox.address).where(Mailbox.account_id == account.id, Mailbox.status != DELETED)
    if actor is not None and not actor.is_superadmin and "mailboxes.manage" not in account_permissions(actor, account):
        # Without the account-wide right, only the mailboxes their own grants give access to.
        granted = db.session.execute(db.select(Grant.mailbox_id).join(Membership).where(
            Membership.account_id == account.id, Membership.user_id == actor.id,
            Grant.mailbox_id.is_not(None)).distinct()).scalars().all()
        query = query.where(Mailbox.id.in_([mailbox_id for mailbox_id, held
                                            in mailbox_permissions_of(actor, account, granted).items()
                                            if "mailbox.access" in held]))
    addresses = db.session.execute(
        query
        .order_by(case((Mailbox.kind == SHARED, 0), else_=1), Mailbox.address)
        .limit(MAILBOX_SHEETS + 1)).scalars().all()
    return addresses[:MAILBOX_SHEETS], len(addresses) > MAILBOX_SHEETS


def template(account: Account, actor: User | None = None) -> bytes:
    """A workbook for this account: its roles, permissions and mailboxes (those ``actor`` may give
    access to; every one without), with drop-down lists, written in the current language."""
    book = Workbook()
    bold = Font(bold=True)
    names = {key: sheet_name(key) for key in (ROLES, PERMISSIONS, USERS, ACCOUNT)}
    roles_sheet = book.active
    roles_sheet.title = names[ROLES]
    roles_sheet.append((_("Role"), _("Scope"), _("Description")))
    account_roles = roles_for(account, catalogue.ACCOUNT, permissions=False)
    mailbox_roles = roles_for(account, catalogue.MAILBOX, permissions=False)
    for role in account_roles + mailbox_roles:
        name, description = _role_texts(role)
        roles_sheet.append(cells(roles_sheet, (name, label(role.scope, "scope"), description)))
    permissions_sheet = book.create_sheet(names[PERMISSIONS])
    permissions_sheet.append((_("Permission"), _("Scope"), _("Label"), _("Group")))
    for permission in catalogue.PERMISSIONS:
        permissions_sheet.append(cells(permissions_sheet, (
            permission.code, label(permission.scope, "scope"), str(permission.label),
            label(permission.group, "permission.group"))))
    users = book.create_sheet(names[USERS])
    users.append([str(header) for header in USERS_HEADER])
    yes, no = _yes_no()
    _note(users["D1"], _("%(yes)s: a personal mailbox is created at the user's address. %(no)s or empty: none is.",
                         yes=yes, no=no))
    _note(users["E1"], _("Optional, outside the user's domain: where the link to choose a password is e-mailed. "
                         "Without it, the link goes to their new personal mailbox once it works."))
    yes_no = DataValidation(type="list", formula1=f'"{yes},{no}"', allow_blank=True)
    users.add_data_validation(yes_no)
    yes_no.add("D2:D50001")
    addresses, more = _template_mailboxes(account, actor)
    instructions = [_("One user a row. Their rights on the account go on the %(account)s sheet, their rights on a "
                      "mailbox on that mailbox's sheet (the sheet with its address in B1).", account=names[ACCOUNT])]
    if more:
        instructions.append(_("This template has a sheet for the first %(count)s mailboxes only, shared mailboxes "
                              "first, by address.", count=MAILBOX_SHEETS))
    if addresses:
        instructions.append(_("For any other mailbox, copy a mailbox sheet (right-click its tab, Move or Copy, "
                              "Create a copy), put the mailbox's address in B1 and replace the rows below the "
                              "header with your own."))
    _note(users["A1"], " ".join(instructions), height=230)
    account_sheet = book.create_sheet(names[ACCOUNT])
    account_sheet.append([str(header) for header in GRANT_HEADER])
    _note(account_sheet["A1"], _("One role or one permission of the account a row; repeat the address for more. "
                                 "Every address must be on the %(users)s sheet.", users=names[USERS]))
    _grant_lists(account_sheet, len(account_roles), "account", names)
    taken = {name.lower() for name in names.values()}
    marker = _mailbox_marker()
    address_note = _("The address of the mailbox this sheet gives rights on. For another mailbox, copy this "
                     "sheet and put that mailbox's address here.")
    rows_note = _("One role or one permission on the mailbox named in B1 a row; repeat the address "
                  "for more. Every address must be on the %(users)s sheet.", users=names[USERS])
    for index, address in enumerate(addresses, start=1):
        sheet = book.create_sheet(_mailbox_sheet_title(index, address, taken))
        sheet.append(cells(sheet, (marker, address)))
        sheet.append(())
        sheet.append([str(header) for header in GRANT_HEADER])
        _note(sheet["B1"], address_note)
        _note(sheet["A3"], rows_note)
        _grant_lists(sheet, len(mailbox_roles), "mailbox", names, first_account_role=len(account_roles),
                     header_row=3)
    for sheet in book.worksheets:
        for cell in sheet[1 if sheet.title in names.values() else 3]:
            cell.font = bold
        sheet.column_dimensions["A"].width = 32
        sheet.column_dimensions["B"].width = 28
        sheet.column_dimensions["C"].width = 28
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()


def _grant_lists(sheet, role_count: int, scope: str, names: dict[str, str], first_account_role: int = 0,
                 header_row: int = 1) -> None:
    """Drop-down lists pointing at the Roles and Permissions sheets' rows of this scope."""
    roles_sheet, permissions_sheet = (names[key].replace("'", "''") for key in (ROLES, PERMISSIONS))
    if role_count:
        start = 2 + first_account_role
        roles = DataValidation(type="list", formula1=f"='{roles_sheet}'!$A${start}:$A${start + role_count - 1}",
                               allow_blank=True)
        sheet.add_data_validation(roles)
        roles.add(f"B{header_row + 1}:B50001")
    codes = [p for p in catalogue.PERMISSIONS]
    first = next(i for i, p in enumerate(codes) if p.scope == scope) + 2
    last = max(i for i, p in enumerate(codes) if p.scope == scope) + 2
    permissions = DataValidation(type="list", formula1=f"='{permissions_sheet}'!$A${first}:$A${last}",
                                 allow_blank=True)
    sheet.add_data_validation(permissions)
    permissions.add(f"C{header_row + 1}:C50001")


# -- reading -----------------------------------------------------------------------

@dataclass
class Sheet:
    title: str
    rows: list[tuple[int, tuple]]  # (row number, cell values)
    mailbox: str = ""


def check_container(data: bytes) -> None:
    """What can be checked without expanding anything (the web request does only this):
    the size, that it is a zip holding a workbook and nothing else, and what its entries
    declare. Python's zipfile never expands an entry past its declared size, so these
    declarations bound everything read later."""
    limit = current_app.config["PORTAL"]["IMPORT_MAX_MB"] * 1024 * 1024
    if len(data) > limit:
        raise WorkbookRefused(later("The file is larger than %(size)s MB.", size=limit // (1024 * 1024)))
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise WorkbookRefused(later("This is not an .xlsx workbook (it is not a zip archive). Save it as Excel "
                                    "Workbook (.xlsx) and upload it again.")) from None
    if len(entries) > MAX_ENTRIES:
        raise WorkbookRefused(later("The workbook has %(parts)s parts; a users workbook has far fewer "
                                    "(at most %(limit)s). Start from the template.", parts=len(entries),
                                    limit=MAX_ENTRIES))
    names = {entry.filename for entry in entries}
    if "xl/workbook.xml" not in names:
        raise WorkbookRefused(later("This is not an .xlsx workbook (it has no workbook part)."))
    if any(name.startswith("xl/vbaProject") for name in names):
        raise WorkbookRefused(later("Workbooks with macros (.xlsm) are not accepted; save as .xlsx."))
    total = 0
    for entry in entries:
        name = entry.filename.lower()
        if name.endswith(_ARCHIVE_SUFFIXES) or name.startswith(("xl/embeddings/", "xl/activex")):
            raise WorkbookRefused(later("The workbook holds another file or archive inside it; a users workbook "
                                        "holds only sheets. Copy the rows into the template."))
        if entry.flag_bits & 0x1:
            raise WorkbookRefused(later("The workbook is encrypted; save it without a password."))
        if entry.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # Spreadsheet programs store or deflate; anything else (AES, bzip2, an unknown number)
            # is refused here rather than met by the reader.
            raise WorkbookRefused(later("The part %(part)s of the workbook is compressed in a way .xlsx workbooks "
                                        "are not. Open the workbook in a spreadsheet program and save it again as "
                                        ".xlsx.", part=entry.filename))
        total += entry.file_size
        if entry.file_size > MAX_ENTRY or (entry.file_size > RATIO_FROM
                                           and entry.file_size > MAX_RATIO * max(entry.compress_size, 1)):
            raise WorkbookRefused(later("The workbook expands to far more than its size (a zip bomb?); refused."))
    if total > MAX_UNCOMPRESSED:
        raise WorkbookRefused(later("The workbook expands to more than %(size)s MB; refused.",
                                    size=MAX_UNCOMPRESSED // (1024 * 1024)))


class _XmlTooDeep(Exception):
    pass


def _scan_xml(stream, name: str) -> None:
    """Stream one XML part through expat, in constant memory: no DTD or entity (the billion
    laughs), nothing nested deeper than any real workbook nests, nothing that is not XML."""
    parser = expat.ParserCreate()
    depth = 0

    def start(_tag, _attributes):
        nonlocal depth
        depth += 1
        if depth > MAX_XML_DEPTH:
            raise _XmlTooDeep(name)

    def end(_tag):
        nonlocal depth
        depth -= 1

    def refuse_doctype(*_args):
        raise _XmlTooDeep(name)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    while chunk := stream.read(256 * 1024):
        parser.Parse(chunk, False)
    parser.Parse(b"", True)


def deep_scan(data: bytes) -> None:
    """Read every part once, as openpyxl would, but streaming and bounded: run in the worker
    before the workbook is opened, so a bomb is refused after a few seconds of reading."""
    check_container(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    for entry in archive.infolist():
        if not entry.filename.lower().endswith((".xml", ".rels")):
            continue
        try:
            with archive.open(entry) as stream:
                _scan_xml(stream, entry.filename)
        except _XmlTooDeep:
            raise WorkbookRefused(later("The part %(part)s of the workbook is built to exhaust the reader "
                                        "(nesting, entities or a DTD); refused.", part=entry.filename)) from None
        except expat.ExpatError as error:
            raise WorkbookRefused(later("The part %(part)s of the workbook is not valid XML (%(error)s, line "
                                        "%(line)s). Open the workbook in a spreadsheet program and save it again "
                                        "as .xlsx.",
                                        part=entry.filename, error=expat.ErrorString(error.code),
                                        line=error.lineno)) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
            raise WorkbookRefused(later("The part %(part)s of the workbook is damaged. Open the workbook in "
                                        "a spreadsheet program and save it again as .xlsx.",
                                        part=entry.filename)) from None


REFERENCE_ROWS = 1000  # the Roles and Permissions sheets hold at least this many rows


def read(data: bytes) -> dict[str, Sheet]:
    """The workbook's sheets by title; the reference's sheets by their English names too,
    whatever language their titles are in."""
    deep_scan(data)
    max_rows = current_app.config["PORTAL"]["IMPORT_MAX_ROWS"]
    # In all: the Users sheet, the Account sheet and the mailbox sheets each hold about a row per
    # person (a workbook of 245 sheets of max_rows each took 56 s and 940 MB to preview).
    max_total = 3 * max_rows + 1000
    # Rows read, empty ones too: the reader yields one for each number skipped before a row far
    # down (a 5 KB workbook with one row numbered 2,000,000,000 kept a worker busy for minutes
    # per sheet). Ample room for rows left empty between the filled ones.
    max_read = 4 * max_total + 10_000
    total = read_rows = 0
    sheets: dict[str, Sheet] = {}
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        try:
            for worksheet in book.worksheets:
                rows = []
                # The template's own reference sheets list the account's roles and the permissions,
                # however few people the portal lets one workbook create.
                reference = any(find_sheet([worksheet.title], key) for key in (ROLES, PERMISSIONS))
                limit = max(max_rows, REFERENCE_ROWS) if reference else max_rows
                for number, values in enumerate(worksheet.iter_rows(values_only=True, max_col=5), start=1):
                    read_rows += 1
                    if read_rows > max_read:
                        raise WorkbookRefused(later("The sheet “%(sheet)s” goes on beyond row %(row)s, mostly "
                                                    "empty; copy the filled rows into the template.",
                                                    sheet=worksheet.title, row=number - 1))
                    if any(value not in (None, "") for value in values):
                        rows.append((number, values))
                    if len(rows) > limit + 3:
                        raise WorkbookRefused(later("The sheet “%(sheet)s” has more than %(limit)s rows; "
                                                    "split the workbook.", sheet=worksheet.title, limit=limit))
                    if total + len(rows) > max_total:
                        raise WorkbookRefused(later("The workbook has more than %(limit)s filled rows in all its "
                                                    "sheets; split it.", limit=max_total))
                total += len(rows)
                sheets[worksheet.title] = Sheet(worksheet.title, rows)
        finally:
            book.close()
    except WorkbookRefused:
        raise
    except Exception as error:  # openpyxl raises many kinds on a damaged file
        raise WorkbookRefused(later("The workbook cannot be read (%(error)s). "
                                    "Open it in a spreadsheet program and save it again as .xlsx.",
                                    error=error.__class__.__name__)) from None
    titles = list(sheets)
    for key in (ROLES, PERMISSIONS, USERS, ACCOUNT):
        found = find_sheet(titles, key)
        if found is not None:
            sheets[key] = sheets[found]
        elif key in (USERS, ACCOUNT):
            raise WorkbookRefused(later("The workbook has no “%(sheet)s” sheet. Start from the template.",
                                        sheet=_SHEET_NAMES[key]))  # in each reader's language
    return sheets


# -- validating --------------------------------------------------------------------

# What the preview can find wrong with a cell, by code: a problem keeps its code and values
# and is put into words when shown, in the reader's language.
PROBLEMS = {
    "formula": _l("Formulas, and values starting with = + - or @, are not accepted: type the value itself."),
    "control_characters": _l("The value holds invisible control characters; type it again."),
    "too_long": _l("Longer than %(limit)s characters."),
    "address_missing": _l("The e-mail address is missing."),
    "address_invalid": _l("“%(value)s” is not a valid address. %(reason)s"),
    "recovery_on_domain": _l("The recovery address must be outside the user's domain, so the link reaches them "
                             "before their mailbox works."),
    "recovery_read_here": _l("%(email)s is received by a mailbox of this account, whose readers would get this "
                             "person's links: give an address only they read, or leave it empty (the link then "
                             "goes to their personal mailbox)."),
    "unknown_mailbox": _l("“%(address)s” is not a mailbox of this account."),
    "mailbox_limit": _l("%(domain)s allows at most %(limit)s mailboxes: no personal mailbox can be made for this "
                        "user."),
    "first_name_missing": _l("The first name is missing."),
    "last_name_missing": _l("The last name is missing."),
    "names_too_long": _l("The first and last names together are at most %(limit)s characters."),
    "not_yes_no": _l("“%(value)s” is not Y, N or empty."),
    "listed_twice": _l("%(email)s is listed twice (first on row %(first)s)."),
    "not_a_domain": _l("%(email)s is not on an active domain of this account (not one of this account's domains)."),
    "domain_not_active": _l("%(email)s is not on an active domain of this account (%(status)s)."),
    "no_personal_mailbox": _l("No personal mailbox can have this address: %(reason)s"),
    "not_on_users_sheet": _l("%(email)s is not on the %(sheet)s sheet."),
    "unknown_account_role": _l("There is no account role named “%(role)s” (see the %(sheet)s sheet)."),
    "unknown_mailbox_role": _l("There is no mailbox role named “%(role)s” (see the %(sheet)s sheet)."),
    "role_not_held": _l("You cannot grant “%(role)s”: it holds permissions you do not hold."),
    "owner_role_not_yours": _l("You cannot grant “%(role)s”: only an owner of the account gives it."),
    "not_account_permission": _l("“%(code)s” is not an account permission (see the %(sheet)s sheet)."),
    "not_mailbox_permission": _l("“%(code)s” is not a mailbox permission (see the %(sheet)s sheet)."),
    "permission_not_held": _l("You cannot grant “%(code)s”: you do not hold it."),
    "no_grant": _l("Give a role or a permission on this row."),
}

# Why a row of the Users sheet is skipped, by code (written into the result workbook).
SKIPS = {
    "row_problems": _l("this row has problems"),
    "unknown_mailbox_sheet": _l("the sheet “%(sheet)s” names an unknown mailbox"),
    "other_account": _l("already a corporate user of another account"),
    "mailbox_limit": _l("the domain's mailbox limit is reached"),
    "not_on_active_domain": _l("not on an active domain"),
    "no_personal_mailbox": _l("no personal mailbox can have this address"),
    "wrong_row": _l("a wrong row on the “%(sheet)s” sheet"),
    "outranked": _l("they hold rights you do not hold: only someone who holds them all may rename them"),
    "invitation_waits": _l("an invitation is waiting for this address: the person answers it with a profile "
                           "of their own (withdraw it first to create them here)"),
    "alias": _l("this address is a mailbox, or an alias of one, whose readers would get this person's mail: "
                "choose another address, or remove the mailbox or the alias first"),
    "rights_changed": _l("it hands on rights that whoever uploaded the workbook no longer holds: nothing was done "
                         "for this person"),
}


def _worded(texts: dict, code: str, values: dict) -> str | None:
    text = texts.get(code)
    if text is None:
        return None
    values = dict(values)
    if "status" in values:  # a domain's status, worded in the reader's language too
        values["status"] = label(values["status"], "domain.status").lower().replace("_", " ")
    if "role" in values:  # a system role's stored (English) name, in the reader's language
        values["role"] = label(values["role"], "role")
    if code == "address_invalid":  # the address check's (English) explanation, in the reader's language
        values["reason"] = address_problem(values.get("reason", ""))
    return str(text) % values if values else str(text)


def problem_message(problem: dict) -> str:
    """A stored problem of the preview in the current language (as written when it was found,
    for a problem stored before problems had codes)."""
    worded = _worded(PROBLEMS, problem.get("code", ""), problem.get("values") or {})
    return worded if worded is not None else problem.get("message", "")


def skip_message(planned: dict) -> str:
    """Why a planned row is skipped, in the current language."""
    worded = _worded(SKIPS, planned.get("skip", ""), planned.get("skip_values") or {})
    return worded if worded is not None else planned.get("skip", "")


@dataclass
class Problem:
    sheet: str
    row: int
    column: str
    code: str
    values: dict = field(default_factory=dict)

    @property
    def message(self) -> str:
        return _worded(PROBLEMS, self.code, self.values)

    def as_dict(self) -> dict:
        return {"sheet": self.sheet, "row": self.row, "column": self.column, "code": self.code,
                "values": self.values, "message": self.message}


@dataclass
class PlannedUser:
    row: int
    first_name: str
    last_name: str
    email: str
    personal_mailbox: bool
    recovery_email: str | None = None
    action: str = "create"           # create | update
    roles: list[int] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)
    mailbox_grants: list[list] = field(default_factory=list)  # [mailbox_id, role_id | None, permission | None]
    skip: str = ""                   # why the row is skipped: a code of SKIPS
    skip_values: dict = field(default_factory=dict)

    def skip_for(self, code: str, **values) -> None:
        """Skip the row for this reason, unless it is skipped already."""
        if not self.skip:
            self.skip, self.skip_values = code, values


@dataclass
class Plan:
    users: list[PlannedUser]
    problems: list[Problem]
    fatal: str = ""
    # Rows of the Users sheet that name nobody the import can use (no valid address, a repeat).
    unreadable: int = 0
    # Problems found beyond the first SHOWN_PROBLEMS, counted only.
    more_problems: int = 0

    @property
    def problem_count(self) -> int:
        return len(self.problems) + self.more_problems

    @property
    def rows(self) -> int:
        return len(self.users) + self.unreadable

    @property
    def counts(self) -> dict[str, int]:
        """What happens to each row of the Users sheet: the three add up to ``rows``."""
        create = sum(1 for u in self.users if not u.skip and u.action == "create")
        update = sum(1 for u in self.users if not u.skip and u.action == "update")
        return {"create": create, "update": update, "skip": sum(1 for u in self.users if u.skip) + self.unreadable}

    def as_dict(self) -> dict:
        return {"users": [vars(user) for user in self.users]}


def _text(value) -> str:
    """A cell's value as the portal stores it: text, without the white space around it."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _cell(values: tuple, index: int):
    return values[index] if index < len(values) else None


# Control characters, lone surrogates and non-characters: what no one types in a cell (one regular
# expression, not a test per character: a workbook of 50,000 people has half a million cells).
_INVISIBLE = re.compile(r"[\x00-\x1f\ud800-\udfff\ufffe\uffff]")


class _Validator:
    def __init__(self, actor: User, account: Account, sheets: dict[str, Sheet], *,
                 limit: frozenset[str] | None = None, mailbox_limit: frozenset[str] | None = None):
        self.actor, self.account = actor, account
        # What the upload may hand on: the actor's rights, within the API token's reach when it came
        # through one (``limit``, ``mailbox_limit``: None when nothing limits it).
        self.limit, self.mailbox_limit = limit, mailbox_limit
        self.problems: list[Problem] = []
        self.more_problems = 0
        held = account_permissions(actor, account)
        self.held = held if limit is None else held & limit
        self.owner = is_owner(actor, account.id)  # only an owner makes one
        self.domains = {d.name: d for d in db.session.execute(
            db.select(Domain).where(Domain.account_id == account.id)).scalars()}
        self.account_roles = _roles_by_name(roles_for(account, catalogue.ACCOUNT))
        self.mailbox_roles = _roles_by_name(roles_for(account, catalogue.MAILBOX))
        self.mailboxes = {m.address: m for m in db.session.execute(db.select(Mailbox).where(
            Mailbox.account_id == account.id, Mailbox.status != DELETED)).scalars()}
        self._mailbox_held: dict[int, frozenset[str]] = {}
        # The same addresses appear on several sheets: check each text once.
        self._addresses: dict[str, tuple[str | None, dict]] = {}
        # Problems name the sheets as this workbook does (a sheet it lacks, as the reader's template would).
        self.titles = {key: sheets[key].title if key in sheets else sheet_name(key)
                       for key in (ROLES, PERMISSIONS, USERS, ACCOUNT)}
        spellings = _in_every_language(_yes_no)
        self.yes = {"Y"} | {yes for yes, _no in spellings}
        self.no = {"N"} | {no for _yes, no in spellings}

    def problem(self, sheet: str, row: int, column: str, code: str, /, **values) -> None:
        # The preview shows the first SHOWN_PROBLEMS; the rest are counted, not kept (a workbook
        # built to have millions of problems made as many objects).
        if len(self.problems) < SHOWN_PROBLEMS:
            self.problems.append(Problem(sheet, row, column, code, values))
        else:
            self.more_problems += 1

    def value(self, sheet: str, row: int, column: str, raw, limit: int = MAX_CELL) -> str | None:
        """The cell's text as it will be stored, once it passes the checks (checked as stored)."""
        text = _text(raw)
        if looks_like_formula(text):
            self.problem(sheet, row, column, "formula")
            return None
        if _INVISIBLE.search(text):
            self.problem(sheet, row, column, "control_characters")
            return None
        if len(text) > limit:
            self.problem(sheet, row, column, "too_long", limit=limit)
            return None
        return text

    def address(self, sheet: str, row: int, column: str, raw) -> str | None:
        text = self.value(sheet, row, column, raw)
        if text is None:
            return None
        if not text:
            self.problem(sheet, row, column, "address_missing")
            return None
        if text not in self._addresses:
            try:
                self._addresses[text] = (checked_address(text), {})
            except EmailNotValidError as error:
                self._addresses[text] = (None, {"value": text, "reason": str(error)})
        address, values = self._addresses[text]
        if address is None:
            self.problem(sheet, row, column, "address_invalid", **values)
        return address

    def recovery(self, sheet: str, row: int, column: str, raw, email: str | None) -> str | None:
        """The optional recovery address ("" when none); None when the cell is wrong (a problem is noted)."""
        text = self.value(sheet, row, column, raw)
        if not text:
            return text
        address = self.address(sheet, row, column, text)
        if address is None:
            return None
        if email and address.rsplit("@", 1)[1] == email.rsplit("@", 1)[1]:
            self.problem(sheet, row, column, "recovery_on_domain")
            return None
        return address

    def mailbox_address_problem(self, domain: Domain, address: str) -> str | None:
        """What the mailbox rules (the portal's and the backend's) say against a personal mailbox here."""
        try:
            local_part = ownership.validate_local_part(address.split("@", 1)[0])
        except ownership.NameRefused as refusal:
            return str(refusal)
        return ownership.backend_problem(domain, local_part)

    def mailbox_held(self, mailbox_id: int) -> frozenset[str]:
        if mailbox_id not in self._mailbox_held:
            held = mailbox_permissions(self.actor, self.account, mailbox_id)
            self._mailbox_held[mailbox_id] = held if self.mailbox_limit is None else held & self.mailbox_limit
        return self._mailbox_held[mailbox_id]


def plan(actor: User, account: Account, sheets: dict[str, Sheet], *, limit: frozenset[str] | None = None,
         mailbox_limit: frozenset[str] | None = None) -> Plan:
    """Check every row against the account and what ``actor`` may hand on (within ``limit`` and
    ``mailbox_limit`` when the upload came through an API token)."""
    check = _Validator(actor, account, sheets, limit=limit, mailbox_limit=mailbox_limit)
    users_sheet = sheets[USERS]
    users, unreadable = _plan_users(check, users_sheet)
    by_email = {user.email: user for user in users}
    _plan_grants(check, sheets[ACCOUNT], by_email, None)
    reference = {id(sheets[key]) for key in (ROLES, PERMISSIONS, USERS, ACCOUNT) if key in sheets}
    markers = {MAILBOX_MARKER.casefold()} | _in_every_language(lambda: _mailbox_marker().casefold())
    seen_sheets: set[int] = set()
    for sheet in sheets.values():
        if id(sheet) in reference or id(sheet) in seen_sheets or not sheet.rows:
            continue
        seen_sheets.add(id(sheet))
        number, values = sheet.rows[0]
        if _text(_cell(values, 0)).casefold() not in markers:
            continue
        address = _text(_cell(values, 1)).lower()
        mailbox = check.mailboxes.get(address)
        if mailbox is None:
            check.problem(sheet.title, number, "B", "unknown_mailbox", address=address)
            for user in _referenced(sheet, by_email):
                user.skip_for("unknown_mailbox_sheet", sheet=sheet.title)
            continue
        _plan_grants(check, Sheet(sheet.title, sheet.rows[1:]), by_email, mailbox)
    existing = _existing_users([user.email for user in users])
    waiting, aliased = held_elsewhere([user.email for user in users if user.email not in existing], account.id)
    _refuse_recoveries_read_here(check, users_sheet.title, users)
    for user in users:
        known = existing.get(user.email)
        if known is not None:
            if known.is_corporate and known.corporate_account_id not in (None, account.id):
                user.skip_for("other_account")
            elif f"{user.first_name} {user.last_name}" != known.name and not outranks(actor, account, known,
                                                                                      elsewhere=False):
                # Renaming someone is for whoever holds every right they hold here (as on their page).
                user.skip_for("outranked")
            else:
                user.action = "update"
        elif user.email in waiting:
            # This account invited them: they answer it with a profile of their own.
            user.skip_for("invitation_waits")
        elif user.email in aliased:
            # Its mail (a password reset among it) would reach the aliased mailbox, not this person.
            user.skip_for("alias")
    _check_mailbox_limits(check, users)
    fatal = ""
    outside = [u for u in users if u.skip == "not_on_active_domain"]
    if outside:
        fatal = later_plural("%(num)d user is not on an active domain of this account (first: %(email)s, row %(row)s). "
                             "Every user must be: the import cannot run until they are removed or their domain is "
                             "enabled.",
                             "%(num)d users are not on an active domain of this account (first: %(email)s, row "
                             "%(row)s). Every user must be: the import cannot run until they are removed or their "
                             "domain is enabled.", len(outside), email=outside[0].email, row=outside[0].row)
    if not users and not fatal:
        fatal = later("The %(sheet)s sheet lists nobody.", sheet=users_sheet.title)
    return Plan(users, check.problems, fatal, unreadable, check.more_problems)


def _check_mailbox_limits(check: _Validator, users: list[PlannedUser]) -> None:
    """Personal mailboxes count against their domain's mailbox limit, as one by one."""
    from sqlalchemy import func

    have = dict(db.session.execute(db.select(Mailbox.domain_id, func.count()).where(
        Mailbox.account_id == check.account.id, Mailbox.status != DELETED).group_by(Mailbox.domain_id)).all())
    existing = {m.address for m in check.mailboxes.values()}
    for user in users:
        if user.skip or not user.personal_mailbox or user.email in existing:
            continue
        domain = check.domains[user.email.rsplit("@", 1)[1]]
        limit = (domain.settings or {}).get("max_users")
        if limit is not None and have.get(domain.id, 0) >= limit:
            check.problem(check.titles[USERS], user.row, "D", "mailbox_limit", domain=domain.name, limit=limit)
            user.skip_for("mailbox_limit")
            continue
        have[domain.id] = have.get(domain.id, 0) + 1


def _plan_users(check: _Validator, sheet: Sheet) -> tuple[list[PlannedUser], int]:
    """The users the sheet names, and how many of its rows name nobody usable."""
    rows = sheet.rows
    title = sheet.title
    if rows and tuple(_text(v).casefold() for v in rows[0][1][:3]) in _header_starts()["users"]:
        rows = rows[1:]
    seen: dict[str, int] = {}
    users = []
    for number, values in rows:
        first = check.value(title, number, "A", _cell(values, 0), MAX_NAME)
        last = check.value(title, number, "B", _cell(values, 1), MAX_NAME)
        email = check.address(title, number, "C", _cell(values, 2))
        personal_raw = check.value(title, number, "D", _cell(values, 3))
        recovery = check.recovery(title, number, "E", _cell(values, 4), email)
        problems = []
        if first == "":
            problems.append(("A", "first_name_missing", {}))
        if last == "":
            problems.append(("B", "last_name_missing", {}))
        if isinstance(first, str) and isinstance(last, str) and len(first) + len(last) > NAMES_TOGETHER:
            problems.append(("B", "names_too_long", {"limit": NAMES_TOGETHER}))
        personal = (personal_raw or "").upper()
        if personal not in check.yes | check.no | {""}:
            problems.append(("D", "not_yes_no", {"value": personal_raw}))
        for column, code, details in problems:
            check.problem(title, number, column, code, **details)
        if email is None:
            continue
        user = PlannedUser(number, first or "", last or "", email, personal in check.yes, recovery or None)
        if first is None or last is None or personal_raw is None or recovery is None or problems:
            user.skip = "row_problems"
        if email in seen:
            check.problem(title, number, "C", "listed_twice", email=email, first=seen[email])
            continue
        seen[email] = number
        domain = check.domains.get(email.rsplit("@", 1)[1])
        if domain is None:
            check.problem(title, number, "C", "not_a_domain", email=email)
            user.skip, user.skip_values = "not_on_active_domain", {}
        elif domain.status != ENABLED:
            check.problem(title, number, "C", "domain_not_active", email=email, status=domain.status)
            user.skip, user.skip_values = "not_on_active_domain", {}
        elif user.personal_mailbox:
            problem = check.mailbox_address_problem(domain, email)
            if problem:
                check.problem(title, number, "D", "no_personal_mailbox", reason=problem)
                user.skip_for("no_personal_mailbox")
        users.append(user)
    return users, len(rows) - len(users)


def _referenced(sheet: Sheet, by_email: dict[str, PlannedUser]) -> list[PlannedUser]:
    found = []
    for _number, values in sheet.rows[1:]:
        user = by_email.get(_text(_cell(values, 0)).lower())
        if user is not None:
            found.append(user)
    return found


def _plan_grants(check: _Validator, sheet: Sheet, by_email: dict[str, PlannedUser], mailbox: Mailbox | None) -> None:
    rows = sheet.rows
    if rows and _text(_cell(rows[0][1], 0)).casefold() in {"e-mail"} | _header_starts()["grants"]:
        rows = rows[1:]
    roles = check.mailbox_roles if mailbox else check.account_roles
    codes = catalogue.codes(catalogue.MAILBOX if mailbox else catalogue.ACCOUNT)
    held = check.mailbox_held(mailbox.id) if mailbox else check.held
    for number, values in rows:
        email = check.address(sheet.title, number, "A", _cell(values, 0))
        role_name = check.value(sheet.title, number, "B", _cell(values, 1), 80)
        code = check.value(sheet.title, number, "C", _cell(values, 2), 64)
        user = by_email.get(email) if email else None
        if email is not None and user is None:
            check.problem(sheet.title, number, "A", "not_on_users_sheet", email=email, sheet=check.titles[USERS])
            continue
        wrong = email is None or role_name is None or code is None
        role = None
        if role_name:
            role = roles.get(role_name.lower())
            if role is None:
                check.problem(sheet.title, number, "B", "unknown_mailbox_role" if mailbox else "unknown_account_role",
                              role=role_name, sheet=check.titles[ROLES])
                wrong = True
            elif not (role.permissions <= held) or (mailbox and "mailbox.access" not in held):
                check.problem(sheet.title, number, "B", "role_not_held", role=role.name)
                wrong = True
            elif role.system_key == catalogue.OWNER and not check.owner:
                check.problem(sheet.title, number, "B", "owner_role_not_yours", role=role.name)
                wrong = True
        if code:
            if code not in codes:
                check.problem(sheet.title, number, "C",
                              "not_mailbox_permission" if mailbox else "not_account_permission", code=code,
                              sheet=check.titles[PERMISSIONS])
                wrong = True
            elif code not in held or (mailbox and "mailbox.access" not in held):
                check.problem(sheet.title, number, "C", "permission_not_held", code=code)
                wrong = True
        if not role_name and not code and email is not None:
            check.problem(sheet.title, number, "B", "no_grant")
            wrong = True
        if user is None:
            continue
        if wrong:
            user.skip_for("wrong_row", sheet=sheet.title)
            continue
        if mailbox is None:
            if role is not None and role.id not in user.roles:
                user.roles.append(role.id)
            if code and code not in user.permissions:
                user.permissions.append(code)
        else:
            if role is not None:
                user.mailbox_grants.append([mailbox.id, role.id, None])
            if code:
                user.mailbox_grants.append([mailbox.id, None, code])


def _refuse_recoveries_read_here(check: _Validator, title: str, users: list[PlannedUser]) -> None:
    """A recovery address one of the account's mailboxes receives by name is a problem of its row, as
    on the user's form (``users.services._refuse_recovery_read_here``): its readers would get the
    person's links. One look-up for the whole sheet."""
    from portal.mailboxes.services import received_by_name

    recoveries = sorted({user.recovery_email for user in users if user.recovery_email})
    read_here = received_by_name(check.account.id, recoveries) if recoveries else set()
    for user in users:
        if user.recovery_email in read_here:
            check.problem(title, user.row, "E", "recovery_read_here", email=user.recovery_email)
            user.skip_for("row_problems")


def held_elsewhere(emails: list[str], account_id: int) -> tuple[set[str], set[str]]:
    """Of ``emails`` (addresses nobody has a profile at), those a pending invitation of this account
    waits for (another account's is theirs to answer, with its own link: see
    ``users.services.create_corporate_user``), and those a mailbox or a mailbox alias holds (its
    readers would get the person's mail, a password reset among it)."""
    from portal.invitations.models import PENDING, Invitation
    from portal.mailboxes.services import received_by_name

    waiting: set[str] = set()
    now = utcnow()
    for start in range(0, len(emails), 500):
        chunk = emails[start:start + 500]
        waiting.update(db.session.execute(db.select(Invitation.email).where(
            Invitation.account_id == account_id, Invitation.email.in_(chunk), Invitation.status == PENDING,
            Invitation.expires_at > now)).scalars())
    # Only this account's mailboxes and aliases (another's are that account's to know); a person's
    # own personal mailbox (made by an earlier attempt of the same run) is theirs.
    aliased = received_by_name(account_id, emails)
    return waiting, aliased


def _existing_users(emails: list[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for start in range(0, len(emails), 500):
        chunk = emails[start:start + 500]
        for user in db.session.execute(db.select(User).where(User.email.in_(chunk))).scalars():
            found[user.email] = user
    return found
