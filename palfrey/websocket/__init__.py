"""WebSockets: a connection (`protocol.py`) owning an ASGI cycle (`cycle.py`) over one of two sans-I/O
engines (`websockets_engine.py`, `wsproto_engine.py`, registered in `engines.py`).

An upgrade request is parsed by the HTTP layer like any other head; `upgrade.websocket_for` builds the
`websocket` scope and the protocol that takes the transport over once the parser hands on the bytes
it received past the head.
"""
