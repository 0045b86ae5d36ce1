"""The mass-creation workbook: the template, reading an upload safely, and the plan.

Sheets (reference 004): Roles, Permissions, Users (first name, last name,
e-mail, personal mailbox Y/N/empty), Account (e-mail, role, permission: one
grant a row) and one Mailbox sheet per mailbox (its address in B1, then
e-mail, role, permission rows). Everything is validated before anything is
written; the preview shows every problem at once.

Rules: a user whose address is not on an active domain of the account fails
the whole import; a user referred to by a wrong row on the Account or a
Mailbox sheet is not created (the others are).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from xml.parsers import expat
from dataclasses import dataclass, field

from email_validator import EmailNotValidError, validate_email
from flask import current_app
from openpyxl import Workbook, load_workbook
from openpyxl.styles import Font
from openpyxl.worksheet.datavalidation import DataValidation

from portal.accounts.models import Account
from portal.auth.models import User
from portal.domains import ownership
from portal.domains.models import ENABLED, Domain
from portal.extensions import db
from portal.mailboxes.models import DELETED, Mailbox
from portal.roles import catalogue
from portal.roles.services import account_permissions, mailbox_permissions, roles_for
from portal.spreadsheets import cells, looks_like_formula

USERS_HEADER = ("First name", "Last name", "E-mail", "Personal mailbox (Y/N)", "Recovery address (optional)")
GRANT_HEADER = ("E-mail", "Role", "Permission")
MAILBOX_MARKER = "Mailbox"
MAX_CELL = 254
MAX_NAME = 100
# Bounds on what an upload may expand to; a 50,000-user workbook needs a fraction of them.
MAX_UNCOMPRESSED = 64 * 1024 * 1024
MAX_ENTRY = 48 * 1024 * 1024
MAX_ENTRIES = 2000
MAX_RATIO = 100
RATIO_FROM = 256 * 1024
MAX_XML_DEPTH = 40
_ARCHIVE_SUFFIXES = (".zip", ".xlsx", ".xlsm", ".docx", ".gz", ".bin", ".jar", ".7z", ".rar")
SHOWN_PROBLEMS = 1000


class WorkbookRefused(ValueError):
    """The upload is refused whole; the message says why."""


# -- the template ------------------------------------------------------------------

def _mailbox_sheet_title(index: int, address: str, taken: set[str]) -> str:
    title = address if len(address) <= 31 and not any(c in address for c in "[]:*?/\\") else f"Mailbox {index}"
    while title.lower() in taken:
        title = f"Mailbox {index}-{len(taken)}"
    taken.add(title.lower())
    return title


def template(account: Account) -> bytes:
    """A workbook for this account: its roles, permissions and mailboxes, with drop-down lists."""
    book = Workbook()
    bold = Font(bold=True)
    roles_sheet = book.active
    roles_sheet.title = "Roles"
    roles_sheet.append(("Role", "Scope", "Description"))
    account_roles = roles_for(account, catalogue.ACCOUNT)
    mailbox_roles = roles_for(account, catalogue.MAILBOX)
    for role in account_roles + mailbox_roles:
        roles_sheet.append(cells(roles_sheet, (role.name, role.scope, role.description)))
    permissions_sheet = book.create_sheet("Permissions")
    permissions_sheet.append(("Permission", "Scope", "Label", "Group"))
    for permission in catalogue.PERMISSIONS:
        permissions_sheet.append((permission.code, permission.scope, permission.label, permission.group))
    users = book.create_sheet("Users")
    users.append(USERS_HEADER)
    yes_no = DataValidation(type="list", formula1='"Y,N"', allow_blank=True)
    users.add_data_validation(yes_no)
    yes_no.add("D2:D50001")
    account_sheet = book.create_sheet("Account")
    account_sheet.append(GRANT_HEADER)
    _grant_lists(account_sheet, len(account_roles), "account")
    taken = {"roles", "permissions", "users", "account"}
    mailboxes = db.session.execute(db.select(Mailbox).where(Mailbox.account_id == account.id,
                                                            Mailbox.status != DELETED)
                                   .order_by(Mailbox.address)).scalars().all()
    for index, mailbox in enumerate(mailboxes, start=1):
        sheet = book.create_sheet(_mailbox_sheet_title(index, mailbox.address, taken))
        sheet.append(cells(sheet, (MAILBOX_MARKER, mailbox.address)))
        sheet.append(())
        sheet.append(GRANT_HEADER)
        _grant_lists(sheet, len(mailbox_roles), "mailbox", first_account_role=len(account_roles), header_row=3)
    for sheet in book.worksheets:
        for cell in sheet[3 if sheet.title not in ("Roles", "Permissions", "Users", "Account") else 1]:
            cell.font = bold
        sheet.column_dimensions["A"].width = 32
        sheet.column_dimensions["B"].width = 28
        sheet.column_dimensions["C"].width = 28
    output = io.BytesIO()
    book.save(output)
    return output.getvalue()


def _grant_lists(sheet, role_count: int, scope: str, first_account_role: int = 0, header_row: int = 1) -> None:
    """Drop-down lists pointing at the Roles and Permissions sheets' rows of this scope."""
    if role_count:
        start = 2 + first_account_role
        roles = DataValidation(type="list", formula1=f"=Roles!$A${start}:$A${start + role_count - 1}",
                               allow_blank=True)
        sheet.add_data_validation(roles)
        roles.add(f"B{header_row + 1}:B50001")
    codes = [p for p in catalogue.PERMISSIONS]
    first = next(i for i, p in enumerate(codes) if p.scope == scope) + 2
    last = max(i for i, p in enumerate(codes) if p.scope == scope) + 2
    permissions = DataValidation(type="list", formula1=f"=Permissions!$A${first}:$A${last}", allow_blank=True)
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
        raise WorkbookRefused(f"The file is larger than {limit // (1024 * 1024)} MB.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise WorkbookRefused("This is not an .xlsx workbook (it is not a zip archive). Save it as Excel "
                              "Workbook (.xlsx) and upload it again.") from None
    if len(entries) > MAX_ENTRIES:
        raise WorkbookRefused(f"The workbook has {len(entries)} parts; a users workbook has far fewer "
                              f"(at most {MAX_ENTRIES}). Start from the template.")
    names = {entry.filename for entry in entries}
    if "xl/workbook.xml" not in names:
        raise WorkbookRefused("This is not an .xlsx workbook (it has no workbook part).")
    if any(name.startswith("xl/vbaProject") for name in names):
        raise WorkbookRefused("Workbooks with macros (.xlsm) are not accepted; save as .xlsx.")
    total = 0
    for entry in entries:
        name = entry.filename.lower()
        if name.endswith(_ARCHIVE_SUFFIXES) or name.startswith(("xl/embeddings/", "xl/activex")):
            raise WorkbookRefused("The workbook holds another file or archive inside it; a users workbook "
                                  "holds only sheets. Copy the rows into the template.")
        if entry.flag_bits & 0x1:
            raise WorkbookRefused("The workbook is encrypted; save it without a password.")
        total += entry.file_size
        if entry.file_size > MAX_ENTRY or (entry.file_size > RATIO_FROM
                                           and entry.file_size > MAX_RATIO * max(entry.compress_size, 1)):
            raise WorkbookRefused("The workbook expands to far more than its size (a zip bomb?); refused.")
    if total > MAX_UNCOMPRESSED:
        raise WorkbookRefused(f"The workbook expands to more than {MAX_UNCOMPRESSED // (1024 * 1024)} MB; refused.")


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
            raise WorkbookRefused(f"The part {entry.filename} of the workbook is built to exhaust the reader "
                                  "(nesting, entities or a DTD); refused.") from None
        except expat.ExpatError as error:
            raise WorkbookRefused(f"The part {entry.filename} of the workbook is not valid XML "
                                  f"({expat.ErrorString(error.code)}, line {error.lineno}). Open the workbook "
                                  "in a spreadsheet program and save it again as .xlsx.") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError):
            raise WorkbookRefused(f"The part {entry.filename} of the workbook is damaged. Open the workbook in "
                                  "a spreadsheet program and save it again as .xlsx.") from None


