"""What an HTTP/2 client may do only so often: stream resets (CVE-2023-44487, "rapid reset") and
frames that cost the server work but carry no request (PING, SETTINGS, empty DATA).

Counted per connection over a window that restarts every FLOOD_WINDOW seconds; past a limit the
connection answers GOAWAY ENHANCE_YOUR_CALM. The limits are far above what a legitimate client
sends: a browser resets a handful of streams when a page is left, and 100,000 requests on one
connection reset none.
"""

from __future__ import annotations

FLOOD_WINDOW = 10.0  # seconds over which resets and control frames are counted
RESETS_PER_STREAM_LIMIT = 2  # client resets allowed per FLOOD_WINDOW, times the stream limit
CONTROL_FRAME_LIMIT = 1000  # PING, SETTINGS and empty DATA frames allowed per FLOOD_WINDOW


class FloodGuard:
    """The counters of one connection; each call says whether the client is now over its limit."""

    __slots__ = ("control_frames", "reset_limit", "resets", "since")

    def __init__(self, now: float, max_streams: int) -> None:
        self.since = now
        self.resets = 0
        self.control_frames = 0
        self.reset_limit = RESETS_PER_STREAM_LIMIT * max_streams

    def _window(self, now: float) -> None:
        if now - self.since > FLOOD_WINDOW:
            self.since = now
            self.resets = self.control_frames = 0

    def reset(self, now: float) -> bool:
        """The client reset a stream: True past the rapid-reset limit."""
        self._window(now)
        self.resets += 1
        return self.resets > self.reset_limit

    def control_frame(self, now: float) -> bool:
        """A PING, SETTINGS or empty DATA frame: True past the control-frame limit."""
        self._window(now)
        self.control_frames += 1
        return self.control_frames > CONTROL_FRAME_LIMIT
