//! A minimal ZIP64 archive writer with the layout `np.savez` produces through CPython's
//! `zipfile` with `force_zip64=True` (see `docs/npy-npz.md` §3.1, §4.1):
//!
//! * local header: version 45, flags 0 (0x800 for a non-ASCII name), 1980-01-01
//!   00:00:00 (DOS time 0, date 0x21), both 32-bit sizes 0xFFFFFFFF and a ZIP64 extra
//!   (`01 00 10 00 usize csize`) on every member; CRC-32 and sizes are patched by a seek
//!   once a streamed member's data is written, or known up front for a member written
//!   whole ([`ZipWriter::add_whole`]);
//! * central directory: made by 45 on Unix, real 32-bit sizes and offset, or the
//!   0xFFFFFFFF sentinel plus a ZIP64 extra holding exactly the sentinel-marked values
//!   (uncompressed size, compressed size, offset, in that order); external attributes
//!   `0o100644 << 16`;
//! * a ZIP64 end-of-central-directory record (no extensible data) and locator when the
//!   entry count, the directory size or its offset does not fit, then the classic EOCD.
//!
//! Every size and offset is a `u64`; nothing here assumes an archive below 4 GiB.

use std::io::{self, Seek, SeekFrom, Write};

/// Local file header signature.
const LOCAL_SIG: u32 = 0x0403_4b50;
/// Central directory file header signature.
const CENTRAL_SIG: u32 = 0x0201_4b50;
/// ZIP64 end of central directory record signature.
const EOCD64_SIG: u32 = 0x0606_4b50;
/// ZIP64 end of central directory locator signature.
const LOCATOR_SIG: u32 = 0x0706_4b50;
/// End of central directory record signature.
const EOCD_SIG: u32 = 0x0605_4b50;
/// "Version needed to extract" and "version made by": 4.5, the first with ZIP64.
const VERSION: u16 = 45;
/// "Version made by": 4.5 on Unix (host system 3 in the high byte).
const MADE_BY_UNIX: u16 = (3 << 8) | VERSION;
/// DOS time of 1980-01-01 00:00:00.
const DOS_TIME: u16 = 0;
/// DOS date of 1980-01-01.
const DOS_DATE: u16 = 0x0021;
/// General purpose flag bit 11: the name is UTF-8.
const FLAG_UTF8: u16 = 0x0800;
/// External attributes: a regular file, mode 0644, in the Unix high half.
const EXTERNAL_ATTR: u32 = 0o100_644 << 16;
/// Header ID of the ZIP64 extended information extra field.
const ZIP64_EXTRA_ID: u16 = 0x0001;
/// Size of the fixed part of a local header.
const LOCAL_FIXED_LEN: u64 = 30;
/// Size of the local ZIP64 extra (4-byte header, two `u64` sizes).
const LOCAL_EXTRA_LEN: u16 = 20;

/// How a member's data is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Stored as is (method 0).
    Stored,
    /// Raw deflate (method 8).
    Deflated,
}

impl Method {
    fn code(self) -> u16 {
        match self {
            Method::Stored => 0,
            Method::Deflated => 8,
        }
    }
}

/// When a value needs ZIP64: the standard limits, lowered by tests to exercise the
/// ZIP64 paths without writing 4 GiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A size or offset at or above this goes in a ZIP64 field (standard: 0xFFFFFFFF).
    pub u32_at: u64,
    /// An entry count at or above this needs the ZIP64 EOCD (standard: 0xFFFF).
    pub u16_at: u64,
}

impl Limits {
    /// The limits of the ZIP format itself.
    pub const STANDARD: Limits = Limits {
        u32_at: 0xFFFF_FFFF,
        u16_at: 0xFFFF,
    };

    /// `v` for a 32-bit field, or the 0xFFFFFFFF sentinel when it needs ZIP64.
    fn u32_field(&self, v: u64) -> (u32, bool) {
        if v >= self.u32_at.min(0xFFFF_FFFF) {
            (0xFFFF_FFFF, true)
        } else {
            // v < 0xFFFF_FFFF here, so it fits.
            (v as u32, false)
        }
    }

    /// `n` for a 16-bit count, or the 0xFFFF sentinel when it needs ZIP64.
    fn u16_field(&self, n: u64) -> (u16, bool) {
        if n >= self.u16_at.min(0xFFFF) {
            (0xFFFF, true)
        } else {
            (n as u16, false)
        }
    }
}

