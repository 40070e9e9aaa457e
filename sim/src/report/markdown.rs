//! `report.md`: the report as a page a person reads, one section per function.

use std::fmt::Write as _;

use super::Report;
use crate::scenario::{Reinitiation, Transport};
use crate::units::{format_bytes, format_ms};

/// `report.md`.
#[must_use]
pub fn markdown(report: &Report) -> String {
    let mut md = String::new();
    heading(&mut md, report);
    scenario(&mut md, report);
    faults(&mut md, report);
    checks(&mut md, report);
    latency(&mut md, report);
    convergence(&mut md, report);
    recovery(&mut md, report);
    bytes(&mut md, report);
    bytes_by_group(&mut md, report);
    queues(&mut md, report);
    sync_store_gc(&mut md, report);
    plots(&mut md, report);
    md
}

/// Escapes text for a markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

fn opt_ms(value: Option<u64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v}"))
}

fn opt_f(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.decimals$}"))
}

/// A byte count, with its unit.
fn bytes_text(bytes: u64) -> String {
    #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^53")]
    let bytes = bytes as f64;
    format_bytes(bytes)
}

/// The title with the engine, the verdict and the repro line.
fn heading(md: &mut String, report: &Report) {
    let s = &report.scenario;
    let _ = writeln!(
        md,
        "# {} — seed {} (engine: {})\n",
        s.name,
        s.seed,
        report.engine_label()
    );
    let verdict = if report.checks.passed {
        "PASSED"
    } else {
        "FAILED"
    };
    let _ = writeln!(md, "**Checks: {verdict}.** Reproduce: `{}`\n", report.repro);
}

fn scenario(md: &mut String, report: &Report) {
    let s = &report.scenario;
    let m = &report.metrics;
    let _ = writeln!(md, "## Scenario\n");
    let _ = writeln!(md, "| field | value |\n|---|---|");
    let _ = writeln!(md, "| file | `{}` |", s.path);
    let _ = writeln!(
        md,
        "| duration / tick | {} / {} |",
        format_ms(s.duration_ms),
        format_ms(s.tick_ms)
    );
    let _ = writeln!(
        md,
        "| transport | {} |",
        match s.transport {
            Transport::Plaintext => "plaintext",
            Transport::Shse => "shse",
        }
    );
    if s.reinitiation == Reinitiation::Reference {
        let _ = writeln!(
            md,
            "| re-initiation | reference (pzp-sync 1.0.4, for comparison) |"
        );
    }
    let groups: Vec<String> = s
        .groups
        .iter()
        .map(|g| format!("{} × {} ({})", g.count, g.name, g.role))
        .collect();
    let _ = writeln!(md, "| peers | {} — {} |", s.peers, groups.join(", "));
    let _ = writeln!(md, "| connections | {} |", s.edges);
    let _ = writeln!(
        md,
        "| msgs planned / published | {} / {} |",
        s.planned_publishes, m.counts.publishes
    );
    let _ = writeln!(md, "| events | {} |", m.counts.events);
    let _ = writeln!(
        md,
        "| liveness deadline | {} |",
        format_ms(s.liveness_deadline_ms)
    );
    let _ = writeln!(md, "| trace hash | `{}` |", report.trace_hash);
    let _ = writeln!(md, "| plan hash | `{}` |", s.plan_hash);
    let _ = writeln!(
        md,
        "| commit | {} |\n",
        report.build.git_commit.as_deref().unwrap_or("unknown")
    );
}

fn faults(md: &mut String, report: &Report) {
    let faults = &report.scenario.faults;
    if faults.is_empty() {
        return;
    }
    let _ = writeln!(md, "| fault | from | to | healed |\n|---|---|---|---|");
    for fault in faults {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            cell(&fault.label),
            format_ms(fault.start_ms),
            format_ms(fault.end_ms),
            if fault.healed { "yes" } else { "no" }
        );
    }
    md.push('\n');
}

fn checks(md: &mut String, report: &Report) {
    let _ = writeln!(md, "## Checks\n");
    let safety = &report.checks.safety;
    let _ = writeln!(
        md,
        "- Safety: {} ({} violation{})",
        if !safety.enabled {
            "off"
        } else if safety.passed {
            "passed"
        } else {
            "FAILED"
        },
        safety.violation_count,
        if safety.violation_count == 1 { "" } else { "s" }
    );
    for violation in safety.violations.iter().take(10) {
        let _ = writeln!(md, "  - {}", violation.line());
    }
    liveness(md, report);
    delivery(md, report);
    md.push('\n');
}

