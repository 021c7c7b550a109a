#!/usr/bin/env python3
"""Writes the fuzz seed corpora (fuzz/seeds/<target>/) from the real fixtures.

Run from the repository root: python3 fuzz/make_seeds.py
Each seed is laid out the way its target (fuzz/fuzz_targets/<target>.rs) carves its
input. Standard library only; deterministic (names are content hashes).
"""

import hashlib
import pathlib
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
OUT = ROOT / "fuzz" / "seeds"


def varint(b, pos):
    v, shift = 0, 0
    while True:
        c = b[pos]
        pos += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, pos


def block_entries(block):
    """(key, value) pairs of one uncompressed table block."""
    n = struct.unpack_from("<I", block, len(block) - 4)[0]
    limit = len(block) - 4 - 4 * n
    pos, key, out = 0, b"", []
    while pos < limit:
        shared, pos = varint(block, pos)
        unshared, pos = varint(block, pos)
        vlen, pos = varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        out.append((key, block[pos : pos + vlen]))
        pos += vlen
    return out


def table_entries(data):
    """Every (key, value) of a table file with uncompressed blocks."""
    footer = data[-48:]
    _, p = varint(footer, 0)
    _, p = varint(footer, p)
    ioff, p = varint(footer, p)
    isize, p = varint(footer, p)
    assert data[ioff + isize] == 0, "snappy index block"
    out = []
    for _, handle in block_entries(data[ioff : ioff + isize]):
        off, q = varint(handle, 0)
        size, _ = varint(handle, q)
        assert data[off + size] == 0, "snappy data block"
        out.extend(block_entries(data[off : off + size]))
    return out


def save(target, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()[:16]).write_bytes(data)


def v2_prefixes():
    for index in sorted(FIX.rglob("*.index")):
        yield index.with_suffix("")


def main():
    if OUT.exists():
        shutil.rmtree(OUT)
    # table: every .index and every V1 table file.
    for index in sorted(FIX.rglob("*.index")):
        save("table", index.read_bytes())
    for v1 in sorted((FIX / "v1").rglob("model.ckpt*")):
        save("table", v1.read_bytes())

    for prefix in v2_prefixes():
        index = prefix.parent / (prefix.name + ".index")
        raw = index.read_bytes()
        shards = sorted(prefix.parent.glob(prefix.name + ".data-*"))
        d0 = shards[0].read_bytes() if shards else b""
        d1 = shards[1].read_bytes() if len(shards) > 1 else b""
        # bundle_entries: flags n split hlen header n*(klen key vlen value) data.
        entries = table_entries(raw)
        header = entries[0][1]
        rest = [(k, v) for k, v in entries[1:] if len(k) < 256][:63]
        flags = 0x10 if d1 else 0
        body = struct.pack("<BBHH", flags, len(rest), len(d0), len(header)) + header
        for k, v in rest:
            body += struct.pack("<B", len(k)) + k + struct.pack("<H", len(v)) + v
        save("bundle_entries", body + d0 + d1)
        # end_to_end: flags ilen index data (by prefix, all tensors).
        save("end_to_end", struct.pack("<BH", 4, len(raw)) + raw + d0)

    for f in sorted((FIX / "tensorproto").glob("*.pb")) + sorted((FIX / "sparse").glob("*.pb")):
        save("tensorproto", f.read_bytes())
    detect = [FIX / "graphdef" / "frozen.pb", FIX / "savedmodel" / "module" / "saved_model.pb"]
    detect += sorted((FIX / "sparse").glob("*.pb"))
    detect += [FIX / "tensorproto" / n for n in ("float32_2x3.pb", "string_vec.pb", "mtp_hand_int32_unpacked.pb")]
    # Files of other tools, which detection names (src/formats/sniff.rs).
    detect += sorted((FIX / "foreign").iterdir())
    for f in detect:
        save("detect", f.read_bytes())

    # slices: flags rank dims nslices slices chunk. The fixtures' partitionings, with
    # raw u64 dims (flag bit 0) and explicit (start, length) extents (tag 3).
    def ext(start, length):
        if length is None:
            return b"\x00"
        return b"\x03" + struct.pack("<qq", start, length)

    layouts = [
        ([10, 3], [[(0, 4), (0, None)], [(4, 3), (0, None)], [(7, 3), (0, None)]]),
        ([4, 6], [[(0, 4), (0, 3)], [(0, 4), (3, 3)]]),
        ([100, 10], [[(0, 33), (0, 10)], [(33, 33), (0, 10)], [(66, 7), (0, 10)], [(73, 27), (0, 10)]]),
        ([30, 10], [[(0, 6), (0, None)], [(6, 6), (0, None)], [(12, 6), (0, None)], [(18, 6), (0, None)], [(24, 6), (0, None)]]),
        ([5, 4], [[(0, 3), (0, 4)], [(3, 2), (0, 4)]]),
        ([3, 4, 5], [[(0, 2), (0, 4), (0, 2)], [(0, 2), (0, 4), (2, 3)], [(2, 1), (0, 1), (0, 5)], [(2, 1), (1, 3), (0, 5)]]),
        ([7], [[(3, 4)], [(0, 3)]]),
        ([], [[]]),
    ]
    for shape, slices in layouts:
        body = struct.pack("<BB", 1, len(shape)) + b"".join(struct.pack("<Q", d) for d in shape)
        body += struct.pack("<B", len(slices))
        for s in slices:
            body += b"".join(ext(a, b) for a, b in s)
        save("slices", body + b"\x07")

    records_seeds()


def records_seeds():
    """records_framing: flag byte (compression) + a TFRecord file of fixtures/records;
    records_example: the records of examples.tfrecord as len:u8 + bytes."""
    rec = FIX / "records"
    for name, flag in [("examples.tfrecord", 0), ("examples.tfrecord.gz", 1), ("members.tfrecord.gz", 1),
                       ("examples.zlib", 2), ("examples.snappy", 3), ("save_shard.snapshot", 3),
                       ("tensors.tfrecord", 0)]:
        save("records_framing", bytes([flag]) + (rec / name).read_bytes())
    data = (rec / "examples.tfrecord").read_bytes()
    pos, records = 0, []
    while pos < len(data):
        n = struct.unpack_from("<Q", data, pos)[0]
        records.append(data[pos + 12:pos + 12 + n])
        pos += 16 + n
    for i in range(0, len(records), 2):
        save("records_example", b"".join(bytes([len(r)]) + r for r in records[i:i + 2] if len(r) < 256))


if __name__ == "__main__":
    main()
