"""What the JSON API takes and gives: pydantic models, documented in the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from portal.web.inputs import MAX_ID

# The database keeps times in UTC without a zone; the API says so (RFC 3339, "+00:00").
Timestamp = Annotated[datetime, AfterValidator(lambda value: value if value.tzinfo else value.replace(tzinfo=UTC))]


def identifier(description: str = ""):
    return Field(ge=1, le=MAX_ID, description=description)


def text(default: str = "", length: int = 254, description: str = ""):
    return Field(default, max_length=length, description=description)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- shared ------------------------------------------------------------------------

class PageQuery(Strict):
    page: int = Field(1, ge=1, le=1_000_000)
    per_page: int = Field(50, ge=1, le=200)


class Done(BaseModel):
    message: str


class Id_(BaseModel):
    id: int


# -- accounts ------------------------------------------------------------------------

class AccountOut(BaseModel):
    id: int
    name: str
    self_registration: bool
    personal_mailboxes: bool
    personal_mailbox_role_id: int | None
    created_at: Timestamp


class AccountSettingsIn(Strict):
    name: str | None = Field(None, min_length=1, max_length=120)
    self_registration: bool | None = None
    personal_mailboxes: bool | None = None
    personal_mailbox_role_id: int | None = Field(None, ge=1, le=MAX_ID)


# -- members and access ------------------------------------------------------------------

class RoleRef(BaseModel):
    id: int
    name: str


class MemberOut(BaseModel):
    id: int = Field(description="The membership's id: members are addressed by it.")
    user_id: int
    email: str
    name: str
    corporate: bool
    status: Literal["active", "never_signed_in", "suspended"]
    last_login_at: Timestamp | None
    joined_at: Timestamp
    roles: list[RoleRef]
    permissions: list[str]
    mailboxes_with_access: int


class MemberQuery(PageQuery):
    q: str = text()
    role: int | None = Field(None, ge=1, le=MAX_ID)
    kind: Literal["corporate", "other", ""] = ""
    mailbox: Literal["yes", "no", ""] = ""
    status: Literal["active", "never_signed_in", "suspended", ""] = ""
    sort: Literal["name", "email", "last_login", "joined"] = "email"
    dir: Literal["asc", "desc"] = "asc"


class GrantOut(BaseModel):
    id: int
    role: RoleRef | None
    permission: str | None
    mailbox_id: int | None


class AccessOut(BaseModel):
    member: MemberOut
    grants: list[GrantOut] = Field(description="One page of what the member holds: over the account first, "
                                               "then on mailboxes, each in the order given.")
    total: int = Field(description="How many grants the member has in all.")
    page: int
    per_page: int


class RoleGrantIn(Strict):
    role_id: int = identifier()


class PermissionsIn(Strict):
    permissions: list[str] = Field(max_length=100, description="The member's single permissions, exactly.")


# -- roles ----------------------------------------------------------------------------

class PermissionOut(BaseModel):
    code: str
    label: str
    description: str
    scope: Literal["account", "mailbox"]
    group: str


class RoleOut(BaseModel):
    id: int
    name: str
    scope: Literal["account", "mailbox"]
    description: str
    system: bool
    permissions: list[str]
    holders: int


class RoleIn(Strict):
    name: str = Field(min_length=1, max_length=80)
    scope: Literal["account", "mailbox"]
    description: str = Field("", max_length=500)
    permissions: list[str] = Field(default_factory=list, max_length=100)


class RoleUpdateIn(Strict):
    name: str = Field(min_length=1, max_length=80)
    description: str = Field("", max_length=500)
    permissions: list[str] = Field(default_factory=list, max_length=100)


# -- domains --------------------------------------------------------------------------

class RecordOut(BaseModel):
    name: str
    type: str
    expected: str
    purpose: str
    found: list[str]
    state: str
    message: str


class BackendCheckOut(BaseModel):
    name: str
    ok: bool
    internal: bool
    messages: list[str]


class DomainOut(BaseModel):
    id: int
    name: str
    unicode_name: str
    status: str
    status_reason: str
    connection: str
    ownership_record: RecordOut
    verified_at: Timestamp | None
    enabled_at: Timestamp | None
    last_checked_at: Timestamp | None
    next_check_at: Timestamp | None
    records: list[RecordOut]
    backend_checks: list[BackendCheckOut]


class DomainQuery(PageQuery):
    q: str = text()
    status: Literal["pending", "action_required", "failed", "enabled", "disabled", "taken", ""] = ""
    sort: Literal["name", "status", "checked"] = "name"
    dir: Literal["asc", "desc"] = "asc"


class DomainIn(Strict):
    name: str = Field(min_length=1, max_length=253)
    connection: str = Field("local", max_length=64)


class DomainSettingsOut(BaseModel):
    values: dict[str, Any]
    state: str = Field(description="How far the backend has taken them: '', pending, applied or failed.")
    message: str
    problems: dict[str, str]


class DomainSettingsIn(Strict):
    values: dict[str, Any] = Field(description="The settings, by key; null returns one to the backend's default.")


class DifferenceOut(BaseModel):
    address: str
    kind: str
    label: str
    portal: dict[str, Any] | None
    backend: dict[str, Any] | None


class DriftOut(BaseModel):
    compared_at: Timestamp | None
    comparing: bool
    error: str
    differences: list[DifferenceOut] = Field(description="One page of the differences, by address.")
    total: int = Field(description="How many differences the comparison found.")
    page: int
    per_page: int


class SettleIn(Strict):
    address: str = text()
    kind: str = Field(max_length=40)
    how: Literal["adopt", "enforce"]


class SettleAllIn(Strict):
    how: Literal["adopt", "enforce"]


# -- mailboxes ------------------------------------------------------------------------

class AliasOut(BaseModel):
    id: int
    address: str
    state: str
    message: str


class MailboxOut(BaseModel):
    id: int
    address: str
    kind: Literal["personal", "shared"]
    domain_id: int
    owner_id: int | None
    owner_email: str | None
    first_name: str
    last_name: str
    display_name: str
    quota_bytes: int | None
    status: str
    status_reason: str
    wants_active: bool
    password_lost: bool
    password_waiting: bool
    aliases: list[AliasOut]
    protocols: dict[str, bool] | None
    created_at: Timestamp


class MailboxQuery(PageQuery):
    q: str = text()
    domain: int | None = Field(None, ge=1, le=MAX_ID)
    status: Literal["pending", "provisioning", "enabled", "disabled", "failed", "deleted", ""] = ""
    kind: Literal["personal", "shared", ""] = ""
    owner: str = text()
    sort: Literal["address", "status", "created", "kind"] = "address"
    dir: Literal["asc", "desc"] = "asc"


class MailboxIn(Strict):
    local_part: str = Field(min_length=1, max_length=64)
    domain_id: int = identifier()
    kind: Literal["personal", "shared"] = "shared"
    owner_id: int | None = Field(None, ge=1, le=MAX_ID, description="A member; required for a personal mailbox.")
    first_name: str = Field("", max_length=100)
    last_name: str = Field("", max_length=100)
    display_name: str = Field("", max_length=200)
    quota_bytes: int | None = Field(None, ge=1, le=2**50)


class ActiveIn(Strict):
    active: bool


class QuotaIn(Strict):
    quota_bytes: int | None = Field(ge=1, le=2**50, description="null: the backend's default.")


class AliasIn(Strict):
    alias: str = text()


class ProtocolsIn(Strict):
    allowed: list[str] = Field(max_length=20)


class AttemptOut(BaseModel):
    operation: str
    at: Timestamp
    outcome: str
    message: str


class PasswordOut(BaseModel):
    password: str = Field(description="Shown once: it is deleted as it is read.")


# -- invitations ---------------------------------------------------------------------------

class OfferOut(BaseModel):
    id: int
    label: str
    role_id: int | None
    permission: str | None
    mailbox_id: int | None
    still_exists: bool


class InvitationOut(BaseModel):
    id: int
    email: str
    status: str
    offers: list[OfferOut]
    invited_by: str | None
    created_at: Timestamp
    sent_at: Timestamp | None
    expires_at: Timestamp | None
    responded_at: Timestamp | None


class InvitationQuery(PageQuery):
    q: str = text()
    status: Literal["draft", "pending", "accepted", "declined", "expired", "revoked", ""] = ""
    sort: Literal["created", "email", "status", "expires"] = "created"
    dir: Literal["asc", "desc"] = "desc"


class OfferIn(Strict):
    role_id: int | None = Field(None, ge=1, le=MAX_ID)
    permission: str | None = Field(None, max_length=64)
    mailbox_id: int | None = Field(None, ge=1, le=MAX_ID, description="For an offer over one mailbox.")


class InvitationIn(Strict):
    email: str = text()
    offers: list[OfferIn] = Field(default_factory=list, max_length=50)
    send: bool = Field(False, description="Send it at once (otherwise it stays a draft).")


# -- corporate users -------------------------------------------------------------------------

class CorporateUserIn(Strict):
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    email: str = text()
    personal_mailbox: bool = True
    recovery_email: str = Field("", max_length=254)


class OnboardingOut(BaseModel):
    sent_to: str | None = Field(description="Where the link is being e-mailed, when it is.")
    link: str | None = Field(description="The link to give the person, when it could not be e-mailed.")


class CorporateUserOut(BaseModel):
    member: MemberOut
    onboarding: OnboardingOut


class UserSettingsIn(Strict):
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    timezone: str = Field("UTC", max_length=64)
    phone: str = Field("", max_length=40)
    default_mailbox_id: int | None = Field(None, ge=1, le=MAX_ID)
    recovery_email: str = Field("", max_length=254)


class RemoveUserIn(Strict):
    mailboxes: Literal["keep", "disable", "delete"] = "keep"


# -- imports and reports -------------------------------------------------------------------------

class ImportProblemOut(BaseModel):
    sheet: str
    row: int
    column: str
    message: str


class ImportOut(BaseModel):
    id: int
    filename: str
    status: str
    fatal: str
    total: int
    to_create: int
    to_update: int
    to_skip: int
    problem_count: int
    problems: list[ImportProblemOut]
    done: int
    percent: int
    created: int
    updated: int
    skipped: int
    failed: int
    error: str
    result_url: str | None


class UploadQuery(Strict):
    filename: str = Field("users.xlsx", max_length=255, description="The workbook's name, ending in .xlsx.")


class ReportOut(BaseModel):
    id: int
    status: str
    rows: int
    error: str
    created_at: Timestamp
    finished_at: Timestamp | None
    download_url: str | None


# -- audit -------------------------------------------------------------------------------------

class AuditQuery(PageQuery):
    family: str = Field("", max_length=20, description="Kind of action: the prefix of its name (domain, mailbox...).")
    actor: str = text()
    q: str = Field("", max_length=254, description="Text in what the action concerns.")
    since: str = Field("", max_length=10, description="YYYY-MM-DD")
    until: str = Field("", max_length=10, description="YYYY-MM-DD")
    dir: Literal["asc", "desc"] = "desc"


class AuditEventOut(BaseModel):
    id: int
    at: Timestamp
    actor: str
    action: str
    target_type: str
    target_label: str
    source: str
    ip: str
    details: dict[str, Any]
