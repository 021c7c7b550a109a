//! Read-only memory maps of input-file windows (memmap2): the crate's only `unsafe`.
//!
//! A [`Window`] maps `[offset, offset + len)` of a regular file, pre-faulted
//! (`MAP_POPULATE`) and advised sequential. Mapping a file is unsafe because another
//! process may change or truncate it while it is mapped: a changed byte shows through
//! (the callers detect that by comparing the file's size and change time before and
//! after each window, see `InputFile::check_unchanged`), and touching a page past a new,
//! shorter end raises `SIGBUS`, which would kill the process.
//!
//! So every live window is registered in a fixed table, and a `SIGBUS` handler
//! (installed once, before the first map) looks the faulting address up: inside a
//! registered window, it maps anonymous zero pages over the rest of the window
//! (`MAP_FIXED`), marks the window as damaged and returns, so the faulting read
//! completes with zeros instead of killing the process. The owner of the window checks
//! [`Window::damaged`] (and the file's size) before the stream it feeds may end, and
//! fails with an error naming the file, so zeros are never published. A `SIGBUS` outside
//! every window restores the default action and re-raises it.

#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Once;

/// Windows that can be live at once (one per open tensor stream that maps; a stream
/// that finds the table full reads with `pread` instead).
const SLOTS: usize = 64;

/// A registered window: `[start, end)` in this process's address space, 0 when free.
struct Slot {
    start: AtomicUsize,
    end: AtomicUsize,
    damaged: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    damaged: AtomicBool::new(false),
};

static TABLE: [Slot; SLOTS] = [FREE; SLOTS];
static INSTALL: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

/// The `SIGBUS` handler (async-signal-safe: atomics, `mmap`, `signal`, `raise` only).
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler; for SIGBUS
    // `si_addr` is the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed).max(1);
    for slot in &TABLE {
        let start = slot.start.load(Ordering::Acquire);
        let end = slot.end.load(Ordering::Acquire);
        if start != 0 && addr >= start && addr < end {
            let from = addr & !(page - 1);
            let len = end.div_ceil(page) * page - from;
            // SAFETY: `[from, from + len)` lies inside a mapping this process owns (a
            // registered window, unmapped only after it is deregistered); replacing its
            // pages with private zero pages is what the owner expects after a fault.
            let r = unsafe {
                libc::mmap(
                    from as *mut libc::c_void,
                    len,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if r != libc::MAP_FAILED {
                slot.damaged.store(true, Ordering::Release);
                return;
            }
        }
    }
    // SAFETY: restoring the default action and re-raising is async-signal-safe.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

static PAGE: AtomicUsize = AtomicUsize::new(0);

/// Installs the `SIGBUS` handler once; `false` if that failed (then nothing is mapped).
fn install() -> bool {
    INSTALL.call_once(|| {
        PAGE.store(page_size(), Ordering::Relaxed);
        // SAFETY: a zeroed sigaction is a valid starting point; the handler has the
        // SA_SIGINFO signature and only does async-signal-safe work.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigbus as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_NODEFER;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut()) == 0 {
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
    INSTALLED.load(Ordering::Acquire)
}

/// A mapped, registered window of a file.
pub struct Window {
    map: memmap2::Mmap,
    slot: &'static Slot,
}

impl Window {
    /// Maps `[offset, offset + len)` of `file` (`len > 0`). `Ok(None)` when no window
    /// can be registered (table full, no handler): the caller reads with `pread`.
    pub fn map(file: &File, offset: u64, len: usize) -> io::Result<Option<Window>> {
        if len == 0 || !install() {
            return Ok(None);
        }
        let Some(slot) = TABLE.iter().find(|s| {
            s.start
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        }) else {
            return Ok(None);
        };
        // SAFETY: see the module docs: changes to the file show through and are
        // detected by the caller; a truncation's SIGBUS is turned into zero pages and
        // `damaged()` by the handler, as the window is registered before it is read.
        let mapped = unsafe {
            memmap2::MmapOptions::new()
                .offset(offset)
                .len(len)
                .populate()
                .map(file)
        };
        let map = match mapped {
            Ok(m) => m,
            Err(e) => {
                slot.start.store(0, Ordering::Release);
                return Err(e);
            }
        };
        let _ = map.advise(memmap2::Advice::Sequential);
        let page = PAGE.load(Ordering::Relaxed).max(1);
        let start = (map.as_ptr() as usize) & !(page - 1);
        slot.damaged.store(false, Ordering::Release);
        slot.end
            .store(map.as_ptr() as usize + map.len(), Ordering::Release);
        slot.start.store(start, Ordering::Release);
        Ok(Some(Window { map, slot }))
    }

    /// The window's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.map
    }

    /// Whether a read of the window faulted (the file was truncated under it) and got
    /// zeros instead of file bytes.
    pub fn damaged(&self) -> bool {
        self.slot.damaged.load(Ordering::Acquire)
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        // Deregister first: the mapping (dropped right after) is then never touched by
        // the handler once it is gone.
        self.slot.end.store(0, Ordering::Release);
        self.slot.start.store(usize::MAX, Ordering::Release);
        self.slot.damaged.store(false, Ordering::Release);
        self.slot.start.store(0, Ordering::Release);
    }
}
