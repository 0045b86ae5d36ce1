"""SCIM filters (RFC 7644 §3.4.2.2) as SQL: scim2-models parses and checks them against the
schema, this module turns the parsed tree into a WHERE clause, so a filter on 10,000 people is
one indexed query and never a scan in Python.

Each resource type names the attributes it can filter on and how each reads in SQL; a filter on
any other attribute is refused with ``invalidFilter`` rather than answered wrongly.
"""

from __future__ import annotations

from collections.abc import Callable

from scim2_models import InvalidFilterException
from scim2_models.path import (AttrPath, CompareOperator, Comparison, FilterNode, FilterVisitor, LogicalExpr,
                               LogicalOperator, Not, Present, ValuePath)
from sqlalchemy import and_, false, func, literal, not_, or_, true
from sqlalchemy.sql.elements import ColumnElement

from portal.web.inputs import parse_id, unstorable

# An attribute in SQL: given the operator (None for ``pr``) and the filter's value, the clause.
Attribute = Callable[[CompareOperator | None, object], ColumnElement]

CORE_URNS = ("urn:ietf:params:scim:schemas:core:2.0:user", "urn:ietf:params:scim:schemas:core:2.0:group")
# The most comparisons one filter may make: far above what identity providers send (one or two),
# and below what a database can plan (SQLite refuses an expression a thousand deep).
MAX_TERMS = 100


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _as_text(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidFilterException(detail=f"{value!r} is not a string")
    if unstorable(value):  # written \u0000 or a lone \ud800 in the filter; no database text may hold one
        raise InvalidFilterException(detail="A filter value cannot hold a NUL character or half of a "
                                            "UTF-16 surrogate pair.")
    return value


def text(column, *, case_exact: bool = False, stored_lower: bool = False) -> Attribute:
    """A string attribute; compared without case unless ``case_exact`` (RFC 7643 §2.1).
    ``stored_lower``: the column holds lower-case text already, so its index serves."""

    def clause(op, value):
        present = and_(column.is_not(None), column != "")
        if op is None:
            return present
        wanted = _as_text(value)
        subject = column
        if not case_exact:
            wanted = wanted.lower()
            subject = column if stored_lower else func.lower(column)
        if op == CompareOperator.eq:
            return subject == wanted
        if op == CompareOperator.ne:
            return or_(column.is_(None), subject != wanted)
        if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
            pattern = _escape_like(wanted)
            pattern = {CompareOperator.co: f"%{pattern}%", CompareOperator.sw: f"{pattern}%",
                       CompareOperator.ew: f"%{pattern}"}[op]
            return subject.like(pattern, escape="\\")
        return {CompareOperator.gt: subject > wanted, CompareOperator.ge: subject >= wanted,
                CompareOperator.lt: subject < wanted, CompareOperator.le: subject <= wanted}[op]

    return clause


def identifier(column) -> Attribute:
    """A resource id: the row's integer key, written as a string on the wire."""

    def clause(op, value):
        if op is None:
            return true()
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise InvalidFilterException(detail="ids are compared with eq or ne only")
        number = parse_id(_as_text(value))
        matches = column == number if number is not None else false()
        return matches if op == CompareOperator.eq else not_(matches)

    return clause


def boolean(is_true: ColumnElement) -> Attribute:
    def clause(op, value):
        if op is None:
            return true()
        if op not in (CompareOperator.eq, CompareOperator.ne):
            raise InvalidFilterException(detail="booleans are compared with eq or ne only")
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if not isinstance(value, bool):
            raise InvalidFilterException(detail=f"{value!r} is not true or false")
        wanted = is_true if value else not_(is_true)
        return wanted if op == CompareOperator.eq else not_(wanted)

    return clause


def constant(constant_value: object) -> Attribute:
    """A sub-attribute every value has the same of (the one e-mail address is of type work)."""

    def clause(op, value):
        if op is None:
            return true()
        if isinstance(constant_value, str):
            return text(literal(constant_value))(op, value)
        return boolean(true() if constant_value else false())(op, value)

    return clause


def _key(attr_path: AttrPath, prefix: str = "") -> str:
    uri = (attr_path.uri or "").lower()
    name = attr_path.attr.lower() + (f".{attr_path.sub_attr.lower()}" if attr_path.sub_attr else "")
    if uri and uri not in CORE_URNS:
        return f"{uri}:{prefix}{name}"
    return prefix + name


class _ToSql(FilterVisitor[ColumnElement]):
    def __init__(self, attributes: dict[str, Attribute], prefix: str = "", terms: list[int] | None = None):
        self.attributes = attributes
        self.prefix = prefix
        self.terms = terms if terms is not None else [0]  # shared with the visitors of inner filters

    def _attribute(self, attr_path: AttrPath) -> Attribute:
        self.terms[0] += 1
        if self.terms[0] > MAX_TERMS:
            raise InvalidFilterException(detail=f"A filter makes at most {MAX_TERMS} comparisons.")
        key = _key(attr_path, self.prefix)
        attribute = self.attributes.get(key) or self.attributes.get(f"{key}.value")
        if attribute is None:
            raise InvalidFilterException(detail=f"Filtering on {attr_path} is not supported here.")
        return attribute

    def visit_comparison(self, node: Comparison) -> ColumnElement:
        return self._attribute(node.attr_path)(node.op, node.value)

    def visit_present(self, node: Present) -> ColumnElement:
        return self._attribute(node.attr_path)(None, None)

    def visit_not(self, node: Not) -> ColumnElement:
        return not_(self.visit(node.expr))

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)

    def visit_value_path(self, node: ValuePath) -> ColumnElement:
        # Every multi-valued attribute here has its values in one row (one address, or a
        # membership test built as EXISTS), so the inner filter reads the same row.
        inner = _ToSql(self.attributes, prefix=_key(node.attr_path, self.prefix) + ".", terms=self.terms)
        return inner.visit(node.val_filter)


def to_sql(node: FilterNode, attributes: dict[str, Attribute]) -> ColumnElement:
    """The WHERE clause for a parsed filter; raises InvalidFilterException for what it cannot say."""
    return _ToSql(attributes).visit(node)
