"""The master/worker channel (palfrey/supervisor/channel.py) on real socketpairs."""

from __future__ import annotations

from palfrey.supervisor.channel import Channel


def test_a_failed_write_does_not_hide_what_the_exited_peer_sent() -> None:
    """The peer wrote its last lines and exited; a write to it fails (EPIPE) before they are read.

    The lines must still be read, then EOF: under gunicorn a scrape's `stats` request to a worker
    that had just exited turned its `bye max-requests` into a crash and dropped its final counts.
    """
    here, there = Channel.pair()
    assert there.send("stats 0 {}") and there.send("bye max-requests")
    there.close()
    assert not here.send("stats 1")
    assert here.broken and not here.closed
    assert not here.send("stats 2")  # no more writes once one failed
    assert here.receive() == ["stats 0 {}", "bye max-requests"]
    assert here.closed
    here.close()


def test_receive_reads_up_to_eof_and_keeps_a_partial_line() -> None:
    here, there = Channel.pair()
    there.sock.sendall(b"ready\npong\nsta")
    assert here.receive() == ["ready", "pong"]
    assert not here.closed
    there.sock.sendall(b"ts 3 {}\n")
    there.close()
    assert here.receive() == ["stats 3 {}"]
    assert here.closed
    here.close()
