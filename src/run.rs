//! The library's front door: open an input, plan, and write, reporting progress and
//! warnings through a [`Reporter`]. The `tf2npy` binary is a thin shell around this.

use crate::error::{Ctx, Error, Result};
use crate::formats;
use crate::plan::convert::{to_numpy, ConvertOptions};
use crate::plan::{self, Plan, SelectOptions, Source};
use crate::source::Container;
use crate::stream::{ByteStream, PREFETCH_MIN};
use crate::write::atomic::AtomicFile;
use crate::write::check::{CheckTarget, CheckWriter};
use crate::write::folder::FolderWriter;
use crate::write::npy::NpyWriter;
use crate::write::npz::{Compression, NpzWriter};
use crate::write::safetensors::{Layout, SafetensorsWriter, TensorSpec as SafetensorSpec};
use crate::write::{ArrayHeader, ArrayWriter};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Where converted arrays go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputTarget {
    /// A `.npz` archive, one `NAME.npy` member per tensor.
    Npz(PathBuf),
    /// One `.npy` file (exactly one tensor).
    Npy(PathBuf),
    /// A folder with one `.npy` per tensor.
    Folder(PathBuf),
    /// One `.npy` written to standard output.
    Stdout,
    /// A `.safetensors` file (bfloat16 and float8 kept as such, not widened).
    Safetensors(PathBuf),
}

impl OutputTarget {
    /// Interprets the `-o` argument: `-` is stdout, `*.npz` an archive, `*.npy` one array,
    /// a path ending in `/` or an existing folder a folder.
    pub fn from_arg(arg: &str) -> Result<Self> {
        let path = PathBuf::from(arg);
        let lower = arg.to_ascii_lowercase();
        if arg == "-" {
            Ok(OutputTarget::Stdout)
        } else if arg.ends_with('/') || path.is_dir() {
            Ok(OutputTarget::Folder(path))
        } else if lower.ends_with(".npz") {
            Ok(OutputTarget::Npz(path))
        } else if lower.ends_with(".npy") {
            Ok(OutputTarget::Npy(path))
        } else if lower.ends_with(".safetensors") {
            Ok(OutputTarget::Safetensors(path))
        } else {
            Err(Error::usage(format!(
                "cannot tell the output format of `{arg}`: end it in .npz, .npy or .safetensors, \
                 end it in / for a folder, or use - for stdout"
            )))
        }
    }

    /// The output path, if the output is a file or folder.
    pub fn path(&self) -> Option<&Path> {
        match self {
            OutputTarget::Npz(p)
            | OutputTarget::Npy(p)
            | OutputTarget::Folder(p)
            | OutputTarget::Safetensors(p) => Some(p),
            OutputTarget::Stdout => None,
        }
    }
}

/// Everything a conversion needs.
#[derive(Clone, Debug)]
pub struct Job {
    /// What to read.
    pub input: PathBuf,
    /// Where to write.
    pub output: OutputTarget,
    /// Which tensors, under which names.
    pub select: SelectOptions,
    /// Dtype policy.
    pub convert: ConvertOptions,
    /// Deflate `.npz` members.
    pub compress: bool,
    /// Deflate level 0-9 (`--compress-level`, implies `compress`); `None` is numpy's 6.
    pub compress_level: Option<u32>,
    /// Threads for deflating (0 = one per core).
    pub threads: usize,
    /// Verify checksums while reading (on unless `--no-verify`).
    pub verify: bool,
    /// SavedModel: also write the `Const` tensors of the graph and its functions.
    pub constants: bool,
    /// Rewrite outputs even when they already hold identical bytes.
    pub force: bool,
    /// Write a JSON manifest of the written tensors here.
    pub manifest: Option<PathBuf>,
    /// Refuse an output larger than this many bytes (`--max-output`); `None` means
    /// [`crate::limits::default_limit`] of the input's size.
    pub max_output: Option<u64>,
    /// TFRecord inputs (the spill folder is set from the output).
    pub records: formats::records::RecordOptions,
    /// What to do.
    pub mode: Mode,
}

/// What a job does with the planned tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Write the output.
    #[default]
    Convert,
    /// Compare with the existing output; write nothing (`--check`).
    Check,
    /// Describe what would be written; read no tensor data (`--dry-run`).
    DryRun,
    /// Read every tensor and verify checksums and slice coverage; write nothing
    /// (`--verify`).
    Verify,
}

