from flask import abort, g


def load_or_404(finder, object_id):
    """Load an object of the current account, or 404: another account's ids look unknown."""
    found = finder(g.account, object_id)
    if found is None:
        abort(404)
    return found
