"""Mail backend adapters: the interface, the registry and the built-in adapters.

Importing this package registers every adapter, so that
``registry.backend_class(name)`` finds them by name.
"""

from . import dimail, local, mailinabox, odin, opensrs  # noqa: F401  (registers the adapters)
from .registry import Connection, available_backends, backend_class, load_connections, register_backend

__all__ = ["Connection", "available_backends", "backend_class", "load_connections", "register_backend"]