/// Receives warnings and progress while a job runs.
pub trait Reporter: Send {
    /// Something the user should know that does not stop the job.
    fn warn(&mut self, msg: &str);
    /// The job will pull about `total_bytes` bytes of payload.
    fn begin(&mut self, _total_bytes: u64) {}
    /// Starting on tensor `name`.
    fn tensor(&mut self, _name: &str) {}
    /// `bytes` more payload bytes were written.
    fn advance(&mut self, _bytes: u64) {}
    /// The job is over (successfully or not).
    fn end(&mut self) {}
}

/// A reporter that discards everything.
pub struct Silent;

impl Reporter for Silent {
    fn warn(&mut self, _msg: &str) {}
}

/// What a finished job did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Arrays written (or checked, or verified).
    pub tensors: usize,
    /// Payload bytes written (headers excluded).
    pub bytes: u64,
    /// For `--check`: the differences from the existing output (empty = up to date).
    pub differences: Vec<String>,
    /// For `--dry-run`: one line per array that would be written.
    pub planned: Vec<PlannedArray>,
    /// Manifest records of the arrays written.
    pub records: Vec<ManifestRecord>,
    /// The output names of the arrays written (or checked, or verified), in order.
    pub names: Vec<String>,
}

/// An array `--dry-run` would write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedArray {
    /// Output name.
    pub name: String,
    /// NumPy descr.
    pub descr: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Payload bytes.
    pub bytes: u64,
}

/// One written tensor, as recorded by `--manifest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestRecord {
    /// Output name.
    pub name: String,
    /// Source name in the input.
    pub source: String,
    /// TensorFlow dtype name.
    pub source_dtype: String,
    /// NumPy descr written (the safetensors dtype for `.safetensors` output).
    pub dtype: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Payload bytes.
    pub bytes: u64,
    /// SHA-256 of the payload (the bytes after the `.npy` header), hex.
    pub sha256: String,
}

impl Job {
    /// The reader options this job implies.
    pub fn open_options(&self) -> formats::OpenOptions {
        // TFRecord columns spill beside the output (the temporary folder for stdout).
        let spill = match self.output.path().and_then(Path::parent) {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            Some(_) => PathBuf::from("."),
            None => std::env::temp_dir(),
        };
        formats::OpenOptions {
            constants: self.constants,
            sparse: self.select.sparse,
            records: formats::records::RecordOptions {
                spill_dir: Some(spill),
                no_verify: !self.verify,
                ..self.records.clone()
            },
        }
    }
}

/// Opens the input of a job (detecting its format).
pub fn open_input(path: &Path, opts: &formats::OpenOptions) -> Result<Box<dyn Container>> {
    formats::open(path, opts)
}

