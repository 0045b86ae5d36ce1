"""The templates' translation callables (written in portal.i18n rather than Jinja's wrappers, for
speed) behave as Jinja's newstyle gettext does: the text translated, the values put in by name
and escaped in HTML only, a literal per cent written twice, ``num`` given to plural texts, any
name free for a value, and the status badges read through the same labels as the rest."""

from __future__ import annotations

from flask import render_template_string

from portal.i18n import in_language


def _render(app, source: str, **context) -> str:
    with app.test_request_context("/"):
        return render_template_string(source, **context)


def test_values_are_escaped_in_html_and_the_text_is_not(app):
    page = _render(app, '{{ _("Select %(address)s", address=value) }}', value="<b>a&b</b>@example.org")
    assert page == "Select &lt;b&gt;a&amp;b&lt;/b&gt;@example.org"


def test_where_the_template_does_not_escape_values_go_in_as_they_are(app):
    # E-mail bodies (.txt templates) are not escaped; a block can say the same in HTML.
    source = '{% autoescape false %}{{ _("Select %(address)s", address=value) }}{% endautoescape %}'
    assert _render(app, source, value="a&b@example.org") == "Select a&b@example.org"


def test_a_per_cent_written_twice_reads_once_with_or_without_values(app):
    assert _render(app, '{{ _("100%%") }}|{{ _("%(n)s%%", n=5) }}') == "100%|5%"


def test_any_name_is_free_for_a_value(app):
    source = ('{{ _("%(text)s and %(context)s", text="a", context="b") }}|'
              '{{ ngettext("%(num)s of %(count)s", "%(num)s of %(count)s", 2, count=3, plural="x") }}')
    assert _render(app, source) == "a and b|2 of 3"


def test_plural_texts_choose_their_form_and_get_num(app):
    source = '{{ ngettext("%(num)s mailbox", "%(num)s mailboxes", n) }}'
    assert _render(app, source, n=1) == "1 mailbox"
    assert _render(app, source, n=4) == "4 mailboxes"
    with app.test_request_context("/"), in_language("fr"):
        assert render_template_string(source, n=4) == "4 boîtes aux lettres"
        assert render_template_string('{% trans count=n %}{{ count }} mailbox{% pluralize %}{{ count }} '
                                      'mailboxes{% endtrans %}', n=1) == "1 mailbox"


def test_texts_follow_the_language_in_force(app):
    with app.test_request_context("/"):
        assert render_template_string('{{ _("Mailboxes") }}') == "Mailboxes"
        with in_language("fr"):
            assert render_template_string('{{ _("Mailboxes") }}') == "Boîtes aux lettres"
        assert render_template_string('{{ _("Mailboxes") }}') == "Mailboxes"


def test_status_badges_read_their_labels_in_the_language_in_force(app):
    source = ('{{ mailbox_status("provisioning") }}{{ domain_status("action_required") }}'
              '{{ record_state("missing") }}{{ badge(name, "plain") }}')
    with app.test_request_context("/"):
        english = render_template_string(source, name="<i>Ops & co</i>")
        with in_language("fr"):
            french = render_template_string(source, name="x")
    assert 'class="badge badge-info">Provisioning<' in english
    assert 'class="badge badge-warn">Action required<' in english
    assert 'class="badge badge-danger">Missing<' in english
    assert '<span class="badge badge-plain">&lt;i&gt;Ops &amp; co&lt;/i&gt;</span>' in english
    assert "Provisioning" not in french and "Action required" not in french and "Missing" not in french
    assert french.count('class="badge') == 4


def test_an_e_mail_text_body_keeps_values_unescaped(app):
    from types import SimpleNamespace

    with app.test_request_context("/"):
        body = app.jinja_env.get_template("mail/account_deleted.txt").render(
            account_name="Dupont & Fils <paris>", user=SimpleNamespace(name="Zoé"),
            actor=SimpleNamespace(display_name="Ana"))
    assert body.startswith("Subject: The account Dupont & Fils <paris> was deleted\n")
    assert "Hello Zoé," in body
