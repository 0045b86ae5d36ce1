from flask import Flask, request
from flask_wtf.csrf import CSRFError

from portal.web.render import render

MESSAGES = {
    400: ("Bad request", "The request could not be understood. Go back, reload the page and try again."),
    401: ("Please log in", "You need to log in to do that."),
    403: ("Not allowed", "You do not have the permission this page needs. Ask an administrator of the account."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Not allowed", "That action is not available this way."),
    413: ("Too large", "The upload is larger than this portal accepts."),
    429: ("Slow down", "Too many attempts. Wait a moment and try again."),
    500: ("Something went wrong", "The error has been logged. Try again in a moment."),
}


def _page(code: int, detail: str | None = None):
    title, text = MESSAGES.get(code, ("Error", "Something went wrong."))
    return render("errors/error.html", status=code, code=code, title=title, text=detail or text)


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return _page(400, "The form had expired or was not sent by this portal. Reload the page and try again.")

    for code in MESSAGES:
        app.register_error_handler(code, lambda error, code=code: _page(code))

    @app.errorhandler(Exception)
    def unexpected(error):
        from werkzeug.exceptions import HTTPException

        if isinstance(error, HTTPException):
            return _page(error.code or 500)
        if app.testing:
            raise error
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return _page(500)
