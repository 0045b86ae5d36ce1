"""Entry point: ``flask --app app run`` or any WSGI server pointed at ``app:app``."""

import sys

from portal import ConfigError, create_app

try:
    app = create_app()
except ConfigError as error:
    sys.exit(f"The portal cannot start.\n{error}")
