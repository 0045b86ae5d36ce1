"""Domains (records, checks, settings, drift) and mailboxes (every change, through jobs)."""

from __future__ import annotations

from flask import Response, g, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import selectinload

from portal.api import out, schemas
from portal.api.core import accepted, bp, created, endpoint, json_response, listed
from portal.api.problems import problem
from portal.domains import services as domains
from portal.domains import settings as domain_settings
from portal.extensions import db
from portal.i18n import shown, shown_within
from portal.mailboxes import drift
from portal.mailboxes import services as mailboxes
from portal.mailboxes.models import Mailbox, ProvisioningAttempt
from portal.web import lists
from portal.web.access import findable_people, member, on_mailbox

# -- domains --------------------------------------------------------------------------------


def _domain_out(domain) -> schemas.DomainOut:
    ownership = {"name": domains.challenge_name(domain), "type": "TXT", "expected": domain.challenge,
                 "purpose": str(domains.OWNERSHIP_PURPOSE), "found": [],
                 "state": "ok" if domain.verified_at else "missing", "message": ""}
    return out.domain(domain, ownership, domains.next_check_at(domain))


def _domain(domain_id: int):
    return domains.domain_in_account(g.account, domain_id)


@bp.get("/accounts/<int:account_id>/domains")
@endpoint(member("domains.view"), query=schemas.DomainQuery, responses={200: None, 422: None}, tags=("domains",))
def domain_list(account_id, query: schemas.DomainQuery):
    listing = lists.Listing(q=query.q, filters={"status": query.status}, sort=query.sort,
                            descending=query.dir == "desc", page=query.page, per_page=query.per_page)
    page = lists.fetch(domains.domain_query(g.account, listing), listing)
    return listed(page, [_domain_out(item).model_dump(mode="json") for item in page.items], "api.domain_list",
                  account_id=account_id)


@bp.post("/accounts/<int:account_id>/domains")
@endpoint(member("domains.manage"), body=schemas.DomainIn, responses={201: schemas.DomainOut, 409: None, 422: None},
          tags=("domains",), creates=True)
def add_domain(account_id, body: schemas.DomainIn):
    """Add a domain; publish the records its page lists, the portal checks them by itself."""
    try:
        domain = domains.add_domain(current_user, g.account, body.name, body.connection)
    except domains.DomainError as error:
        db.session.rollback()
        return problem(422, str(error), errors={"body.name": str(error)})
    db.session.commit()
    return created(url_for("api.domain", account_id=account_id, domain_id=domain.id, _external=True),
                   _domain_out(domain))


@bp.get("/accounts/<int:account_id>/domains/<int:domain_id>")
@endpoint(member("domains.view"), responses={200: schemas.DomainOut, 404: None}, tags=("domains",))
def domain(account_id, domain_id):
    """The domain, its status and why, and every record to publish with what was found."""
    found = _domain(domain_id)
    if found is None:
        return problem(404, _("No such domain in this account."))
    return json_response(_domain_out(found))


def _domain_action(domain_id, action):
    found = _domain(domain_id)
    if found is None:
        return problem(404, _("No such domain in this account."))
    action(current_user, found)
    db.session.commit()
    return json_response(_domain_out(found))


@bp.post("/accounts/<int:account_id>/domains/<int:domain_id>/check")
@endpoint(member("domains.manage"), responses={200: schemas.DomainOut, 404: None, 409: None}, tags=("domains",))
def check_domain(account_id, domain_id):
    """Check now (or as soon as allowed), then keep checking often for a while."""
    return _domain_action(domain_id, domains.request_check)


@bp.post("/accounts/<int:account_id>/domains/<int:domain_id>/disable")
@endpoint(member("domains.manage"), responses={200: schemas.DomainOut, 404: None, 409: None}, tags=("domains",))
def disable_domain(account_id, domain_id):
    return _domain_action(domain_id, domains.disable)


@bp.post("/accounts/<int:account_id>/domains/<int:domain_id>/enable")
@endpoint(member("domains.manage"), responses={200: schemas.DomainOut, 404: None, 409: None}, tags=("domains",))
def enable_domain(account_id, domain_id):
    return _domain_action(domain_id, domains.enable)


@bp.delete("/accounts/<int:account_id>/domains/<int:domain_id>")
@endpoint(member("domains.manage"), responses={204: None, 404: None, 409: None}, tags=("domains",))
def remove_domain(account_id, domain_id):
    """Remove the domain from the account (its mailboxes must be deleted first)."""
    found = _domain(domain_id)
    if found is None:
        return problem(404, _("No such domain in this account."))
    domains.remove_domain(current_user, found)
    db.session.commit()
    return Response(status=204)


