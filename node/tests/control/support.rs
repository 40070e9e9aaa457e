//! Running the real `ppppp` binary: one-shot commands and `ppppp serve` processes.

use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// A generous guard on any one wait (never a speed assertion).
pub const GUARD: Duration = Duration::from_secs(60);

/// The binary, with no `PPPPP_DIR` from the environment.
pub fn ppppp() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ppppp"));
    command.env_remove("PPPPP_DIR").kill_on_drop(true);
    command
}

/// Runs `ppppp ARGS --dir DIR`.
pub async fn run(dir: &Path, args: &[&str]) -> Output {
    let mut command = ppppp();
    command.args(args).arg("--dir").arg(dir);
    tokio::time::timeout(GUARD, command.output())
        .await
        .expect("the command finishes")
        .expect("ppppp runs")
}

/// Runs `ppppp ARGS --dir DIR`, which must succeed; its standard output.
pub async fn ok(dir: &Path, args: &[&str]) -> String {
    let output = run(dir, args).await;
    assert!(
        output.status.success(),
        "ppppp {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

/// Runs `ppppp ARGS --dir DIR`, which must fail; its standard error.
pub async fn fails(dir: &Path, args: &[&str]) -> String {
    let output = run(dir, args).await;
    assert!(
        !output.status.success(),
        "ppppp {args:?} should fail, printed {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8(output.stderr).expect("UTF-8")
}

/// `ppppp whoami`'s account.
pub async fn account(dir: &Path) -> String {
    let who: Value = serde_json::from_str(&ok(dir, &["whoami"]).await).expect("JSON");
    who["account"].as_str().expect("an account").to_owned()
}

/// The `key`s of JSON lines (`feed`, `log`, `hist`).
pub fn keys(lines: &str) -> Vec<String> {
    lines
        .lines()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).expect("a JSON line");
            entry["key"].as_str().expect("a key").to_owned()
        })
        .collect()
}

/// Polls `check` until it holds.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + GUARD;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running `ppppp serve`.
pub struct Serve {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: Lines<BufReader<ChildStdout>>,
    pub address: String,
}

impl Serve {
    /// Starts `ppppp serve --dir DIR --listen 127.0.0.1:0 EXTRA`.
    pub async fn start(dir: &Path, extra: &[&str]) -> Self {
        let mut command = ppppp();
        command
            .arg("serve")
            .arg("--dir")
            .arg(dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::inherit());
        Self::spawn(command).await
    }

    /// Starts a prepared `serve` command (its standard error as the command says).
    pub async fn spawn(mut command: Command) -> Self {
        command.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = command.spawn().expect("ppppp serve starts");
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = tokio::time::timeout(GUARD, stdout.next_line())
            .await
            .expect("a first line in time")
            .expect("readable")
            .expect("a line");
        let address = first
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("first line {first:?}"))
            .to_owned();
        Self {
            child,
            stdin,
            stdout,
            address,
        }
    }

    /// Writes raw bytes to the control channel on standard input; the next reply line.
    pub async fn ask_raw(&mut self, bytes: &[u8]) -> Value {
        self.stdin.write_all(bytes).await.expect("write");
        let line = tokio::time::timeout(GUARD, self.stdout.next_line())
            .await
            .expect("a reply in time")
            .expect("readable")
            .expect("a line");
        serde_json::from_str(&line).expect("a JSON reply")
    }

    /// Sends SIGTERM; the exit status.
    pub async fn sigterm(mut self) -> ExitStatus {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
        self.wait().await
    }

    /// Kills with SIGKILL (the socket file stays behind).
    pub async fn sigkill(mut self) {
        self.child.kill().await.expect("killed");
    }

    /// Waits for the process to exit.
    pub async fn wait(&mut self) -> ExitStatus {
        tokio::time::timeout(GUARD, self.child.wait())
            .await
            .expect("exits in time")
            .expect("waitable")
    }
}
