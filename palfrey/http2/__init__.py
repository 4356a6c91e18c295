"""HTTP/2 (--http2): negotiation, the connection (h2 state machine) and streams that run the shared request cycle."""
