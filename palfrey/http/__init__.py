"""HTTP/1.1: one protocol core, two parser adapters (httptools, h11)."""
