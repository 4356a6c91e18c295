"""Adapters that present other application interfaces as ASGI 3."""
