//! Driving the two programs: `node interop/peer.js` (the JS reference peer) and `ppppp serve`,
//! both over JSON lines on stdin/stdout, both on 127.0.0.1.
//!
//! The JS side installs itself: the first test that needs it runs `npm ci` in `interop/` if
//! `interop/node_modules` is missing or incomplete (once per test binary; tests wait for it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Longest wait for one control reply (a JS `state` of a 1,000-msg feed takes a second or two
/// on a loaded machine; commands that wait longer pass their own timeout).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// The `interop/` folder of the workspace.
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("node/ is inside the workspace")
        .join("interop")
}

/// Makes sure `node` runs and the reference's packages are installed; panics with the reason
/// otherwise. Runs `npm ci` at most once per test binary; concurrent callers wait for it.
pub fn ensure_js() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(error) = READY.get_or_init(install) {
        panic!("the JS reference peer is not usable: {error}");
    }
}

fn install() -> Result<(), String> {
    let version = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map_err(|error| {
            format!(
                "cannot run `node` ({error}); the interop tests need Node.js >= 20 and npm on PATH"
            )
        })?;
    if !version.status.success() {
        return Err(format!("`node --version` failed: {}", version.status));
    }
    let dir = interop_dir();
    // npm writes node_modules/.package-lock.json last: without it an install was interrupted.
    let installed = dir.join("node_modules/.package-lock.json").exists()
        && dir.join("node_modules/pzp-sync/package.json").exists()
        && dir
            .join("node_modules/pzp-hub-client/package.json")
            .exists();
    if installed {
        return Ok(());
    }
    eprintln!(
        "interop: {} has no complete node_modules; running `npm ci` there (node {})",
        dir.display(),
        String::from_utf8_lossy(&version.stdout).trim()
    );
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .status()
        .map_err(|error| format!("cannot run `npm ci` in {} ({error})", dir.display()))?;
    if !status.success() {
        return Err(format!("`npm ci` in {} failed: {status}", dir.display()));
    }
    eprintln!("interop: npm ci done");
    Ok(())
}

/// Forwards a child's standard error to ours, one prefixed line at a time (the test harness
/// shows it for failing tests).
fn forward_stderr(name: &'static str, stderr: impl AsyncRead + Unpin + Send + 'static) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{name}] {line}");
        }
    });
}

/// One muxrpc frame as `ppppp serve` recorded it (`RUST_LOG=ppppp::wire=trace`): sent or
/// received, and its plaintext wire bytes (9-byte header, then body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFrame {
    pub outgoing: bool,
    pub bytes: Vec<u8>,
}

impl WireFrame {
    /// The frame's request number (header bytes 5–8, big-endian).
    pub fn req(&self) -> i32 {
        let bytes: [u8; 4] = self.bytes[5..9].try_into().expect("a 9-byte header");
        i32::from_be_bytes(bytes)
    }

    /// The frame's body.
    pub fn body(&self) -> &[u8] {
        &self.bytes[9..]
    }

    /// Parses one line of the wire record, `None` for any other log line.
    fn parse(line: &str) -> Option<Self> {
        let rest = &line[line.find("ppppp::wire:")?..];
        let outgoing = if rest.contains("direction=\"out\"") {
            true
        } else if rest.contains("direction=\"in\"") {
            false
        } else {
            return None;
        };
        let frame = rest.split("frame=").nth(1)?.split_whitespace().next()?;
        let bytes = hex::decode(frame).ok()?;
        (bytes.len() >= 9).then_some(Self { outgoing, bytes })
    }
}

/// The frames a `ppppp serve` sent and received so far, in the order it logged them.
#[derive(Debug, Clone, Default)]
pub struct WireRecord(Arc<Mutex<Vec<WireFrame>>>);

impl WireRecord {
    /// Every frame recorded so far.
    pub fn frames(&self) -> Vec<WireFrame> {
        self.0.lock().expect("not poisoned").clone()
    }

    /// How many frames are recorded.
    pub fn len(&self) -> usize {
        self.0.lock().expect("not poisoned").len()
    }
}

/// Reads a `ppppp serve`'s standard error: its wire record into `record`, every other line
/// forwarded as [`forward_stderr`] does.
fn record_wire(
    name: &'static str,
    stderr: impl AsyncRead + Unpin + Send + 'static,
    record: WireRecord,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match WireFrame::parse(&line) {
                Some(frame) => record.0.lock().expect("not poisoned").push(frame),
                None => eprintln!("[{name}] {line}"),
            }
        }
    });
}

