"""Languages: every text a person reads is in their language (Flask-Babel).

The language of a request is, in order: the signed-in person's choice (their profile), the
choice made with the footer's switch before signing in (a cookie), the browser's
``Accept-Language``, and ``PORTAL_DEFAULT_LOCALE``. Times are shown in the person's time zone.
Work done for someone else (an e-mail, a workbook made by the worker) runs inside
``in_language(code)`` with the recipient's language.

The French catalogues are ``portal/translations/fr/<area>.po`` (see ``portal.catalogues``);
they are compiled into the instance folder when the app starts (and whenever a .po is newer),
so no compiled file lives in the source tree.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from functools import lru_cache
from datetime import date, datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.messages.mofile import write_mo
from flask import Flask, current_app, g, has_app_context, has_request_context, request
from babel.dates import format_skeleton, get_datetime_format
from flask_babel import (Babel, force_locale, format_date, format_decimal, get_locale, get_translations, gettext,
                         ngettext)
from flask_babel.speaklater import LazyString
from flask_babel import lazy_gettext as _l  # noqa: F401  (texts defined before any request: forms, constants)
from flask_babel import lazy_pgettext as _lp  # noqa: F401  (the same, told apart by a context: agreement)
from flask_babel import pgettext as _pgettext
from flask_login import current_user
from jinja2 import pass_eval_context
from markupsafe import Markup

SOURCE = Path(__file__).resolve().parent / "translations"
# The languages a person may choose: code -> its name, written in that language.
LANGUAGES = {"en": "English", "fr": "Français"}
COOKIE = "portal_language"


def init_app(app: Flask) -> None:
    compiled = Path(app.instance_path) / "translations"
    compile_catalogues(compiled)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(compiled)
    app.config["BABEL_DEFAULT_LOCALE"] = app.config["PORTAL"]["DEFAULT_LOCALE"]
    Babel(app, locale_selector=select_language, timezone_selector=select_timezone)
    # Newstyle gettext (texts take their values by name and are escaped in HTML), with the
    # template callables written here rather than Jinja's wrappers: a list page has hundreds of
    # texts, and each of Jinja's goes through two context calls and a look-up of the gettext
    # function by name before reaching the same translations.
    app.jinja_env.install_gettext_callables(gettext=_template_gettext, ngettext=_template_ngettext,
                                            pgettext=_template_pgettext, npgettext=_template_npgettext,
                                            newstyle=True)
    app.jinja_env.globals.update(gettext=_template_gettext, _=_template_gettext, ngettext=_template_ngettext,
                                 pgettext=_template_pgettext, npgettext=_template_npgettext)
    app.jinja_env.policies["ext.i18n.trimmed"] = True

    @app.after_request
    def content_language(response):
        # Pages say their language: a boosted navigation sets <html lang> from it (static/js/portal.js).
        if response.mimetype == "text/html" and "Content-Language" not in response.headers:
            response.headers["Content-Language"] = current_language()
        return response
    app.jinja_env.globals.update(languages=LANGUAGES, current_language=current_language)
    app.jinja_env.filters.update(when=when, day=day, number=number, filesize=filesize, label=label, shown=shown)


def _filled(eval_context, text: str, variables: dict):
    """What Jinja's newstyle gettext does with a translated text: mark it safe where the template
    escapes (so the values put in are escaped, not the text) and put the values in by name.
    The callables take their own arguments by position only, so that any name is free for a value."""
    if eval_context.autoescape:
        text = Markup(text)
    if not variables and "%" not in text:
        return text
    return text % variables


@pass_eval_context
def _template_gettext(eval_context, text: str, /, **variables):
    return _filled(eval_context, _translations().ugettext(text), variables)


@pass_eval_context
def _template_ngettext(eval_context, text: str, plural: str, count, /, **variables):
    variables.setdefault("num", count)
    return _filled(eval_context, _translations().ungettext(text, plural, count), variables)


@pass_eval_context
def _template_pgettext(eval_context, context: str, text: str, /, **variables):
    return _filled(eval_context, _translations().upgettext(context, text), variables)


@pass_eval_context
def _template_npgettext(eval_context, context: str, text: str, plural: str, count, /, **variables):
    variables.setdefault("num", count)
    return _filled(eval_context, _translations().unpgettext(context, text, plural, count), variables)


def compile_catalogues(target: Path) -> None:
    """Compile each language's area catalogues (``portal/translations/<language>/*.po``) into
    one ``messages.mo`` under ``target`` when it is missing or older than one of them."""
    from portal.catalogues import files, merged

    for folder in SOURCE.iterdir():
        sources = files(folder.name) if folder.is_dir() else []
        if not sources:
            continue
        mo = target / folder.name / "LC_MESSAGES" / "messages.mo"
        if mo.exists() and mo.stat().st_mtime >= max(path.stat().st_mtime for path in sources):
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        partial = mo.with_suffix(f".{os.getpid()}.tmp")
        with partial.open("wb") as out:
            write_mo(out, merged(folder.name), use_fuzzy=False)
        partial.replace(mo)  # atomic: another process starting at once never reads half a file


def _babel_context():
    """Where Flask-Babel keeps the context's language, translations and zone (None outside an
    app context), reached through the ``g`` proxy once rather than at each look-up."""
    try:
        found = g._get_current_object()
    except RuntimeError:
        return None
    return getattr(found, "_flask_babel", None)


def _translations():
    """The request's translations. Flask-Babel looks them up anew for each text, through several
    context look-ups, and a page has hundreds of texts: they are kept in the slot Flask-Babel's
    ``force_locale`` (so ``in_language``) and ``refresh`` set and clear."""
    context = _babel_context()
    translations = getattr(context, "babel_translations", None)
    if translations is None:
        translations = get_translations()
        if context is not None:
            context.babel_translations = translations
    return translations


def chosen(code: str | None) -> str | None:
    """``code`` when it is one of the portal's languages."""
    return code if code in LANGUAGES else None


