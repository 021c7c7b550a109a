//! Variable-length strings, one element at a time (docs/formats/hdf5.md §4, §5).
//!
//! A variable-length string dataset stores one reference per element: the string's
//! length (4 bytes), the address of a global heap collection (offset size) and the
//! object's index in it (4 bytes) [spec §IV.A.2.d, class 9; §III.E "Global Heap"]. The
//! references are streamed like any fixed-size data (contiguous, compact or chunked);
//! each string is read from its heap object when its element is asked for, so memory
//! is one element (and a small index of the heap collections in use), never the whole
//! dataset. Every length is checked against the heap object before anything of that
//! size is allocated.

use crate::error::{Ctx, Result};
use crate::formats::io::InputFile;
use crate::source::StringRead;
use crate::stream::ByteStream;
use std::collections::HashMap;
use std::sync::Arc;

/// Opens a fresh stream of the dataset's references (the elements are read twice:
/// once for the longest, once to write them).
pub type OpenRefs<'a> = Box<dyn Fn() -> Result<Box<dyn ByteStream + 'a>> + Send + 'a>;

/// Heap collections whose object index is kept (most recently used first).
const CACHED_COLLECTIONS: usize = 8;

/// A global heap collection holds at most this many objects (indices are 16-bit).
const MAX_OBJECTS: usize = 1 << 16;

/// Where the file's heap objects are, as far as they have been looked up.
struct Collection {
    address: u64,
    /// File offset of the end of the collection.
    end: u64,
    /// File offset of the next object header not yet scanned.
    scan: u64,
    scanned: usize,
    done: bool,
    /// Object index → (file offset of its data, its size).
    objects: HashMap<u16, (u64, u64)>,
}

/// The file's layout numbers the references and heaps need.
#[derive(Clone, Copy)]
pub struct Layout {
    /// Bytes of an address (superblock "size of offsets").
    pub offset_size: u8,
    /// Bytes of a length (superblock "size of lengths").
    pub length_size: u8,
    /// File offset that HDF5 address 0 stands for (the superblock's base address).
    pub base: u64,
    /// End of the HDF5 file's bytes in the input (exclusive).
    pub end: u64,
}

impl Layout {
    /// Bytes of one element's reference.
    pub fn ref_size(&self) -> usize {
        8 + usize::from(self.offset_size)
    }
}

/// The elements of a variable-length string dataset.
pub struct VlenStrings<'a> {
    open: OpenRefs<'a>,
    refs: Option<Box<dyn ByteStream + 'a>>,
    count: u64,
    next: u64,
    layout: Layout,
    file: Arc<InputFile>,
    heaps: Vec<Collection>,
    ctx: Ctx,
    reference: Vec<u8>,
}

impl<'a> VlenStrings<'a> {
    /// `count` elements whose references `open` streams.
    pub fn new(
        open: OpenRefs<'a>,
        count: u64,
        layout: Layout,
        file: Arc<InputFile>,
        ctx: Ctx,
    ) -> Self {
        VlenStrings {
            open,
            refs: None,
            count,
            next: 0,
            layout,
            file,
            heaps: Vec::new(),
            ctx,
            reference: vec![0; layout.ref_size()],
        }
    }

    /// Reads the next reference of `refs` into `self.reference`.
    fn next_reference(&mut self, refs: &mut dyn ByteStream) -> Result<()> {
        let mut got = 0;
        while got < self.reference.len() {
            let n = refs.read(&mut self.reference[got..])?;
            if n == 0 {
                return Err(self.ctx.corrupt("the string references end early"));
            }
            got += n;
        }
        Ok(())
    }

