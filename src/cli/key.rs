//! `peerapi key generate|show`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum KeyCmd {
    /// Write a new Ed25519 key file (mode 0600) and print its peer id.
    Generate { path: PathBuf },
    /// Print the peer id of a key file (py-libp2p, go and rust key files).
    Show { path: PathBuf },
}

pub(crate) fn run(cmd: KeyCmd) -> ExitCode {
    let result = match cmd {
        KeyCmd::Generate { path } => peerapi::keys::generate_key_file(&path),
        KeyCmd::Show { path } => peerapi::keys::load_key(&path),
    };
    match result {
        Ok(kp) => {
            println!("{}", kp.public().to_peer_id());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peerapi: {e}");
            ExitCode::FAILURE
        }
    }
}
