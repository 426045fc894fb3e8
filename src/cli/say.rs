//! What a command says when it fails: one line of its own, and its exit code.

use std::process::ExitCode;

/// `peerapi: MESSAGE` on stderr, and exit `code`.
pub(crate) fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("peerapi: {message}");
    ExitCode::from(code)
}
