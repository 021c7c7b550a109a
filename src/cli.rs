//! The command line: clap definitions, their translation into a [`run::Job`], and the
//! terminal reporter (warnings on stderr, an indicatif progress bar when stderr is a
//! terminal). `main.rs` only parses arguments, calls [`run()`] and maps errors with [`exit_code`].

use crate::error::{Error, Result};
use crate::plan::convert::ConvertOptions;
use crate::plan::sparse::SparseMode;
use crate::plan::SelectOptions;
use crate::run::{self, Job, Mode, OutputTarget, Reporter};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: bad, damaged or unreadable input (or an output that cannot be written).
pub const EXIT_BAD_INPUT: u8 = 1;
/// Exit status: usage error (bad flags, unknown tensor, impossible output).
pub const EXIT_USAGE: u8 = 2;

const AFTER_HELP: &str = "\
Examples:
  tf2npy model.ckpt -o weights.npz            every tensor of a checkpoint into one .npz
  tf2npy model.ckpt                           list tensors (name, dtype, shape, bytes)
  tf2npy model.ckpt --list --json             the same as JSON
  tf2npy train_dir/ -o out/                   latest checkpoint of a training folder, one .npy per tensor
  tf2npy model.ckpt --tensor dense/kernel -o k.npy
  tf2npy model.ckpt --short-names --select 'encoder/*' -o enc.npz
  tf2npy keras_ckpt --var-names -o w.npz      Keras 3: sequential/dense/kernel, not optimizer/_trainable_variables/0/...
  tf2npy tensor.pb -o - | python3 -c 'import numpy,sys,io; print(numpy.load(io.BytesIO(sys.stdin.buffer.read())))'

INPUT may be a checkpoint prefix (model.ckpt, V2 or V1), its .index, any .data-* file or the
TF1 .meta graph beside it, a folder with a `checkpoint` state file or exactly one checkpoint,
a SavedModel folder, a .pb file (TensorProto, serialized sparse tensor, frozen GraphDef or
saved_model.pb), a Keras file (.keras, .weights.h5, legacy .h5, a sharded .weights.json),
or TFRecord data (a file, a folder of shards, a glob, a tf.data.Dataset.save folder,
TensorBoard event files): the kind is detected from the content, not the name.

Files tf2npy does not read (TFLite, TF.js, ONNX, PyTorch, NumPy, safetensors, ...) are
named in the error, with what to do instead.

Folder output of a TF2 checkpoint puts files under `.ATTRIBUTES/` folders, which `ls`
hides; a note on stderr says so (--short-names or --var-names give plain paths).

Make and CI:
  tf2npy model.ckpt -o w.npz                  leaves an identical w.npz untouched (mtime kept)
  tf2npy model.ckpt -o w.npz --check          exit 1 and list what changed if w.npz is stale
  tf2npy model.ckpt -o w.npz --manifest w.json
  tf2npy download/model.ckpt --verify         check every checksum of a download

Exit status: 0 success; 1 bad, damaged or unreadable input, or --check found differences;
2 usage error; 130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP (temporary files removed).";

