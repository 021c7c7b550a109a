"""The `tf2npy` command of the wheel: runs the command line in-process (the same code
as the standalone binary, `cargo build --release`)."""
import signal
import sys

from . import _native


def main():
    # Ctrl-C stops a long conversion at once, as it does the standalone binary (the
    # temporary output file is then left behind, as for a killed binary).
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(_native.cli_main(sys.argv))