def _settings_out(domain) -> schemas.DomainSettingsOut:
    return schemas.DomainSettingsOut(values=domain.settings or {}, state=domain.settings_state or "",
                                     message=shown(domain.settings_message),
                                     problems=shown_within(domain.settings_hints or {}))


@bp.get("/accounts/<int:account_id>/domains/<int:domain_id>/settings")
@endpoint(member("domains.view"), responses={200: schemas.DomainSettingsOut, 404: None}, tags=("domains",))
def domain_settings_get(account_id, domain_id):
    """The domain-wide settings as wanted, and how far the backend has taken them."""
    found = _domain(domain_id)
    if found is None:
        return problem(404, _("No such domain in this account."))
    return json_response(_settings_out(found))


@bp.put("/accounts/<int:account_id>/domains/<int:domain_id>/settings")
@endpoint(member("domains.manage"), body=schemas.DomainSettingsIn,
          responses={202: schemas.DomainSettingsOut, 404: None, 422: None}, tags=("domains",))
def domain_settings_put(account_id, domain_id, body: schemas.DomainSettingsIn):
    """Set the domain-wide settings (validated with the backend's own limits); applied by a job."""
    found = _domain(domain_id)
    if found is None:
        return problem(404, _("No such domain in this account."))
    domain_settings.save(current_user, found, body.values)
    db.session.commit()
    return accepted(url_for("api.domain_settings_get", account_id=account_id, domain_id=domain_id, _external=True),
                    _settings_out(found))


# -- drift ---------------------------------------------------------------------------------

def _drift_out(domain, page: int = 1, per_page: int = 50) -> schemas.DriftOut:
    """The latest comparison, one page of its differences at a time, by address (a backend may
    differ on each of 10,000 mailboxes: 2.3 MB in one answer)."""
    report = drift.latest_report(domain)
    items = sorted(report.differences if report else [], key=lambda item: (item["address"], item["kind"]))
    shown = items[(page - 1) * per_page:page * per_page]
    return schemas.DriftOut(
        compared_at=report.at if report else None, comparing=drift.comparing(domain),
        error=report.error if report else "",
        differences=[schemas.DifferenceOut(address=item["address"], kind=item["kind"],
                                           label=drift.LABELS.get(item["kind"], item["kind"]),
                                           portal=item.get("portal"), backend=item.get("backend"))
                     for item in shown],
        total=len(items), page=page, per_page=per_page)


@bp.get("/accounts/<int:account_id>/domains/<int:domain_id>/drift")
@endpoint(member("mailboxes.view"), query=schemas.PageQuery, responses={200: schemas.DriftOut, 404: None, 422: None},
          tags=("drift",))
def drift_report(account_id, domain_id, query: schemas.PageQuery):
    """The latest comparison of the backend's mailboxes with the portal's, its differences in pages
    (``page``, ``per_page``; ``total`` counts them all). Changes answer with its first page."""
    found = _domain(domain_id)
    if found is None:
        return problem(404, _("No such domain in this account."))
    return json_response(_drift_out(found, query.page, query.per_page))


@bp.post("/accounts/<int:account_id>/domains/<int:domain_id>/drift/compare")
@endpoint(member("mailboxes.manage"), responses={202: schemas.DriftOut, 404: None, 409: None}, tags=("drift",))
def drift_compare(account_id, domain_id):
    """Compare again (a job lists the backend); poll the report."""
    found = _domain(domain_id)
    if found is None:
        return problem(404, _("No such domain in this account."))
    drift.request_comparison(found)
    db.session.commit()
    return accepted(url_for("api.drift_report", account_id=account_id, domain_id=domain_id, _external=True),
                    _drift_out(found))


@bp.post("/accounts/<int:account_id>/domains/<int:domain_id>/drift/settle")
@endpoint(member("mailboxes.manage"), body=schemas.SettleIn, responses={200: schemas.DriftOut, 404: None, 409: None},
          tags=("drift",))
def drift_settle(account_id, domain_id, body: schemas.SettleIn):
    """Settle one difference: ``adopt`` the backend's side, or ``enforce`` the portal's."""
    found = _domain(domain_id)
    report = drift.latest_report(found) if found else None
    if report is None:
        return problem(404 if found is None else 409, _("No such domain in this account.") if found is None
                       else _("Compare first."))
    drift.settle(current_user, found, report, body.address, body.kind, body.how)
    db.session.commit()
    return json_response(_drift_out(found))