fn delivery(md: &mut String, report: &Report) {
    let delivery = &report.checks.delivery;
    if !delivery.enabled {
        let _ = writeln!(md, "- Delivery: off");
        return;
    }
    let _ = writeln!(
        md,
        "- Delivery within {} (wherever a fault-free path joins author and reader): {} — {} of {} judged pairs missing, slowest {}; exempt: {} down, {} without a path, {} no longer wanted; {} after the end",
        format_ms(delivery.deliver_within_ms),
        if delivery.passed { "passed" } else { "FAILED" },
        delivery.missing,
        delivery.judged,
        format_ms(delivery.slowest_ms),
        delivery.exempt_down,
        delivery.exempt_no_path,
        delivery.exempt_unwanted,
        delivery.after_end
    );
    for example in &delivery.examples {
        let _ = writeln!(md, "  - {example}");
    }
}

fn liveness(md: &mut String, report: &Report) {
    let live = &report.checks.liveness;
    if !live.enabled {
        let _ = writeln!(md, "- Liveness: off");
        return;
    }
    if !live.checked {
        let note = live.note.as_deref().unwrap_or("not checked");
        let _ = writeln!(md, "- Liveness: {note}");
        return;
    }
    let _ = writeln!(
        md,
        "- Liveness at {} (faults and churn over at {}): {} — {} of {} wanted pairs missing, {} exempt (peer or author down), {} held but not wanted{}",
        format_ms(live.deadline_ms),
        format_ms(live.quiet_from_ms),
        if live.passed { "passed" } else { "FAILED" },
        live.missing,
        live.wanted,
        live.exempt,
        live.over_held,
        if live.exact {
            " (exact: counts as failure)"
        } else {
            ""
        }
    );
    for example in &live.examples {
        let _ = writeln!(md, "  - {example}");
    }
}

fn latency(md: &mut String, report: &Report) {
    let m = &report.metrics;
    let _ = writeln!(
        md,
        "## Delivery latency (publish → stored at an interested peer)\n"
    );
    let q = &m.latency_ms.quantiles;
    let _ = writeln!(
        md,
        "| deliveries | mean | p50 | p90 | p99 | max | undelivered |\n|---|---|---|---|---|---|---|"
    );
    let _ = writeln!(
        md,
        "| {} | {} ms | {} ms | {} ms | {} ms | {} ms | {} |\n",
        q.count,
        opt_f(q.mean, 1),
        opt_ms(q.p50),
        opt_ms(q.p90),
        opt_ms(q.p99),
        opt_ms(q.max),
        m.latency_ms.undelivered
    );
}

fn convergence(md: &mut String, report: &Report) {
    let c = &report.metrics.convergence;
    let _ = writeln!(md, "## Convergence\n");
    let _ = writeln!(
        md,
        "Of the {} (peer, msg) pairs wanted at the end, {} are held ({}). Times are when that share of them had its current copy stored.\n",
        c.wanted_at_end,
        c.held_at_end,
        c.fraction_at_end
            .map_or_else(|| "—".to_owned(), |f| format!("{:.2} %", f * 100.0))
    );
    let _ = writeln!(
        md,
        "| 50 % | 90 % | 99 % | 100 % | last publish | settled after last publish |\n|---|---|---|---|---|---|"
    );
    let fmt = |v: Option<u64>| v.map_or_else(|| "never".to_owned(), format_ms);
    let _ = writeln!(
        md,
        "| {} | {} | {} | {} | {} | {} |\n",
        fmt(c.t50_ms),
        fmt(c.t90_ms),
        fmt(c.t99_ms),
        fmt(c.t100_ms),
        fmt(c.last_publish_ms),
        fmt(c.settle_after_last_publish_ms)
    );
}

/// How long each fault's damage took to mend (part of the convergence section).
fn recovery(md: &mut String, report: &Report) {
    let recovery = &report.metrics.recovery;
    if recovery.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "| fault | ended | pairs missing then | recovered after |\n|---|---|---|---|"
    );
    for r in recovery {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            cell(&r.label),
            format_ms(r.end_ms),
            r.missing_at_end_of_fault,
            r.recovery_ms
                .map_or_else(|| "not recovered".to_owned(), format_ms)
        );
    }
    md.push('\n');
}