    /// The element whose reference is in `self.reference`, into `out`: the heap
    /// object's first `length` bytes, up to the first NUL (h5py reads variable-length
    /// strings as C strings).
    fn element(&mut self, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        let r = &self.reference;
        let os = usize::from(self.layout.offset_size);
        let length = u64::from(u32::from_le_bytes([r[0], r[1], r[2], r[3]]));
        let address = le(&r[4..4 + os]);
        let index = u32::from_le_bytes([r[4 + os], r[5 + os], r[6 + os], r[7 + os]]);
        let undefined = os >= 8 && address == u64::MAX || os < 8 && address == (1 << (8 * os)) - 1;
        if length == 0 || undefined || index == 0 {
            return Ok(());
        }
        let Ok(index) = u16::try_from(index) else {
            return Err(self.ctx.corrupt(format!(
                "a string refers to heap object {index}; a global heap holds at most 65535"
            )));
        };
        let (at, size) = self.object(address, index)?;
        if length > size {
            return Err(self.ctx.corrupt(format!(
                "a string claims {length} bytes but its heap object {index} at address \
                 {address} holds {size}"
            )));
        }
        // Bounded: the object lies inside the file (checked when it was indexed).
        out.resize(length as usize, 0);
        self.file.read_exact_at(at, out)?;
        if let Some(nul) = out.iter().position(|&b| b == 0) {
            out.truncate(nul);
        }
        Ok(())
    }

    /// Where heap object `index` of the collection at `address` is: (file offset, size).
    fn object(&mut self, address: u64, index: u16) -> Result<(u64, u64)> {
        let pos = match self.heaps.iter().position(|c| c.address == address) {
            Some(p) => p,
            None => {
                let c = self.open_collection(address)?;
                if self.heaps.len() == CACHED_COLLECTIONS {
                    self.heaps.pop();
                }
                self.heaps.insert(0, c);
                0
            }
        };
        if pos != 0 {
            let c = self.heaps.remove(pos);
            self.heaps.insert(0, c);
        }
        let ls = u64::from(self.layout.length_size);
        let ctx = self.ctx.clone();
        let file = self.file.clone();
        let c = &mut self.heaps[0];
        loop {
            if let Some(&found) = c.objects.get(&index) {
                return Ok(found);
            }
            // Object header: index (2), reference count (2), reserved (4), size.
            let header = 8 + ls;
            if c.done || c.scan.checked_add(header).is_none_or(|e| e > c.end) {
                c.done = true;
                return Err(ctx.corrupt(format!(
                    "a string refers to heap object {index}, which the global heap at \
                     address {address} does not hold"
                )));
            }
            let mut h = [0u8; 16];
            let h = &mut h[..header as usize];
            file.read_exact_at(c.scan, h)?;
            let id = u16::from_le_bytes([h[0], h[1]]);
            if id == 0 {
                // The free space object ends the collection's objects.
                c.done = true;
                continue;
            }
            let size = le(&h[8..]);
            let data = c.scan + header;
            let padded = size.checked_add(7).map(|s| s & !7);
            let next = padded.and_then(|p| data.checked_add(p));
            if data.checked_add(size).is_none_or(|e| e > c.end) || next.is_none() {
                return Err(ctx.corrupt(format!(
                    "heap object {id} at address {address} claims {size} bytes, more than \
                     its collection holds"
                )));
            }
            c.objects.entry(id).or_insert((data, size));
            c.scanned += 1;
            if c.scanned > MAX_OBJECTS {
                return Err(ctx.corrupt(format!(
                    "the global heap at address {address} lists more than {MAX_OBJECTS} objects"
                )));
            }
            c.scan = next.unwrap_or(c.end).min(c.end);
        }
    }

