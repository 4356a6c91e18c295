"""HPACK encoding (RFC 7541) of the response heads a server sends, cached so a repeated head is a
few bytes of indexes and costs one dict lookup.

Strategy:
- a (name, value) pair in the static table is its index (one byte for `:status: 200`);
- any other pair is sent once as a literal with incremental indexing (name by static index when
  the static table has it, strings Huffman-coded when that is shorter) and from then on as the
  index of its dynamic entry, one byte while the index is below 127 (§6.1);
- `set-cookie` values are never indexed (§7.1.3: they are per-client secrets, and indexing them
  would let one response's cookie be probed by compression ratios), nor is any pair too large to
  sit in the table;
- a whole head that was encoded without inserting anything is remembered, keyed by its tuple of
  pairs, together with the number of insertions so far: it stays valid exactly until the next
  insertion renumbers the dynamic entries. A server answering the same few heads repeatedly
  therefore encodes each once, then only looks it up.

The dynamic table size follows the client's SETTINGS_HEADER_TABLE_SIZE, capped at `max_table_size`
(a bigger table only costs server memory); a change is announced by a size update at the start of
the next block, the smallest size since the last block first if it shrank and grew again (§4.2).
"""

from __future__ import annotations

from collections.abc import Sequence

from palfrey.http2.wire import huffman
from palfrey.http2.wire.tables import STATIC_LEN, STATIC_NAMES, STATIC_PAIRS

Field = tuple[bytes, bytes]
NEVER_INDEXED = frozenset({b"set-cookie", b"authorization", b"proxy-authorization"})
HEADS_CACHED = 64  # distinct whole heads remembered (the cache is emptied when it fills)
_ONE_BYTE_INDEX = tuple(bytes((0x80 | i,)) for i in range(127))


def integer(value: int, prefix_bits: int, first: int) -> bytes:
    """Encode `value` with an N-bit prefix (§5.1), `first` holding the bits above the prefix."""
    mask = (1 << prefix_bits) - 1
    if value < mask:
        return bytes((first | value,))
    out = bytearray((first | mask,))
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def string(data: bytes) -> bytes:
    """A string literal (§5.2): Huffman-coded unless that is longer (ties as in RFC 7541 Appendix C.6)."""
    coded_length = huffman.encoded_length(data)
    if coded_length <= len(data):
        return integer(coded_length, 7, 0x80) + huffman.encode(data)
    return integer(len(data), 7, 0) + data


class Encoder:
    """One connection's outbound HPACK state and its caches."""

    __slots__ = (
        "entries",
        "heads",
        "inserted",
        "max_size",
        "max_table_size",
        "never_indexed",
        "pending",
        "positions",
        "size",
    )

    def __init__(self, max_table_size: int = 4096, never_indexed: frozenset[bytes] = NEVER_INDEXED) -> None:
        self.never_indexed = never_indexed  # names whose values are sent as never-indexed literals
        self.max_table_size = max_table_size  # our own cap on the table's memory
        self.max_size = min(4096, max_table_size)  # the table size in use; 4096 until the client's SETTINGS
        self.entries: list[tuple[Field, int]] = []  # (pair, its size), oldest first
        self.size = 0
        self.inserted = 0  # insertions so far: the newest entry's sequence number is inserted - 1
        self.positions: dict[Field, int] = {}  # pair -> sequence number of its dynamic entry
        self.heads: dict[tuple[Field, ...], tuple[int, bytes]] = {}  # head -> (inserted, block)
        self.pending: list[int] = []  # size updates owed at the start of the next block

    def set_peer_table_size(self, size: int) -> None:
        """The client's SETTINGS_HEADER_TABLE_SIZE arrived (it bounds our dynamic table)."""
        size = min(size, self.max_table_size)
        if size == self.max_size and not self.pending:
            return
        low = min([*self.pending, size])
        self.pending = [low] if low == size else [low, size]
        self.max_size = size
        self._evict(size)
        self.heads.clear()

    def _evict(self, limit: int) -> None:
        entries = self.entries
        drop = 0
        size = self.size
        while size > limit:
            pair, entry_size = entries[drop]
            size -= entry_size
            if self.positions.get(pair) == self.inserted - len(entries) + drop:
                del self.positions[pair]
            drop += 1
        if drop:
            del entries[:drop]
            self.size = size

    def _insert(self, pair: Field, entry_size: int) -> None:
        self._evict(self.max_size - entry_size)
        self.entries.append((pair, entry_size))
        self.size += entry_size
        self.positions[pair] = self.inserted
        self.inserted += 1

    def encode(self, fields: Sequence[Field]) -> bytes:
        """Encode one head: a sequence of (name, value) tuples, names already lowercase."""
        key = tuple(fields)
        cached = self.heads.get(key)
        if cached is not None and cached[0] == self.inserted:
            return cached[1]
        out = bytearray()
        if self.pending:
            for size in self.pending:
                out += integer(size, 5, 0x20)
            self.pending = []
        before = self.inserted
        positions = self.positions
        for pair in key:
            sequence = positions.get(pair)
            if sequence is not None:
                index = STATIC_LEN + self.inserted - sequence
                out += _ONE_BYTE_INDEX[index] if index < 127 else integer(index, 7, 0x80)
                continue
            index = STATIC_PAIRS.get(pair, 0)
            if index:
                out += _ONE_BYTE_INDEX[index]
                continue
            name, value = pair
            name_index = STATIC_NAMES.get(name, 0)
            entry_size = len(name) + len(value) + 32
            if name in self.never_indexed:
                out += integer(name_index, 4, 0x10)
            elif entry_size > self.max_size:
                out += integer(name_index, 4, 0x00)
            else:
                out += integer(name_index, 6, 0x40)
                self._insert(pair, entry_size)
            if not name_index:
                out += string(name)
            out += string(value)
        block = bytes(out)
        if self.inserted == before:
            if len(self.heads) >= HEADS_CACHED:
                self.heads.clear()
            self.heads[key] = (self.inserted, block)
        return block
