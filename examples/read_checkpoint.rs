//! Reads a TensorFlow checkpoint (or SavedModel, GraphDef, TensorProto) from Rust with
//! the `tf2npy` library, no TensorFlow and no Python:
//!
//! ```text
//! cargo run --example read_checkpoint -- PATH [--var-names] [TENSOR]
//! cargo run --example read_checkpoint -- fixtures/v2/keras_adam/ckpt --var-names sequential/dense/kernel
//! ```
//!
//! Lists every tensor (name, TensorFlow dtype, shape, the Rust element type it reads
//! as), then streams each float tensor in bounded slices to print its mean and
//! largest magnitude: memory stays the same for a tensor of any size. With `TENSOR`,
//! also reads that tensor whole as an `ndarray::ArrayD` and prints it. This is the
//! pattern for loading weights into candle, burn or tract: read an `ArrayD<f32>` (or
//! stream slices into a buffer of your own) per named variable.

use anyhow::{bail, Context};
use tf2npy::{ElementType, Options, Reader};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut var_names = false;
    let mut tensor = None;
    for a in args.by_ref() {
        match a.as_str() {
            "--var-names" => var_names = true,
            _ if path.is_none() => path = Some(a),
            _ if tensor.is_none() => tensor = Some(a),
            _ => bail!("usage: read_checkpoint PATH [--var-names] [TENSOR]"),
        }
    }
    let Some(path) = path else {
        bail!("usage: read_checkpoint PATH [--var-names] [TENSOR]");
    };
    let reader = Options::new()
        .var_names(var_names)
        .open(&path)
        .with_context(|| format!("opening {path}"))?;
    println!("{} ({})", reader.path().display(), reader.kind());
    for w in reader.warnings() {
        eprintln!("warning: {w}");
    }
    for t in reader.tensors().iter().filter(|t| !t.hidden) {
        let stats = match t.element {
            ElementType::F32 => summary::<f32>(&reader, &t.name, f64::from)?,
            ElementType::F64 => summary::<f64>(&reader, &t.name, |x| x)?,
            ElementType::F16 => summary::<tf2npy::half::f16>(&reader, &t.name, f64::from)?,
            _ => String::new(),
        };
        println!(
            "{:<50} {:<10} {:<14} {:<10} {stats}",
            t.name,
            t.dtype.to_string(),
            format!("{:?}", t.shape),
            t.element.to_string(),
        );
    }
    if let Some(name) = tensor {
        let a: tf2npy::ndarray::ArrayD<f32> = reader
            .read(&name)
            .with_context(|| format!("reading `{name}` as f32"))?;
        println!("{name} = {a}");
    }
    Ok(())
}

/// The mean and largest magnitude of a float tensor, streamed in slices.
fn summary<T: tf2npy::Element + Copy>(
    reader: &Reader,
    name: &str,
    to_f64: fn(T) -> f64,
) -> anyhow::Result<String> {
    let (mut sum, mut max) = (0.0f64, 0.0f64);
    let n = reader
        .for_each(name, |xs: &[T]| {
            for &x in xs {
                let x = to_f64(x);
                sum += x;
                max = max.max(x.abs());
            }
            Ok::<_, anyhow::Error>(())
        })
        .with_context(|| format!("streaming `{name}`"))?;
    if n == 0 {
        return Ok("empty".into());
    }
    Ok(format!("mean {:.4e} max|x| {max:.4e}", sum / n as f64))
}
