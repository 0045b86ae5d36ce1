from urllib.parse import urlsplit

from flask import current_app


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