/// Reads lines until one is a JSON object whose `id` is `id`.
async fn reply_with_id(
    stdout: &mut Lines<BufReader<ChildStdout>>,
    id: u64,
    timeout: Duration,
    name: &str,
    request: &Value,
) -> Value {
    let read = async {
        loop {
            let line = stdout
                .next_line()
                .await
                .expect("readable stdout")
                .unwrap_or_else(|| panic!("{name} exited while answering {request}"));
            let reply: Value = serde_json::from_str(&line)
                .unwrap_or_else(|error| panic!("{name} wrote a non-JSON line {line:?}: {error}"));
            if reply["id"] == json!(id) {
                return reply;
            }
            eprintln!("[{name}] ignoring a reply to another request: {line}");
        }
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| panic!("{name} did not answer {request} within {timeout:?}"))
}

/// A running `node interop/peer.js`.
pub struct JsPeer {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
    /// `net:127.0.0.1:PORT~shse:PUBKEY`.
    pub address: String,
    /// Its public key (base58).
    pub key: String,
}

impl JsPeer {
    /// Starts a JS peer with the 32-byte `seed` and listens on a free port.
    pub async fn start(name: &'static str, seed: [u8; 32]) -> Self {
        Self::start_with(name, seed, json!({})).await
    }

    /// As [`JsPeer::start`], with more `init` parameters (e.g. `{"hub": true}`).
    pub async fn start_with(name: &'static str, seed: [u8; 32], extra: Value) -> Self {
        ensure_js();
        let mut child = Command::new("node")
            .arg("peer.js")
            .current_dir(interop_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        forward_stderr(name, child.stderr.take().expect("piped"));
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let mut peer = Self {
            name,
            child,
            stdin,
            stdout,
            next_id: 0,
            address: String::new(),
            key: String::new(),
        };
        let mut init = json!({"seed": hex(&seed), "nonce": name});
        if let (Some(fields), Some(more)) = (init.as_object_mut(), extra.as_object()) {
            fields.extend(more.clone());
        }
        let info = peer.call("init", init).await;
        peer.address = info["address"].as_str().expect("address").to_owned();
        peer.key = info["pubkey"].as_str().expect("pubkey").to_owned();
        peer
    }

    /// Runs a command; panics on an error reply. Returns its `result`.
    pub async fn call(&mut self, cmd: &str, params: Value) -> Value {
        let reply = self.try_call(cmd, params).await;
        assert_eq!(
            reply["ok"],
            json!(true),
            "{}: {cmd} failed: {reply}",
            self.name
        );
        reply["result"].clone()
    }

    /// Runs a command; returns the whole reply (`ok`, `result` or `error`).
    pub async fn try_call(&mut self, cmd: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = params;
        let fields = request.as_object_mut().expect("params are an object");
        fields.insert("id".to_owned(), json!(id));
        fields.insert("cmd".to_owned(), json!(cmd));
        // Commands that wait say how long; give the reply that much more.
        let timeout = request["timeoutMs"].as_u64().map_or(REPLY_TIMEOUT, |ms| {
            Duration::from_millis(ms) + REPLY_TIMEOUT
        });
        self.stdin
            .write_all(format!("{request}\n").as_bytes())
            .await
            .expect("write to peer.js");
        reply_with_id(&mut self.stdout, id, timeout, self.name, &request).await
    }

    /// Stops the peer; it must exit 0.
    pub async fn stop(mut self) {
        self.call("stop", json!({})).await;
        let status = tokio::time::timeout(REPLY_TIMEOUT, self.child.wait())
            .await
            .expect("peer.js exits after stop")
            .expect("waitable");
        assert!(status.success(), "{}: exit status {status}", self.name);
    }
}

/// A running `ppppp serve`.
pub struct RustPeer {
    name: &'static str,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
    /// `net:127.0.0.1:PORT~shse:PUBKEY`.
    pub address: String,
}

impl RustPeer {
    /// Starts `ppppp serve` on a fresh directory under `dir`, listening on a free port.
    pub async fn start(name: &'static str, dir: &Path) -> Self {
        Self::start_with(name, dir, &[]).await
    }

    /// As [`RustPeer::start`], with more `serve` arguments (e.g. `--hub ADDRESS`).
    pub async fn start_with(name: &'static str, dir: &Path, extra: &[&str]) -> Self {
        Self::spawn(name, dir, extra, None).await
    }

    /// As [`RustPeer::start_with`], recording every muxrpc frame the peer sends and receives.
    pub async fn start_recording(
        name: &'static str,
        dir: &Path,
        extra: &[&str],
    ) -> (Self, WireRecord) {
        let record = WireRecord::default();
        let peer = Self::spawn(name, dir, extra, Some(record.clone())).await;
        (peer, record)
    }