@bp.post("/accounts/<int:account_id>/domains/<int:domain_id>/drift/settle-all")
@endpoint(member("mailboxes.manage"), body=schemas.SettleAllIn,
          responses={200: schemas.DriftOut, 404: None, 409: None}, tags=("drift",))
def drift_settle_all(account_id, domain_id, body: schemas.SettleAllIn):
    found = _domain(domain_id)
    report = drift.latest_report(found) if found else None
    if report is None:
        return problem(404 if found is None else 409, _("No such domain in this account.") if found is None
                       else _("Compare first."))
    drift.settle_all(current_user, found, report, body.how)
    db.session.commit()
    return json_response(_drift_out(found))


# -- mailboxes -----------------------------------------------------------------------------

def _mailbox_out(mailbox) -> schemas.MailboxOut:
    return out.mailbox(mailbox, mailboxes.waiting_secret(mailbox) is not None)


@bp.get("/accounts/<int:account_id>/mailboxes")
@endpoint(member(), query=schemas.MailboxQuery, responses={200: None, 403: None, 422: None}, tags=("mailboxes",))
def mailbox_list(account_id, query: schemas.MailboxQuery):
    """The mailboxes this token's creator may see, within its scopes, searched, filtered, sorted and paged."""
    if not g.access.can("mailboxes.view") and not g.access.reaches_mailboxes():
        # A token for domains, the audit log or SCIM is no key to the account's mailboxes (a review).
        return problem(403, _("This token's scopes do not reach mailboxes."))
    listing = lists.Listing(q=query.q, filters={"domain": str(query.domain or ""), "status": query.status,
                                                "kind": query.kind, "owner": query.owner},
                            sort=query.sort, descending=query.dir == "desc", page=query.page,
                            per_page=query.per_page)
    page = lists.fetch(mailboxes.mailbox_query(current_user, g.account, listing,
                                               (g.access.membership_id, g.access.permissions))
                       .options(selectinload(Mailbox.aliases)), listing)
    return listed(page, [out.mailbox(item).model_dump(mode="json") for item in page.items], "api.mailbox_list",
                  account_id=account_id)


@bp.post("/accounts/<int:account_id>/mailboxes")
@endpoint(member("mailboxes.create"), body=schemas.MailboxIn,
          responses={202: schemas.MailboxOut, 403: None, 409: None, 422: None}, tags=("mailboxes",), creates=True)
def create_mailbox(account_id, body: schemas.MailboxIn):
    """Create a mailbox: it is provisioned by a job (202); its status says how far it got."""
    domain = domains.domain_in_account(g.account, body.domain_id)
    if domain is None:
        return problem(422, _("Choose one of this account's domains."),
                       errors={"body.domain_id": _("not in this account")})
    only = findable_people()
    owner = mailboxes.member_user(g.account, body.owner_id, only=only)
    if body.owner_id and owner is None:
        # Said only to a maker who may see the members (the limit is the token's, not theirs).
        if only is not None and "members.view" in g.access.held and \
                mailboxes.member_user(g.account, body.owner_id) is not None:
            return problem(422, _("This token may name only its maker as the owner: give it the users scope "
                                  "(reading is enough) to name someone else."),
                           errors={"body.owner_id": _("not yours to name")})
        return problem(422, _("The owner must be a member of the account."),
                       errors={"body.owner_id": _("not a member")})
    mailbox = mailboxes.create_mailbox(current_user, g.account, domain, body.local_part, kind=body.kind, owner=owner,
                                       first_name=body.first_name, last_name=body.last_name,
                                       display_name=body.display_name, quota_bytes=body.quota_bytes)
    db.session.commit()
    return accepted(url_for("api.mailbox", account_id=account_id, mailbox_id=mailbox.id, _external=True),
                    _mailbox_out(mailbox))


@bp.get("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>")
@endpoint(on_mailbox("mailbox.view"), responses={200: schemas.MailboxOut, 404: None}, tags=("mailboxes",))
def mailbox(account_id, mailbox_id):
    """The mailbox, its provisioning status and why, its aliases and protocols."""
    return json_response(_mailbox_out(g.mailbox))


def _mailbox_action(action):
    action(current_user, g.mailbox)
    db.session.commit()
    return accepted(url_for("api.mailbox", account_id=g.account.id, mailbox_id=g.mailbox.id, _external=True),
                    _mailbox_out(g.mailbox))


@bp.post("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/active")
@endpoint(on_mailbox("mailbox.settings"), body=schemas.ActiveIn, responses={202: schemas.MailboxOut, 409: None},
          tags=("mailboxes",))
def mailbox_active(account_id, mailbox_id, body: schemas.ActiveIn):
    """Enable or disable the mailbox (where its backend can)."""
    return _mailbox_action(lambda actor, mailbox: mailboxes.set_active(actor, mailbox, body.active))