/// What the central directory needs to know about a finished member.
#[derive(Clone, Debug)]
struct Entry {
    name: Vec<u8>,
    flags: u16,
    method: Method,
    crc: u32,
    csize: u64,
    usize: u64,
    offset: u64,
}

/// The member being written.
#[derive(Clone, Debug)]
struct Open {
    entry: Entry,
    data_start: u64,
}

/// Writes a ZIP64 archive member by member to a seekable sink.
///
/// Call [`begin`](Self::begin), then [`write`](Self::write) the member's (possibly
/// compressed) data, then [`end`](Self::end) with its CRC-32 and uncompressed size;
/// finally [`finish`](Self::finish) writes the central directory.
pub struct ZipWriter<W: Write + Seek> {
    out: W,
    pos: u64,
    entries: Vec<Entry>,
    open: Option<Open>,
    limits: Limits,
}

impl<W: Write + Seek> ZipWriter<W> {
    /// An archive written to `out` from its current position, which is taken as offset 0.
    pub fn new(out: W, limits: Limits) -> Self {
        ZipWriter {
            out,
            pos: 0,
            entries: Vec::new(),
            open: None,
            limits,
        }
    }

    /// Starts a member called `name` (stored verbatim, UTF-8). `usize` is its
    /// uncompressed size if known (it is patched in [`end`](Self::end) anyway).
    pub fn begin(&mut self, name: &str, method: Method, usize: u64) -> io::Result<()> {
        let (entry, h) = self.local_header(name, method, 0, usize, 0)?;
        self.write(&h)?;
        self.open = Some(Open {
            entry,
            data_start: self.pos,
        });
        Ok(())
    }

    /// Writes a whole member at once: the local header already holding its CRC-32
    /// `crc`, uncompressed size `usize` and compressed size `data.len()`, then `data`.
    /// No seek back, one `write` for a small member.
    pub fn add_whole(
        &mut self,
        name: &str,
        method: Method,
        crc: u32,
        usize: u64,
        data: &[u8],
    ) -> io::Result<()> {
        let csize = data.len() as u64;
        if method == Method::Stored && csize != usize {
            return Err(io::Error::other("zip: stored member size mismatch"));
        }
        let (entry, mut h) = self.local_header(name, method, crc, usize, csize)?;
        h.extend_from_slice(data);
        self.write(&h)?;
        self.entries.push(entry);
        Ok(())
    }

    /// The local header of a member starting at the current position, and its entry.
    fn local_header(
        &self,
        name: &str,
        method: Method,
        crc: u32,
        usize: u64,
        csize: u64,
    ) -> io::Result<(Entry, Vec<u8>)> {
        if self.open.is_some() {
            return Err(io::Error::other("zip: a member is already open"));
        }
        let name = name.as_bytes().to_vec();
        let name_len = u16::try_from(name.len())
            .map_err(|_| io::Error::other("zip: member name longer than 65535 bytes"))?;
        let flags = if name.is_ascii() { 0 } else { FLAG_UTF8 };
        let offset = self.pos;
        let mut h = Vec::with_capacity(LOCAL_FIXED_LEN as usize + name.len() + 20);
        put32(&mut h, LOCAL_SIG);
        put16(&mut h, VERSION);
        put16(&mut h, flags);
        put16(&mut h, method.code());
        put16(&mut h, DOS_TIME);
        put16(&mut h, DOS_DATE);
        put32(&mut h, crc); // CRC-32 (patched by `end` for a streamed member)
        put32(&mut h, 0xFFFF_FFFF); // compressed size: in the ZIP64 extra
        put32(&mut h, 0xFFFF_FFFF); // uncompressed size: in the ZIP64 extra
        put16(&mut h, name_len);
        put16(&mut h, LOCAL_EXTRA_LEN);
        h.extend_from_slice(&name);
        put16(&mut h, ZIP64_EXTRA_ID);
        put16(&mut h, 16);
        put64(&mut h, usize);
        put64(&mut h, csize);
        let entry = Entry {
            name,
            flags,
            method,
            crc,
            csize,
            usize,
            offset,
        };
        Ok((entry, h))
    }

