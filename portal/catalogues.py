"""The translation catalogues: one .po file per area of the portal and language
(``portal/translations/<language>/<area>.po``), merged when compiled.

An area is the folder a text comes from (``templates/domains/...`` and ``portal/domains/...``
are both "domains"); texts of the page frame, the shared macros and the web plumbing are
"web". Keeping areas apart keeps each file small enough to review, and lets several people
translate at once without touching the same file.

``extract()`` reads every marked text out of the code (the same extraction ``pybabel`` does);
``update(language)`` adds the texts a language's catalogues lack, empty, to the file of their
area, and ``problems(language)`` lists what is missing, empty, fuzzy or inconsistent; the
test suite fails on any.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
METHODS = [("portal/**.py", "python"), ("templates/**.html", "jinja2"), ("templates/**.txt", "jinja2")]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None,
            "lazy_ngettext": (1, 2), "pgettext": ((1, "c"), 2), "lazy_pgettext": ((1, "c"), 2),
            "_lp": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3),
            "later": None, "later_plural": (1, 2)}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")


@dataclass(frozen=True)
class Text:
    msgid: str | tuple[str, str]
    locations: tuple[tuple[str, int], ...]
    # What tells apart the same English words that other languages write differently (French
    # agrees "Enabled" with a mailbox, feminine, or a domain): ``pgettext("mailbox", "Enabled")``.
    context: str | None = None

    @property
    def area(self) -> str:
        return area_of(sorted(self.locations)[0][0])


def area_of(path: str) -> str:
    parts = Path(path).parts
    if parts[0] in ("templates", "portal") and len(parts) > 2:
        return parts[1]
    return "web"


def extract() -> dict[tuple, Text]:
    """Every marked text of the code, with where it is used, by (msgid, context)."""
    found: dict = {}
    # As the app's environment: {% trans %} blocks are trimmed (their line breaks and indents are
    # layout, not text).
    options = {"templates/**.html": {"trimmed": "true"}, "templates/**.txt": {"trimmed": "true"}}
    for filename, lineno, message, _comments, context in extract_from_dir(
            str(ROOT), METHODS, options_map=options, keywords=KEYWORDS):
        if filename.startswith(("portal/translations", "bench", "tests")):
            continue
        msgid = message if isinstance(message, str) else tuple(message[:2])
        if not msgid or (isinstance(msgid, tuple) and not msgid[0]):
            continue
        key = (msgid, context or None)
        earlier = found.get(key)
        locations = ((filename, lineno),) + (earlier.locations if earlier else ())
        found[key] = Text(msgid, locations, context or None)
    return found


def files(language: str) -> list[Path]:
    return sorted((TRANSLATIONS / language).glob("*.po"))


def read(path: Path, language: str) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=language)


def merged(language: str) -> Catalog:
    """All the language's area catalogues as one (the first translation of a text wins)."""
    catalogue = Catalog(locale=language)
    taken = set()
    for path in files(language):
        for message in read(path, language):
            if message.id and (message.id, message.context) not in taken:
                taken.add((message.id, message.context))
                catalogue[message.id] = message  # keyed with its context
    return catalogue


def update(language: str) -> dict[str, int]:
    """Add the texts the language lacks, untranslated, to their area's file; return how many
    were added per area."""
    known = {(message.id, message.context) for path in files(language) for message in read(path, language)
             if message.id}
    added: dict[str, int] = {}
    by_area: dict[str, list[Text]] = {}
    for text in extract().values():
        if (text.msgid, text.context) not in known:
            by_area.setdefault(text.area, []).append(text)
    for area, texts in by_area.items():
        path = TRANSLATIONS / language / f"{area}.po"
        catalogue = read(path, language) if path.exists() else Catalog(locale=language)
        for text in texts:
            flags = ("python-format",) if _placeholders(text.msgid) else ()
            catalogue.add(text.msgid, "" if isinstance(text.msgid, str) else ("", ""), flags=flags,
                          context=text.context)
        write(path, catalogue)
        added[area] = len(texts)
    return added


def write(path: Path, catalogue: Catalog) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        write_po(out, catalogue, omit_header=True, no_location=True, width=100, sort_output=True)


def _placeholders(msgid) -> set[str]:
    texts = msgid if isinstance(msgid, tuple) else (msgid,)
    return {name for text in texts for name in PLACEHOLDER.findall(text)}


def problems(language: str) -> Iterator[str]:
    """What keeps the language's catalogues from covering every text, correctly."""
    texts = extract()
    seen: dict = {}
    keyed: dict = {}
    for path in files(language):
        for message in read(path, language):
            if not message.id:
                continue
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            where = f"{shown}: {message.id if isinstance(message.id, str) else message.id[0]!r}"
            # Compiled together, a text and a plural text with the same singular are one entry: the
            # first file's translation would be shown for both.
            key = (message.id if isinstance(message.id, str) else message.id[0], message.context)
            if key in keyed and keyed[key][0] != message.string:
                yield f"{where} is translated differently in {keyed[key][1]}"
            keyed[key] = (message.string, path.name)
            seen[(message.id, message.context)] = (message.string, path.name)
            if message.fuzzy:
                yield f"{where} is fuzzy"
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if not all(strings):
                yield f"{where} has no translation"
            elif (message.id, message.context) in texts:
                for string in strings:
                    if _placeholders(string) != _placeholders(message.id):
                        yield f"{where}: the translation's placeholders differ from the text's"
    for (msgid, context), text in texts.items():
        if (msgid, context) not in seen:
            path, line = text.locations[0]
            yield f"{path}:{line}: {msgid if isinstance(msgid, str) else msgid[0]!r} is not in the {language} catalogue"
