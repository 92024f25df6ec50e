//! The `tocsin` binary: the daemon and its operator commands. Parsing and
//! dispatch live in [`tocsin::cli`]; this file only hands over to it.

use std::process::ExitCode;

fn main() -> ExitCode {
    tocsin::cli::main()
}