    /// Checks the collection header at `address` ("GCOL", version 1, its size).
    fn open_collection(&self, address: u64) -> Result<Collection> {
        let ls = usize::from(self.layout.length_size);
        let start = self
            .layout
            .base
            .checked_add(address)
            .filter(|s| {
                s.checked_add(8 + ls as u64)
                    .is_some_and(|e| e <= self.layout.end)
            })
            .ok_or_else(|| {
                self.ctx.corrupt(format!(
                    "a string refers to a global heap at address {address}, outside the file"
                ))
            })?;
        let mut h = [0u8; 16];
        let h = &mut h[..8 + ls];
        self.file.read_exact_at(start, h)?;
        if &h[..4] != b"GCOL" || h[4] != 1 {
            return Err(self.ctx.corrupt(format!(
                "a string refers to address {address}, which holds no global heap collection \
                 (GCOL version 1)"
            )));
        }
        let size = le(&h[8..]);
        let end = start
            .checked_add(size)
            .filter(|&e| e <= self.layout.end && size >= 8 + ls as u64)
            .ok_or_else(|| {
                self.ctx.corrupt(format!(
                    "the global heap at address {address} claims {size} bytes, more than the \
                     file holds there"
                ))
            })?;
        Ok(Collection {
            address,
            end,
            scan: start + 8 + ls as u64,
            scanned: 0,
            done: false,
            objects: HashMap::new(),
        })
    }
}

/// A little-endian unsigned number of up to 8 bytes.
fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |a, &x| (a << 8) | u64::from(x))
}

