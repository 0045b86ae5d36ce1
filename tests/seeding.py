"""Many rows fast, as a large account has them: Core bulk inserts, for tests about size."""

from __future__ import annotations

import secrets

from sqlalchemy import insert

from portal.accounts.models import Membership
from portal.audit.models import AuditEvent
from portal.auth.models import User
from portal.domains.models import Domain
from portal.extensions import db
from portal.invitations.models import Invitation, InvitationGrant
from portal.mailboxes.models import Mailbox
from portal.roles.models import Grant
from portal.roles.services import system_role
from portal.timeutil import utcnow


def seed(account, domain, role, size: int, start: int) -> None:
    """``size`` more of everything a list shows: members (corporate, with roles and mailbox
    grants), mailboxes, invitations with offers, audit entries and domains."""
    now = utcnow()
    tag = secrets.token_hex(3)
    people = db.session.execute(insert(User).returning(User.id, User.email), [{
        "email": f"person{start + n}-{tag}@{domain.name}", "name": f"Person {start + n}", "is_corporate": n % 2 == 0,
        "corporate_account_id": account.id if n % 2 == 0 else None, "timezone": "UTC", "phone": "",
        "created_at": now, "is_superadmin": False} for n in range(size)]).all()
    users = [user_id for user_id, _email in people]
    memberships = db.session.execute(insert(Membership).returning(Membership.id), [
        {"account_id": account.id, "user_id": user_id, "email": email, "created_at": now}
        for user_id, email in people]).scalars().all()
    mailboxes = db.session.execute(insert(Mailbox).returning(Mailbox.id), [{
        "account_id": account.id, "domain_id": domain.id, "local_part": f"box{start + n}-{tag}",
        "address": f"box{start + n}-{tag}@{domain.name}", "kind": "personal", "owner_id": users[n],
        "status": "enabled", "status_reason": "", "want_active": True, "backend_admin": False, "password_lost": False,
        "first_name": "", "last_name": "", "display_name": "", "created_at": now, "updated_at": now}
        for n in range(size)]).scalars().all()
    owner_role = system_role("mailbox_owner")
    db.session.execute(insert(Grant.__table__), [
        {"membership_id": memberships[n], "account_id": account.id, "role_id": role.id, "permission": None,
         "mailbox_id": None, "created_at": now} for n in range(size)] + [
        {"membership_id": memberships[n], "account_id": account.id, "role_id": owner_role.id, "permission": None,
         "mailbox_id": mailboxes[n], "created_at": now} for n in range(size)] + [
        {"membership_id": memberships[n], "account_id": account.id, "role_id": None, "permission": "audit.view",
         "mailbox_id": None, "created_at": now} for n in range(size)])
    invitations = db.session.execute(insert(Invitation).returning(Invitation.id), [
        {"account_id": account.id, "email": f"guest{start + n}-{tag}@elsewhere.example", "status": "pending",
         "created_at": now, "sent_at": now, "expires_at": now} for n in range(size)]).scalars().all()
    db.session.execute(insert(InvitationGrant.__table__), [
        {"invitation_id": invitation_id, "role_id": role.id, "permission": None, "on_mailbox": False,
         "mailbox_id": None, "label": role.name} for invitation_id in invitations])
    db.session.execute(insert(AuditEvent.__table__), [
        {"at": now, "actor_id": None, "actor_label": "seed@example.org", "account_id": account.id,
         "action": "user.create_corporate", "target_type": "user", "target_id": str(user_id),
         "target_label": "someone", "source": "web", "ip": "", "user_agent": "", "details": {"row": 1}}
        for user_id in users for _ in range(3)])
    db.session.execute(insert(Domain.__table__), [
        {"account_id": account.id, "name": f"d{start + n}-{tag}.example.org", "connection": "local",
         "status": "pending", "status_reason": "", "challenge": secrets.token_urlsafe(8), "verified_by_hand": False,
         "created_at": now, "failed_checks": 0, "records": [], "backend_checks": [], "settings": {},
         "settings_state": "", "settings_message": "", "settings_hints": {}} for n in range(max(size // 10, 1))])
    db.session.commit()


def statements_at_two_sizes(owner, account, measure, before=None, sizes: tuple[int, int] = (3, 40)) -> list[int]:
    """The statements ``measure(size)`` makes after seeding ``sizes[0]`` rows of everything, then
    ``sizes[1]`` more, in an account with an enabled example.org and a custom role (``before(size)``
    runs first, uncounted): a list whose count grows with its rows shows two different numbers."""
    from portal.domains.models import ENABLED
    from portal.domains.services import add_domain
    from portal.roles.services import create_role
    from tests.web.test_list_statements import counted

    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    role = create_role(owner, account, name="Staff", scope="account", description="", permissions={"members.view"})
    db.session.commit()
    counts, seeded = [], 0
    for size in sizes:
        seed(account, domain, role, size, seeded)
        seeded += size
        if before is not None:
            before(size)
        with counted() as statements:
            measure(size)
        counts.append(len(statements))
    return counts
