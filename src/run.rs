//! The library's front door: open an input, plan, and write, reporting progress and
//! warnings through a [`Reporter`]. The `tf2npy` binary is a thin shell around this.

use crate::error::{Ctx, Error, Result};
use crate::formats;
use crate::plan::convert::{to_numpy, ConvertOptions};
use crate::plan::{self, Plan, SelectOptions, Source};
use crate::source::Container;
use crate::stream::ByteStream;
use crate::write::folder::FolderWriter;
use crate::write::npy::NpyWriter;
use crate::write::npz::NpzWriter;
use crate::write::ArrayWriter;
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
        } else {
            Err(Error::usage(format!(
                "cannot tell the output format of `{arg}`: end it in .npz or .npy, \
                 end it in / for a folder, or use - for stdout"
            )))
        }
    }

    /// The output path, if the output is a file or folder.
    pub fn path(&self) -> Option<&Path> {
        match self {
            OutputTarget::Npz(p) | OutputTarget::Npy(p) | OutputTarget::Folder(p) => Some(p),
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
    /// Verify checksums while reading (on unless `--no-verify`).
    pub verify: bool,
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
    /// Arrays written.
    pub tensors: usize,
    /// Payload bytes written (headers excluded).
    pub bytes: u64,
}

/// Opens the input of a job (detecting its format).
pub fn open_input(path: &Path) -> Result<Box<dyn Container>> {
    formats::open(path)
}

/// Runs `job`: open, plan, write. Output appears only if every tensor was read cleanly.
pub fn convert(job: &Job, reporter: &mut dyn Reporter) -> Result<Summary> {
    let container = open_input(&job.input)?;
    let plan = plan::build(container.as_ref(), &job.select)?;
    for w in &plan.warnings {
        reporter.warn(w);
    }
    check_output(container.as_ref(), &plan, &job.output)?;
    let mut writer: Box<dyn ArrayWriter> = match &job.output {
        OutputTarget::Npz(p) => Box::new(NpzWriter::create(p, job.compress)?),
        OutputTarget::Npy(p) => Box::new(NpyWriter::to_file(p)),
        OutputTarget::Folder(p) => Box::new(FolderWriter::create(p)?),
        OutputTarget::Stdout => Box::new(NpyWriter::to_stdout()),
    };
    let total: u64 = plan
        .tensors
        .iter()
        .map(|t| match t.source {
            Source::Entry(i) => container.entries()[i].stored_bytes,
        })
        .sum();
    reporter.begin(total);
    let result = write_all(container.as_ref(), &plan, job, writer.as_mut(), reporter);
    reporter.end();
    let summary = result?;
    writer.finish()?;
    Ok(summary)
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
        let Source::Entry(i) = t.source;
        let entry = &container.entries()[i];
        reporter.tensor(&t.name);
        let raw = container
            .open(i, job.verify)
            .map_err(|e| e.in_tensor(&entry.name))?;
        let arr = to_numpy(entry, raw, job.convert, &ctx).map_err(|e| e.in_tensor(&entry.name))?;
        let mut counted = Counted {
            inner: arr.data,
            reporter: &mut *reporter,
        };
        writer
            .add(&t.name, &arr.header, &mut counted)
            .map_err(|e| e.in_tensor(&entry.name))?;
        summary.tensors += 1;
        summary.bytes += arr.header.byte_len().unwrap_or(0);
    }
    Ok(summary)
}

/// Refuses outputs that cannot work before any tensor is read: several tensors into one
/// `.npy`, nothing to write, or an output that would overwrite an input file.
fn check_output(container: &dyn Container, plan: &Plan, output: &OutputTarget) -> Result<()> {
    if plan.tensors.is_empty() {
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
    if let Some(out) = output.path() {
        let out_abs = std::fs::canonicalize(out).ok();
        for (input, _) in container.input_files() {
            if out_abs.is_some() && std::fs::canonicalize(&input).ok() == out_abs {
                return Err(Error::usage(format!(
                    "the output {} is one of the input files",
                    out.display()
                )));
            }
        }
    }
    Ok(())
}

/// Passes bytes through, telling the reporter how many went by.
struct Counted<'a, 'r> {
    inner: Box<dyn ByteStream + 'a>,
    reporter: &'r mut dyn Reporter,
}

// SAFETY-free: the reporter is only used on the calling thread.
impl ByteStream for Counted<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let n = self.inner.read(buf)?;
        self.reporter.advance(n as u64);
        Ok(n)
    }
}
