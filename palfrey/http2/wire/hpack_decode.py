"""HPACK decoding (RFC 7541 §3, §6) of the header blocks a client sends.

Limits, both from what the server advertises:
- the dynamic table never grows past `max_table_size` (SETTINGS_HEADER_TABLE_SIZE): a size update
  above it is a COMPRESSION_ERROR (§6.3), and so is one after the first field of a block (§4.2);
- the decoded header list is summed while decoding (RFC 9113 §6.5.2: name + value + 32 per
  field) and fields stop being collected once it passes `max_list_size`. An "HPACK bomb" (one big
  dynamic entry referenced thousands of times) therefore costs one list entry per reference until
  the cap, never the decoded size. The block is still decoded to its end so the dynamic table stays
  in step with the client's, then HeaderListTooLarge refuses that one request.

Every string is sliced from the block or Huffman-decoded from a slice of it, so the memory a
block can cost is bounded by the block, which the frame reader bounds (`max_header_block`).

A client repeating a request sends the same few bytes of indexes each time (h2load: `8486bf82be`),
and they decode to the same fields as long as the dynamic table has not changed. So a short block
that changed nothing in the table is remembered with the table's `generation` (bumped by every
insertion, eviction or resize), and decoding it again is one dict lookup and a list copy.
"""

from __future__ import annotations

from palfrey.http2.wire import huffman
from palfrey.http2.wire.errors import HeaderListTooLarge, HpackError
from palfrey.http2.wire.tables import STATIC_LEN, STATIC_TABLE

Field = tuple[bytes, bytes]
MAX_INTEGER_BYTES = 4  # continuation bytes after the prefix: values up to ~2**28, plenty for any limit
CACHED_BLOCK_SIZE = 128  # longer blocks carry literals: not worth hashing and keeping
BLOCKS_CACHED = 64  # distinct blocks remembered (the cache is emptied when it fills)