    /// Appends bytes to the archive (the open member's data).
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Ends the open member: everything written since [`begin`](Self::begin) is its
    /// compressed data, `usize` bytes once decoded, with CRC-32 `crc`. Patches the
    /// local header and returns to the end of the archive.
    pub fn end(&mut self, crc: u32, usize: u64) -> io::Result<()> {
        let Some(Open {
            mut entry,
            data_start,
        }) = self.open.take()
        else {
            return Err(io::Error::other("zip: no member is open"));
        };
        entry.crc = crc;
        entry.usize = usize;
        entry.csize = self.pos - data_start;
        if entry.method == Method::Stored && entry.csize != usize {
            return Err(io::Error::other("zip: stored member size mismatch"));
        }
        self.out.seek(SeekFrom::Start(entry.offset + 14))?;
        self.out.write_all(&crc.to_le_bytes())?;
        let extra = entry.offset + LOCAL_FIXED_LEN + entry.name.len() as u64;
        self.out.seek(SeekFrom::Start(extra + 4))?;
        let mut sizes = [0u8; 16];
        sizes[..8].copy_from_slice(&usize.to_le_bytes());
        sizes[8..].copy_from_slice(&entry.csize.to_le_bytes());
        self.out.write_all(&sizes)?;
        self.out.seek(SeekFrom::Start(self.pos))?;
        self.entries.push(entry);
        Ok(())
    }

    /// Writes the central directory and end records, flushes, and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        if self.open.is_some() {
            return Err(io::Error::other("zip: a member is still open"));
        }
        let cd_offset = self.pos;
        let entries = std::mem::take(&mut self.entries);
        let mut cd = Vec::new();
        for e in &entries {
            central_header(&mut cd, e, &self.limits)?;
            if cd.len() >= 1 << 20 {
                self.write(&cd)?;
                cd.clear();
            }
        }
        self.write(&cd)?;
        let cd_size = self.pos - cd_offset;
        let n = entries.len() as u64;
        let mut end = Vec::with_capacity(56 + 20 + 22);
        let (n16, n64) = self.limits.u16_field(n);
        let (size32, size64) = self.limits.u32_field(cd_size);
        let (off32, off64) = self.limits.u32_field(cd_offset);
        if n64 || size64 || off64 {
            let eocd64 = self.pos;
            put32(&mut end, EOCD64_SIG);
            put64(&mut end, 44);
            put16(&mut end, VERSION);
            put16(&mut end, VERSION);
            put32(&mut end, 0); // this disk
            put32(&mut end, 0); // disk with the central directory
            put64(&mut end, n);
            put64(&mut end, n);
            put64(&mut end, cd_size);
            put64(&mut end, cd_offset);
            put32(&mut end, LOCATOR_SIG);
            put32(&mut end, 0); // disk with the ZIP64 EOCD
            put64(&mut end, eocd64);
            put32(&mut end, 1); // total disks
        }
        put32(&mut end, EOCD_SIG);
        put16(&mut end, 0); // this disk
        put16(&mut end, 0); // disk with the central directory
        put16(&mut end, n16);
        put16(&mut end, n16);
        put32(&mut end, size32);
        put32(&mut end, off32);
        put16(&mut end, 0); // comment length
        self.write(&end)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Appends the central directory header of `e`.
fn central_header(cd: &mut Vec<u8>, e: &Entry, limits: &Limits) -> io::Result<()> {
    let (usize32, usize64) = limits.u32_field(e.usize);
    let (csize32, csize64) = limits.u32_field(e.csize);
    let (off32, off64) = limits.u32_field(e.offset);
    let mut extra = Vec::with_capacity(28);
    let values = [(usize64, e.usize), (csize64, e.csize), (off64, e.offset)];
    let marked: Vec<u64> = values.iter().filter(|(m, _)| *m).map(|&(_, v)| v).collect();
    if !marked.is_empty() {
        put16(&mut extra, ZIP64_EXTRA_ID);
        put16(&mut extra, 8 * marked.len() as u16);
        for v in marked {
            put64(&mut extra, v);
        }
    }
    let name_len = u16::try_from(e.name.len())
        .map_err(|_| io::Error::other("zip: member name longer than 65535 bytes"))?;
    put32(cd, CENTRAL_SIG);
    put16(cd, MADE_BY_UNIX);
    put16(cd, VERSION);
    put16(cd, e.flags);
    put16(cd, e.method.code());
    put16(cd, DOS_TIME);
    put16(cd, DOS_DATE);
    put32(cd, e.crc);
    put32(cd, csize32);
    put32(cd, usize32);
    put16(cd, name_len);
    put16(cd, extra.len() as u16);
    put16(cd, 0); // comment length
    put16(cd, 0); // disk number start
    put16(cd, 0); // internal attributes
    put32(cd, EXTERNAL_ATTR);
    put32(cd, off32);
    cd.extend_from_slice(&e.name);
    cd.extend_from_slice(&extra);
    Ok(())
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}

