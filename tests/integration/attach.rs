//! `peerapi attach` as an operator uses it: in tmux at 80x24, over a real
//! sshd on 127.0.0.1 (Debian's openssh-server, a throwaway host key and
//! authorized key), to a `peerapi node` process that keeps running after
//! the console detaches.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{demo_backend, node_process_with, write_routes_file, BIN};
use crate::console::Session;

const SSHD: &str = "/usr/sbin/sshd";

/// sshd on a loopback port, killed on drop.
struct Sshd {
    child: Child,
    port: u16,
    /// A script that runs ssh with the client key and no host-key prompts.
    ssh: PathBuf,
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

fn sshd(dir: &Path) -> Sshd {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_over_ssh_streams_a_call_made_by_the_node_and_detaching_leaves_it_running() {
    let backend = demo_backend().await;
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served.json");
    write_routes_file(&served, &backend.routes());
    let (_b, b_addr) = node_process_with(&served, &["--no-control"]);
    let own = dir.path().join("own.json");
    std::fs::write(&own, "{}").unwrap();
    let socket = dir.path().join("ctl").join("a.sock");
    let socket_arg = socket.to_str().unwrap();
    let (mut a, _) = node_process_with(&own, &["--control", socket_arg, "--name", "alpha"]);
    let ssh = sshd(&dir.path().join("sshd"));

    let command = format!(
        "PEERAPI_SSH={} PEERAPI_REMOTE_COMMAND={BIN} {BIN} attach ssh://127.0.0.1:{}/{}",
        ssh.ssh.display(),
        ssh.port,
        socket.display()
    );
    let s = Session::run(
        format!("peerapi-attach-{}", std::process::id()),
        &command,
        (80, 24),
    );
    s.wait_for("the attached console", Duration::from_secs(30), |t| {
        t.contains("Composer") && t.contains("Peers (0)")
    });
    // Peer: B; route: inference; stream; send.
    s.keys(&["Enter", "C-u"]);
    s.keys(&["-l", &b_addr.to_string()]);
    s.keys(&["Tab", "C-u"]);
    s.keys(&["-l", "inference"]);
    s.keys(&["Escape"]);
    s.keys(&["m"]);
    s.wait_for("stream mode", Duration::from_secs(5), |t| {
        t.contains("[STREAM]")
    });
    s.keys(&["s"]);
    let screen = s.wait_for("the streamed call", Duration::from_secs(40), |t| {
        t.contains("done") && t.contains("tok")
    });
    assert!(screen.contains("subnet"), "tokens on screen:\n{screen}");
    // The node dialled B itself: its peer shows up in the attached view.
    s.wait_for("the node's new peer", Duration::from_secs(10), |t| {
        t.contains("Peers (1)")
    });

    s.keys(&["q"]);
    s.wait_for("the console to detach", Duration::from_secs(20), |t| {
        t.contains("PEERAPI-EXITED")
    });
    assert!(a.0.try_wait().unwrap().is_none(), "the node still runs");
    let status = Command::new(BIN)
        .args(["ctl", "status", socket_arg])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(status.status.success(), "{status:?}");
}
