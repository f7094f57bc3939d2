"""Builds the golden offload objects from the format spec, independently of tierlog's writer.

The ledger is the spec's worked example: 3 entries of 5, 3 and 0 bytes ("hello", "abc", ""),
ledger id 3, one 172-byte block. The index carries LedgerMetadataFormat with the fields tierlog
fills (quorum 1, ensemble 1, length 8, lastEntryId 2, CLOSED, one segment, CRC32C, ack quorum
1, ctime 1700000000000, custom metadata application/component/pulsar/managed-ledger).
Run: python3 make_golden.py   (writes ledger-3.data and ledger-3.index here)
"""
import struct
from pathlib import Path

ENTRIES = [b"hello", b"abc", b""]
ML_NAME = b"public/default/persistent/golden"

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def field_varint(tag, v):
    return varint(tag << 3) + varint(v)

def field_bytes(tag, b):
    return varint(tag << 3 | 2) + varint(len(b)) + b

# Data object: one block, sized by Pulsar's formula: min(64 MiB, 3*12 + 8 + 128) = 172.
block_len = len(ENTRIES) * 12 + sum(map(len, ENTRIES)) + 128
data = struct.pack(">Iqqq", 0xFBDBABCB, 128, block_len, 0) + bytes(100)
for i, e in enumerate(ENTRIES):
    data += struct.pack(">iq", len(e), i) + e
assert len(data) == block_len == 172

segment = field_bytes(1, b"tierlog-hot-tier:0") + field_varint(2, 0)
custom = [(b"application", b"pulsar"), (b"component", b"managed-ledger"), (b"pulsar/managed-ledger", ML_NAME)]
meta = (field_varint(1, 1) + field_varint(2, 1) + field_varint(3, sum(map(len, ENTRIES)))
        + field_varint(4, len(ENTRIES) - 1) + field_varint(5, 3) + field_bytes(6, segment)
        + field_varint(7, 3) + field_varint(9, 1) + field_varint(10, 1700000000000))
for k, v in custom:
    meta += field_bytes(11, field_bytes(1, k) + field_bytes(2, v))

entries = struct.pack(">qiq", 0, 1, 0)
index = struct.pack(">Iiqqii", 0xDE47DE47, 32 + len(meta) + len(entries), len(data), 128, 1, len(meta)) + meta + entries

here = Path(__file__).parent
(here / "ledger-3.data").write_bytes(data)
(here / "ledger-3.index").write_bytes(index)
