"""HPACK Huffman coding (RFC 7541 §5.2, Appendix B), table-driven for pure-Python speed.

Decoding walks one input byte per step through a transition table built once (on first use):
the state is the node of the code tree the bits so far lead to (256 internal nodes), and each
(state, byte) entry holds the next state and the symbols completed on the way, so the loop body is
two indexes and one bytearray append. Transitions that would decode EOS emit `None`, which
fails the append: no per-byte error test. The table is two flat arrays (next state as `array('H')`,
emitted bytes as a list of shared objects), ~1.3 MB; a list of (state, bytes) tuples decoded ~25%
faster but took 6 MB per process, and Huffman decoding is rare once the peer's fields sit in the
dynamic table (then they are one-byte indexes). A string may only end in the root (no
padding) or on the all-ones path at most 7 bits deep (padding is a prefix of EOS, ≤ 7 bits).

The byte table is composed from a 4-bit table (256 x 16 walks of 4 bits, then 65,536
compositions of two nibble steps) rather than walked bit by bit for every entry; it still costs
0.1-0.2 s (measured on the loaded 2-core machine), paid by the first Huffman string a process
decodes unless `prepare()` ran first (the server calls it at start with --http2, negotiate.py).

Encoding maps every byte to its code as a string of '0'/'1' characters, joins them (C speed) and
converts the result with `int(bits, 2)`: no Python-level loop per byte.
"""

from __future__ import annotations

from array import array

from palfrey.http2.wire.errors import HpackError
from palfrey.http2.wire.tables import CODE_LENGTHS, CODES, EOS

_BITS: tuple[str, ...] = tuple(format(CODES[s], f"0{CODE_LENGTHS[s]}b") for s in range(256))
_LENGTHS = CODE_LENGTHS[:256]


def encoded_length(data: bytes) -> int:
    """The Huffman-coded length of `data` in bytes (to choose between Huffman and raw)."""
    return (sum(map(_LENGTHS.__getitem__, data)) + 7) >> 3


def encode(data: bytes) -> bytes:
    """Huffman-code `data`, padded with the most significant bits of EOS (ones)."""
    if not data:
        return b""
    bits = "".join(map(_BITS.__getitem__, data))
    pad = -len(bits) & 7
    return ((int(bits, 2) << pad) | ((1 << pad) - 1)).to_bytes((len(bits) + pad) >> 3, "big")


def _build_tree() -> tuple[list[list[int]], list[int]]:
    """The code tree: `children[node] = [left, right]`, a child >= 0 is an internal node and
    a child < 0 is the leaf of symbol `-child - 1`. Also the all-ones path's nodes, by depth."""
    children: list[list[int]] = [[0, 0]]
    for symbol in range(EOS + 1):
        code, length = CODES[symbol], CODE_LENGTHS[symbol]
        node = 0
        for shift in range(length - 1, 0, -1):
            bit = (code >> shift) & 1
            if children[node][bit] == 0:
                children.append([0, 0])
                children[node][bit] = len(children) - 1
            node = children[node][bit]
        children[node][code & 1] = -symbol - 1
    ones = [0]
    for _ in range(7):
        ones.append(children[ones[-1]][1])
    return children, ones


def _nibble_table(children: list[list[int]]) -> list[tuple[int, bytes] | None]:
    """For each (node, 4 bits): the node reached and the symbols completed, None past EOS."""
    table: list[tuple[int, bytes] | None] = []
    for start in range(len(children)):
        for nibble in range(16):
            node, out, failed = start, bytearray(), False
            for shift in (3, 2, 1, 0):
                child = children[node][(nibble >> shift) & 1]
                if child < 0:
                    if child == -EOS - 1:
                        failed = True
                        break
                    out.append(-child - 1)
                    child = 0
                node = child
            table.append(None if failed else (node, bytes(out)))
    return table


_NEXT = array("H")  # (state | byte) -> next state, pre-multiplied by 256
_EMIT: list[bytes | None] = []  # (state | byte) -> the symbols completed, None past EOS
_ACCEPTING: frozenset[int] = frozenset()


def _build_decoder() -> None:
    """Fill the byte transition table; states are stored pre-multiplied by 256 (`state | byte`
    is the index)."""
    global _ACCEPTING
    children, ones = _build_tree()
    nibbles = _nibble_table(children)
    shared: dict[bytes, bytes] = {}  # one object per distinct output
    nexts: list[int] = []
    emits: list[bytes | None] = []
    for state in range(len(children)):
        for byte in range(256):
            high = nibbles[state * 16 + (byte >> 4)]
            low = None if high is None else nibbles[high[0] * 16 + (byte & 15)]
            if high is None or low is None:
                nexts.append(0)
                emits.append(None)
                continue
            out = high[1] + low[1]
            nexts.append(low[0] << 8)
            emits.append(shared.setdefault(out, out))
    _NEXT.extend(nexts)
    _EMIT[:] = emits
    _ACCEPTING = frozenset(node << 8 for node in ones)


def prepare() -> None:
    """Build the decode table now if it is not built yet (a server's start, not its first request)."""
    if not _EMIT:
        _build_decoder()


def decode(data: bytes | memoryview) -> bytes:
    """Decode a Huffman-coded string; HpackError for EOS inside it or invalid padding."""
    if not _EMIT:
        _build_decoder()
    emit, nxt = _EMIT, _NEXT
    state = 0
    out = bytearray()
    try:
        for byte in data:
            index = state | byte
            out += emit[index]  # type: ignore[arg-type]
            state = nxt[index]
    except TypeError:
        raise HpackError("Huffman string contains EOS") from None
    if state not in _ACCEPTING:
        raise HpackError("Huffman string has invalid padding")
    return bytes(out)