impl StringRead for VlenStrings<'_> {
    fn max_len(&mut self) -> Result<u64> {
        let mut refs = (self.open)()?;
        let mut out = Vec::new();
        let mut max = 0u64;
        for _ in 0..self.count {
            self.next_reference(refs.as_mut())?;
            self.element(&mut out)?;
            max = max.max(out.len() as u64);
        }
        Ok(max)
    }

    fn next_into(&mut self, out: &mut Vec<u8>) -> Result<bool> {
        out.clear();
        if self.next == self.count {
            return Ok(false);
        }
        let mut refs = match self.refs.take() {
            Some(r) => r,
            None => (self.open)()?,
        };
        let got = self
            .next_reference(refs.as_mut())
            .and_then(|()| self.element(out));
        self.refs = Some(refs);
        got?;
        self.next += 1;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::hdf5::data::OwnedStream;

    const LAYOUT: Layout = Layout {
        offset_size: 8,
        length_size: 8,
        base: 0,
        end: 0,
    };

    /// A global heap collection at the end of `file` holding `objects` (index, data);
    /// returns its address.
    fn collection(file: &mut Vec<u8>, objects: &[(u16, &[u8])], pad_to: usize) -> u64 {
        let at = file.len();
        let mut c = b"GCOL\x01\0\0\0".to_vec();
        c.extend([0u8; 8]); // size, patched below
        for (i, d) in objects {
            c.extend(i.to_le_bytes());
            c.extend([1, 0, 0, 0, 0, 0]);
            c.extend((d.len() as u64).to_le_bytes());
            c.extend(*d);
            c.resize(c.len().div_ceil(8) * 8, 0);
        }
        c.resize(c.len().max(pad_to), 0);
        let size = c.len() as u64;
        c[8..16].copy_from_slice(&size.to_le_bytes());
        file.extend(c);
        at as u64
    }

    fn reference(len: u32, address: u64, index: u32) -> Vec<u8> {
        let mut r = len.to_le_bytes().to_vec();
        r.extend(address.to_le_bytes());
        r.extend(index.to_le_bytes());
        r
    }

    /// All elements of `refs` over `file`, or the error.
    fn read(file: &[u8], refs: Vec<u8>) -> Result<(u64, Vec<Vec<u8>>)> {
        let count = (refs.len() / LAYOUT.ref_size()) as u64;
        read_n(file, refs, count)
    }

    /// The `count` elements of `refs` over `file`, or the error.
    fn read_n(file: &[u8], refs: Vec<u8>, count: u64) -> Result<(u64, Vec<Vec<u8>>)> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.h5");
        std::fs::write(&path, file).unwrap();
        let input = Arc::new(InputFile::open(&path)?);
        let layout = Layout {
            end: file.len() as u64,
            ..LAYOUT
        };
        let open: OpenRefs<'_> = Box::new(move || Ok(Box::new(OwnedStream::new(refs.clone()))));
        let mut s = VlenStrings::new(open, count, layout, input, Ctx::file(&path).tensor("s"));
        let max = s.max_len()?;
        let mut out = Vec::new();
        let mut v = Vec::new();
        while s.next_into(&mut v)? {
            out.push(v.clone());
        }
        Ok((max, out))
    }

    #[test]
    fn empty_references_nul_ends_and_several_collections() {
        let mut file = vec![0u8; 8];
        let a = collection(&mut file, &[(1, b"hello"), (2, b"ab\0cd"), (3, b"")], 0);
        let mut addresses = vec![a];
        // Nine more collections than the cache holds, visited twice.
        for i in 0..9u8 {
            addresses.push(collection(&mut file, &[(7, &[b'a' + i; 3])], 0));
        }
        let mut refs = [
            reference(5, a, 1),
            reference(0, a, 1),        // length 0
            reference(3, u64::MAX, 1), // undefined address
            reference(3, a, 0),        // index 0
            reference(5, a, 2),        // up to the NUL
            reference(3, a, 1),        // a prefix of the object
        ]
        .concat();
        for _ in 0..2 {
            for &c in &addresses[1..] {
                refs.extend(reference(3, c, 7));
            }
        }
        let (max, got) = read(&file, refs).unwrap();
        assert_eq!(max, 5);
        let want: Vec<&[u8]> = vec![b"hello", b"", b"", b"", b"ab", b"hel"];
        assert_eq!(&got[..6], &want[..]);
        assert_eq!(got.len(), 6 + 18);
        for (i, g) in got[6..].iter().enumerate() {
            assert_eq!(g, &vec![b'a' + (i % 9) as u8; 3]);
        }
    }

    #[test]
    fn claims_beyond_the_stored_bytes_are_errors() {
        let mut file = vec![0u8; 8];
        let a = collection(&mut file, &[(1, b"abc")], 64);
        let err = |refs: Vec<u8>, file: &[u8]| read(file, refs).unwrap_err().to_string();
        // A length longer than the object.
        assert!(err(reference(4, a, 1), &file).contains("claims 4 bytes"));
        // An object the collection does not hold; an index beyond 16 bits.
        assert!(err(reference(1, a, 2), &file).contains("does not hold"));
        assert!(err(reference(1, a, 70000), &file).contains("at most 65535"));
        // A collection outside the file, or no collection at the address.
        assert!(err(reference(1, 1 << 40, 1), &file).contains("outside the file"));
        assert!(err(reference(1, 0, 1), &file).contains("no global heap"));
        // References that end early.
        let mut short = reference(3, a, 1);
        short.pop();
        let e = read_n(&file, [reference(3, a, 1), short].concat(), 2).unwrap_err();
        assert!(e.to_string().contains("end early"), "{e}");
        // A collection larger than the file.
        let mut big = file.clone();
        big[a as usize + 8..a as usize + 16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert!(err(reference(1, a, 1), &big).contains("claims 1099511627776 bytes"));
        // An object larger than its collection.
        let mut obj = file.clone();
        let size_at = a as usize + 16 + 8;
        obj[size_at..size_at + 8].copy_from_slice(&1000u64.to_le_bytes());
        assert!(err(reference(1, a, 1), &obj).contains("more than its collection holds"));
    }

    #[test]
    fn a_collection_of_more_than_65536_objects_is_refused() {
        let mut file = vec![0u8; 8];
        let objects: Vec<(u16, &[u8])> = (0..=MAX_OBJECTS).map(|_| (5u16, &b""[..])).collect();
        let a = collection(&mut file, &objects, 0);
        let e = read(&file, reference(1, a, 9)).unwrap_err().to_string();
        assert!(e.contains("more than 65536 objects"), "{e}");
    }
}