@bp.post("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/password")
@endpoint(on_mailbox("mailbox.password"), responses={202: schemas.MailboxOut, 409: None}, tags=("mailboxes",))
def mailbox_new_password(account_id, mailbox_id):
    """A new password, made on the backend by a job; reveal it once with .../password/reveal."""
    return _mailbox_action(mailboxes.reset_password)


@bp.post("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/password/reveal")
@endpoint(on_mailbox("mailbox.password"), responses={200: schemas.PasswordOut, 410: None, 409: None},
          tags=("mailboxes",))
def mailbox_reveal_password(account_id, mailbox_id):
    """The waiting password, once: it is deleted as it is read."""
    password = mailboxes.reveal_secret(current_user, g.mailbox)
    db.session.commit()
    if password is None:
        return problem(410, _("There is no password to reveal: it was already shown, or it expired."))
    return json_response(schemas.PasswordOut(password=password))


@bp.put("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/quota")
@endpoint(on_mailbox("mailbox.settings"), body=schemas.QuotaIn,
          responses={202: schemas.MailboxOut, 409: None, 422: None}, tags=("mailboxes",))
def mailbox_quota(account_id, mailbox_id, body: schemas.QuotaIn):
    return _mailbox_action(lambda actor, mailbox: mailboxes.set_quota(actor, mailbox, body.quota_bytes))


@bp.post("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/aliases")
@endpoint(on_mailbox("mailbox.settings"), body=schemas.AliasIn,
          responses={202: schemas.MailboxOut, 409: None, 422: None}, tags=("mailboxes",), creates=True)
def mailbox_add_alias(account_id, mailbox_id, body: schemas.AliasIn):
    """Add an alias: only on a domain this account proved."""
    return _mailbox_action(lambda actor, mailbox: mailboxes.add_alias(actor, mailbox, body.alias) and None)


@bp.delete("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/aliases/<int:alias_id>")
@endpoint(on_mailbox("mailbox.settings"), responses={202: schemas.MailboxOut, 409: None}, tags=("mailboxes",))
def mailbox_remove_alias(account_id, mailbox_id, alias_id):
    return _mailbox_action(lambda actor, mailbox: mailboxes.remove_alias(actor, mailbox, alias_id))


@bp.put("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/protocols")
@endpoint(on_mailbox("mailbox.settings"), body=schemas.ProtocolsIn,
          responses={202: schemas.MailboxOut, 409: None}, tags=("mailboxes",))
def mailbox_protocols(account_id, mailbox_id, body: schemas.ProtocolsIn):
    """Switch client protocols on and off (the ones not listed are switched off)."""
    return _mailbox_action(lambda actor, mailbox: mailboxes.set_protocols(actor, mailbox, set(body.allowed)))


@bp.post("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/retry")
@endpoint(on_mailbox("mailbox.settings"), responses={202: schemas.MailboxOut, 409: None}, tags=("mailboxes",))
def mailbox_retry(account_id, mailbox_id):
    """Run the operation that failed again."""
    return _mailbox_action(mailboxes.retry)


@bp.delete("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>")
@endpoint(member("mailboxes.manage"), responses={202: schemas.MailboxOut, 404: None, 409: None},
          tags=("mailboxes",))
def mailbox_delete(account_id, mailbox_id):
    """Delete the mailbox where its backend can (otherwise it is disabled, and the status says so)."""
    found = mailboxes.mailbox_in_account(g.account, mailbox_id)
    if found is None:
        return problem(404, _("No such mailbox in this account."))
    g.mailbox = found
    return _mailbox_action(mailboxes.delete)


@bp.get("/accounts/<int:account_id>/mailboxes/<int:mailbox_id>/history")
@endpoint(on_mailbox("mailbox.view"), query=schemas.PageQuery, responses={200: None, 422: None},
          tags=("mailboxes",))
def mailbox_history(account_id, mailbox_id, query: schemas.PageQuery):
    """Every call made to the backend about this mailbox, newest first, with its answer."""
    listing = lists.Listing(page=query.page, per_page=query.per_page)
    page = lists.fetch(db.select(ProvisioningAttempt).where(ProvisioningAttempt.mailbox_id == mailbox_id)
                       .order_by(ProvisioningAttempt.id.desc()), listing)
    items = [schemas.AttemptOut(operation=item.operation, at=item.at, outcome=item.outcome,
                                message=shown(item.message)).model_dump(mode="json") for item in page.items]
    return listed(page, items, "api.mailbox_history", account_id=account_id, mailbox_id=mailbox_id)