/// Convert TensorFlow checkpoints and tensors to NumPy .npy/.npz, without TensorFlow.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "tf2npy",
    version,
    about,
    after_help = AFTER_HELP,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Args {
    /// Generate shell completions or the man page instead of converting.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The input: checkpoint prefix, .index/.data-*/.meta file, folder, SavedModel, or .pb file.
    #[arg(required = true)]
    pub input: Option<PathBuf>,

    /// Output: FILE.npz, FILE.npy, FILE.safetensors, a folder (DIR/ or an existing folder),
    /// or - for stdout. Without -o, the tensors are listed.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<String>,

    /// List the tensors (name, TensorFlow dtype, shape, bytes, location) and the checkpoint
    /// read, instead of converting. --tensor, --select and --exclude narrow the list.
    #[arg(long)]
    pub list: bool,

    /// With --list: print a JSON object {"input","kind","checkpoint","entries"}, each entry
    /// {"name","dtype","shape","bytes","location","hidden"}.
    #[arg(long)]
    pub json: bool,

    /// Convert (or list) only the tensor with this name (needed for .npy output when there
    /// are several).
    #[arg(long, value_name = "NAME")]
    pub tensor: Option<String>,

    /// Keep (or list) only tensors whose name matches GLOB (repeatable; `*` also matches `/`).
    #[arg(long, value_name = "GLOB")]
    pub select: Vec<String>,

    /// Drop tensors whose name matches GLOB (repeatable), when converting and listing.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,

    /// Also write hidden entries such as _CHECKPOINTABLE_OBJECT_GRAPH.
    #[arg(long)]
    pub all: bool,

    /// Name tensors by their TF2 object path: drop /.ATTRIBUTES/VARIABLE_VALUE and undo key escaping.
    #[arg(long)]
    pub short_names: bool,

    /// Name tensors by the variable names in a TF2 checkpoint's object graph (sequential/dense/kernel).
    ///
    /// Keras 3 keys weights by where the optimizer found them
    /// (optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE); the object graph
    /// records each variable's own name. Tensors without one keep their key (or short
    /// name). Two keys with the same name and byte-identical data (a Keras 3
    /// model.export() stores each variable twice) are written once, with a warning;
    /// two different tensors under one name is an error. With --list: a VARIABLE column.
    /// Keras HDF5 files (.keras, .weights.h5, legacy .h5): the Keras name the file
    /// records (layer name and index in Keras 3, weight_names in tf_keras files).
    #[arg(long)]
    pub var_names: bool,

    /// Deflate .npz members (like np.savez_compressed); default is stored.
    #[arg(long)]
    pub compress: bool,

    /// Deflate level for --compress, 0 (stored blocks, fastest) to 9 (smallest);
    /// implies --compress. Default 6, as np.savez_compressed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=9))]
    pub compress_level: Option<u32>,

    /// Threads for --compress (0 = one per core). The output is identical for any count.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,

    /// SavedModel: also write the Const tensors of the graph and its functions.
    #[arg(long)]
    pub constants: bool,

    /// Sparse tensors (serialized, or stored as X/indices, X/values, X/dense_shape):
    /// write each as one dense array, or keep the parts.
    #[arg(long, value_enum, value_name = "MODE", default_value_t = SparseMode::Densify)]
    pub sparse: SparseMode,

    /// Keep bfloat16/float8/float4 as raw bits (<u2 / |u1) instead of widening them to float32.
    #[arg(long)]
    pub raw_bits: bool,

    /// Skip checksum verification (only to recover data from a damaged checkpoint).
    #[arg(long)]
    pub no_verify: bool,

    /// TFRecord input: its compression (none, gzip, zlib, snappy) instead of detecting it.
    #[arg(long, value_name = "KIND", value_parser = parse_compression)]
    pub compression: Option<crate::formats::records::Compression>,

    /// TFRecord input: what the records are (example, sequence, tensor, event) instead of
    /// detecting it.
    #[arg(long, value_name = "KIND", value_parser = parse_record_kind)]
    pub records: Option<crate::formats::records::RecordKind>,

    /// TFRecord Examples: write every feature as K/values + K/row_splits, so the layout
    /// never depends on the data.
    #[arg(long)]
    pub ragged: bool,

    /// TFRecord Examples: write bytes_list features as NumPy |S<n> string arrays (K, or
    /// K/values + K/row_splits) instead of K/bytes + K/value_splits. For text: NumPy
    /// drops trailing NUL bytes when it reads |S values, so binary values are not exact.
    #[arg(long)]
    pub bytes_as_strings: bool,

    /// TFRecord input: convert at most N records (after --skip).
    #[arg(long, value_name = "N")]
    pub take: Option<u64>,

    /// TFRecord input: leave out the first N records.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub skip: u64,

    /// Compare what would be written with the existing output, write nothing; exit 0 when
    /// identical, 1 with a per-tensor summary when not.
    #[arg(long, conflicts_with_all = ["dry_run", "verify"])]
    pub check: bool,

    /// Rewrite the output even when it already holds identical bytes (by default an
    /// identical output is left untouched, keeping its mtime for make).
    #[arg(long)]
    pub force: bool,

    /// Write a JSON manifest: each tensor's name, source dtype, output dtype, shape and
    /// SHA-256 of the payload, plus the input files and sizes.
    #[arg(long, value_name = "FILE.json")]
    pub manifest: Option<PathBuf>,

    /// Refuse an output larger than SIZE (bytes, or with K/M/G/T, e.g. 20G). The default
    /// is 16 times the input's size plus 256 MiB; -o - is limited too.
    #[arg(long, value_name = "SIZE", value_parser = crate::limits::parse_size)]
    pub max_output: Option<u64>,

    /// Read every tensor and check every checksum and slice cover; write nothing; exit 0/1.
    #[arg(long, conflicts_with_all = ["output", "dry_run"])]
    pub verify: bool,

    /// Print what would be written (name, dtype, shape, bytes) without writing.
    #[arg(long)]
    pub dry_run: bool,

    /// No progress bar and no warnings.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Subcommands that document the tool rather than convert.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout.
    Man,
}

impl Args {
    /// The reader options (`--constants`, `--sparse`).
    pub fn open_options(&self) -> crate::formats::OpenOptions {
        crate::formats::OpenOptions {
            constants: self.constants,
            sparse: self.sparse,
            records: self.record_options(),
        }
    }

