//! Real py-libp2p peers (tests/interop/peer.py) as separate processes: the
//! stack the deployed subnet nodes run, in the versions they run.

use std::path::PathBuf;
use std::process::Stdio;

use libp2p::Multiaddr;
use peerapi::RouteTable;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::common::{within, write_routes_file};

pub const PEER_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/peer.py");

/// The py-libp2p versions subnets run: PyPI's 0.8.1, and 0.6.0 (the
/// subnet-template pins a commit between 0.6.0 and 0.7.0).
#[derive(Clone, Copy, Debug)]
pub enum PyLibp2p {
    V081,
    V060,
}

/// The venv's python for `version` (set up by tests/run.sh). A missing venv
/// fails the test with the way to get it, never skips it.
pub fn python_for(version: PyLibp2p) -> PathBuf {
    let var = match version {
        PyLibp2p::V081 => "PEERAPI_INTEROP_PYTHON",
        PyLibp2p::V060 => "PEERAPI_INTEROP_PYTHON_060",
    };
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "{var} is not set: run the tests with `bash tests/run.sh`, which sets up the \
             py-libp2p venvs (python3 -m venv + pip install -r tests/interop/requirements*.txt)"
        )
    });
    assert!(
        path.exists(),
        "{var}={} does not exist: run `bash tests/run.sh` to set up the venv",
        path.display()
    );
    path
}

/// py-libp2p 0.8.1's python.
pub fn python() -> PathBuf {
    python_for(PyLibp2p::V081)
}

/// A py-libp2p test script running as a process: its stdin, its stdout
/// line by line, its stderr kept in a file (for tracebacks). The one place
/// tests spawn a Python peer and read its lines.
pub struct PyProcess {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: Lines<BufReader<ChildStdout>>,
    pub stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl PyProcess {
    /// Runs `python script args...`; `dir` holds its stderr file (and any
    /// file the caller put there for it).
    pub fn spawn(
        python: &PathBuf,
        script: &str,
        args: &[&std::ffi::OsStr],
        dir: tempfile::TempDir,
    ) -> PyProcess {
        let stderr_path = dir.path().join("stderr.log");
        // faulthandler: a crash in native code (no Python traceback)
        // still leaves its stack in the stderr file.
        let mut child = Command::new(python)
            .args(["-X", "faulthandler"])
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        PyProcess {
            child,
            stdin,
            stdout,
            stderr_path,
            _dir: dir,
        }
    }

    /// Reads lines until `take` returns something (within the test limit);
    /// the process ending first fails the test with its stderr.
    pub async fn read_until<T>(
        &mut self,
        what: &str,
        mut take: impl FnMut(&str) -> Option<T>,
    ) -> T {
        within(async {
            while let Some(line) = self.stdout.next_line().await.unwrap() {
                if let Some(found) = take(&line) {
                    return found;
                }
            }
            panic!("{what}: the python process ended first:\n{}", self.stderr());
        })
        .await
    }

    /// Whether the process still runs.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Closes its stdin (the scripts' signal to end) and waits for it: its
    /// exit status and stderr.
    pub async fn finish(self) -> (std::process::ExitStatus, String) {
        let PyProcess {
            mut child,
            stdin,
            stderr_path,
            ..
        } = self;
        drop(stdin);
        let status = within(child.wait()).await.unwrap();
        (
            status,
            std::fs::read_to_string(&stderr_path).unwrap_or_default(),
        )
    }

    /// Asserts the process runs and wrote no traceback.
    pub fn assert_healthy(&mut self, when: &str) {
        let stderr = self.stderr();
        let status = self.child.try_wait();
        assert!(
            matches!(status, Ok(None)),
            "the python peer died {when} ({status:?}); its stderr:\n{stderr}"
        );
        assert!(
            !stderr.contains("Traceback"),
            "the python peer wrote a traceback {when}:\n{stderr}"
        );
    }
}

/// A `peer.py serve` host: its address, its stdin for commands, its stderr
/// kept in a file so that a test can look for tracebacks.
pub struct PyHost {
    pub process: PyProcess,
    pub addr: Multiaddr,
}

impl PyHost {
    pub async fn serve(python: &PathBuf, routes: &RouteTable, flags: &[&str]) -> PyHost {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("routes.json");
        write_routes_file(&file, routes);
        let mut args: Vec<&std::ffi::OsStr> =
            vec!["serve".as_ref(), "--routes".as_ref(), file.as_os_str()];
        args.extend(flags.iter().map(std::ffi::OsStr::new));
        let mut process = PyProcess::spawn(python, PEER_PY, &args, dir);
        let addr = process
            .read_until("python host ready", |line| {
                line.strip_prefix("READY ")
                    .map(|a| a.parse::<Multiaddr>().unwrap())
            })
            .await;
        PyHost { process, addr }
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// Asserts the host runs and wrote no traceback.
    pub fn assert_healthy(&mut self, when: &str) {
        self.process.assert_healthy(when)
    }

    /// Makes the Python host call `route` on `addr` (dialing or reusing its
    /// connection) and returns the body, or the exception's name.
    pub async fn call(&mut self, addr: &Multiaddr, route: &str) -> Result<Vec<u8>, String> {
        let line = format!("call {addr} {route}\n");
        let p = &mut self.process;
        p.stdin.write_all(line.as_bytes()).await.unwrap();
        p.stdin.flush().await.unwrap();
        within(async {
            while let Some(line) = p.stdout.next_line().await.unwrap() {
                if let Some(hex) = line.strip_prefix("CALLED ") {
                    return Ok(hex::decode(hex).expect("peer.py prints hex"));
                }
                if let Some(e) = line.strip_prefix("CALL-FAILED ") {
                    return Err(e.to_string());
                }
            }
            Err("the python host exited".to_string())
        })
        .await
    }
}

impl PyHost {
    /// Makes the Python host call `route` on `addr` and time it on its
    /// side: (bytes of the body, seconds), or the exception's name.
    pub async fn timed_call(
        &mut self,
        addr: &Multiaddr,
        route: &str,
    ) -> Result<(u64, f64), String> {
        let line = format!("time {addr} {route}\n");
        let p = &mut self.process;
        p.stdin.write_all(line.as_bytes()).await.unwrap();
        p.stdin.flush().await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(150), async {
            while let Some(line) = p.stdout.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("TIMED ") {
                    let (bytes, secs) = rest.split_once(' ').expect("TIMED BYTES SECS");
                    return Ok((bytes.parse().unwrap(), secs.parse().unwrap()));
                }
                if let Some(e) = line.strip_prefix("CALL-FAILED ") {
                    return Err(e.to_string());
                }
            }
            Err("the python host exited".to_string())
        })
        .await
        .expect("the timed call ends")
    }
}

/// A one-shot Python caller (`peer.py call`); returns the body it printed.
pub async fn py_call(python: &PathBuf, addr: &Multiaddr, route: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(python)
        .arg(PEER_PY)
        .args(["call", &addr.to_string(), route])
        .args(args)
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .output();
    let out = within(out).await.unwrap();
    assert!(
        out.status.success(),
        "python caller failed for route {route}"
    );
    out.stdout
}
