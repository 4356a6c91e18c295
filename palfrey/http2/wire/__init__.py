"""palfrey's own HTTP/2 wire layer (work in progress, not wired into the server yet).

A server-only, sans-IO frame codec (frames.py reads, writer.py writes) and HPACK
(hpack_decode.py, hpack_encode.py, huffman.py), written from RFC 9113 and RFC 7541 for a lean hot
path: the `h2` library spends ~750k instructions on one request where palfrey's whole HTTP/1.1
request costs ~126k (docs/architecture.md, "palfrey's HTTP/2 engine (in progress)").
"""
