//! Bad scenario files: every error names the file, the line and the field.

use sim::scenario::{Scenario, ScenarioError};

use crate::support::scenarios_dir;

const BASE: &str = r#"name = "bad"
duration = "1m"

[topology]
kind = "full"

[[group]]
name = "a"
count = 3
follow = "uniform(2)"

[[group]]
name = "b"
count = 2
"#;

/// Asserts that `text` fails with `field` on `line`, with `fragment` in the message.
fn fails(text: &str, line: usize, field: &str, fragment: &str) {
    let error = match Scenario::parse(text, "scenarios/bad.toml") {
        Ok(_) => panic!("expected an error for field {field}"),
        Err(error) => error,
    };
    let shown = error.to_string();
    assert!(
        shown.starts_with(&format!("scenarios/bad.toml:{line}:")),
        "wrong file/line in `{shown}` (expected line {line})"
    );
    assert_eq!(error.field(), Some(field), "wrong field in `{shown}`");
    assert!(shown.contains(field), "field missing from `{shown}`");
    assert!(
        shown.contains(fragment),
        "`{fragment}` missing from `{shown}`"
    );
}

#[test]
fn base_is_valid() {
    assert!(Scenario::parse(BASE, "scenarios/bad.toml").is_ok());
}

#[test]
fn unknown_top_level_field() {
    fails(
        &format!("nmae = 3\n{BASE}"),
        1,
        "nmae",
        "unknown field `nmae`",
    );
}

#[test]
fn unknown_field_in_second_group() {
    let text = BASE.replace("count = 2\n", "count = 2\ncuont = 3\n");
    fails(&text, 15, "group[1].cuont", "unknown field `cuont`");
}

#[test]
fn zero_count() {
    let text = BASE.replace("count = 2\n", "count = 0\n");
    fails(&text, 14, "group[1].count", "must be > 0");
}

#[test]
fn probability_out_of_range() {
    let text = format!("{BASE}\n[network]\nfail_rate = 1.5\n");
    fails(&text, 17, "network.fail_rate", "[0, 1]");
}

#[test]
fn duration_without_unit() {
    let text = BASE.replace("duration = \"1m\"", "duration = 60");
    fails(&text, 2, "duration", "no unit");
}

#[test]
fn bad_duration_unit() {
    let text = BASE.replace("duration = \"1m\"", "duration = \"1 fortnight\"");
    fails(&text, 2, "duration", "unknown duration unit");
}

#[test]
fn bad_distribution() {
    let text = format!("{BASE}\n[churn.b]\nonline = \"exp(3)\"\noffline = \"exp(1m)\"\n");
    fails(&text, 17, "churn.b.online", "no unit");
}

#[test]
fn churn_of_unknown_group() {
    let text = format!("{BASE}\n[churn.c]\nonline = \"exp(3m)\"\noffline = \"exp(1m)\"\n");
    fails(&text, 16, "churn.c", "no group named `c`");
}

#[test]
fn fault_selects_unknown_group() {
    let text =
        format!("{BASE}\n[[fault]]\nat = \"10s\"\naction = \"partition\"\na = [\"nowhere\"]\n");
    fails(&text, 19, "fault[0].a[0]", "`nowhere`");
}

#[test]
fn faults_out_of_order() {
    let text = format!(
        "{BASE}\n[[fault]]\nat = \"20s\"\naction = \"crash\"\npeers = [\"a-0\"]\n\n[[fault]]\nat = \"10s\"\naction = \"restart\"\npeers = [\"a-0\"]\n"
    );
    fails(&text, 22, "fault[1].at", "time order");
}

#[test]
fn fault_field_not_used_by_action() {
    let text = format!(
        "{BASE}\n[[fault]]\nat = \"10s\"\naction = \"crash\"\npeers = [\"a-0\"]\nfail_rate = 0.5\n"
    );
    fails(
        &text,
        20,
        "fault[0].fail_rate",
        "not used by action `crash`",
    );
}

#[test]
fn latency_min_above_max() {
    let text = format!("{BASE}\n[network]\nlatency = {{ min = \"50ms\", max = \"10ms\" }}\n");
    fails(&text, 17, "network.latency.max", "must be ≥ min");
}

#[test]
fn per_link_minimum_is_refused() {
    let text = format!(
        "{BASE}\n[[network.link]]\nbetween = [\"a\", \"b\"]\nlatency = {{ min = \"1ms\", max = \"10ms\" }}\n"
    );
    fails(&text, 18, "network.link[0].latency.min", "per-link minimum");
}

#[test]
fn rule_does_not_match_feed_kind() {
    let text = BASE.replace(
        "follow = \"uniform(2)\"\n",
        "follow = \"uniform(2)\"\nfollow_goals = [\"post@all\", \"profile@set\"]\n",
    ) + "\n[workload.dict]\nrate = \"1/h\"\n";
    fails(
        &text,
        11,
        "group[0].follow_goals[1]",
        "written as a dict feed",
    );
}

#[test]
fn liveness_deadline_past_the_end() {
    let text = format!(
        "{BASE}\n[[fault]]\nat = \"50s\"\naction = \"partition\"\na = [\"a\"]\n\n[check]\nconverge_within = \"30s\"\n"
    );
    fails(
        &text,
        22,
        "check.converge_within",
        "past the end of the run",
    );
}

#[test]
fn syntax_error() {
    let text = BASE.replace("count = 2\n", "count = = 2\n");
    let error = Scenario::parse(&text, "scenarios/bad.toml").expect_err("bad TOML");
    assert_eq!(error.line(), Some(14), "{error}");
    assert_eq!(error.field(), Some("(document)"));
}

#[test]
fn missing_required_field() {
    let text = BASE.replace("duration = \"1m\"\n", "");
    let error = Scenario::parse(&text, "scenarios/bad.toml").expect_err("no duration");
    assert_eq!(error.field(), Some("duration"), "{error}");
}

#[test]
fn unreadable_file() {
    let error = Scenario::load(scenarios_dir().join("does-not-exist.toml")).expect_err("missing");
    assert!(matches!(error, ScenarioError::Io { .. }));
    assert!(error.to_string().contains("does-not-exist.toml"));
}

/// Every file in `tests/it/bad/` fails as its first line says:
/// `# expect: <line> <field> <message fragment>`.
#[test]
fn bad_files_fail_where_they_say() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/bad");
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/it/bad exists")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).expect("readable");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an expect line", path.display()));
        let mut parts = expect.splitn(3, ' ');
        let line: usize = parts
            .next()
            .and_then(|l| l.parse().ok())
            .expect("a line number");
        let field = parts.next().expect("a field");
        let fragment = parts.next().expect("a message fragment");
        let error = match Scenario::load(&path) {
            Ok(_) => panic!("{} loaded", path.display()),
            Err(error) => error,
        };
        let shown = error.to_string();
        assert!(
            shown.starts_with(&format!("{}:{line}:", path.display())),
            "{shown}"
        );
        assert_eq!(error.field(), Some(field), "{shown}");
        assert!(shown.contains(fragment), "{shown}");
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} bad files");
}