    async fn spawn(
        name: &'static str,
        dir: &Path,
        extra: &[&str],
        record: Option<WireRecord>,
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_ppppp"));
        if record.is_some() {
            command.env("RUST_LOG", "ppppp::wire=trace");
        }
        let mut child = command
            .arg("serve")
            .arg("--dir")
            .arg(dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("ppppp serve starts");
        let stderr = child.stderr.take().expect("piped");
        match record {
            Some(record) => record_wire(name, stderr, record),
            None => forward_stderr(name, stderr),
        }
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = tokio::time::timeout(REPLY_TIMEOUT, stdout.next_line())
            .await
            .expect("a first line in time")
            .expect("readable")
            .expect("a line");
        let address = first
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("first line {first:?}"))
            .to_owned();
        Self {
            name,
            child,
            stdin,
            stdout,
            next_id: 0,
            address,
        }
    }

    /// Runs a control command; panics on an error reply.
    pub async fn ask(&mut self, request: Value) -> Value {
        let reply = self.try_ask(request.clone()).await;
        assert_eq!(
            reply["ok"],
            json!(true),
            "{}: {request} failed: {reply}",
            self.name
        );
        reply
    }

    /// Sends a control command; returns the whole reply (`ok`, and its fields or `error`).
    pub async fn try_ask(&mut self, request: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = request;
        request
            .as_object_mut()
            .expect("an object")
            .insert("id".to_owned(), json!(id));
        self.stdin
            .write_all(format!("{request}\n").as_bytes())
            .await
            .expect("write to ppppp serve");
        reply_with_id(&mut self.stdout, id, REPLY_TIMEOUT, self.name, &request).await
    }

    /// The msgs of `tangle`, topological, as JSON (trail and erased msgs with `data: null`).
    pub async fn msgs(&mut self, tangle: &str) -> Vec<Value> {
        let reply = self.ask(json!({"cmd": "msgs", "tangle": tangle})).await;
        reply["msgs"].as_array().expect("msgs").clone()
    }

    /// Stops the peer with SIGTERM; it must exit 0.
    pub async fn stop(mut self) {
        terminate(&mut self.child, self.name).await;
    }
}

/// Sends SIGTERM to `child` and waits for it; it must exit 0.
async fn terminate(child: &mut Child, name: &str) {
    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = tokio::time::timeout(REPLY_TIMEOUT, child.wait())
        .await
        .expect("exits in time")
        .expect("waitable");
    assert!(exit.success(), "{name}: SIGTERM should exit 0, got {exit}");
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A running `ppppp hub`.
pub struct Hub {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// `/ip4/127.0.0.1/tcp/PORT/shse/PUBKEY`, as pzp-hub-client takes it.
    pub multiaddr: String,
    /// Its public key.
    pub key: String,
}

impl Hub {
    /// Starts `ppppp hub` in `dir` on a free port, with more arguments (e.g. `--open`).
    pub async fn start(dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ppppp"))
            .arg("hub")
            .arg("--dir")
            .arg(dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("ppppp hub starts");
        forward_stderr("hub", child.stderr.take().expect("piped"));
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = tokio::time::timeout(REPLY_TIMEOUT, stdout.next_line())
            .await
            .expect("a first line in time")
            .expect("readable")
            .expect("a line");
        let address = first
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("first line {first:?}"))
            .to_owned();
        let (socket, key) = address
            .strip_prefix("net:")
            .and_then(|rest| rest.split_once("~shse:"))
            .expect("net:HOST:PORT~shse:KEY");
        let (host, port) = socket.rsplit_once(':').expect("HOST:PORT");
        Self {
            child,
            stdin,
            stdout,
            multiaddr: format!("/ip4/{host}/tcp/{port}/shse/{key}"),
            key: key.to_owned(),
        }
    }

    /// `{"attendants", "links", "tunnels", "members"}` now.
    pub async fn status(&mut self) -> Value {
        self.stdin
            .write_all(b"{\"cmd\":\"status\"}\n")
            .await
            .expect("write to ppppp hub");
        let line = tokio::time::timeout(REPLY_TIMEOUT, self.stdout.next_line())
            .await
            .expect("a reply in time")
            .expect("readable")
            .expect("a line");
        serde_json::from_str(&line).expect("JSON")
    }

    /// Stops the hub with SIGTERM; it must exit 0.
    pub async fn stop(mut self) {
        terminate(&mut self.child, "hub").await;
    }
}