def select_language() -> str:
    if has_request_context():
        if current_user and current_user.is_authenticated and chosen(getattr(current_user, "locale", None)):
            return current_user.locale
        if chosen(request.cookies.get(COOKIE)):
            return request.cookies[COOKIE]
        best = request.accept_languages.best_match(tuple(LANGUAGES))
        if best:
            return best
    return current_app.config["PORTAL"]["DEFAULT_LOCALE"]


def select_timezone() -> str:
    zone = g.get("portal_timezone")
    if zone:
        return zone
    if has_request_context() and current_user and current_user.is_authenticated:
        return current_user.timezone or "UTC"
    return "UTC"


def current_language() -> str:
    locale = get_locale()
    return locale.language if locale is not None else current_app.config["PORTAL"]["DEFAULT_LOCALE"]


@contextmanager
def in_language(code: str | None, zone: str | None = None):
    """Run the block in ``code`` (a language of the portal, else the default) and time zone."""
    code = chosen(code) or current_app.config["PORTAL"]["DEFAULT_LOCALE"]
    earlier = g.get("portal_timezone")
    g.portal_timezone = zone
    context = getattr(g, "_flask_babel", None)
    if context is not None:
        context.babel_tzinfo = None
    try:
        with force_locale(code):
            yield
    finally:
        g.portal_timezone = earlier
        if context is not None:
            context.babel_tzinfo = None


def language_of(user) -> str:
    """The language to write to ``user`` in (their choice, else the portal's default)."""
    return chosen(getattr(user, "locale", None)) or current_app.config["PORTAL"]["DEFAULT_LOCALE"]


@contextmanager
def for_person(user):
    """Run the block in ``user``'s language and time zone (for what is made for them)."""
    with in_language(language_of(user), getattr(user, "timezone", None) or "UTC"):
        yield


# -- texts stored to be read later ----------------------------------------------------------

# What the portal writes for people to read later (why a domain or a mailbox is in its state, a
# check's summary, a record's purpose) is stored as its English text and values, and translated
# when shown, so each reader gets it in their own language: the worker writes for nobody in
# particular. The mark, a control character, starts none of the portal's own texts. Only the
# stored value as a whole is read that way: a value put in (a DNS record found, a backend's words)
# is shown as it came, whatever it holds; a text put in another is kept as a {"later": ...}
# object, a time as {"when": ...}, shown in the reader's zone.
LATER = "\x1f"
_NESTING = 4
# The conversions a stored text may hold: named values and %% (no widths: "%(a)999999999s").
_FORMAT = re.compile(r"%(?:%|\((\w+)\)[sdif])")


