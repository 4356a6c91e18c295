"""WebSockets: one ASGI WebSocket cycle (`protocol.py`) over two sans-I/O engines (`engines.py`).

An upgrade request is parsed by the HTTP layer like any other head; `upgrade.websocket_for` builds the
`websocket` scope and the protocol object that takes the transport over once the parser hands on the
bytes it received past the head.
"""