/// Runs `job`: open, plan, then write (or check, dry-run, verify). Output appears
/// only if every tensor was read cleanly.
pub fn convert(job: &Job, reporter: &mut dyn Reporter) -> Result<Summary> {
    let container = open_input(&job.input, &job.open_options())?;
    let mut plan = plan::build(container.as_ref(), &job.select)?;
    let safetensors_job;
    let (job, mut layout) = match job.output {
        OutputTarget::Safetensors(ref p) => {
            // safetensors holds bfloat16 and float8 as such: their stored bits, unwidened.
            safetensors_job = Job {
                convert: ConvertOptions { raw_bits: true },
                ..job.clone()
            };
            let layout = safetensors_layout(container.as_ref(), &mut plan, &safetensors_job, p)?;
            (&safetensors_job, layout)
        }
        _ => (job, None),
    };
    for w in &plan.warnings {
        reporter.warn(w);
    }
    if job.mode == Mode::Verify {
        crate::output_paths::check_paths(container.as_ref(), &plan, job)?;
        let total = plan
            .tensors
            .iter()
            .map(|t| t.source.stored_bytes(container.as_ref()))
            .sum();
        reporter.begin(total);
        let result = crate::verify::verify_all(container.as_ref(), &plan, job.verify, reporter);
        reporter.end();
        let summary = result?;
        if let Some(path) = &job.manifest {
            write_manifest(path, container.as_ref(), job, &summary)?.commit()?;
        }
        return Ok(summary);
    }
    check_output(container.as_ref(), &plan, &job.output)?;
    crate::output_paths::check_paths(container.as_ref(), &plan, job)?;
    if job.mode == Mode::DryRun {
        return dry_run(container.as_ref(), &plan, job);
    }
    crate::limits::check_sizes(container.as_ref(), &plan, job)?;
    let mut check: Option<CheckWriter> = None;
    let mut writer: Box<dyn ArrayWriter> = match (job.mode, &job.output) {
        (Mode::Check, out) => {
            let target = match out {
                OutputTarget::Npz(p) => CheckTarget::Npz(p.clone()),
                OutputTarget::Npy(p) => CheckTarget::Npy(p.clone()),
                OutputTarget::Folder(p) => CheckTarget::Folder(p.clone()),
                OutputTarget::Safetensors(p) => {
                    CheckTarget::Safetensors(p.clone(), take_layout(&mut layout)?)
                }
                OutputTarget::Stdout => {
                    return Err(Error::usage(
                        "--check needs an output file or folder, not -",
                    ))
                }
            };
            check = Some(CheckWriter::new(target)?);
            Box::new(NullWriter)
        }
        (_, OutputTarget::Npz(p)) => Box::new(NpzWriter::create(
            p,
            Compression::new(job.compress, job.compress_level, job.threads),
            job.force,
        )?),
        (_, OutputTarget::Npy(p)) => Box::new(NpyWriter::to_file(p, job.force)),
        (_, OutputTarget::Folder(p)) => Box::new(FolderWriter::create(p, job.force)?),
        (_, OutputTarget::Stdout) => Box::new(NpyWriter::to_stdout()),
        (_, OutputTarget::Safetensors(p)) => Box::new(SafetensorsWriter::create(
            p,
            take_layout(&mut layout)?,
            job.force,
        )?),
    };
    let total: u64 = plan
        .tensors
        .iter()
        .map(|t| source_bytes(container.as_ref(), &t.source, job.convert))
        .sum();
    reporter.begin(total);
    let result = match check.as_mut() {
        Some(c) => write_all(container.as_ref(), &plan, job, c, reporter),
        None => write_all(container.as_ref(), &plan, job, writer.as_mut(), reporter),
    };
    reporter.end();
    let mut summary = result?;
    // The manifest is written (to its temporary file) before any output is published,
    // so that a manifest that cannot be written leaves the previous outputs as they were.
    let manifest = match &job.manifest {
        Some(path) => Some(write_manifest(path, container.as_ref(), job, &summary)?),
        None => None,
    };
    writer.finish()?;
    if let Some(c) = check {
        summary.differences = c.into_differences().iter().map(|d| d.to_string()).collect();
    }
    if let Some(m) = manifest {
        m.commit()?;
    }
    Ok(summary)
}

fn take_layout(layout: &mut Option<Layout>) -> Result<Layout> {
    layout
        .take()
        .ok_or_else(|| Error::usage("internal error: no safetensors layout"))
}

/// For `.safetensors` output: drops the planned tensors safetensors has no dtype for
/// (with a warning, or an error when asked for by `--tensor`), puts the rest in the
/// file's order and returns its layout (`None` when nothing is left, which
/// `check_output` reports). `job.convert` must keep raw bits.
fn safetensors_layout(
    container: &dyn Container,
    plan: &mut Plan,
    job: &Job,
    out: &Path,
) -> Result<Option<Layout>> {
    let ctx = Ctx::file(container.path());
    let mut specs = Vec::new();
    let mut kept = std::collections::HashMap::new();
    for t in std::mem::take(&mut plan.tensors) {
        let (entry, raw) = t.source.open(container, false)?;
        let Some(dtype) = entry.dtype.safetensors() else {
            let detail = format!("safetensors has no {} dtype", entry.dtype);
            if job.select.tensor.is_some() {
                return Err(ctx.tensor(&entry.name).unsupported(detail));
            }
            plan.warnings
                .push(format!("skipping `{}`: {detail}", entry.name));
            continue;
        };
        let arr = to_numpy(&entry, raw, job.convert, &ctx).map_err(|e| e.in_tensor(&entry.name))?;
        let len = arr.header.byte_len().ok_or_else(|| {
            ctx.tensor(&entry.name)
                .unsupported("too large for safetensors")
        })?;
        specs.push(SafetensorSpec {
            name: t.name.clone(),
            dtype,
            shape: arr.header.shape.clone(),
            len,
        });
        kept.insert(t.name.clone(), t);
    }
    if specs.is_empty() {
        return Ok(None);
    }
    let layout = Layout::new(specs, out)?;
    plan.tensors = layout.names().filter_map(|n| kept.remove(n)).collect();
    Ok(Some(layout))
}