class Later(str):
    """A stored text made by ``later``: kept as a text (not re-read) when put in another. Its
    ``parts`` are what it keeps ([text, values(, plural, count)]), as they are nested in another."""

    parts: list

    @classmethod
    def of(cls, parts: list) -> Later:
        made = cls(LATER + json.dumps(parts, ensure_ascii=False, separators=(",", ":")))
        made.parts = parts
        return made


def later(text, /, **values) -> Later:
    """``text`` (marked for translation, or a lazy text) with its ``values``, to store and
    ``shown`` later. A value may be a ``later`` text, a lazy text, a time or a list of them
    (shown joined)."""
    if isinstance(text, LazyString):
        if text._func is ngettext and len(text._args) == 3:
            return later_plural(*text._args, **text._kwargs, **values)
        if text._func is gettext and len(text._args) == 1:
            text, values = text._args[0], {**text._kwargs, **values}
        else:
            text = str(text)  # another kind of lazy text: as it reads now
    return Later.of([str(text), {name: _kept(value) for name, value in values.items()}])


def later_plural(text: str, plural: str, count: int, /, **values) -> Later:
    """``later`` for a text with a plural form, chosen by ``count`` (``%(num)d``) when shown."""
    return Later.of([text, {name: _kept(value) for name, value in values.items()}, plural, count])


def _kept(value):
    if isinstance(value, LazyString):
        value = later(value)
    if isinstance(value, Later):
        return {"later": value.parts}
    if isinstance(value, datetime):
        return {"when": value.isoformat()}
    if isinstance(value, (list, tuple)):
        return [_kept(item) for item in value]
    if value is None or isinstance(value, (int, float, str)):
        return value
    return str(value)


def shown(value) -> str:
    """A stored text in the reader's language: a ``later`` text translated and filled in, any
    other text as it is (texts stored before, a backend's own words)."""
    if not isinstance(value, str) or not value.startswith(LATER):
        return "" if value is None else str(value)
    try:
        return _shown_kept(json.loads(value[1:]), 0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, MemoryError,
            ArithmeticError):
        # Not one of ours (a backend's message that happens to start with the mark) or made
        # unreadable: shown as it was stored rather than failing the page.
        return value[1:]


def _shown_kept(kept: list, depth: int) -> str:
    text, values = kept[0], kept[1]
    if not isinstance(text, str) or not isinstance(values, dict):
        raise TypeError("not a stored text")
    translations = _translations() if has_app_context() else None
    if len(kept) == 4:
        plural, count = str(kept[2]), int(kept[3])
        text = translations.ungettext(text, plural, count) if translations else (text if count == 1 else plural)
        values = {"num": count, **values}
    elif translations:
        text = translations.ugettext(text)
    if not values or depth >= _NESTING or _FORMAT.sub("", text).count("%"):
        return text
    try:
        return text % {name: _shown_value(item, depth + 1) for name, item in values.items()}
    except (ValueError, TypeError, KeyError, ArithmeticError):
        return text  # a translation that does not fit its values: its words at least


def _shown_value(value, depth: int):
    if isinstance(value, list):
        separator = _translations().ugettext("; ") if has_app_context() else "; "
        return separator.join(str(_shown_value(item, depth)) for item in value)
    if isinstance(value, dict) and "later" in value and depth < _NESTING:
        return _shown_kept(value["later"], depth)
    if isinstance(value, dict) and "when" in value:
        moment = datetime.fromisoformat(value["when"])
        return when(moment, "%Y-%m-%d %H:%M") if has_app_context() else f"{moment:%Y-%m-%d %H:%M} UTC"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    return "" if value is None else str(value)


def shown_within(value):
    """``value`` (a stored entry's details: texts, lists, mappings) with each ``later`` text in it shown."""
    if isinstance(value, list):
        return [shown_within(item) for item in value]
    if isinstance(value, dict):
        return {key: shown_within(item) for key, item in value.items()}
    return shown(value) if isinstance(value, str) else value


class StoredReason(Exception):
    """An exception whose message may be a ``later`` text: ``str()`` reads it in the current
    language, ``stored`` keeps it as it is, for a column read later by others."""

    @property
    def stored(self) -> str:
        return self.args[0] if self.args else ""

    def __str__(self) -> str:
        return shown(self.stored)


