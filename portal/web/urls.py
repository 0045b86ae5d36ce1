from urllib.parse import urlsplit

from flask import current_app, url_for


def safe_next(target: str | None) -> str | None:
    """Only same-site paths may be redirect targets after log-in."""
    if not target:
        return None
    # Browsers read "\\" as "/" ("/\\evil.example" goes off-site) and drop tabs and newlines.
    if "\\" in target or any(ord(character) < 32 or ord(character) == 127 for character in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def external_url(endpoint: str, **values) -> str:
    """An absolute link for e-mails, on the configured public address.

    Built from the URL map alone, so workers (no request) make the same links.
    """
    base = urlsplit(current_app.config["PORTAL"]["BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/", url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)


# The largest id a route takes (portal.web.inputs.MAX_ID): stands for the id that varies.
_ANY_ID = 2**31 - 1


class RowLinks:
    """Links to one endpoint that differ only in the id at the end of their path (one per row of
    a list), built by the router once: building each row's with ``url_for`` costs more than the
    rest of the row."""

    def __init__(self, endpoint: str, key: str, **values):
        built = url_for(endpoint, **values, **{key: _ANY_ID})
        self._before, found, self._after = built.rpartition(str(_ANY_ID))
        if not found:
            raise ValueError(f"{endpoint}: {key} is not in the path")

    def __call__(self, row_id: int) -> str:
        return f"{self._before}{int(row_id)}{self._after}"