fn put64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Read};

    fn archive(limits: Limits, members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut z = ZipWriter::new(Cursor::new(Vec::new()), limits);
        for (name, data) in members {
            z.begin(name, Method::Stored, data.len() as u64).unwrap();
            z.write(data).unwrap();
            z.end(crc32fast::hash(data), data.len() as u64).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    fn read_back(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut z = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        (0..z.len())
            .map(|i| {
                let mut f = z.by_index(i).unwrap();
                let mut v = Vec::new();
                f.read_to_end(&mut v).unwrap();
                (f.name().unwrap().to_string(), v)
            })
            .collect()
    }

    #[test]
    fn numpy_style_local_header_and_small_central_directory() {
        let bytes = archive(Limits::STANDARD, &[("a.npy", b"hello")]);
        // Local header: PK\3\4, version 45, flags 0, stored, 1980-01-01, CRC, sentinels.
        assert_eq!(&bytes[..4], b"PK\x03\x04");
        assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), 45);
        assert_eq!(&bytes[10..14], &[0, 0, 0x21, 0]);
        assert_eq!(&bytes[14..18], &crc32fast::hash(b"hello").to_le_bytes());
        assert_eq!(&bytes[18..26], &[0xFF; 8]);
        assert_eq!(&bytes[28..30], &20u16.to_le_bytes());
        assert_eq!(&bytes[35..39], &[1, 0, 16, 0]);
        assert_eq!(&bytes[39..47], &5u64.to_le_bytes());
        assert_eq!(&bytes[47..55], &5u64.to_le_bytes());
        assert_eq!(&bytes[55..60], b"hello");
        // Central header: no ZIP64 extra, real sizes, no ZIP64 EOCD.
        assert_eq!(&bytes[60..64], b"PK\x01\x02");
        assert_eq!(&bytes[64..66], &[45, 3]);
        assert_eq!(&bytes[80..84], &5u32.to_le_bytes());
        assert_eq!(&bytes[90..92], &0u16.to_le_bytes());
        assert_eq!(&bytes[98..102], &(0o100_644u32 << 16).to_le_bytes());
        assert_eq!(bytes.len(), 60 + 46 + 5 + 22);
        assert_eq!(
            read_back(&bytes),
            vec![("a.npy".to_string(), b"hello".to_vec())]
        );
    }

    #[test]
    fn lowered_limits_write_zip64_central_extras_and_eocd64() {
        let limits = Limits {
            u32_at: 40,
            u16_at: 2,
        };
        let big = vec![7u8; 100];
        let members: [(&str, &[u8]); 3] = [("s", b"x"), ("big", &big), ("é/t", b"tail")];
        let bytes = archive(limits, &members);
        let n = bytes.len();
        // EOCD: all sentinels; locator and ZIP64 EOCD just before it.
        assert_eq!(&bytes[n - 22..n - 18], b"PK\x05\x06");
        assert_eq!(&bytes[n - 14..n - 12], &[0xFF, 0xFF]);
        assert_eq!(&bytes[n - 12..n - 4], &[0xFF; 8]);
        assert_eq!(&bytes[n - 42..n - 38], b"PK\x06\x07");
        assert_eq!(&bytes[n - 98..n - 94], b"PK\x06\x06");
        let got = read_back(&bytes);
        assert_eq!(got.len(), 3);
        for ((name, data), (gname, gdata)) in members.iter().zip(&got) {
            assert_eq!(name, gname);
            assert_eq!(data, &gdata.as_slice());
        }
    }

    #[test]
    fn misuse_is_an_error_not_a_panic() {
        let mut z = ZipWriter::new(Cursor::new(Vec::new()), Limits::STANDARD);
        assert!(z.end(0, 0).is_err());
        z.begin("a", Method::Stored, 1).unwrap();
        assert!(z.begin("b", Method::Stored, 0).is_err());
        z.write(b"xy").unwrap();
        assert!(z.end(0, 1).is_err());
        let long = "n".repeat(70_000);
        let mut z = ZipWriter::new(Cursor::new(Vec::new()), Limits::STANDARD);
        assert!(z.begin(&long, Method::Stored, 0).is_err());
    }
}
