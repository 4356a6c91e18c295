"""palfrey's own HPACK (palfrey/http2/wire/) against RFC 7541 and the `hpack` library as a peer:
Appendix C's examples verbatim, randomized round-trips both ways, Huffman edge cases, the limits
(table size updates, header-list size cap, the HPACK bomb) and the encoder's caches."""

from __future__ import annotations

import random

import hpack
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

from palfrey.http2.wire import huffman
from palfrey.http2.wire.errors import HeaderListTooLarge, HpackError
from palfrey.http2.wire.hpack_decode import Decoder
from palfrey.http2.wire.hpack_encode import Encoder, integer

Fields = list[tuple[bytes, bytes]]
REFERENCE_HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)

# RFC 7541 Appendix C.3 / C.4: three requests on one connection, without and with Huffman coding.
REQUESTS: list[Fields] = [
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"), (b":authority", b"www.example.com")],
    [
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", b"/"),
        (b":authority", b"www.example.com"),
        (b"cache-control", b"no-cache"),
    ],
    [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":path", b"/index.html"),
        (b":authority", b"www.example.com"),
        (b"custom-key", b"custom-value"),
    ],
]
C3 = [
    "828684410f7777772e6578616d706c652e636f6d",
    "828684be58086e6f2d6361636865",
    "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
]
C4 = [
    "828684418cf1e3c2e5f23a6ba0ab90f4ff",
    "828684be5886a8eb10649cbf",
    "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
]
C34_SIZES = [57, 110, 164]

# Appendix C.5 / C.6: three responses, dynamic table of 256 bytes (evictions happen).
DATE1, DATE2 = b"Mon, 21 Oct 2013 20:13:21 GMT", b"Mon, 21 Oct 2013 20:13:22 GMT"
COOKIE = b"foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"
LOCATION = (b"location", b"https://www.example.com")
RESPONSES: list[Fields] = [
    [(b":status", b"302"), (b"cache-control", b"private"), (b"date", DATE1), LOCATION],
    [(b":status", b"307"), (b"cache-control", b"private"), (b"date", DATE1), LOCATION],
    [
        (b":status", b"200"),
        (b"cache-control", b"private"),
        (b"date", DATE2),
        LOCATION,
        (b"content-encoding", b"gzip"),
        (b"set-cookie", COOKIE),
    ],
]
C5 = [
    "4803333032580770726976617465611d4d6f6e2c203231204f637420323031332032303a31333a323120474d54"
    "6e1768747470733a2f2f7777772e6578616d706c652e636f6d",
    "4803333037c1c0bf",
    "88c1611d4d6f6e2c203231204f637420323031332032303a31333a323220474d54c05a04677a69707738666f6f3d"
    "4153444a4b48514b425a584f5157454f50495541585157454f49553b206d61782d6167653d333630303b207665"
    "7273696f6e3d31",
]
C6 = [
    "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082a62d1bff6e919d29ad171863c78f0b"
    "97c8e9ae82ae43d3",
    "4883640effc1c0bf",
    "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9ab77ad94e7821dd7f2e6c7b335dfdf"
    "cd5b3960d5af27087f3672c1ab270fb5291f9587316065c003ed4ee5b1063d5007",
]
C56_SIZES = [222, 222, 215]


@pytest.mark.parametrize("blocks", [C3, C4], ids=["C.3", "C.4"])
def test_appendix_c_requests_decode(blocks: list[str]) -> None:
    decoder, reference = Decoder(), hpack.Decoder()
    for block, fields, size in zip(blocks, REQUESTS, C34_SIZES, strict=True):
        assert decoder.decode(bytes.fromhex(block)) == fields
        assert reference.decode(bytes.fromhex(block), raw=True) == fields  # the examples are typed right
        assert decoder.size == size
    assert decoder.entries[-1] == (b"custom-key", b"custom-value")


@pytest.mark.parametrize("blocks", [C5, C6], ids=["C.5", "C.6"])
def test_appendix_c_responses_decode_with_eviction(blocks: list[str]) -> None:
    decoder = Decoder(max_table_size=256)
    for block, fields, size in zip(blocks, RESPONSES, C56_SIZES, strict=True):
        assert decoder.decode(bytes.fromhex(block)) == fields
        assert decoder.size == size
    assert decoder.entries == [(b"date", DATE2), (b"content-encoding", b"gzip"), (b"set-cookie", COOKIE)]


def test_appendix_c6_responses_encode_verbatim() -> None:
    """With indexing for every field and a 256-byte table, the encoder writes C.6 byte for byte."""
    encoder = Encoder(never_indexed=frozenset())
    encoder.set_peer_table_size(256)
    encoder.pending = []  # the examples assume the table size was agreed before the first block
    for fields, block in zip(RESPONSES, C6, strict=True):
        assert encoder.encode(fields).hex() == block
    assert encoder.size == 215