class Decoder:
    """One connection's inbound HPACK state: the dynamic table and the limits above."""

    __slots__ = (
        "blocks",
        "entries",
        "generation",
        "max_list_size",
        "max_size",
        "max_table_size",
        "must_update",
        "size",
    )

    def __init__(self, max_table_size: int = 4096, max_list_size: int = 65536) -> None:
        self.entries: list[Field] = []  # oldest first: dynamic index 62 is entries[-1]
        self.size = 0  # RFC 7541 §4.1 size of the entries
        self.max_size = max_table_size  # current maximum, as set by the client's size updates
        self.max_table_size = max_table_size  # what SETTINGS_HEADER_TABLE_SIZE allows
        self.max_list_size = max_list_size
        self.must_update = False  # our setting shrank: the next block must start with an update
        self.generation = 0  # bumped by every change to the dynamic table
        self.blocks: dict[bytes, tuple[int, list[Field]]] = {}  # block -> (generation, fields)

    def set_max_table_size(self, size: int) -> None:
        """Our SETTINGS_HEADER_TABLE_SIZE changed (and the client acknowledged it). Shrinking it
        obliges the client to send a size update at the start of its next block (§4.2)."""
        if size < self.max_size:
            self.must_update = True
        self.max_table_size = size

    def _integer(self, block: bytes, pos: int, mask: int) -> tuple[int, int]:
        """An integer with an N-bit prefix (§5.1) at `pos`: (value, position after it)."""
        value = block[pos] & mask
        pos += 1
        if value < mask:
            return value, pos
        shift = 0
        end = len(block)
        while True:
            if pos >= end:
                raise HpackError("header block ends inside an integer")
            byte = block[pos]
            pos += 1
            value += (byte & 0x7F) << shift
            if byte < 0x80:
                return value, pos
            shift += 7
            if shift >= 7 * MAX_INTEGER_BYTES:
                raise HpackError("integer too long")

    def _string(self, block: bytes, pos: int) -> tuple[bytes, int]:
        """A string literal (§5.2) at `pos`: (bytes, position after it)."""
        if pos >= len(block):
            raise HpackError("header block ends before a string")
        coded = block[pos] & 0x80
        length, pos = self._integer(block, pos, 0x7F)
        end = pos + length
        if end > len(block):
            raise HpackError("string runs past the header block")
        if coded:
            return huffman.decode(block[pos:end]), end
        return block[pos:end], end

    def _literal(self, block: bytes, pos: int, mask: int) -> tuple[Field, int]:
        """A literal field (§6.2): its name by index (`mask` bits of prefix) or as a string, then
        its value."""
        index, pos = self._integer(block, pos, mask)
        if index:
            name = self._indexed(index)[0]
        else:
            name, pos = self._string(block, pos)
        value, pos = self._string(block, pos)
        return (name, value), pos

    def _indexed(self, index: int) -> Field:
        if index <= STATIC_LEN:
            if index == 0:
                raise HpackError("index 0")
            return STATIC_TABLE[index - 1]
        offset = index - STATIC_LEN
        if offset > len(self.entries):
            raise HpackError(f"index {index} past the dynamic table")
        return self.entries[-offset]

    def _add(self, field: Field) -> None:
        """Insert into the dynamic table, evicting the oldest entries to make room (§4.4)."""
        self.generation += 1
        entry_size = len(field[0]) + len(field[1]) + 32
        entries = self.entries
        if entry_size > self.max_size:
            entries.clear()
            self.size = 0
            return
        size = self.size + entry_size
        if size > self.max_size:
            drop = 0
            while size > self.max_size:
                name, value = entries[drop]
                size -= len(name) + len(value) + 32
                drop += 1
            del entries[:drop]
        entries.append(field)
        self.size = size

    def _resize(self, size: int) -> None:
        if size > self.max_table_size:
            raise HpackError(f"table size update to {size} above the advertised {self.max_table_size}")
        self.generation += 1
        self.max_size = size
        entries = self.entries
        while self.size > size:
            name, value = entries.pop(0)
            self.size -= len(name) + len(value) + 32

    def decode(self, block: bytes) -> list[Field]:
        """Decode one complete header block into (name, value) pairs, in order.

        HpackError (a connection error) for a malformed block; HeaderListTooLarge (after the
        whole block was processed) for a list over `max_list_size`."""
        if self.must_update:
            if not block or block[0] & 0xE0 != 0x20:
                raise HpackError("expected a dynamic table size update")
            self.must_update = False
        cached = self.blocks.get(block)
        if cached is not None and cached[0] == self.generation:
            return cached[1].copy()
        generation = self.generation
        fields = self._decode(block)
        if generation == self.generation and len(block) <= CACHED_BLOCK_SIZE:
            if len(self.blocks) >= BLOCKS_CACHED:
                self.blocks.clear()
            self.blocks[block] = (generation, fields.copy())
        return fields

    def _decode(self, block: bytes) -> list[Field]:
        fields: list[Field] = []
        total = 0
        limit = self.max_list_size
        pos = 0
        end = len(block)
        started = False  # a field was decoded: size updates are no longer allowed
        entries = self.entries
        while pos < end:
            byte = block[pos]
            if byte & 0x80:  # §6.1 indexed field
                index = byte & 0x7F
                if 0 < index <= STATIC_LEN:
                    field = STATIC_TABLE[index - 1]
                    pos += 1
                elif STATIC_LEN < index < 0x7F and index - STATIC_LEN <= len(entries):
                    field = entries[STATIC_LEN - index]
                    pos += 1
                else:
                    index, pos = self._integer(block, pos, 0x7F)
                    field = self._indexed(index)
            elif byte & 0x40:  # §6.2.1 literal with incremental indexing
                field, pos = self._literal(block, pos, 0x3F)
                self._add(field)
            elif byte & 0x20:  # §6.3 dynamic table size update
                if started:
                    raise HpackError("table size update after a header field")
                size, pos = self._integer(block, pos, 0x1F)
                self._resize(size)
                continue
            else:  # §6.2.2 without indexing, §6.2.3 never indexed
                field, pos = self._literal(block, pos, 0x0F)
            started = True
            total += len(field[0]) + len(field[1]) + 32
            if total <= limit:
                fields.append(field)
        if total > limit:
            raise HeaderListTooLarge(f"header list of {total} bytes, limit {limit}")
        return fields
