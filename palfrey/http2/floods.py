"""What an HTTP/2 client may do only so often: stream resets (CVE-2023-44487 "rapid reset", and
CVE-2025-8671 "MadeYouReset": streams the server resets because of the client's frames) and frames
that cost the server work but carry no request (CVE-2019-9512/9515/9518 and kin).

Counted per connection over a window that restarts every FLOOD_WINDOW seconds; past a limit the
connection answers GOAWAY ENHANCE_YOUR_CALM.

- **Resets**: every stream reset, by the client (RST_STREAM) or by the server for the client's
  fault (a malformed head, a body at odds with its content-length or over the body limit, a
  WINDOW_UPDATE that overflows a stream's window, DATA on a half-closed stream): at most
  RESETS_PER_STREAM_LIMIT times the concurrent-stream limit.
- **Useless frames**: PING, SETTINGS, WINDOW_UPDATE, PRIORITY, DATA without END_STREAM carrying
  fewer than SMALL_DATA bytes, and frames h2 takes without an event (DATA or RST_STREAM on a
  closed stream, an unknown frame type): CONTROL_FRAME_LIMIT of them, plus an allowance the
  connection earns by real work: EARN_PER_STREAM per request opened (a browser's PRIORITY and
  WINDOW_UPDATE frames around each request) and one per DATA frame the server sends (the
  client's WINDOW_UPDATE frames answer them).

The limits are far above what a legitimate client sends: a browser resets a handful of streams
when a page is left, h2load's 100,000 requests on one connection reset none, and a download's
WINDOW_UPDATE frames are paid for by the DATA frames they answer.
"""

from __future__ import annotations

FLOOD_WINDOW = 10.0  # seconds over which resets and useless frames are counted
RESETS_PER_STREAM_LIMIT = 2  # resets allowed per FLOOD_WINDOW, times the stream limit
CONTROL_FRAME_LIMIT = 1000  # useless frames allowed per FLOOD_WINDOW before any allowance
EARN_PER_STREAM = 8  # useless frames a request opened adds to the allowance
SMALL_DATA = 16  # a DATA frame under this many bytes (not ending its stream) counts as useless


class FloodGuard:
    """The counters of one connection; each call says whether the client is now over its limit."""

    __slots__ = ("control_frames", "earned", "reset_limit", "resets", "since")

    def __init__(self, now: float, max_streams: int) -> None:
        self.since = now
        self.resets = 0
        self.control_frames = 0
        self.earned = 0  # allowance of useless frames earned by real work in this window
        self.reset_limit = RESETS_PER_STREAM_LIMIT * max_streams

    def _window(self, now: float) -> None:
        if now - self.since > FLOOD_WINDOW:
            self.since = now
            self.resets = self.control_frames = self.earned = 0

    def reset(self, now: float) -> bool:
        """A stream was reset (by the client, or by us for the client's fault): True past the limit."""
        self._window(now)
        self.resets += 1
        return self.resets > self.reset_limit

    def control_frame(self, now: float, count: int = 1) -> bool:
        """`count` useless frames: True past the limit and the allowance earned."""
        self._window(now)
        self.control_frames += count
        return self.control_frames > CONTROL_FRAME_LIMIT + self.earned