def test_appendix_c1_integers() -> None:
    assert integer(10, 5, 0) == bytes([0b01010])
    assert integer(1337, 5, 0) == bytes([0b11111, 0b10011010, 0b00001010])
    assert integer(42, 8, 0) == bytes([42])
    assert Decoder()._integer(bytes([0b11111, 0b10011010, 0b00001010]), 0, 0x1F) == (1337, 3)


def test_appendix_c2_literals() -> None:
    decoder = Decoder()
    assert decoder.decode(bytes.fromhex("400a637573746f6d2d6b65790d637573746f6d2d686561646572")) == [
        (b"custom-key", b"custom-header")
    ]
    assert decoder.size == 55
    assert decoder.decode(bytes.fromhex("040c2f73616d706c652f70617468")) == [(b":path", b"/sample/path")]
    assert decoder.decode(bytes.fromhex("100870617373776f726406736563726574")) == [(b"password", b"secret")]
    assert decoder.decode(b"\x82") == [(b":method", b"GET")]
    assert len(decoder.entries) == 1


def _random_fields(rng: random.Random) -> Fields:
    names = [b":status", b"content-type", b"x-trace", b"server", b"set-cookie", b"date", b"cache-control"]
    fields = []
    for _ in range(rng.randint(1, 12)):
        name = rng.choice(names) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 20))
        value = rng.choice([b"", b"200", b"text/plain", rng.randbytes(rng.randint(0, 300))])
        fields.append((name, value))
    return fields


def test_random_round_trips_with_the_reference_library() -> None:
    """Our encoder → hpack's decoder, and hpack's encoder → our decoder, with table size changes."""
    rng = random.Random(7)
    ours_out, theirs_in = Encoder(), hpack.Decoder()
    theirs_out, ours_in = hpack.Encoder(), Decoder()
    for round_ in range(600):
        fields = _random_fields(rng)
        assert theirs_in.decode(ours_out.encode(fields), raw=True) == fields
        assert ours_in.decode(theirs_out.encode(fields, huffman=rng.random() < 0.5)) == fields
        if round_ % 50 == 49:
            size = rng.choice([0, 64, 256, 4096])
            ours_out.set_peer_table_size(size)
            theirs_out.header_table_size = size  # hpack then starts its next block with an update
    assert ours_out.size <= 4096 and ours_in.size <= 4096


def test_huffman_matches_reference_for_every_symbol_and_random_strings() -> None:
    rng = random.Random(3)
    samples = [bytes([b]) for b in range(256)] + [rng.randbytes(rng.randint(0, 64)) for _ in range(300)]
    for sample in samples:
        coded = REFERENCE_HUFFMAN.encode(sample)
        assert huffman.encode(sample) == coded
        assert huffman.encoded_length(sample) == len(coded)
        assert huffman.decode(coded) == sample


def test_huffman_rejects_eos_and_bad_padding() -> None:
    with pytest.raises(HpackError, match="EOS"):
        huffman.decode(b"\xff\xff\xff\xff")  # 30 ones decode EOS inside the string
    with pytest.raises(HpackError, match="padding"):
        huffman.decode(b"\x1f\xff")  # 'a' (00011) then 11 one bits: padding over 7 bits
    with pytest.raises(HpackError, match="padding"):
        huffman.decode(b"\x18")  # 'a' then 000: padding that is not EOS's ones
    with pytest.raises(HpackError, match="padding"):
        huffman.decode(b"\xfe")  # 7 ones then a 0: no symbol, not padding either
    assert huffman.decode(b"\x1f") == b"a"  # 'a' then 111: valid padding
    assert huffman.decode(b"") == b""


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        (b"\x80", "index 0"),
        (b"\xbe", "past the dynamic table"),  # index 62, empty table
        (b"\xff\xff\xff\xff\xff\xff\x01", "integer too long"),
        (b"\xff", "ends inside an integer"),
        (b"\x40", "ends before a string"),
        (b"\x40\x05abc", "runs past"),
        (b"\x3f\xe2\x1f", "above the advertised"),  # size update to 4097
        (b"\x82\x20", "after a header field"),
        (b"\x40\x81\xff\x00", "EOS|padding"),
    ],
)
def test_malformed_blocks_are_compression_errors(block: bytes, reason: str) -> None:
    with pytest.raises(HpackError, match=reason) as error:
        Decoder().decode(block)
    assert error.value.code == 0x9


def test_size_update_obligation_after_our_setting_shrinks() -> None:
    decoder = Decoder()
    decoder.set_max_table_size(1024)
    with pytest.raises(HpackError, match="expected a dynamic table size update"):
        decoder.decode(b"\x82")
    decoder = Decoder()
    decoder.decode(bytes.fromhex(C3[0]))
    decoder.set_max_table_size(0)
    assert decoder.decode(b"\x20\x82") == [(b":method", b"GET")]
    assert decoder.entries == [] and decoder.size == 0


