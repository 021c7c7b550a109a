//! `--verify`: read every tensor as it is stored, checking every checksum and slice
//! cover, and write nothing. Work is bounded by what the input stores, not by what it
//! claims: tensors are read in TensorFlow's storage layout (no conversion, no `|S`
//! padding of strings), and a tensor whose reader produces more than the input stores
//! for it (a `TensorProto` constant broadcast over its shape, which repeats its last
//! value) is read only as far as its stored values go: the rest repeats them.

use crate::error::Result;
use crate::plan::Plan;
use crate::run::{Reporter, Summary};
use crate::source::{Container, RawTensor};

/// Reads the stored data of every planned tensor (`verify` turns checksums on).
pub fn verify_all(
    container: &dyn Container,
    plan: &Plan,
    verify: bool,
    reporter: &mut dyn Reporter,
) -> Result<Summary> {
    let input_bytes: u64 = container.input_files().iter().map(|(_, n)| n).sum();
    let mut summary = Summary::default();
    let mut buf = vec![0u8; crate::write::CHUNK_BYTES];
    for t in &plan.tensors {
        reporter.tensor(&t.name);
        let stored = t.source.stored_bytes(container);
        let (entry, raw) = t.source.open(container, verify)?;
        let read = match raw {
            RawTensor::Fixed(mut data) => {
                let claimed = entry
                    .dtype
                    .storage_bytes()
                    .and_then(|b| entry.num_elements().checked_mul(b))
                    .unwrap_or(u64::MAX);
                // Everything the reader can produce from stored bytes, to its end
                // (where the checksums are checked); beyond that it only repeats.
                let budget = if claimed <= stored { u64::MAX } else { stored };
                let mut done = 0u64;
                while done < budget {
                    let want = buf
                        .len()
                        .min(usize::try_from(budget - done).unwrap_or(usize::MAX));
                    let n = data
                        .read(&mut buf[..want])
                        .map_err(|e| e.in_tensor(&entry.name))?;
                    if n == 0 {
                        break;
                    }
                    done += n as u64;
                    reporter.advance(n as u64);
                }
                done
            }
            RawTensor::Strings(mut strings) => {
                // Every stored element takes at least one byte of the input and its
                // bytes are in the input: past either bound the reader only repeats
                // (a broadcast `string_val`). (`stored` is no bound here: a V1
                // checkpoint counts string elements, not their bytes.)
                let mut elem = Vec::new();
                let (mut count, mut bytes) = (0u64, 0u64);
                while count <= input_bytes && bytes <= input_bytes {
                    if !strings
                        .next_into(&mut elem)
                        .map_err(|e| e.in_tensor(&entry.name))?
                    {
                        break;
                    }
                    count += 1;
                    bytes += elem.len() as u64;
                    reporter.advance(elem.len() as u64);
                }
                bytes
            }
        };
        summary.tensors += 1;
        summary.bytes = summary.bytes.saturating_add(read);
    }
    Ok(summary)
}
