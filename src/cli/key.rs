//! `peerapi key generate|show`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand)]
pub(crate) enum KeyCmd {
    /// Write a new Ed25519 key file (mode 0600) and print its peer id.
    Generate {
        path: PathBuf,
        /// Print {"peer_id", "path"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the peer id of a key file (py-libp2p, go and rust key files).
    Show {
        path: PathBuf,
        /// Print {"peer_id", "path"} as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn run(cmd: KeyCmd) -> ExitCode {
    let (result, path, json) = match cmd {
        KeyCmd::Generate { path, json } => (peerapi::keys::generate_key_file(&path), path, json),
        KeyCmd::Show { path, json } => (peerapi::keys::load_key(&path), path, json),
    };
    match result {
        Ok(kp) => {
            let peer = kp.public().to_peer_id();
            if json {
                let path = path.display().to_string();
                println!(
                    "{}",
                    serde_json::json!({"peer_id": peer.to_string(), "path": path})
                );
            } else {
                println!("{peer}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peerapi: {e}");
            ExitCode::FAILURE
        }
    }
}