    /// The TFRecord options (`--compression`, `--records`, `--ragged`, `--take`,
    /// `--skip`, `--no-verify`); nothing spills (the job sets the spill folder).
    pub fn record_options(&self) -> crate::formats::records::RecordOptions {
        crate::formats::records::RecordOptions {
            compression: self.compression,
            kind: self.records,
            ragged: self.ragged,
            strings: self.bytes_as_strings,
            skip: self.skip,
            take: self.take,
            no_verify: self.no_verify,
            spill_dir: None,
        }
    }

    /// The input path (required unless a subcommand is given).
    pub fn input(&self) -> Result<PathBuf> {
        self.input
            .clone()
            .ok_or_else(|| Error::usage("an INPUT is required"))
    }

    /// The conversion job these arguments describe (`None` when they ask for a listing).
    pub fn job(&self) -> Result<Option<Job>> {
        let mode = if self.check {
            Mode::Check
        } else if self.dry_run {
            Mode::DryRun
        } else if self.verify {
            Mode::Verify
        } else {
            Mode::Convert
        };
        let output = match (&self.output, mode) {
            (None, Mode::Verify) => OutputTarget::Stdout,
            (None, Mode::Convert) => return Ok(None),
            (None, _) => return Err(Error::usage("--check and --dry-run need -o OUT")),
            (Some(out), _) => OutputTarget::from_arg(out)?,
        };
        if self.list {
            return Err(Error::usage(
                "--list cannot be combined with -o, --check, --dry-run or --verify",
            ));
        }
        let select_all = mode == Mode::Verify;
        Ok(Some(Job {
            input: self.input()?,
            output,
            force: self.force,
            manifest: self.manifest.clone(),
            max_output: self.max_output,
            mode,
            select: SelectOptions {
                tensor: self.tensor.clone(),
                select: self.select.clone(),
                exclude: self.exclude.clone(),
                all: self.all || select_all,
                short_names: self.short_names,
                var_names: self.var_names && !select_all,
                // --verify reads the stored parts; densifying would only add zeros.
                sparse: if select_all {
                    SparseMode::Keep
                } else {
                    self.sparse
                },
            },
            convert: ConvertOptions {
                raw_bits: self.raw_bits,
            },
            compress: self.compress,
            compress_level: self.compress_level,
            threads: self.threads,
            verify: !self.no_verify,
            constants: self.constants,
            records: self.record_options(),
        }))
    }
}

fn parse_compression(s: &str) -> std::result::Result<crate::formats::records::Compression, String> {
    crate::formats::records::Compression::from_name(s)
        .ok_or_else(|| format!("`{s}`: expected none, gzip, zlib or snappy"))
}

fn parse_record_kind(s: &str) -> std::result::Result<crate::formats::records::RecordKind, String> {
    crate::formats::records::RecordKind::from_name(s)
        .ok_or_else(|| format!("`{s}`: expected example, sequence, tensor or event"))
}

/// Runs the command described by `args`, writing data to stdout and messages to stderr.
/// Returns the exit status for a run that did not fail (1 when `--check` found stale
/// output).
pub fn run(args: &Args) -> Result<u8> {
    if let Some(cmd) = &args.command {
        // Rendered in memory first: clap_complete panics on a write error, and a closed
        // pipe (`| head`, `| true`) must exit 0 like every other output.
        let mut text = Vec::new();
        let mut command = <Args as clap::CommandFactory>::command();
        match cmd {
            Command::Completions { shell } => {
                clap_complete::generate(*shell, &mut command, "tf2npy", &mut text);
            }
            Command::Man => {
                clap_mangen::Man::new(command)
                    .render(&mut text)
                    .map_err(|e| Error::io("<stdout>", e))?;
            }
        }
        write_stdout(&text)?;
        return Ok(EXIT_OK);
    }
    match args.job()? {
        None => {
            let container = run::open_input(&args.input()?, &args.open_options())?;
            let names = if args.var_names {
                // What the names could not cover, as a conversion would warn.
                let mut reporter = TermReporter::new(args.quiet);
                for note in container.variable_name_notes() {
                    reporter.warn(&note);
                }
                Some(container.variable_names()?)
            } else {
                None
            };
            let select = SelectOptions {
                tensor: args.tensor.clone(),
                select: args.select.clone(),
                exclude: args.exclude.clone(),
                all: true,
                short_names: args.short_names,
                var_names: args.var_names,
                sparse: args.sparse,
            };
            let shown = crate::plan::listed_entries(
                container.as_ref(),
                &select,
                names.as_deref().unwrap_or_default(),
            )?;
            let text = if args.json {
                crate::listing::to_json_selected(container.as_ref(), names.as_deref(), &shown)
            } else {
                crate::listing::to_table_selected(container.as_ref(), names.as_deref(), &shown)
            };
            write_stdout(text.as_bytes())?;
            Ok(EXIT_OK)
        }
        Some(job) => {
            crate::write::atomic::remove_temp_files_on_signals()?;
            let mut reporter = TermReporter::new(args.quiet);
            let summary = run::convert(&job, &mut reporter)?;
            if let (Mode::Convert, OutputTarget::Folder(dir), false) =
                (job.mode, &job.output, args.quiet)
            {
                if let Some(note) = hidden_files_note(dir, &summary.names, args) {
                    eprintln!("tf2npy: note: {note}");
                }
            }
            Ok(report(&job, &summary))
        }
    }
}

