"""Server-side cost per HTTP/2 request of the candidate libraries (h2, zttp), in process.

A client (the `h2` library) encodes N requests (HEADERS + a 4-byte DATA, END_STREAM) once; each
library then, as a server, parses them request by request and answers each with HEADERS + DATA
(END_STREAM), collecting the bytes to send. No sockets and no event loop: only the library's own
cost is measured. Run with either interpreter that has the library: `python benchmarks/h2_libraries.py`.
"""

from __future__ import annotations

import sys
import time

N = 3000


def client_bytes() -> list[bytes]:
    import h2.config
    import h2.connection

    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    client.update_settings({4: 2**31 - 1})  # a large stream window so no response waits
    client.increment_flow_control_window(2**30)
    chunks = [client.data_to_send()]
    for i in range(N):
        sid = 1 + 2 * i
        client.send_headers(
            sid,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":path", "/echo"),
                (":authority", "x"),
                ("content-type", "text/plain"),
            ],
        )
        client.send_data(sid, b"ping", end_stream=True)
        chunks.append(client.data_to_send())
    return chunks


def run_h2(chunks: list[bytes]) -> float:
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    conn.initiate_connection()
    conn.data_to_send()
    out = 0
    start = time.perf_counter()
    for chunk in chunks:
        for event in conn.receive_data(chunk):
            kind = type(event)
            if kind is h2.events.DataReceived:
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif kind is h2.events.StreamEnded:
                sid = event.stream_id
                conn.send_headers(sid, [(b":status", b"200"), (b"content-length", b"4")])
                conn.send_data(sid, b"pong", end_stream=True)
        out += len(conn.data_to_send())
    return time.perf_counter() - start


def run_zttp(chunks: list[bytes]) -> float:
    import zttp

    conn = zttp.Connection(zttp.SERVER, zttp.HTTP2)
    conn.initiate_connection()
    conn.data_to_send()
    end = zttp.EndOfMessage
    need = zttp.NEED_DATA
    out = 0
    start = time.perf_counter()
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if event is need:
                break
            if type(event) is end:
                stream = conn.stream(event.stream_id)
                stream.send_response(200, [(b"content-length", b"4")])
                stream.send_data(b"pong")
                stream.end_message()
        out += len(conn.data_to_send())
    return time.perf_counter() - start


if __name__ == "__main__":
    data = client_bytes()
    for name, fn in (("h2", run_h2), ("zttp", run_zttp)):
        try:
            best = min(fn(data) for _ in range(3))
        except ImportError as exc:
            print(f"{name}: not installed ({exc})")
            continue
        print(
            f"{name}: {best / N * 1e6:.2f} µs per request (best of 3, {N} requests, {sys.version.split()[0]})"
        )
