//! The `tf2npy` binary: parse arguments, run the library, map errors to exit codes
//! (0 success, 1 bad input, 2 usage).

use clap::Parser;
use std::process::ExitCode;
use tf2npy::cli::{self, Args};

fn main() -> ExitCode {
    let args = Args::parse();
    match cli::run(&args) {
        Ok(code) => ExitCode::from(code),
        Err(err) if err.is_broken_pipe() => ExitCode::from(cli::EXIT_OK),
        Err(err) => {
            eprintln!("tf2npy: error: {err}");
            ExitCode::from(cli::exit_code(&err))
        }
    }
}