/// For folder output whose files sit under folders whose names start with `.` (a TF2
/// checkpoint's `NAME/.ATTRIBUTES/VARIABLE_VALUE.npy`), which `ls` and file browsers
/// hide so that the output looks empty: a line saying where the files went and how
/// to get plain names. `None` when no written name has such a folder.
pub fn hidden_files_note(dir: &Path, names: &[String], args: &Args) -> Option<String> {
    let hidden_dir = |n: &str| {
        n.split('/')
            .rev()
            .skip(1)
            .find(|seg| seg.starts_with('.'))
            .map(str::to_string)
    };
    let (example, folder) = names.iter().find_map(|n| Some((n, hidden_dir(n)?)))?;
    let count = names.iter().filter(|n| hidden_dir(n).is_some()).count();
    let shown = |name: &str| dir.join(format!("{name}.npy")).display().to_string();
    let mut note = format!(
        "{count} of {} files went into `{folder}` folders, which `ls` hides (e.g. {}; \
         `find {} -name '*.npy'` lists them all)",
        names.len(),
        shown(example),
        dir.display()
    );
    let short = crate::plan::names::short_name(example);
    if !args.short_names && !args.var_names && hidden_dir(&short).is_none() {
        note.push_str(&format!(
            "; --short-names writes {} instead, --var-names uses the model's variable names",
            shown(&short)
        ));
    }
    Some(note)
}

/// Prints the outcome of a check, dry run or verification on stdout; returns the exit
/// status.
fn report(job: &Job, summary: &run::Summary) -> u8 {
    let mut text = String::new();
    let code = match job.mode {
        Mode::Convert => EXIT_OK,
        Mode::Check if summary.differences.is_empty() => EXIT_OK,
        Mode::Check => {
            for d in &summary.differences {
                text.push_str(&crate::text::escape(d));
                text.push('\n');
            }
            EXIT_BAD_INPUT
        }
        Mode::DryRun => {
            for p in &summary.planned {
                let dims: Vec<String> = p.shape.iter().map(u64::to_string).collect();
                text.push_str(&format!(
                    "{}  {}  [{}]  {} bytes\n",
                    crate::text::escape(&p.name),
                    p.descr,
                    dims.join(", "),
                    p.bytes
                ));
            }
            text.push_str(&format!(
                "would write {} arrays, {} bytes of data\n",
                summary.tensors, summary.bytes
            ));
            EXIT_OK
        }
        Mode::Verify => {
            text.push_str(&format!(
                "verified {} tensors, {} bytes: OK\n",
                summary.tensors, summary.bytes
            ));
            EXIT_OK
        }
    };
    // A closed pipe is not an error; the exit status stays the report's.
    let _ = write_stdout(text.as_bytes());
    code
}

/// Writes `bytes` to stdout. A closed pipe (`| head`, `| true`) comes back as an error
/// for which [`Error::is_broken_pipe`] is true, which `main` turns into exit status 0.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

/// Below this many payload bytes no progress bar is shown.
const PROGRESS_MIN_BYTES: u64 = 64 << 20;

/// Warnings on stderr; a progress bar when stderr is a terminal and the job is large.
pub struct TermReporter {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl TermReporter {
    /// A reporter; `quiet` silences warnings and progress.
    pub fn new(quiet: bool) -> Self {
        TermReporter { quiet, bar: None }
    }
}

impl Reporter for TermReporter {
    fn warn(&mut self, msg: &str) {
        if !self.quiet {
            eprintln!("tf2npy: warning: {}", crate::text::escape(msg));
        }
    }

    fn begin(&mut self, total: u64) {
        if self.quiet || total < PROGRESS_MIN_BYTES || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_msg}",
        ) {
            bar.set_style(style);
        }
        self.bar = Some(bar);
    }

    fn tensor(&mut self, name: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(crate::text::escape(name).into_owned());
        }
    }

    fn advance(&mut self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn end(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// The exit status for a library error.
pub fn exit_code(err: &Error) -> u8 {
    if err.is_usage() {
        EXIT_USAGE
    } else {
        EXIT_BAD_INPUT
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }
}
