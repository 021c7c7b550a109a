//! `tf2npy._native`: the tf2npy library in-process for the Python module `tf2npy`
//! (python/tf2npy/__init__.py wraps these functions).
//!
//! Arrays are filled without an extra copy: each tensor's payload stream (read, checked
//! and converted by the library, as for `-o out.npy`) is pulled straight into the
//! buffer of a new NumPy `uint8` array (`numpy.zeros`: calloc'd, so no zero-fill pass),
//! with the GIL released; Python then views it as the `.npy` descr and shape returned
//! alongside (`ndarray.view` + `reshape`, no copy). Errors are raised as
//! `tf2npy._native.Tf2npyError(exit_code, message)` with the command's message and exit
//! status.

use numpy::{PyArray1, PyArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use std::path::PathBuf;
use tf2npy::error::Ctx;
use tf2npy::plan::convert::{to_numpy, ConvertOptions};
use tf2npy::plan::sparse::SparseMode;
use tf2npy::plan::{self, SelectOptions};
use tf2npy::source::Container;
use tf2npy::stream::ByteStream;

create_exception!(
    _native,
    Tf2npyError,
    PyException,
    "tf2npy failed: (exit status, message)."
);

fn err(e: tf2npy::Error) -> PyErr {
    Tf2npyError::new_err((tf2npy::cli::exit_code(&e), e.to_string()))
}

fn open(path: &str, keep_sparse: bool) -> Result<Box<dyn Container>, PyErr> {
    let opts = tf2npy::formats::OpenOptions {
        constants: false,
        sparse: if keep_sparse {
            SparseMode::Keep
        } else {
            SparseMode::Densify
        },
        // TFRecord inputs spill their columns to the system's temporary folder.
        ..Default::default()
    };
    tf2npy::run::open_input(&PathBuf::from(path), &opts).map_err(err)
}

/// One listed entry: (name, TensorFlow dtype name, shape, hidden).
type Listed = (String, &'static str, Vec<u64>, bool);

/// Every entry of the input: what `tf2npy PATH --list --json --all --sparse keep` lists.
#[pyfunction]
fn list_entries(py: Python<'_>, path: &str) -> PyResult<Vec<Listed>> {
    py.detach(|| {
        let c = open(path, true)?;
        let mut v: Vec<Listed> = c
            .entries()
            .iter()
            .map(|e| (e.name.clone(), e.dtype.name(), e.shape.clone(), e.hidden))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(v)
    })
}

/// One array read: (name, TensorFlow dtype name, `.npy` descr, shape, payload).
type Array<'py> = (
    String,
    &'static str,
    String,
    Vec<u64>,
    Bound<'py, PyArray1<u8>>,
);

/// Reads every planned tensor of `c` into new arrays.
fn read_plan<'py>(
    py: Python<'py>,
    c: &dyn Container,
    select: &SelectOptions,
    raw_bits: bool,
) -> PyResult<Vec<Array<'py>>> {
    let plan = py.detach(|| plan::build(c, select).map_err(err))?;
    let ctx = Ctx::file(c.path());
    let convert = ConvertOptions { raw_bits };
    let mut out = Vec::with_capacity(plan.tensors.len());
    for t in &plan.tensors {
        let (entry, raw) = t.source.open(c, true).map_err(err)?;
        let arr =
            to_numpy(&entry, raw, convert, &ctx).map_err(|e| err(e.in_tensor(&entry.name)))?;
        let len = arr.header.byte_len().ok_or_else(|| {
            err(ctx
                .tensor(&entry.name)
                .unsupported("too large for this machine"))
        })?;
        let len = usize::try_from(len).map_err(|_| {
            err(ctx
                .tensor(&entry.name)
                .unsupported("too large for this machine"))
        })?;
        let mut data = arr.data;
        let name = entry.name.clone();
        let bytes = PyArray1::<u8>::zeros(py, len, false);
        {
            let mut rw = bytes.readwrite();
            let buf = rw
                .as_slice_mut()
                .map_err(|e| Tf2npyError::new_err((2u8, format!("internal error: {e}"))))?;
            py.detach(|| fill(&mut *data, buf, &name)).map_err(err)?;
        }
        out.push((
            t.name.clone(),
            entry.dtype.name(),
            arr.header.descr,
            arr.header.shape,
            bytes,
        ));
    }
    Ok(out)
}

/// Pulls exactly `buf.len()` bytes from `data` into `buf`, then checks its end (where
/// checksums complete).
fn fill(data: &mut dyn ByteStream, buf: &mut [u8], name: &str) -> tf2npy::Result<()> {
    let mut at = 0;
    while at < buf.len() {
        let n = data.read(&mut buf[at..])?;
        if n == 0 {
            return Err(tf2npy::Error::usage(format!(
                "internal error: payload of `{name}` ended {} bytes short",
                buf.len() - at
            )));
        }
        at += n;
    }
    let mut extra = [0u8; 1];
    if data.read(&mut extra)? != 0 {
        return Err(tf2npy::Error::usage(format!(
            "internal error: payload of `{name}` is longer than its header says"
        )));
    }
    Ok(())
}

/// Every tensor `tf2npy PATH -o out.npz [--select G]... [--raw-bits]` would write.
#[pyfunction]
#[pyo3(signature = (path, select, raw_bits))]
fn load<'py>(
    py: Python<'py>,
    path: &str,
    select: Vec<String>,
    raw_bits: bool,
) -> PyResult<Vec<Array<'py>>> {
    let c = py.detach(|| open(path, false))?;
    let opts = SelectOptions {
        select,
        ..SelectOptions::default()
    };
    read_plan(py, c.as_ref(), &opts, raw_bits)
}

/// The one tensor `name` (entries as listed by `list_entries`, sparse parts kept).
#[pyfunction]
#[pyo3(signature = (path, name, raw_bits))]
fn read_tensor<'py>(
    py: Python<'py>,
    path: &str,
    name: String,
    raw_bits: bool,
) -> PyResult<Array<'py>> {
    let c = py.detach(|| open(path, true))?;
    let opts = SelectOptions {
        tensor: Some(name),
        all: true,
        sparse: SparseMode::Keep,
        ..SelectOptions::default()
    };
    let mut v = read_plan(py, c.as_ref(), &opts, raw_bits)?;
    v.pop()
        .ok_or_else(|| Tf2npyError::new_err((2u8, "internal error: nothing read".to_string())))
}

/// The command line: runs `tf2npy ARGV[1:]` in this process, returns its exit status
/// (the `tf2npy` console script of the wheel).
#[pyfunction]
fn cli_main(py: Python<'_>, argv: Vec<String>) -> u8 {
    use clap::Parser;
    let args = tf2npy::cli::Args::parse_from(argv);
    py.detach(|| match tf2npy::cli::run(&args) {
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => tf2npy::cli::EXIT_OK,
        Err(e) => {
            eprintln!("tf2npy: error: {e}");
            tf2npy::cli::exit_code(&e)
        }
    })
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("Tf2npyError", m.py().get_type::<Tf2npyError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(list_entries, m)?)?;
    m.add_function(wrap_pyfunction!(load, m)?)?;
    m.add_function(wrap_pyfunction!(read_tensor, m)?)?;
    m.add_function(wrap_pyfunction!(cli_main, m)?)?;
    Ok(())
}