def read(data: bytes) -> dict[str, Sheet]:
    deep_scan(data)
    max_rows = current_app.config["PORTAL"]["IMPORT_MAX_ROWS"]
    sheets: dict[str, Sheet] = {}
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
        try:
            for worksheet in book.worksheets:
                rows = []
                for number, values in enumerate(worksheet.iter_rows(values_only=True, max_col=5), start=1):
                    if any(value not in (None, "") for value in values):
                        rows.append((number, values))
                    if len(rows) > max_rows + 3:
                        raise WorkbookRefused(f"The sheet “{worksheet.title}” has more than {max_rows} rows; "
                                              "split the workbook.")
                sheets[worksheet.title] = Sheet(worksheet.title, rows)
        finally:
            book.close()
    except WorkbookRefused:
        raise
    except Exception as error:  # openpyxl raises many kinds on a damaged file
        raise WorkbookRefused(f"The workbook cannot be read ({error.__class__.__name__}). "
                              "Open it in a spreadsheet program and save it again as .xlsx.") from None
    for required in ("Users", "Account"):
        if required not in sheets:
            raise WorkbookRefused(f"The workbook has no “{required}” sheet. Start from the template.")
    return sheets


# -- validating --------------------------------------------------------------------

@dataclass
class Problem:
    sheet: str
    row: int
    column: str
    message: str

    def as_dict(self) -> dict:
        return {"sheet": self.sheet, "row": self.row, "column": self.column, "message": self.message}


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
    skip: str = ""


