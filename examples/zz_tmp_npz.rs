use tf2npy::stream::SliceStream;
use tf2npy::write::npz::{Compression, NpzWriter};
use tf2npy::write::{ArrayHeader, ArrayWriter};
fn main() {
    let a: Vec<u8> = (0..3_000_000u32).flat_map(|i| ((i as f32 * 0.001).sin()).to_le_bytes()).collect();
    for (p, c) in [("/tmp/zz_s.npz", Compression::Stored), ("/tmp/zz_d.npz", Compression::Deflate { threads: 2 })] {
        let mut w = Box::new(NpzWriter::create(std::path::Path::new(p), c, true).unwrap());
        let h = ArrayHeader { descr: "<f4".into(), shape: vec![3_000_000], item_bytes: 4 };
        w.add("a/ü", &h, &mut SliceStream::new(&a)).unwrap();
        let h0 = ArrayHeader { descr: "<f4".into(), shape: vec![0, 3], item_bytes: 4 };
        w.add("zero", &h0, &mut SliceStream::new(&[])).unwrap();
        w.finish().unwrap();
    }
}
