//! Workload values against the protocol's limits (issue 12, finding 9, and the scenario named
//! `..`): `ppppp-sim` aborted on allocation for `rate = "1000000000/s"` (4 GiB of planned
//! publish times), took a post `size = "1GiB"` (a msg's data is at most 65,535 bytes) and an
//! uncapped `lognormal(300B, 1e308)`; a scenario named `..` wrote its report into the
//! current directory. Each is now a located error when the file is loaded.

use std::process::Command;

use sim::scenario::Scenario;

const BASE: &str = r#"name = "limits"
duration = "10m"

[topology]
kind = "full"

[[group]]
name = "a"
count = 3

[workload.post]
rate = "1/min"
size = "300B"
"#;

fn error_of(text: &str) -> (String, Option<String>, Option<usize>) {
    let error = Scenario::parse(text, "scenarios/limits.toml").expect_err("must be refused");
    (
        error.to_string(),
        error.field().map(str::to_owned),
        error.line(),
    )
}

#[test]
fn the_base_is_valid() {
    Scenario::parse(BASE, "scenarios/limits.toml").expect("valid");
}

#[test]
fn a_post_bigger_than_a_msg_can_be_is_refused() {
    let (shown, field, line) = error_of(&BASE.replace("size = \"300B\"", "size = \"1GiB\""));
    assert_eq!(field.as_deref(), Some("workload.post.size"), "{shown}");
    assert_eq!(line, Some(13), "{shown}");
    assert!(shown.contains("at most 65535 bytes"), "{shown}");
    // The largest size that fits is accepted.
    Scenario::parse(
        &BASE.replace("size = \"300B\"", "size = \"uniform(1B, 65524B)\""),
        "scenarios/limits.toml",
    )
    .expect("fits");
    let (shown, ..) = error_of(&BASE.replace("size = \"300B\"", "size = \"65525B\""));
    assert!(shown.contains("65524"), "{shown}");
}

#[test]
fn an_uncapped_size_or_rate_is_refused() {
    let (shown, field, _) =
        error_of(&BASE.replace("size = \"300B\"", "size = \"lognormal(300B, 1e308)\""));
    assert_eq!(field.as_deref(), Some("workload.post.size"), "{shown}");
    assert!(shown.contains("give it a cap"), "{shown}");
    let (shown, field, _) =
        error_of(&BASE.replace("rate = \"1/min\"", "rate = \"pareto(1/h, 1.2)\""));
    assert_eq!(field.as_deref(), Some("workload.post.rate"), "{shown}");
    assert!(shown.contains("give it a cap"), "{shown}");
}

#[test]
fn a_rate_that_would_plan_billions_of_publishes_is_refused() {
    let (shown, field, line) =
        error_of(&BASE.replace("rate = \"1/min\"", "rate = \"1000000000/s\""));
    assert_eq!(field.as_deref(), Some("workload.post.rate"), "{shown}");
    assert_eq!(line, Some(12), "{shown}");
    assert!(shown.contains("more than the 10000000"), "{shown}");
}

#[test]
fn dict_values_must_fit_a_msg_together() {
    let text = format!("{BASE}\n[workload.dict]\nrate = \"1/h\"\nvalue_size = \"30KiB\"\n");
    let (shown, field, _) = error_of(&text);
    assert_eq!(
        field.as_deref(),
        Some("workload.dict.value_size"),
        "{shown}"
    );
}

#[test]
fn a_name_that_is_not_a_directory_of_its_own_is_refused() {
    for name in ["..", ".", ".hidden"] {
        let (shown, field, _) = error_of(&BASE.replace("\"limits\"", &format!("\"{name}\"")));
        assert_eq!(field.as_deref(), Some("name"), "{shown}");
    }
}

#[test]
fn ppppp_sim_refuses_the_file_instead_of_aborting() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("huge.toml");
    std::fs::write(
        &file,
        BASE.replace("rate = \"1/min\"", "rate = \"1000000000/s\""),
    )
    .expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_ppppp-sim"))
        .arg("run")
        .arg(&file)
        .args(["--engine", "protocol"])
        .current_dir(dir.path())
        .output()
        .expect("ppppp-sim runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("workload.post.rate"), "{stderr}");
    assert!(!dir.path().join("reports").exists(), "nothing was run");
}

#[test]
fn ppppp_sim_refuses_a_run_bigger_than_the_memory_it_has() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("big.toml");
    // Within the protocol's limits and the planning bound, but about 560 GB of msgs even
    // though nobody follows anyone (9 million publishes of about 62 KB, each held by its
    // author only).
    let text = BASE
        .replace("duration = \"10m\"", "duration = \"10h\"")
        .replace("count = 3", "count = 1000")
        .replace("rate = \"1/min\"", "rate = \"900/h\"")
        .replace("size = \"300B\"", "size = \"60KiB\"");
    Scenario::parse(&text, "big.toml").expect("within the file's limits");
    std::fs::write(&file, text).expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_ppppp-sim"))
        .arg("run")
        .arg(&file)
        .args(["--engine", "protocol"])
        .current_dir(dir.path())
        .output()
        .expect("ppppp-sim runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("of memory available"), "{stderr}");
}
