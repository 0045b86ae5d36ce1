"""Entry point: ``flask --app app run`` or any WSGI server pointed at ``app:app``.

Once the app is built, the objects of start-up (some 200,000: modules, SQLAlchemy's
mappers, templates, catalogues) are moved out of the garbage collector's reach with
``gc.freeze()``. They live as long as the process, yet every full collection walked
them all again: a pause of 40-100 ms, at random, in the middle of some request, and
behind it every request queued on that process. With them frozen a full collection
only walks what requests made. Under gunicorn's ``--preload`` the freeze happens
before the fork, which also keeps those pages shared between the processes.
"""

import gc
import sys

from portal import ConfigError, create_app

try:
    app = create_app()
except ConfigError as error:
    sys.exit(f"The portal cannot start.\n{error}")

gc.collect()
gc.freeze()
