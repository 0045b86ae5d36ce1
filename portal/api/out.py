"""The portal's objects as the API shows them."""

from __future__ import annotations

from flask import url_for

from portal.api import schemas
from portal.i18n import shown, shown_within
from portal.roles import catalogue


def member(membership, user, details: dict, account_id: int) -> schemas.MemberOut:
    grants = details.get("grants", [])
    status = ("suspended" if user.suspended_at else
              "active" if user.password_hash or user.oidc_subject else "never_signed_in")
    return schemas.MemberOut(
        id=membership.id, user_id=user.id, email=user.email, name=user.name or "",
        corporate=user.is_corporate and user.corporate_account_id == account_id, status=status,
        last_login_at=user.last_login_at, joined_at=membership.created_at,
        roles=[schemas.RoleRef(id=g.role.id, name=g.role.name) for g in grants if g.role is not None],
        permissions=sorted(g.permission for g in grants if g.permission), mailboxes_with_access=details.get(
            "mailboxes", 0))


def grant(item) -> schemas.GrantOut:
    return schemas.GrantOut(id=item.id, role=schemas.RoleRef(id=item.role.id, name=item.role.name) if item.role
                            else None, permission=item.permission, mailbox_id=item.mailbox_id)


def role(item, holders: int) -> schemas.RoleOut:
    return schemas.RoleOut(id=item.id, name=item.name, scope=item.scope, description=item.description or "",
                           system=item.is_system, permissions=sorted(item.permissions), holders=holders)


def permission(item: catalogue.Permission) -> schemas.PermissionOut:
    return schemas.PermissionOut(code=item.code, label=item.label, description=item.description, scope=item.scope,
                                 group=item.group)


def record(row: dict) -> schemas.RecordOut:
    return schemas.RecordOut(name=row.get("name", ""), type=row.get("type", ""), expected=row.get("expected", ""),
                             purpose=shown(row.get("purpose", "")), found=list(row.get("found") or []),
                             state=row.get("state", "unknown"), message=shown(row.get("message", "")))


def domain(item, ownership: dict, next_check_at) -> schemas.DomainOut:
    return schemas.DomainOut(
        id=item.id, name=item.name, unicode_name=item.unicode_name, status=item.status,
        status_reason=shown(item.status_reason), connection=item.connection, ownership_record=record(ownership),
        verified_at=item.verified_at, enabled_at=item.enabled_at, last_checked_at=item.last_checked_at,
        next_check_at=next_check_at, records=[record(row) for row in item.records or []],
        backend_checks=[schemas.BackendCheckOut(**{**check, "name": shown(check.get("name", ""))})
                        for check in item.backend_checks or []])


def mailbox(item, password_waiting: bool = False) -> schemas.MailboxOut:
    return schemas.MailboxOut(
        id=item.id, address=item.address, kind=item.kind, domain_id=item.domain_id, owner_id=item.owner_id,
        owner_email=item.owner.email if item.owner else None, first_name=item.first_name, last_name=item.last_name,
        display_name=item.display_name, quota_bytes=item.quota_bytes, status=item.status,
        status_reason=shown(item.status_reason), wants_active=item.want_active, password_lost=item.password_lost,
        password_waiting=password_waiting,
        aliases=[schemas.AliasOut(id=a.id, address=a.address, state=a.state, message=shown(a.message))
                 for a in item.aliases],
        protocols=item.protocols, created_at=item.created_at)


def invitation(item) -> schemas.InvitationOut:
    return schemas.InvitationOut(
        id=item.id, email=item.email, status=item.shown_status,
        offers=[schemas.OfferOut(id=o.id, label=o.label, role_id=o.role_id, permission=o.permission,
                                 mailbox_id=o.mailbox_id, still_exists=o.still_exists) for o in item.grants],
        invited_by=item.invited_by.email if item.invited_by else None, created_at=item.created_at,
        sent_at=item.sent_at, expires_at=item.expires_at, responded_at=item.responded_at)


def import_run(run) -> schemas.ImportOut:
    listed = run.status not in ("checking", "refused")
    return schemas.ImportOut(
        id=run.id, filename=run.filename, status=run.status, fatal=shown(run.fatal), total=run.total,
        to_create=run.to_create, to_update=run.to_update, to_skip=run.to_skip, problem_count=run.problem_count,
        problems=[schemas.ImportProblemOut(**problem) for problem in (run.problems or [])] if listed else [],
        done=run.done, percent=run.percent, created=run.created, updated=run.updated, skipped=run.skipped,
        failed=run.failed, error=shown(run.error),
        result_url=url_for("api.import_result", account_id=run.account_id, run_id=run.id, _external=True)
        if run.status == "done" else None)


def report(item) -> schemas.ReportOut:
    return schemas.ReportOut(
        id=item.id, status=item.status, rows=item.rows, error=shown(item.error), created_at=item.created_at,
        finished_at=item.finished_at,
        download_url=url_for("api.report_download", account_id=item.account_id, report_id=item.id, _external=True)
        if item.status == "done" else None)


def audit_event(event) -> schemas.AuditEventOut:
    return schemas.AuditEventOut(id=event.id, at=event.at, actor=event.actor_label, action=event.action,
                                 target_type=event.target_type, target_label=event.target_shown,
                                 source=event.source, ip=event.ip, details=shown_within(event.details or {}))