fn bytes(md: &mut String, report: &Report) {
    let m = &report.metrics;
    let b = &m.bytes;
    let _ = writeln!(md, "## Bytes on the wire per delivered msg\n");
    let _ = writeln!(
        md,
        "{} deliveries ({} to a peer that wanted the msg then); {} duplicates ({} per delivery).\n",
        b.deliveries,
        b.wanted_deliveries,
        m.duplicates.count,
        opt_f(m.duplicates.per_delivery, 3)
    );
    let _ = writeln!(md, "| kind | total | per delivered msg |\n|---|---|---|");
    for kind in &b.kinds {
        let total = b.by_kind.get(kind).copied().unwrap_or(0);
        let per = b.per_delivery_by_kind.get(kind).copied().flatten();
        let _ = writeln!(md, "| {kind} | {} | {} |", bytes_text(total), opt_f(per, 1));
    }
    let _ = writeln!(
        md,
        "| **all** | {} | {} |\n",
        bytes_text(b.total),
        opt_f(b.per_delivery, 1)
    );
}

/// Bytes sent by each group, per kind (part of the bytes section).
fn bytes_by_group(md: &mut String, report: &Report) {
    let b = &report.metrics.bytes;
    if b.by_group.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "Sent by group:\n\n| group | {} |\n|---|{}",
        b.kinds.join(" | "),
        "---|".repeat(b.kinds.len())
    );
    for (group, kinds) in &b.by_group {
        let cells: Vec<String> = b
            .kinds
            .iter()
            .map(|k| bytes_text(kinds.get(k).copied().unwrap_or(0)))
            .collect();
        let _ = writeln!(md, "| {group} | {} |", cells.join(" | "));
    }
    md.push('\n');
}

/// Peak per-peer queues (part of the bytes section), when links have a bandwidth.
fn queues(md: &mut String, report: &Report) {
    let Some(queue) = &report.metrics.queue else {
        return;
    };
    let (bytes, messages) = (&queue.peak_bytes, &queue.peak_messages);
    let text = |value: Option<u64>| value.map_or_else(|| "—".to_owned(), bytes_text);
    let _ = writeln!(
        md,
        "Peak per-peer queue (bytes handed to a peer's links and not yet sent, each peer's \
         largest), over {} peers: p50 {}, p90 {}, max {}; in msgs p50 {}, max {}.\n",
        bytes.count,
        text(bytes.p50),
        text(bytes.p90),
        text(bytes.max),
        opt_ms(messages.p50),
        opt_ms(messages.max)
    );
}

fn sync_store_gc(md: &mut String, report: &Report) {
    let m = &report.metrics;
    let _ = writeln!(md, "## Sync, store and GC\n");
    let rt = &m.round_trips;
    let _ = writeln!(
        md,
        "- Tangle syncs: {}; round trips mean {}, p50 {}, p90 {}, max {}",
        rt.count,
        opt_f(rt.mean, 2),
        opt_ms(rt.p50),
        opt_ms(rt.p90),
        opt_ms(rt.max)
    );
    let st = &m.store;
    let _ = writeln!(
        md,
        "- Store at the end: mean {}, max {}; largest ever {}",
        st.final_mean_bytes
            .map_or_else(|| "—".to_owned(), format_bytes),
        st.final_max_bytes
            .map_or_else(|| "—".to_owned(), bytes_text),
        bytes_text(st.max_bytes)
    );
    let gc: Vec<String> = st
        .gc_count
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(md, "- GC actions: {}", gc.join(", "));
    connections(md, report);
}

fn connections(md: &mut String, report: &Report) {
    let counts = &report.metrics.counts;
    let disconnects: Vec<String> = counts
        .disconnects
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        md,
        "- Connections: {} made, {} dials failed; disconnects: {}",
        counts.connects,
        counts.dial_failures,
        if disconnects.is_empty() {
            "none".to_owned()
        } else {
            disconnects.join(", ")
        }
    );
    let _ = writeln!(
        md,
        "- Crashes {}, restarts {}, offline {}, online {}; rejects {}\n",
        counts.crashes,
        counts.restarts,
        counts.offline,
        counts.online,
        counts.rejects.values().sum::<u64>()
    );
}

fn plots(md: &mut String, report: &Report) {
    let _ = writeln!(md, "## Plots\n");
    let suffix = report.title_suffix();
    for (file, alt) in [
        ("convergence", "convergence curve"),
        ("latency_cdf", "latency CDF"),
        ("bandwidth", "bandwidth by kind"),
    ] {
        let _ = writeln!(md, "![{alt} — {suffix}]({file}.svg)\n");
    }
}
