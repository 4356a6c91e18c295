"""Palfrey: a pre-fork ASGI/WSGI application server."""

from palfrey.config import Config
from palfrey.main import run
from palfrey.server.server import Server

__version__ = "0.1.0"
__all__ = ["Config", "Server", "__version__", "run"]
