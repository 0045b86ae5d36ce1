"""The data generation (``portal.web.pagecache``): one number every writing transaction raises as
it commits; a row on SQLite, the sequence ``data_generation_seq`` on PostgreSQL (made by migration
0043, as the row is)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, Table

from portal.extensions import db

data_generation = Table(
    "data_generation", db.metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("n", BigInteger, nullable=False, server_default="0"),
)
