"""Every text is translated: the catalogues hold every marked text of the code, translated,
none fuzzy, with the same placeholders; and nothing meant for people is left unmarked."""

from __future__ import annotations

import pytest

from portal import catalogues
from tests.i18n import unmarked


@pytest.mark.parametrize("language", ["fr"])
def test_catalogues__cover_every_text_of_the_code(language):
    problems = list(catalogues.problems(language))
    assert problems == [], f"{len(problems)} problems; run `make translations` and translate:\n" + "\n".join(
        problems[:200])


def test_templates__hold_no_text_left_unmarked():
    found = list(unmarked.in_templates())
    assert found == [], f"{len(found)} texts of templates are not marked for translation:\n" + "\n".join(found[:300])


def test_python__holds_no_message_left_unmarked():
    found = list(unmarked.in_python())
    assert found == [], f"{len(found)} messages in Python are not marked for translation:\n" + "\n".join(found[:300])


def test_unmarked__the_checks_find_what_they_look_for(tmp_path):
    """The two checks are not blind: a planted unmarked text is found, a marked one is not."""
    page = tmp_path / "page.html"
    page.write_text('<h1>Delete the domain</h1>\n<p>{{ _("Kept") }}</p>\n<input placeholder="Search people">\n'
                    '{% trans %}Also kept{% endtrans %}\n<td>{{ x if x else "never seen" }}</td>\n'
                    '<script>var a = "not text";</script>')
    found = list(unmarked.in_template(page, "page.html"))
    assert [line.split(": ", 1)[1] for line in found] == ["'Delete the domain'", "placeholder 'Search people'",
                                                          "'never seen'"]
    module = tmp_path / "module.py"
    module.write_text('from flask import flash\nflash("Saved.")\nflash(_("Kept."))\n'
                      'raise UserError(f"{x} is taken.")\nraise UserError(_("%(x)s is kept.", x=x))\n'
                      'name = StringField("Name")\nlog.info("not for people")\n')
    found = list(unmarked.in_module(module, "module.py"))
    assert [line.split(": ", 1)[1] for line in found] == ["'Saved.'", "'{x} is taken.'", "'Name'"]


def test_catalogues__a_text_and_a_plural_text_with_one_singular_translated_apart_are_found(tmp_path, monkeypatch):
    """Compiled together they are one entry, so one of the two translations would never be shown."""
    (tmp_path / "fr").mkdir()
    (tmp_path / "fr" / "a.po").write_text('msgid "done"\nmsgstr "terminé"\n', encoding="utf-8")
    (tmp_path / "fr" / "b.po").write_text('msgid "done"\nmsgid_plural "done"\nmsgstr[0] "réussite"\n'
                                          'msgstr[1] "réussites"\n', encoding="utf-8")
    monkeypatch.setattr(catalogues, "TRANSLATIONS", tmp_path)
    found = [problem for problem in catalogues.problems("fr") if "translated differently" in problem]
    assert len(found) == 1 and "'done'" in found[0], found


def test_extraction__keeps_a_texts_context_apart_from_the_same_words_without_one():
    """French agrees a status with what it describes: a mailbox (feminine) is "Activée", a domain
    "Activé"; the same English words are told apart by a context, kept from extraction to the
    compiled catalogue."""
    texts = catalogues.extract()
    assert ("Enabled", "mailbox") in texts and ("Enabled", None) in texts
    merged = catalogues.merged("fr")
    assert merged.get("Enabled", context="mailbox").string == "Activée"
    assert merged.get("Enabled").string == "Activé"