def test_hpack_bomb_is_capped_without_losing_table_sync() -> None:
    """One 4,000-byte entry referenced 10,000 times: decoding stops collecting at the cap (so it
    never builds the 40 MB list), raises for this request only, and the table still follows."""
    encoder = hpack.Encoder()
    first = encoder.encode([(b"x-bomb", b"b" * 4000)], huffman=False)
    bomb = first + b"\xbe" * 10000
    decoder = Decoder(max_list_size=16384)
    with pytest.raises(HeaderListTooLarge):
        decoder.decode(bomb)
    assert decoder.entries == [(b"x-bomb", b"b" * 4000)]
    assert decoder.decode(b"\xbe\x82") == [(b"x-bomb", b"b" * 4000), (b":method", b"GET")]


def test_list_exactly_at_the_cap_is_accepted() -> None:
    fields = [(b"x-a", b"v" * 100)]
    limit = 3 + 100 + 32
    assert Decoder(max_list_size=limit).decode(hpack.Encoder().encode(fields)) == fields
    with pytest.raises(HeaderListTooLarge):
        Decoder(max_list_size=limit - 1).decode(hpack.Encoder().encode(fields))


def test_encoder_repeated_head_is_indexes_and_cached() -> None:
    encoder = Encoder()
    head = [(b":status", b"200"), (b"content-type", b"text/plain"), (b"content-length", b"4")]
    first = encoder.encode(head)
    second = encoder.encode(head)
    assert second == b"\x88\xbf\xbe"  # :status 200 static; the two fields inserted by `first`
    assert encoder.encode(head) is second  # a hit in the whole-head cache
    encoder.encode([(b":status", b"200"), (b"x-new", b"1")])  # inserts: renumbers, cache invalid
    assert encoder.encode(head) == b"\x88\xc0\xbf"
    assert hpack.Decoder().decode(first + second, raw=True) == head + head


def test_encoder_never_indexes_cookies_and_announces_table_changes() -> None:
    encoder, reference = Encoder(), hpack.Decoder()
    head = [(b":status", b"200"), (b"set-cookie", b"sid=secret")]
    block = encoder.encode(head)
    assert block[1] == 0x1F and encoder.entries == []  # never indexed, name by static index 55
    assert reference.decode(block, raw=True) == head
    encoder.set_peer_table_size(0)
    encoder.set_peer_table_size(100)
    block = encoder.encode([(b"x-a", b"b")])
    assert block[:2] == b"\x20\x3f"  # the smallest size, then the final one (§4.2)
    reference.header_table_size = 100
    assert reference.decode(block, raw=True) == [(b"x-a", b"b")]


def test_decoder_cache_follows_the_dynamic_table() -> None:
    """A repeated index-only block is served from the cache until the table changes under it."""
    encoder, decoder = hpack.Encoder(), Decoder()
    first = [(b":method", b"GET"), (b"x-a", b"1")]
    decoder.decode(encoder.encode(first))
    again = encoder.encode(first)
    assert again == b"\x82\xbe"
    assert decoder.decode(again) == first
    cached = decoder.decode(again)
    assert cached == first
    cached.append((b"x-mutated", b""))  # the caller owns the list it gets
    assert decoder.decode(again) == first
    decoder.decode(encoder.encode([(b"x-b", b"2")]))  # insertion: index 62 now means x-b
    assert decoder.decode(b"\x82\xbe") == [(b":method", b"GET"), (b"x-b", b"2")]
    decoder.decode(b"\x20")  # a resize to 0 empties the table
    with pytest.raises(HpackError):
        decoder.decode(b"\x82\xbe")


def test_mutated_blocks_only_raise_compression_errors() -> None:
    """Random corruptions of valid blocks (bytes changed, inserted, deleted): decoding succeeds or
    raises HpackError / HeaderListTooLarge, never an IndexError or the like (bounded, seeded)."""
    rng = random.Random(11)
    encoder = hpack.Encoder()
    blocks = [
        encoder.encode(
            [(b":path", b"/x"), (b"user-agent", rng.randbytes(10)), (b"x-a", b"v" * i)], huffman=i % 2 == 0
        )
        for i in range(40)
    ]
    for _ in range(3000):
        block = bytearray(rng.choice(blocks))
        for _ in range(rng.randint(1, 4)):
            choice = rng.random()
            if choice < 0.5 and block:
                block[rng.randrange(len(block))] = rng.randrange(256)
            elif choice < 0.75:
                block.insert(rng.randrange(len(block) + 1), rng.randrange(256))
            elif block:
                del block[rng.randrange(len(block))]
        try:
            Decoder(max_list_size=4096).decode(bytes(block))
        except (HpackError, HeaderListTooLarge):
            pass
