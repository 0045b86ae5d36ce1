"""Finds text meant for people that is not marked for translation.

Templates: the text between tags, the attributes people read (``title``, ``alt``,
``placeholder``, ``aria-label``...), and strings in expressions that read as words for
people (capitalised, or a phrase ending in a stop), outside ``_()``/``{% trans %}``.

Python: messages given to ``flash``, to the portal's own exceptions (their messages reach
people), form labels and validator messages, f-strings among them (a translated text takes
named placeholders instead), and any other string that reads as a sentence (capitalised,
with a space, ending in a stop), outside ``_()``/``gettext``/``lazy_gettext``/``later``.

Out of scope: docstrings, logging, the operator's command line (``portal/cli.py``) and
settings errors (``portal/config.py``), the backend adapters (``portal/backends``: a
server's own words are shown as they are, inside the portal's translated sentence), SCIM
(``portal/scim``: a protocol between machines, its errors go to an identity provider's
logs), the OpenAPI document's descriptions (``portal/api/schemas.py``,
``portal/api/documentation.py``: reference for developers, in English like the code), and
builtin exceptions (programming errors, never shown).
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import jinja2

ROOT = Path(__file__).resolve().parents[2]
WORD = re.compile(r"[^\W\d_]{2,}")
ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")
READ_ATTRIBUTES = {"title", "alt", "placeholder", "aria-label", "aria-description", "aria-roledescription"}
GETTEXT = {"_", "gettext", "ngettext", "lazy_gettext", "_l", "lazy_ngettext", "pgettext", "later",
           "later_plural"}
HOLE = "\x00"  # stands for a Jinja expression, a tag or a translated block


def _reads_as_words(text: str) -> bool:
    text = ENTITY.sub(" ", text.replace(HOLE, " "))
    return bool(WORD.search(text))


def _reads_as_label(text: str) -> bool:
    """A string of an expression that is a text for people rather than a key or class name."""
    if not WORD.search(text):
        return False
    if re.match(r"[A-ZÀ-Ý][a-zà-ÿ]", text):
        return True
    return " " in text.strip() and text.rstrip()[-1:] in ".!?…:"


class _Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=False)
        self.found: list[tuple[int, str]] = []
        self.raw = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.raw += 1
        for name, value in attrs:
            if name in READ_ATTRIBUTES and value and _reads_as_words(value):
                self.found.append((self.getpos()[0], f"{name} {value.strip()!r}"))

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.raw = max(0, self.raw - 1)

    def handle_data(self, data):
        if not self.raw and _reads_as_words(data):
            self.found.append((self.getpos()[0], repr(" ".join(data.replace(HOLE, " ").split()))))


def in_template(path: Path, name: str) -> Iterator[str]:
    source = path.read_text(encoding="utf-8")
    environment = jinja2.Environment(extensions=["jinja2.ext.i18n", "jinja2.ext.do"])
    markup: list[str] = []
    found: list[tuple[int, str]] = []
    line = 1
    in_trans = 0
    calls: list[int] = []  # parenthesis depth of each open gettext call
    depth = 0
    previous = None
    for lineno, kind, value in environment.lex(source):
        if kind == "data":
            if lineno > line:
                markup.append("\n" * (lineno - line))
                line = lineno
            markup.append(HOLE if in_trans else value)
            line += value.count("\n")
            continue
        if kind == "whitespace":  # the lexer's spaces inside tags: "{% trans %}" follows "{%" all the same
            continue
        if kind in ("variable_begin", "block_begin"):
            markup.append(HOLE)
        if kind == "name" and previous == "block_begin" and value == "trans":
            in_trans += 1
        elif kind == "name" and previous == "block_begin" and value == "endtrans":
            in_trans -= 1
        if kind == "operator" and value == "(":
            depth += 1
            if previous in GETTEXT:
                calls.append(depth)
        elif kind == "operator" and value == ")":
            if calls and calls[-1] == depth:
                calls.pop()
            depth -= 1
        elif kind == "string" and not calls and not in_trans:
            text = value[1:-1] if value[:1] in "'\"" and value[-1:] == value[:1] else value
            if _reads_as_label(text) or (previous == "else" and " " in text.strip()
                                                and re.fullmatch(r"[^\W\d_’' ]+(?: [^\W\d_’']+)+", text.strip())):
                found.append((lineno, repr(text)))
        previous = value if kind == "name" else kind
    page = _Page()
    page.feed("".join(markup))
    page.close()
    for lineno, text in page.found:
        if name.endswith(".txt") and text.startswith("'Subject:"):
            if not _reads_as_words(text.removeprefix("'Subject:")):
                continue
        found.append((lineno, text))
    for lineno, text in sorted(found, key=lambda item: item[0]):
        yield f"{name}:{lineno}: {text}"


def in_templates() -> Iterator[str]:
    for path in sorted((ROOT / "templates").rglob("*")):
        if path.suffix in (".html", ".txt"):
            yield from in_template(path, str(path.relative_to(ROOT)))


# -- Python -----------------------------------------------------------------------------------

SKIPPED = ("portal/cli.py", "portal/config.py", "portal/catalogues.py", "portal/backends/", "portal/scim/",
           "portal/api/schemas.py", "portal/api/documentation.py")
LOGGING = {"debug", "info", "warning", "error", "exception", "critical", "log", "print"}
BUILTIN_EXCEPTIONS = {name for name in dir(builtins) if name.endswith(("Error", "Exception", "Exit"))}


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _is_text(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(part, ast.Constant) and WORD.search(str(part.value)) for part in node.values)
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and bool(WORD.search(node.value))


def _shown(node: ast.AST) -> str:
    if isinstance(node, ast.JoinedStr):
        return "".join(str(part.value) if isinstance(part, ast.Constant) else "{" + ast.unparse(part.value) + "}"
                       for part in node.values)
    return node.value


def _sentence(text: str) -> bool:
    return bool(re.match(r"[A-ZÀ-Ý]", text)) and " " in text and text.rstrip()[-1:] in ".!?…"


def in_module(path: Path, name: str) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    excused: set[int] = set()  # ids of string nodes inside gettext, logging or docstrings
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _name(node.func) in GETTEXT | LOGGING | BUILTIN_EXCEPTIONS:
            excused.update(id(inner) for inner in ast.walk(node))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                excused.add(id(first.value))
        if isinstance(node, ast.Dict):  # keys are names, not texts
            excused.update(id(key) for key in node.keys if key is not None)
        if isinstance(node, ast.Compare):  # comparing with a text is reading it, not showing it
            excused.update(id(inner) for inner in ast.walk(node))
        if isinstance(node, ast.Subscript):
            excused.update(id(inner) for inner in ast.walk(node.slice))
    flagged: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in excused:
            continue
        callee = _name(node.func)
        arguments: list[ast.AST] = []
        if callee == "flash" or (callee.endswith(("Error", "Refused", "Invalid", "Failure", "Exception"))
                                 and callee not in BUILTIN_EXCEPTIONS):
            arguments = node.args[:1]
        elif callee == "problem":
            arguments = node.args[1:2]
        elif callee.endswith("Field"):
            arguments = node.args[:1] + [kw.value for kw in node.keywords if kw.arg in ("label", "description")]
        arguments += [kw.value for kw in node.keywords if kw.arg == "message"]
        for argument in arguments:
            if _is_text(argument) and id(argument) not in excused:
                flagged.append((argument.lineno, repr(_shown(argument))))
                excused.update(id(inner) for inner in ast.walk(argument))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in excused \
                and _sentence(node.value):
            flagged.append((node.lineno, repr(node.value)))
        elif isinstance(node, ast.JoinedStr) and id(node) not in excused and _sentence(_shown(node)):
            flagged.append((node.lineno, repr(_shown(node))))
            excused.update(id(inner) for inner in ast.walk(node))
    for lineno, text in sorted(flagged):
        yield f"{name}:{lineno}: {text}"


def in_python() -> Iterator[str]:
    for path in sorted((ROOT / "portal").rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if not name.startswith(SKIPPED):
            yield from in_module(path, name)