@dataclass
class Plan:
    users: list[PlannedUser]
    problems: list[Problem]
    fatal: str = ""
    # Rows of the Users sheet that name nobody the import can use (no valid address, a repeat).
    unreadable: int = 0

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


class _Validator:
    def __init__(self, actor: User, account: Account):
        self.actor, self.account = actor, account
        self.problems: list[Problem] = []
        self.held = account_permissions(actor, account)
        self.domains = {d.name: d for d in db.session.execute(
            db.select(Domain).where(Domain.account_id == account.id)).scalars()}
        self.account_roles = {r.name.lower(): r for r in roles_for(account, catalogue.ACCOUNT)}
        self.mailbox_roles = {r.name.lower(): r for r in roles_for(account, catalogue.MAILBOX)}
        self.mailboxes = {m.address: m for m in db.session.execute(db.select(Mailbox).where(
            Mailbox.account_id == account.id, Mailbox.status != DELETED)).scalars()}
        self._mailbox_held: dict[int, frozenset[str]] = {}
        # The same addresses appear on several sheets: check each text once.
        self._addresses: dict[str, tuple[str | None, str]] = {}

    def problem(self, sheet: str, row: int, column: str, message: str) -> None:
        self.problems.append(Problem(sheet, row, column, message))

    def value(self, sheet: str, row: int, column: str, raw, limit: int = MAX_CELL) -> str | None:
        """The cell's text as it will be stored, once it passes the checks (checked as stored)."""
        text = _text(raw)
        if looks_like_formula(text):
            self.problem(sheet, row, column, "Formulas, and values starting with = + - or @, are not accepted: "
                                             "type the value itself.")
            return None
        if any(ord(character) < 32 or 0xD800 <= ord(character) <= 0xDFFF or ord(character) in (0xFFFE, 0xFFFF)
               for character in text):
            self.problem(sheet, row, column, "The value holds invisible control characters; type it again.")
            return None
        if len(text) > limit:
            self.problem(sheet, row, column, f"Longer than {limit} characters.")
            return None
        return text

    def address(self, sheet: str, row: int, column: str, raw) -> str | None:
        text = self.value(sheet, row, column, raw)
        if text is None:
            return None
        if not text:
            self.problem(sheet, row, column, "The e-mail address is missing.")
            return None
        if text not in self._addresses:
            try:
                checked = validate_email(text, check_deliverability=False)
            except EmailNotValidError as error:
                self._addresses[text] = (None, f"“{text}” is not a valid address: {error}")
            else:
                self._addresses[text] = (f"{checked.local_part}@{checked.ascii_domain}".lower(), "")
        address, problem = self._addresses[text]
        if address is None:
            self.problem(sheet, row, column, problem)
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
            self.problem(sheet, row, column, "The recovery address must be outside the user's domain, so the "
                                             "link reaches them before their mailbox works.")
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
            self._mailbox_held[mailbox_id] = mailbox_permissions(self.actor, self.account, mailbox_id)
        return self._mailbox_held[mailbox_id]


def plan(actor: User, account: Account, sheets: dict[str, Sheet]) -> Plan:
    check = _Validator(actor, account)
    users, unreadable = _plan_users(check, sheets["Users"])
    by_email = {user.email: user for user in users}
    _plan_grants(check, sheets["Account"], by_email, None)
    for sheet in sheets.values():
        if sheet.title in ("Roles", "Permissions", "Users", "Account") or not sheet.rows:
            continue
        number, values = sheet.rows[0]
        if _text(_cell(values, 0)) != MAILBOX_MARKER:
            continue
        address = _text(_cell(values, 1)).lower()
        mailbox = check.mailboxes.get(address)
        if mailbox is None:
            check.problem(sheet.title, number, "B", f"“{address}” is not a mailbox of this account.")
            for user in _referenced(sheet, by_email):
                user.skip = user.skip or f"the sheet “{sheet.title}” names an unknown mailbox"
            continue
        _plan_grants(check, Sheet(sheet.title, sheet.rows[1:]), by_email, mailbox)
    existing = _existing_users([user.email for user in users])
    for user in users:
        known = existing.get(user.email)
        if known is not None:
            if known.is_corporate and known.corporate_account_id not in (None, account.id):
                user.skip = user.skip or "already a corporate user of another account"
            else:
                user.action = "update"
    _check_mailbox_limits(check, users)
    fatal = ""
    outside = [u for u in users if u.skip.startswith("not on an active domain")]
    if outside:
        fatal = (f"{len(outside)} user{'s are' if len(outside) != 1 else ' is'} not on an active domain of this "
                 f"account (first: {outside[0].email}, row {outside[0].row}). Every user must be: the import cannot "
                 "run until they are removed or their domain is enabled.")
    if not users and not fatal:
        fatal = "The Users sheet lists nobody."
    return Plan(users, check.problems, fatal, unreadable)


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
            check.problem("Users", user.row, "D", f"{domain.name} allows at most {limit} mailboxes: no personal "
                                                  "mailbox can be made for this user.")
            user.skip = "the domain's mailbox limit is reached"
            continue
        have[domain.id] = have.get(domain.id, 0) + 1