/// Payload bytes a planned array will have, for the progress total: exact for
/// fixed-size dtypes (after widening), the stored size for strings and sparse tensors.
fn source_bytes(container: &dyn Container, source: &Source, convert: ConvertOptions) -> u64 {
    if let Source::Entry(i) = *source {
        let e = &container.entries()[i];
        if let Some((_, item)) = crate::plan::convert::fixed_descr(e.dtype, convert) {
            return e.num_elements().saturating_mul(item);
        }
    }
    source.stored_bytes(container)
}

/// `--dry-run`: headers only. String widths need a pass over the lengths, nothing more.
fn dry_run(container: &dyn Container, plan: &Plan, job: &Job) -> Result<Summary> {
    let ctx = Ctx::file(container.path());
    let mut summary = Summary::default();
    for t in &plan.tensors {
        let (entry, raw) = t.source.open(container, false)?;
        let entry = &entry;
        let arr = to_numpy(entry, raw, job.convert, &ctx).map_err(|e| e.in_tensor(&entry.name))?;
        let bytes = arr.header.byte_len().unwrap_or(u64::MAX);
        summary.tensors += 1;
        summary.bytes = summary.bytes.saturating_add(bytes);
        summary.planned.push(PlannedArray {
            name: t.name.clone(),
            descr: arr.header.descr.clone(),
            shape: arr.header.shape.clone(),
            bytes,
        });
    }
    Ok(summary)
}

