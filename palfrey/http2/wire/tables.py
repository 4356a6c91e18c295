"""RFC 7541's constant tables: the static table (Appendix A) and the Huffman code (Appendix B).

The Huffman code of Appendix B is canonical (codes of one length are consecutive and ordered by
symbol, shorter codes first), so it is fully described by each symbol's code length; the codes
are rebuilt from the lengths at import. tests/test_h2wire_hpack.py checks every symbol's encoding
against the `hpack` library.
"""

from __future__ import annotations

STATIC_TABLE: tuple[tuple[bytes, bytes], ...] = (
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
)
STATIC_LEN = len(STATIC_TABLE)  # 61: dynamic entries are numbered from 62

# (name, value) -> static index, for entries with a value; name -> its first static index.
STATIC_PAIRS: dict[tuple[bytes, bytes], int] = {
    pair: i for i, pair in reversed(list(enumerate(STATIC_TABLE, 1)))
}
STATIC_NAMES: dict[bytes, int] = {name: i for i, (name, _) in reversed(list(enumerate(STATIC_TABLE, 1)))}

# Appendix B's code length of each symbol 0..255 and EOS (256), two hex digits each.
_LENGTHS_HEX = (
    "0d171c1c1c1c1c1c1c181e1c1c1e1c1c1c1c1c1c1c1c1e1c1c1c1c1c1c1c1c1c060a0a0c0d06080b0a0a080b0806"
    "06060505050606060606060607080f060c0a0d06070707070707070707070707070707070707070707070807080d"
    "130d0e060f05060506050606060507070606060506070605050607070707070f0b0e0d1c14161414161616171617"
    "1717171718171818161718171717171516171617171816151416161717151716161815161717151516151716171714"
    "161616171616171a1a1413161716191a1a1a1b1b1a181913151a1b1b1a1b1815151a1a1c1b1b1b14181415161515"
    "171616191918181a171a1b1a1a1b1b1b1b1b1c1b1b1b1b1b1a1e"
)
CODE_LENGTHS: tuple[int, ...] = tuple(bytes.fromhex(_LENGTHS_HEX))
EOS = 256


def _canonical_codes(lengths: tuple[int, ...]) -> tuple[int, ...]:
    """Assign canonical Huffman codes: by (length, symbol), each code one more than the previous,
    shifted left when the length grows."""
    codes = [0] * len(lengths)
    code = -1
    previous = 0
    for symbol in sorted(range(len(lengths)), key=lambda s: (lengths[s], s)):
        code = (code + 1) << (lengths[symbol] - previous)
        previous = lengths[symbol]
        codes[symbol] = code
    return tuple(codes)


CODES: tuple[int, ...] = _canonical_codes(CODE_LENGTHS)