def _plan_users(check: _Validator, sheet: Sheet) -> tuple[list[PlannedUser], int]:
    """The users the sheet names, and how many of its rows name nobody usable."""
    rows = sheet.rows
    if rows and tuple(_text(v).lower() for v in rows[0][1][:3]) == tuple(h.lower() for h in USERS_HEADER[:3]):
        rows = rows[1:]
    seen: dict[str, int] = {}
    users = []
    for number, values in rows:
        first = check.value("Users", number, "A", _cell(values, 0), MAX_NAME)
        last = check.value("Users", number, "B", _cell(values, 1), MAX_NAME)
        email = check.address("Users", number, "C", _cell(values, 2))
        personal_raw = check.value("Users", number, "D", _cell(values, 3))
        recovery = check.recovery("Users", number, "E", _cell(values, 4), email)
        problems = []
        if first == "":
            problems.append(("A", "The first name is missing."))
        if last == "":
            problems.append(("B", "The last name is missing."))
        personal = (personal_raw or "").upper()
        if personal not in ("", "Y", "N"):
            problems.append(("D", f"“{personal_raw}” is not Y, N or empty."))
        for column, message in problems:
            check.problem("Users", number, column, message)
        if email is None:
            continue
        user = PlannedUser(number, first or "", last or "", email, personal == "Y", recovery or None)
        if first is None or last is None or personal_raw is None or recovery is None or problems:
            user.skip = "this row has problems"
        if email in seen:
            check.problem("Users", number, "C", f"{email} is listed twice (first on row {seen[email]}).")
            continue
        seen[email] = number
        domain = check.domains.get(email.rsplit("@", 1)[1])
        if domain is None or domain.status != ENABLED:
            state = "not one of this account's domains" if domain is None else f"{domain.status.replace('_', ' ')}"
            check.problem("Users", number, "C", f"{email} is not on an active domain of this account ({state}).")
            user.skip = "not on an active domain"
        elif user.personal_mailbox:
            problem = check.mailbox_address_problem(domain, email)
            if problem:
                check.problem("Users", number, "D", f"No personal mailbox can have this address: {problem}")
                user.skip = user.skip or "no personal mailbox can have this address"
        users.append(user)
    return users, len(rows) - len(users)


def _referenced(sheet: Sheet, by_email: dict[str, PlannedUser]) -> list[PlannedUser]:
    found = []
    for _, values in sheet.rows[1:]:
        user = by_email.get(_text(_cell(values, 0)).lower())
        if user is not None:
            found.append(user)
    return found


def _plan_grants(check: _Validator, sheet: Sheet, by_email: dict[str, PlannedUser], mailbox: Mailbox | None) -> None:
    rows = sheet.rows
    if rows and _text(_cell(rows[0][1], 0)).lower() == "e-mail":
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
            check.problem(sheet.title, number, "A", f"{email} is not on the Users sheet.")
            continue
        wrong = email is None or role_name is None or code is None
        role = None
        if role_name:
            role = roles.get(role_name.lower())
            if role is None:
                check.problem(sheet.title, number, "B", f"There is no {'mailbox' if mailbox else 'account'} role "
                                                        f"named “{role_name}” (see the Roles sheet).")
                wrong = True
            elif not (role.permissions <= held) or (mailbox and "mailbox.access" not in held):
                check.problem(sheet.title, number, "B", f"You cannot grant “{role.name}”: it holds permissions "
                                                        "you do not hold.")
                wrong = True
        if code:
            if code not in codes:
                check.problem(sheet.title, number, "C", f"“{code}” is not a {'mailbox' if mailbox else 'account'} "
                                                        "permission (see the Permissions sheet).")
                wrong = True
            elif code not in held or (mailbox and "mailbox.access" not in held):
                check.problem(sheet.title, number, "C", f"You cannot grant “{code}”: you do not hold it.")
                wrong = True
        if not role_name and not code and email is not None:
            check.problem(sheet.title, number, "B", "Give a role or a permission on this row.")
            wrong = True
        if user is None:
            continue
        if wrong:
            user.skip = user.skip or f"a wrong row on the “{sheet.title}” sheet"
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


def _existing_users(emails: list[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for start in range(0, len(emails), 500):
        chunk = emails[start:start + 500]
        for user in db.session.execute(db.select(User).where(User.email.in_(chunk))).scalars():
            found[user.email] = user
    return found
