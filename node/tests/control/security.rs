//! The control socket's permissions, its bounds against a local client, and the errors a
//! person gets when something is off: no peer, a stale socket, someone else's socket, a
//! socket or remote that is not a ppppp peer.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{GUARD, Serve, fails, ok, run};

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socket_is_private_and_a_shared_directory_is_refused() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("a");
    ok(&dir, &["init"]).await;
    assert_eq!(mode(&dir), 0o700, "init makes a private directory");
    let serve = Serve::start(&dir, &[]).await;
    let socket = dir.join("socket");
    assert_eq!(mode(&socket), 0o600);
    assert!(
        std::fs::read_dir(&dir).expect("list").all(|entry| !entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .starts_with(".socket")),
        "no staging directory left"
    );
    assert!(serve.sigterm().await.success());
    assert!(!socket.exists(), "a stopped peer removes its socket");

    for shared in [0o770, 0o702, 0o777] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(shared)).expect("chmod");
        let refusal = fails(&dir, &["serve", "--listen", "127.0.0.1:0"]).await;
        assert!(
            refusal.contains("writable by group or others") && refusal.contains("chmod go-w"),
            "{refusal}"
        );
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let serve = Serve::start(&dir, &[]).await;
    assert!(serve.sigterm().await.success());
}

/// Runs `ppppp ARGS --dir DIR` as user `nobody` (65534), if this test runs as root and
/// `setpriv` exists; `None` otherwise.
async fn run_as_nobody(dir: &Path, args: &[&str]) -> Option<std::process::Output> {
    let root = std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0);
    let setpriv = Path::new("/usr/bin/setpriv");
    if !root || !setpriv.exists() {
        return None;
    }
    let mut command = tokio::process::Command::new(setpriv);
    command
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_ppppp"))
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env_remove("PPPPP_DIR");
    let output = tokio::time::timeout(GUARD, command.output())
        .await
        .expect("in time")
        .expect("setpriv runs");
    Some(output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_is_refused() {
    let work = tempfile::tempdir().expect("temp dir");
    // Let other users reach the peer directory, so only the socket itself stands between.
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dir = work.path().join("a");
    ok(&dir, &["init"]).await;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let serve = Serve::start(&dir, &[]).await;
    let Some(output) = run_as_nobody(&dir, &["whoami"]).await else {
        eprintln!("not root or no setpriv: the other-user checks need a second uid; skipped");
        assert!(serve.sigterm().await.success());
        return;
    };
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(said.contains("permission denied"), "{said}");
    assert!(output.stdout.is_empty());
    // Even through a socket whose mode was loosened, the peer serves only its own user.
    std::fs::set_permissions(dir.join("socket"), std::fs::Permissions::from_mode(0o666))
        .expect("chmod");
    let output = run_as_nobody(&dir, &["whoami"]).await.expect("as before");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        said.contains("closed the connection without answering")
            && said.contains("serves only the user it runs as")
            && said.contains("uid 0 owns the socket"),
        "{said}"
    );
    // The peer's own user is still served.
    ok(&dir, &["whoami"]).await;
    assert!(serve.sigterm().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_is_wrong() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("a");

    // No peer, no directory.
    let said = fails(&dir, &["status"]).await;
    assert!(
        said.contains("holds no peer") && said.contains("ppppp init"),
        "{said}"
    );
    ok(&dir, &["init"]).await;

    // A peer killed with SIGKILL leaves a stale socket: commands use the directory.
    let serve = Serve::start(&dir, &[]).await;
    serve.sigkill().await;
    assert!(dir.join("socket").exists());
    let output = run(&dir, &["status"]).await;
    assert!(output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("is stale"), "{said}");
    let said = fails(
        &dir,
        &[
            "connect",
            "net:127.0.0.1:1~shse:11111111111111111111111111111111",
        ],
    )
    .await;
    assert!(said.contains("no peer is running"), "{said}");
    let said = fails(&dir, &["log", "--live"]).await;
    assert!(
        said.contains("--live") && said.contains("no peer is running"),
        "{said}"
    );
    // The next peer replaces the stale socket.
    let serve = Serve::start(&dir, &[]).await;
    ok(&dir, &["whoami"]).await;

    // A remote that is not a ppppp peer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let http = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream
                .write_all(&b"HTTP/1.1 400 Bad Request\r\n\r\n".repeat(8))
                .await;
        }
    });
    let key = crate::support::account(&dir).await;
    let said = fails(
        &dir,
        &["connect", &format!("net:127.0.0.1:{port}~shse:{key}")],
    )
    .await;
    assert!(said.contains("is not a ppppp/pzp peer"), "{said}");
    http.abort();
    let peers = ok(&dir, &["peers"]).await;
    assert!(peers.contains("lastError"), "{peers}");
    assert!(serve.sigterm().await.success());

    // A socket file that is not a ppppp peer's.
    let other = work.path().join("b");
    ok(&other, &["init"]).await;
    let socket = tokio::net::UnixListener::bind(other.join("socket")).expect("bind");
    let impostor = tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            let _ = stream
                .write_all(b"220 smtp.example.com ESMTP ready\r\n")
                .await;
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink).await;
        }
    });
    let said = fails(&other, &["whoami"]).await;
    assert!(said.contains("did not answer as a ppppp peer"), "{said}");
    impostor.abort();
    std::fs::remove_file(other.join("socket")).expect("removed");
    std::fs::write(other.join("socket"), b"").expect("a plain file");
    let said = fails(&other, &["whoami"]).await;
    assert!(said.contains("is not a socket"), "{said}");
    let said = fails(&other, &["serve", "--listen", "127.0.0.1:0"]).await;
    assert!(said.contains("is not a socket"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_client_is_bounded() {
    let work = tempfile::tempdir().expect("temp dir");
    let dir = work.path().join("a");
    let serve = Serve::start(&dir, &[]).await;
    // A frame that announces 4 MiB: the peer closes the connection after 1 MiB of it.
    let mut stream = tokio::net::UnixStream::connect(dir.join("socket"))
        .await
        .expect("connect");
    let mut header = vec![0b0010u8];
    header.extend_from_slice(&(4u32 * 1024 * 1024).to_be_bytes());
    header.extend_from_slice(&1i32.to_be_bytes());
    stream.write_all(&header).await.expect("header");
    let body = vec![b' '; 64 * 1024];
    let mut written = 0usize;
    let closed = tokio::time::timeout(GUARD, async {
        loop {
            if stream.write_all(&body).await.is_err() {
                return true;
            }
            written += body.len();
            if written > 4 * 1024 * 1024 {
                return false;
            }
        }
    })
    .await
    .expect("in time");
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    assert!(closed || rest.is_empty(), "the connection was closed");
    assert!(written <= 2 * 1024 * 1024, "closed after {written} bytes");
    // Everyone else is still served.
    ok(&dir, &["whoami"]).await;
    assert!(serve.sigterm().await.success());
}