/// Writes the `--manifest` JSON to a temporary file and returns it, to be committed
/// once the outputs are published: inputs with sizes, then every written array sorted
/// by name. Deterministic: no timestamps, no absolute paths beyond what the user typed.
fn write_manifest(
    path: &Path,
    container: &dyn Container,
    job: &Job,
    summary: &Summary,
) -> Result<AtomicFile> {
    let inputs: Vec<serde_json::Value> = container
        .input_files()
        .iter()
        .map(|(p, size)| serde_json::json!({"path": p.to_string_lossy(), "bytes": size}))
        .collect();
    let tensors: Vec<serde_json::Value> = summary
        .records
        .iter()
        .map(|r| {
            serde_json::json!({
                "name": r.name,
                "source": r.source,
                "source_dtype": r.source_dtype,
                "dtype": r.dtype,
                "shape": r.shape,
                "bytes": r.bytes,
                "sha256": r.sha256,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "tool": format!("tf2npy {}", env!("CARGO_PKG_VERSION")),
        "input": job.input.to_string_lossy(),
        "container": container.kind(),
        "input_files": inputs,
        "output": job.output.path().map(|p| p.to_string_lossy().into_owned()).unwrap_or_else(|| "-".into()),
        "tensors": tensors,
    });
    let mut text = serde_json::to_string_pretty(&doc)
        .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    text.push('\n');
    let file = AtomicFile::create(path, job.force)?;
    {
        use std::io::Write;
        let mut f = file.file()?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(path, e))?;
    }
    Ok(file)
}

fn write_all(
    container: &dyn Container,
    plan: &Plan,
    job: &Job,
    writer: &mut dyn ArrayWriter,
    reporter: &mut dyn Reporter,
) -> Result<Summary> {
    let ctx = Ctx::file(container.path());
    let mut summary = Summary::default();
    for t in &plan.tensors {
        reporter.tensor(&t.name);
        let (entry, raw) = t.source.open(container, job.verify)?;
        let entry = &entry;
        let arr = to_numpy(entry, raw, job.convert, &ctx).map_err(|e| e.in_tensor(&entry.name))?;
        let hasher = job.manifest.as_ref().map(|_| Sha256::new());
        let len = arr.header.byte_len().unwrap_or(0);
        let write = |data: &mut dyn ByteStream| {
            let mut counted = Counted {
                inner: data,
                reporter: &mut *reporter,
                hasher,
            };
            writer.add(&t.name, &arr.header, &mut counted)?;
            Ok(counted.hasher)
        };
        let hasher = if reads_ahead(job.mode, &*arr.data, len) {
            crate::stream::with_prefetch(arr.data, write)
        } else {
            let mut data = arr.data;
            write(&mut *data)
        }
        .map_err(|e| e.in_tensor(&entry.name))?;
        let bytes = arr.header.byte_len().unwrap_or(0);
        summary.tensors += 1;
        summary.bytes += bytes;
        summary.names.push(t.name.clone());
        if let Some(h) = hasher {
            summary.records.push(ManifestRecord {
                name: t.name.clone(),
                source: entry.name.clone(),
                source_dtype: entry.dtype.name().to_string(),
                dtype: match job.output {
                    OutputTarget::Safetensors(_) => entry.dtype.safetensors().unwrap_or("").into(),
                    _ => arr.header.descr.clone(),
                },
                shape: arr.header.shape.clone(),
                bytes,
                sha256: h.finalize().iter().map(|b| format!("{b:02x}")).collect(),
            });
        }
    }
    Ok(summary)
}

/// Whether a payload of `len` bytes is read on a second thread, ahead of writing.
/// A stream that lends (a verbatim tensor: mapped windows of the data file) is
/// checksummed and written from the same bytes on the writing thread, with no copy; so
/// is a tensor under [`PREFETCH_MIN`] (a thread and its buffers cost more than the
/// overlap gains), and everything under `--verify` (nothing to overlap with). So the
/// threads a run starts do not grow with the tensor count. Conversions and slices of
/// large tensors are read, checksummed and converted ahead.
fn reads_ahead(mode: Mode, data: &dyn ByteStream, len: u64) -> bool {
    mode != Mode::Verify && !data.lends() && len >= PREFETCH_MIN
}

/// Refuses outputs that cannot work before any tensor is read: several tensors into one
/// `.npy`, or nothing to write. ([`crate::output_paths`] checks the paths.)
fn check_output(container: &dyn Container, plan: &Plan, output: &OutputTarget) -> Result<()> {
    if plan.tensors.is_empty() {
        // Everything selected was skipped (variant/resource): the input is the reason.
        if !plan.warnings.is_empty() {
            return Err(Error::unsupported(
                container.path(),
                format!(
                    "nothing NumPy can hold was selected ({})",
                    plan.warnings.join("; ")
                ),
            ));
        }
        return Err(Error::usage(format!(
            "nothing to write: no tensor of {} is selected",
            container.path().display()
        )));
    }
    if matches!(output, OutputTarget::Npy(_) | OutputTarget::Stdout) && plan.tensors.len() > 1 {
        let names: Vec<&str> = plan.tensors.iter().map(|t| t.name.as_str()).collect();
        return Err(Error::usage(format!(
            "a .npy holds one tensor but {} are selected; pick one with --tensor NAME: {}",
            names.len(),
            names.join(", ")
        )));
    }
    Ok(())
}

/// Passes bytes through, telling the reporter how many went by and hashing them for
/// the manifest.
struct Counted<'a, 'r> {
    inner: &'a mut dyn ByteStream,
    reporter: &'r mut dyn Reporter,
    hasher: Option<Sha256>,
}

impl ByteStream for Counted<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.inner.read(buf)?;
        self.reporter.advance(n as u64);
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        Ok(n)
    }

    fn lends(&self) -> bool {
        self.inner.lends()
    }

    fn read_borrowed(&mut self, max: usize) -> Result<&[u8]> {
        let b = self.inner.read_borrowed(max)?;
        self.reporter.advance(b.len() as u64);
        if let Some(h) = &mut self.hasher {
            h.update(b);
        }
        Ok(b)
    }
}

/// Consumes payloads without writing them (`--verify`, and `--check`'s placeholder).
struct NullWriter;

impl ArrayWriter for NullWriter {
    fn add(&mut self, name: &str, header: &ArrayHeader, data: &mut dyn ByteStream) -> Result<()> {
        let len = header.byte_len().unwrap_or(0);
        crate::write::copy_exact(data, &mut std::io::sink(), len, name, Path::new("<verify>"))
    }

    fn finish(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::SliceStream;

    #[test]
    fn small_lent_and_verified_tensors_get_no_read_ahead_thread() {
        let data = SliceStream::new(&[]);
        assert!(reads_ahead(Mode::Convert, &data, PREFETCH_MIN));
        assert!(!reads_ahead(Mode::Convert, &data, PREFETCH_MIN - 1));
        assert!(!reads_ahead(Mode::Verify, &data, u64::MAX));
        assert!(!reads_ahead(Mode::Check, &data, 4));
        struct Lends;
        impl ByteStream for Lends {
            fn read(&mut self, _: &mut [u8]) -> Result<usize> {
                Ok(0)
            }
            fn lends(&self) -> bool {
                true
            }
        }
        assert!(!reads_ahead(Mode::Convert, &Lends, u64::MAX));
    }
}
