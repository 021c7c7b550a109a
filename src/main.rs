//! The `tf2npy` binary: parse arguments, run the library, map errors to exit codes
//! (0 success, 1 bad input, 2 usage). Errors are `anyhow` chains: what the run was
//! doing, then the library's [`tf2npy::Error`], which decides the exit code; the
//! context is printed where the library's message does not already name the input or
//! output.

use anyhow::Context;
use clap::Parser;
use std::process::ExitCode;
use tf2npy::cli::{self, Args};

fn main() -> ExitCode {
    let args = Args::parse();
    match cli::run(&args).with_context(|| doing(&args)) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let lib = err.downcast_ref::<tf2npy::Error>();
            if lib.is_some_and(tf2npy::Error::is_broken_pipe) {
                return ExitCode::from(cli::EXIT_OK);
            }
            eprintln!("tf2npy: error: {}", message(&err, &args));
            ExitCode::from(lib.map_or(cli::EXIT_BAD_INPUT, cli::exit_code))
        }
    }
}

/// The error for people: the library's message alone when it already names the input
/// or the output (most do: `FILE: tensor `x`: what is wrong`), so the first words are
/// the file and the problem; otherwise the whole chain on one line, `doing: cause`.
fn message(err: &anyhow::Error, args: &Args) -> String {
    let cause = err.root_cause().to_string();
    let named = |p: Option<&std::ffi::OsStr>| {
        p.and_then(|p| p.to_str())
            .is_some_and(|p| !p.is_empty() && cause.contains(p))
    };
    let output = args
        .output
        .as_deref()
        .filter(|o| *o != "-")
        .map(str::as_ref);
    if named(args.input.as_deref().map(|p| p.as_os_str())) || named(output) {
        cause
    } else {
        format!("{err:#}")
    }
}

/// What the run was doing, for the head of an error chain (`converting IN to OUT`).
fn doing(args: &Args) -> String {
    let input = args.input.as_deref().unwrap_or("INPUT".as_ref()).display();
    let out = match args.output.as_deref() {
        Some("-") => "stdout",
        other => other.unwrap_or("OUT"),
    };
    match (&args.command, &args.output) {
        (Some(cli::Command::Completions { shell }), _) => format!("writing {shell} completions"),
        (Some(cli::Command::Man), _) => "writing the man page".to_string(),
        _ if args.verify => format!("verifying {input}"),
        _ if args.check => format!("checking {out} against {input}"),
        _ if args.dry_run => format!("planning {input} to {out}"),
        (None, None) => format!("listing {input}"),
        (None, Some(_)) => format!("converting {input} to {out}"),
    }
}