# -- labels of stored values ---------------------------------------------------------------

# (kind, stored value) -> what people read: statuses, kinds and other values kept as codes.
LABELS: dict[tuple[str, str], object] = {}


def labels(kind: str, mapping: dict[str, object]) -> None:
    """Declare how the values of ``kind`` (a status, a kind...) read, with ``_l`` texts; an
    area declares its own at import (``labels("mailbox.status", {"enabled": _l("enabled")})``)."""
    LABELS.update({(kind, value): text for value, text in mapping.items()})


def has_label(value, kind: str) -> bool:
    return (kind, str(value)) in LABELS


def label(value, kind: str) -> str:
    """``{{ mailbox.status|label("mailbox.status") }}``: the value as people read it in their
    language (the value itself when it has no label)."""
    text = LABELS.get((kind, str(value)))
    if text is None:
        return "" if value is None else str(value)
    if isinstance(text, LazyString) and not text._kwargs and len(text._args) == 1:
        # A list shows one per row: read it through the request's translations at hand rather
        # than have the lazy text look them up anew (what str(text) does).
        return _translations().ugettext(text._args[0])
    if isinstance(text, LazyString) and not text._kwargs and len(text._args) == 2 and text._func is _pgettext:
        return _translations().upgettext(*text._args)
    return str(text)


# -- formatting -----------------------------------------------------------------------------

@lru_cache(maxsize=256)
def _zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _zone() -> ZoneInfo:
    """The request's time zone, worked out once: kept where Flask-Babel keeps it, which
    ``in_language`` (and Flask-Babel's ``refresh``) clear."""
    context = _babel_context()
    zone = getattr(context, "babel_tzinfo", None)
    if zone is None:
        zone = _zone_named(select_timezone() or "UTC")
        if context is not None:
            context.babel_tzinfo = zone
    return zone


# A list shows a date or a time on every row, and babel works each one out from the locale's
# data: each text is made once per process (it depends on nothing else).
@lru_cache(maxsize=4096)
def _day_text(day: date, locale: str) -> str:
    return format_skeleton("yMMMd", day, locale=locale)


@lru_cache(maxsize=4096)
def _date_time_text(day: date, hour: int, minute: int, locale: str) -> str:
    time_part = format_skeleton("Hm", datetime(day.year, day.month, day.day, hour, minute), locale=locale)
    return get_datetime_format("medium", locale=locale).format(time_part, _day_text(day, locale))


def when(moment: datetime | None, fmt: str | None = None) -> str:
    """A stored (naive UTC) time in the person's time zone and language: the date alone when
    ``fmt`` holds no hour, else the date and time with the zone named."""
    if moment is None:
        return ""
    zone = _zone()
    try:
        local = moment.replace(tzinfo=timezone.utc).astimezone(zone) if moment.tzinfo is None \
            else moment.astimezone(zone)
    except OverflowError:
        # At the edge of the calendar (an expiry of 9999-12-31, east of UTC): shown in UTC rather
        # than failing the page (a review).
        local = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment
    locale = getattr(_babel_context(), "babel_locale", None) or get_locale()
    locale = str(locale or "en")
    if fmt is not None and not any(mark in fmt for mark in ("%H", "%M")):
        return _day_text(local.date(), locale)
    return f"{_date_time_text(local.date(), local.hour, local.minute, locale)} {local.tzname()}"


def day(value: date | None) -> str:
    """A calendar date, written out the locale's way (4 December 2026 / 4 décembre 2026)."""
    return "" if value is None else format_date(value, "long")


def number(value) -> str:
    """A count or amount written the locale's way (1,234 / 1 234)."""
    return "" if value is None else format_decimal(value)


def filesize(value: int | None) -> str:
    """Bytes in the binary units mail quotas use, written the locale's way."""
    if value is None:
        return ""
    for unit, size in (((gettext("TB"), 1024 ** 4)), (gettext("GB"), 1024 ** 3), (gettext("MB"), 1024 ** 2),
                       (gettext("KB"), 1024)):
        if value >= size:
            amount = value / size
            return f"{format_decimal(round(amount, 1), format='#,##0.#')}\u00a0{unit}"
    return gettext("%(count)s bytes", count=format_decimal(value))
