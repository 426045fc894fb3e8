//! A real sshd on a loopback port (Debian's openssh-server, a throwaway
//! host key and authorized key), for the tests that reach nodes over ssh.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const SSHD: &str = "/usr/sbin/sshd";

/// sshd on a loopback port, killed on drop.
pub(crate) struct Sshd {
    child: Child,
    pub(crate) port: u16,
    /// A script that runs ssh with the client key and no host-key prompts.
    pub(crate) ssh: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) is installed");
    assert!(ok.success());
}

pub(crate) fn sshd(dir: &Path) -> Sshd {
    assert!(
        Path::new(SSHD).exists(),
        "sshd is not installed: run the tests with `bash tests/run.sh`, which installs it \
         (or: apt-get install openssh-server)"
    );
    let _ = std::fs::create_dir_all("/run/sshd");
    std::fs::create_dir_all(dir).unwrap();
    keygen(&dir.join("host"));
    keygen(&dir.join("client"));
    std::fs::copy(dir.join("client.pub"), dir.join("authorized_keys")).unwrap();
    let port = crate::common::dead_port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\n\
             AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n\
             PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\nPidFile {d}/pid\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let child = Command::new(SSHD)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
        .spawn()
        .expect("sshd starts");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "sshd did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ssh = dir.join("ssh.sh");
    std::fs::write(
        &ssh,
        format!(
            "#!/bin/sh\nexec ssh -i {d}/client -o StrictHostKeyChecking=no \
             -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes \"$@\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).unwrap();
    Sshd { child, port, ssh }
}
