"""A leaner h2 connection: the same state machine with SETTINGS values in lists instead of deques.

Why: an idle HTTP/2 connection cost 3.5x an idle HTTP/1.1 connection (19.6 vs 5.6 KiB, measured by
the `h2-idle1000` bench row), against a target of 2x. tracemalloc put ~12 KiB of h2's ~17 KiB per
connection in `h2.settings.Settings`: every setting's value history is a `collections.deque`, and a
deque allocates a 64-slot block (~760 bytes) even for the one value it almost always holds; a
connection has two Settings objects of 7-8 settings each. A one-element list costs ~70 bytes.

h2 only ever calls `append`, `popleft`, `[0]` and `len` on those values (h2/settings.py), so a list
with a `popleft` behaves the same. The values are swapped after every call that can add a setting
(our own SETTINGS at start, a client's SETTINGS frame), never while h2 holds a reference to one.
If a future h2 stores its settings differently, `compact` leaves them alone: only memory is lost.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

import h2.connection
import h2.events
import h2.settings

if TYPE_CHECKING:
    from h2._typing import Buffer  # h2's own parameter type (a buffer-protocol Protocol)


class SettingValues(list[Any]):
    """A setting's current value followed by the values sent but not yet acknowledged."""

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


def compact(settings: h2.settings.Settings) -> None:
    """Replace the deques of one Settings object by `SettingValues`, keeping their contents."""
    values = getattr(settings, "_settings", None)
    if not isinstance(values, dict):
        return
    for key, history in values.items():
        if type(history) is collections.deque:
            values[key] = SettingValues(history)


class CompactSettings(h2.connection.H2Connection):
    """Mix in before any `H2Connection` subclass: its settings stay compact (module docstring)."""

    def initiate_connection(self) -> None:
        compact(self.local_settings)
        compact(self.remote_settings)
        super().initiate_connection()

    def initiate_upgrade_connection(self, settings_header: bytes | None = None) -> bytes | None:
        result = super().initiate_upgrade_connection(settings_header)  # calls initiate_connection
        compact(self.remote_settings)  # the HTTP2-Settings header's values
        return result

    def receive_data(self, data: Buffer) -> list[h2.events.Event]:
        events = super().receive_data(data)
        for event in events:
            if type(event) is h2.events.RemoteSettingsChanged:
                compact(self.remote_settings)
                break
        return events


class CompactH2Connection(CompactSettings, h2.connection.H2Connection):
    """h2's connection with compact settings."""
