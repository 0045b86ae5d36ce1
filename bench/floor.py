"""The floor page of ``bench/pages.py``: the least a Flask page on the portal's database costs.

One SQLAlchemy ORM query of 50 users, rendered through a Jinja template into a
small HTML table: what Flask, SQLAlchemy, Jinja, the database and the WSGI
server cost anyway, with nothing of the portal (no session, no access check).
``pages.py`` serves it with gunicorn beside the portal:

    FLOOR_DATABASE_URL=sqlite:////tmp/portal.sqlite gunicorn --pythonpath bench 'floor:served()'

``served()`` freezes the objects of start-up as the portal's ``app.py`` does, so that
neither side pays for full garbage collections over what start-up made.
"""

from __future__ import annotations

import gc
import os
from datetime import datetime

from flask import Flask, render_template
from jinja2 import DictLoader
from sqlalchemy import String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

ROWS = 50

TEMPLATE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Users</title></head>
<body>
<h1>Users</h1>
<table>
  <thead><tr><th>Name</th><th>E-mail address</th><th>Since</th></tr></thead>
  <tbody>
  {%- for user in users %}
    <tr><td>{{ user.name }}</td><td>{{ user.email }}</td><td>{{ user.created_at.strftime("%Y-%m-%d") }}</td></tr>
  {%- endfor %}
  </tbody>
</table>
</body>
</html>
"""


class Base(DeclarativeBase):
    pass


class User(Base):
    """The columns of the portal's ``users`` table the page shows."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


def create_app(database_url: str | None = None, sqlite_connection=None) -> Flask:
    """The floor app on ``database_url`` (default: the FLOOR_DATABASE_URL variable);
    ``sqlite_connection``: the class of its SQLite connections (the bench's, timing fetches)."""
    url = database_url or os.environ["FLOOR_DATABASE_URL"]
    options = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    if sqlite_connection is not None and url.startswith("sqlite"):
        options["connect_args"]["factory"] = sqlite_connection
    engine = create_engine(url, **options)
    app = Flask(__name__)
    app.jinja_loader = DictLoader({"users.html": TEMPLATE})
    app.extensions["floor_engine"] = engine

    @app.get("/")
    def users():
        with Session(engine) as session:
            rows = session.execute(select(User).order_by(User.email).limit(ROWS)).scalars().all()
            return render_template("users.html", users=rows)

    return app


def served() -> Flask:
    """The floor app as gunicorn serves it: built, then its start-up objects frozen (as ``app.py`` does)."""
    app = create_app()
    gc.collect()
    gc.freeze()
    return app
