//! Validation: every range and cross-reference of a parsed scenario, so that building a plan
//! from a loaded scenario cannot fail. Problems are collected in document order as [`Issue`]s
//! and located in the text by the loader.

use std::collections::{BTreeMap, BTreeSet};

use super::error::{FieldPath, Issue, at, issue};
use super::model::{
    DictLoad, FOLLOWS_FEED, Fault, FaultAction, Group, Latency, PEERS_MAX, PostLoad, Scenario,
    SetLoad, TopologyKind,
};
use crate::goal::{FeedKind, Rule};
use crate::units::Millis;
use proto::goals::Goal;

fn valid_name(name: &str) -> bool {
    // Not `.`, `..` or hidden: the name is a directory under `reports/`.
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

fn probability(value: f64) -> bool {
    value.is_finite() && (0.0..=1.0).contains(&value)
}

impl Scenario {
    /// Every problem found, in document order (the first one is reported).
    pub(super) fn validate(&self) -> Vec<Issue> {
        let mut issues = Vec::new();
        self.validate_top(&mut issues);
        self.validate_network(&mut issues);
        self.validate_groups(&mut issues);
        if issues.is_empty() {
            self.validate_topology(&mut issues);
            self.validate_tunnels(&mut issues);
            self.validate_churn(&mut issues);
            self.validate_workload(&mut issues);
            self.validate_faults(&mut issues);
            self.validate_check(&mut issues);
        }
        issues
    }

    fn validate_top(&self, issues: &mut Vec<Issue>) {
        if !valid_name(&self.name) {
            issues.push(issue(
                at("name"),
                "must be non-empty letters, digits, `-`, `_` or `.`, not starting with `.` (it names the output directory)",
            ));
        }
        if self.duration.ms() == 0 {
            issues.push(issue(at("duration"), "must be > 0"));
        }
        if self.tick.ms() == 0 || self.tick.ms() > 1_000 {
            issues.push(issue(at("tick"), "must be between 1ms and 1s"));
        } else if self.tick > self.duration {
            issues.push(issue(at("tick"), "must not exceed `duration`"));
        }
        if let Some(interval) = self.report.sample_interval
            && (interval < self.tick || interval > self.duration)
        {
            issues.push(issue(
                at("report").key("sample_interval"),
                "must be between `tick` and `duration`",
            ));
        }
    }

    fn validate_latency(
        latency: &Latency,
        path: &FieldPath,
        is_override: bool,
        issues: &mut Vec<Issue>,
    ) {
        if latency.fixed.is_some() {
            for (name, present) in [
                ("min", latency.min.is_some()),
                ("max", latency.max.is_some()),
                ("curve", latency.curve.is_some()),
            ] {
                if present {
                    issues.push(issue(
                        path.clone().key(name),
                        "cannot be combined with `fixed`",
                    ));
                }
            }
            return;
        }
        if is_override {
            if latency.min.is_some() {
                issues.push(issue(
                    path.clone().key("min"),
                    "turmoil cannot set a per-link minimum; override `max` or `fixed`",
                ));
            }
            if latency.curve.is_some() {
                issues.push(issue(
                    path.clone().key("curve"),
                    "turmoil's curve is global; set it in [network.latency]",
                ));
            }
            if latency.max.is_none() {
                issues.push(issue(path.clone(), "give `max` or `fixed`"));
            }
            return;
        }
        if let Some(curve) = latency.curve
            && !(curve.is_finite() && curve > 0.0)
        {
            issues.push(issue(path.clone().key("curve"), "must be > 0"));
        }
        let model = latency.model();
        if model.min_ms > model.max_ms {
            issues.push(issue(
                path.clone().key("max"),
                format!("must be ≥ min ({}ms), got {}ms", model.min_ms, model.max_ms),
            ));
        }
    }

    fn validate_network(&self, issues: &mut Vec<Issue>) {
        let network = at("network");
        Self::validate_latency(
            &self.network.latency,
            &network.clone().key("latency"),
            false,
            issues,
        );
        if !probability(self.network.fail_rate) {
            issues.push(issue(network.clone().key("fail_rate"), "must be in [0, 1]"));
        }
        if !probability(self.network.repair_rate) {
            issues.push(issue(
                network.clone().key("repair_rate"),
                "must be in [0, 1]",
            ));
        }
        let base = self.network.latency.model();
        for (i, link) in self.network.links.iter().enumerate() {
            let path = network.clone().key("link").index(i);
            for (j, name) in link.between.iter().enumerate() {
                if self.group(name).is_none() {
                    issues.push(issue(
                        path.clone().key("between").index(j),
                        format!("no group named `{name}`"),
                    ));
                }
            }
            if let Some(latency) = &link.latency {
                Self::validate_latency(latency, &path.clone().key("latency"), true, issues);
                if let Some(max) = latency.max
                    && max.ms() < base.min_ms
                {
                    issues.push(issue(
                        path.clone().key("latency").key("max"),
                        format!("must be ≥ the global min ({}ms)", base.min_ms),
                    ));
                }
            }
            if let Some(rate) = link.fail_rate
                && !probability(rate)
            {
                issues.push(issue(path.clone().key("fail_rate"), "must be in [0, 1]"));
            }
            if link.latency.is_none() && link.fail_rate.is_none() && link.bandwidth.is_none() {
                issues.push(issue(path, "give `latency`, `fail_rate` or `bandwidth`"));
            }
        }
    }

    fn validate_groups(&self, issues: &mut Vec<Issue>) {
        if self.groups.is_empty() {
            issues.push(issue(at("group"), "at least one [[group]] is needed"));
            return;
        }
        let mut seen = BTreeSet::new();
        for (i, group) in self.groups.iter().enumerate() {
            let path = at("group").index(i);
            let name = path.clone().key("name");
            if !valid_name(&group.name) || group.name.contains('.') {
                issues.push(issue(
                    name.clone(),
                    "must be non-empty letters, digits, `-` or `_`",
                ));
            }
            if group.name == "*" || group.name.starts_with("random") {
                issues.push(issue(name.clone(), "is reserved for fault selectors"));
            }
            if !seen.insert(group.name.clone()) {
                issues.push(issue(
                    name,
                    format!("group `{}` is defined twice", group.name),
                ));
            }
            if group.count == 0 {
                issues.push(issue(path.clone().key("count"), "must be > 0"));
            }
            if let Some(groups) = &group.follow_groups {
                for (j, name) in groups.iter().enumerate() {
                    if self.group(name).is_none() {
                        issues.push(issue(
                            path.clone().key("follow_groups").index(j),
                            format!("no group named `{name}`"),
                        ));
                    }
                }
            }
            self.validate_group_rules(group, &path, issues);
        }
        let total: u64 = self.groups.iter().map(|g| u64::from(g.count)).sum();
        if total > u64::from(PEERS_MAX) {
            issues.push(issue(
                at("group"),
                format!(
                    "{total} peers in total; at most {PEERS_MAX} (PEERS_MAX; the full-stack \
                     tier is practical to about 1,000)"
                ),
            ));
        }
    }

    /// A group's `goals` and `follow_goals`: one rule per feed, each fitting how the workload
    /// writes that feed.
    fn validate_group_rules(&self, group: &Group, path: &FieldPath, issues: &mut Vec<Issue>) {
        let kinds = self.feed_kinds();
        for (field, rules) in [
            ("goals", &group.goals),
            ("follow_goals", &group.follow_goals),
        ] {
            let Some(rules) = rules else { continue };
            let mut feeds = BTreeSet::new();
            for (j, rule) in rules.iter().enumerate() {
                let rule_path = path.clone().key(field).index(j);
                if !feeds.insert(rule.feed.clone()) {
                    issues.push(issue(
                        rule_path.clone(),
                        format!("feed `{}` has two rules", rule.feed),
                    ));
                }
                if let Some(problem) = rule_mismatch(kinds.get(&rule.feed), rule) {
                    issues.push(issue(rule_path, problem));
                }
            }
        }
    }

    fn validate_topology(&self, issues: &mut Vec<Issue>) {
        self.validate_topology_unused(issues);
        let path = at("topology");
        match self.topology.kind {
            TopologyKind::RandomRegular => self.validate_random_regular(&path, issues),
            TopologyKind::SmallWorld => self.validate_small_world(&path, issues),
            TopologyKind::HubAndSpoke => self.validate_hub_and_spoke(&path, issues),
            TopologyKind::Full => {}
            TopologyKind::Edges => self.validate_edges(&path, issues),
        }
    }

    /// Fields that belong to another kind of topology.
    fn validate_topology_unused(&self, issues: &mut Vec<Issue>) {
        let topo = &self.topology;
        let kind = topo.kind;
        let kind_name = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        for (name, present, owner) in [
            ("degree", topo.degree.is_some(), TopologyKind::RandomRegular),
            ("k", topo.k.is_some(), TopologyKind::SmallWorld),
            ("beta", topo.beta.is_some(), TopologyKind::SmallWorld),
            (
                "hub_links",
                topo.hub_links.is_some(),
                TopologyKind::HubAndSpoke,
            ),
            ("edges", topo.edges.is_some(), TopologyKind::Edges),
        ] {
            if present && kind != owner {
                issues.push(issue(
                    at("topology").key(name),
                    format!("is not used by kind `{kind_name}`"),
                ));
            }
        }
    }

    fn validate_random_regular(&self, path: &FieldPath, issues: &mut Vec<Issue>) {
        let n = self.peer_count();
        match self.topology.degree {
            None => issues.push(issue(path.clone(), "random-regular needs `degree`")),
            Some(d) if d == 0 || d >= n => issues.push(issue(
                path.clone().key("degree"),
                format!("must be between 1 and peers − 1 ({})", n.saturating_sub(1)),
            )),
            Some(d) if (u64::from(d) * u64::from(n)) % 2 == 1 => issues.push(issue(
                path.clone().key("degree"),
                format!("degree × peers must be even ({d} × {n} is odd)"),
            )),
            Some(_) => {}
        }
    }

    fn validate_small_world(&self, path: &FieldPath, issues: &mut Vec<Issue>) {
        let n = self.peer_count();
        match self.topology.k {
            None => issues.push(issue(path.clone(), "small-world needs `k`")),
            Some(k) if k < 2 || k % 2 == 1 || k >= n => issues.push(issue(
                path.clone().key("k"),
                format!("must be even, ≥ 2 and < peers ({n})"),
            )),
            Some(_) => {}
        }
        match self.topology.beta {
            None => issues.push(issue(path.clone(), "small-world needs `beta`")),
            Some(beta) if !probability(beta) => {
                issues.push(issue(path.clone().key("beta"), "must be in [0, 1]"));
            }
            Some(_) => {}
        }
    }

    fn validate_hub_and_spoke(&self, path: &FieldPath, issues: &mut Vec<Issue>) {
        let hubs: u32 = self
            .groups
            .iter()
            .filter(|g| g.role.is_hub())
            .map(|g| g.count)
            .sum();
        if hubs == 0 {
            issues.push(issue(
                path.clone().key("kind"),
                "hub-and-spoke needs a group with role = \"hub\" or \"tunnel-hub\"",
            ));
        } else if hubs == self.peer_count() {
            issues.push(issue(
                path.clone().key("kind"),
                "hub-and-spoke needs at least one non-hub group",
            ));
        }
        if let Some(links) = self.topology.hub_links
            && (links == 0 || links > hubs)
        {
            issues.push(issue(
                path.clone().key("hub_links"),
                format!("must be between 1 and the number of hubs ({hubs})"),
            ));
        }
    }

    fn validate_edges(&self, path: &FieldPath, issues: &mut Vec<Issue>) {
        let Some(edges) = &self.topology.edges else {
            issues.push(issue(path.clone(), "kind `edges` needs `edges`"));
            return;
        };
        let names = self.peer_names();
        for (i, [a, b]) in edges.iter().enumerate() {
            for (j, name) in [a, b].into_iter().enumerate() {
                if !names.contains(name) {
                    issues.push(issue(
                        path.clone().key("edges").index(i).index(j),
                        format!("no peer named `{name}` (peers are <group>-<i>)"),
                    ));
                }
            }
            if a == b {
                issues.push(issue(
                    path.clone().key("edges").index(i),
                    "an edge needs two different peers",
                ));
            }
        }
    }

    fn validate_churn(&self, issues: &mut Vec<Issue>) {
        for (name, churn) in &self.churn {
            let path = at("churn").key(name);
            if self.group(name).is_none() {
                issues.push(issue(path.clone(), format!("no group named `{name}`")));
            }
            let until = churn.until.unwrap_or(self.duration);
            if until > self.duration {
                issues.push(issue(
                    path.clone().key("until"),
                    "must not exceed `duration`",
                ));
            }
            if churn.start >= until {
                issues.push(issue(path.clone().key("start"), "must be before `until`"));
            }
            for (field, dist) in [("online", &churn.online), ("offline", &churn.offline)] {
                if dist.shape.mean().is_none_or(|m| m <= 0.0) {
                    issues.push(issue(
                        path.clone().key(field),
                        "needs a positive, finite mean",
                    ));
                }
            }
        }
    }
    fn validate_workload(&self, issues: &mut Vec<Issue>) {
        for problem in crate::limits::workload_problems(self) {
            let field = problem
                .field
                .iter()
                .fold(FieldPath::default(), |path, key| path.key(key));
            issues.push(issue(field, problem.message));
        }
        let workload = &self.workload;
        let path = at("workload");
        if let Some(groups) = &workload.groups {
            for (i, name) in groups.iter().enumerate() {
                match self.group(name) {
                    None => issues.push(issue(
                        path.clone().key("groups").index(i),
                        format!("no group named `{name}`"),
                    )),
                    Some(group) if group.role.is_hub() => issues.push(issue(
                        path.clone().key("groups").index(i),
                        format!("`{name}` is a hub group; hubs have no account and do not publish"),
                    )),
                    Some(_) => {}
                }
            }
        }
        let stop = self.workload_stop();
        if stop > self.duration {
            issues.push(issue(
                path.clone().key("stop"),
                "must not exceed `duration`",
            ));
        }
        if workload.start >= stop {
            issues.push(issue(path.clone().key("start"), "must be before `stop`"));
        }
        let mut feeds = FeedNames::new();
        if let Some(post) = &workload.post {
            feeds.add(&post.feed, "post", issues);
            validate_post(post, &path.clone().key("post"), issues);
        }
        if let Some(dict) = &workload.dict {
            feeds.add(&dict.feed, "dict", issues);
            validate_dict(dict, &path.clone().key("dict"), issues);
        }
        if let Some(set) = &workload.set {
            feeds.add(&set.feed, "set", issues);
            validate_set(set, &path.clone().key("set"), issues);
        }
    }

    /// Checks a selector's syntax and names (random picks happen in the plan).
    fn validate_selector(&self, selector: &str, path: FieldPath, issues: &mut Vec<Issue>) {
        if selector == "*" || self.group(selector).is_some() || self.peer_names().contains(selector)
        {
            return;
        }
        if let Some(inner) = selector
            .strip_prefix("random(")
            .and_then(|rest| rest.strip_suffix(')'))
        {
            let mut parts = inner.split(',').map(str::trim);
            let count = parts.next();
            let group = parts.next();
            let pool = match group {
                Some(name) => match self.group(name) {
                    Some(g) => g.count,
                    None => {
                        issues.push(issue(path, format!("no group named `{name}`")));
                        return;
                    }
                },
                None => self.peer_count(),
            };
            match count.and_then(|c| super::model::random_count(c, pool)) {
                Some(c) if c > 0 && c <= pool && parts.next().is_none() => {}
                _ => issues.push(issue(
                    path,
                    format!(
                        "`{selector}`: write random(N) or random(N, group) with 1 ≤ N ≤ {pool}, \
                         or N as a percentage of the pool (random(50%, group))"
                    ),
                )),
            }
            return;
        }
        issues.push(issue(
            path,
            format!(
                "`{selector}` is not a group, a peer (<group>-<i>), `*`, random(N) or random(N, group)"
            ),
        ));
    }

    fn validate_faults(&self, issues: &mut Vec<Issue>) {
        let mut previous_at = Millis(0);
        for (i, fault) in self.faults.iter().enumerate() {
            let path = at("fault").index(i);
            if fault.at > self.duration {
                issues.push(issue(path.clone().key("at"), "must not exceed `duration`"));
            }
            if fault.at < previous_at {
                issues.push(issue(
                    path.clone().key("at"),
                    format!(
                        "faults must be listed in time order; the previous one is at {previous_at}"
                    ),
                ));
            }
            previous_at = fault.at;
            self.validate_fault_duration(fault, &path, issues);
            self.validate_fault_targets(fault, &path, issues);
            validate_fault_values(fault, &path, issues);
        }
    }

    fn validate_fault_duration(&self, fault: &Fault, path: &FieldPath, issues: &mut Vec<Issue>) {
        let Some(duration) = fault.duration else {
            return;
        };
        if duration.ms() == 0 {
            issues.push(issue(path.clone().key("duration"), "must be > 0"));
        }
        if fault.at.ms() + duration.ms() > self.duration.ms() {
            issues.push(issue(
                path.clone().key("duration"),
                "the fault must end before the run does",
            ));
        }
        if matches!(
            fault.action,
            FaultAction::Heal | FaultAction::Restart | FaultAction::Release
        ) {
            issues.push(issue(
                path.clone().key("duration"),
                format!("`{}` is an undo; it takes no duration", fault.action),
            ));
        }
    }

    /// Whom a fault acts on: links (`a`, `b`) or peers (`peers`), each a valid selector.
    fn validate_fault_targets(&self, fault: &Fault, path: &FieldPath, issues: &mut Vec<Issue>) {
        let action = fault.action;
        let uses_links = matches!(
            action,
            FaultAction::Partition
                | FaultAction::OneWay
                | FaultAction::Heal
                | FaultAction::Latency
                | FaultAction::Loss
                | FaultAction::Break
                | FaultAction::Hold
                | FaultAction::Release
        );
        let needs_a = matches!(
            action,
            FaultAction::Partition | FaultAction::OneWay | FaultAction::Hold
        );
        if uses_links {
            if fault.peers.is_some() {
                issues.push(not_used(path, "peers", action));
            }
            if needs_a && fault.a.is_none() {
                issues.push(issue(
                    path.clone(),
                    format!("`{action}` needs `a` (and optionally `b`)"),
                ));
            }
            if fault.b.is_some() && fault.a.is_none() {
                issues.push(issue(path.clone().key("b"), "`b` needs `a`"));
            }
        } else {
            if fault.a.is_some() {
                issues.push(not_used(path, "a", action));
            }
            if fault.b.is_some() {
                issues.push(not_used(path, "b", action));
            }
            if fault.peers.is_none() {
                issues.push(issue(path.clone(), format!("`{action}` needs `peers`")));
            }
        }
        for (field, list) in [("a", &fault.a), ("b", &fault.b), ("peers", &fault.peers)] {
            if let Some(list) = list {
                if list.is_empty() {
                    issues.push(issue(path.clone().key(field), "must not be empty"));
                }
                for (j, selector) in list.iter().enumerate() {
                    self.validate_selector(selector, path.clone().key(field).index(j), issues);
                }
            }
        }
    }

    fn validate_check(&self, issues: &mut Vec<Issue>) {
        let check = &self.check;
        if check.converge_within.ms() == 0 {
            issues.push(issue(at("check").key("converge_within"), "must be > 0"));
        }
        if check.delivery && check.deliver_within.ms() == 0 {
            issues.push(issue(
                at("check").key("deliver_within"),
                "must be > 0 (or set delivery = false)",
            ));
        }
        if check.liveness {
            let quiet = self.quiet_from();
            let deadline = quiet.ms() + check.converge_within.ms();
            if deadline > self.duration.ms() {
                issues.push(issue(
                    at("check").key("converge_within"),
                    format!(
                        "the liveness deadline ({quiet} when faults and churn end + {} = {}) is past the end of the run ({}); lengthen `duration`, shorten this, end churn earlier (`until`) or set liveness = false",
                        check.converge_within,
                        Millis(deadline),
                        self.duration
                    ),
                ));
            }
        }
    }
}

/// Why `rule` does not fit a feed the workload writes as `kind`, if it does not.
fn rule_mismatch(kind: Option<&FeedKind>, rule: &Rule) -> Option<String> {
    let (written_as, expected) = match (kind?, rule.goal) {
        (FeedKind::Set, Goal::Dict | Goal::All | Goal::Newest(_)) => ("set", "set"),
        (FeedKind::Dict, Goal::Set | Goal::All | Goal::Newest(_)) => ("dict", "dict"),
        (FeedKind::Feed, Goal::Set | Goal::Dict) => ("plain", "all, newest-N or none"),
        _ => return None,
    };
    Some(format!(
        "`{rule}` does not match the feed: `{}` is written as a {written_as} feed, so use {expected}",
        rule.feed
    ))
}

/// The feed names of `[workload.*]`, each valid, not `follows`, and written by one table.
struct FeedNames(BTreeMap<String, &'static str>);

impl FeedNames {
    fn new() -> FeedNames {
        FeedNames(BTreeMap::new())
    }

    fn add(&mut self, feed: &str, field: &'static str, issues: &mut Vec<Issue>) {
        let feed_path = at("workload").key(field).key("feed");
        if Rule::parse(&format!("{feed}@all")).is_err() {
            issues.push(issue(
                feed_path.clone(),
                "must be lowercase letters, digits, `_` or `-`",
            ));
        }
        if feed == FOLLOWS_FEED {
            issues.push(issue(
                feed_path.clone(),
                "`follows` is written from the follow graph at bootstrap; pick another name",
            ));
        }
        if let Some(other) = self.0.insert(feed.to_owned(), field) {
            issues.push(issue(
                feed_path,
                format!("feed `{feed}` is also written by [workload.{other}]"),
            ));
        }
    }
}

fn validate_post(post: &PostLoad, path: &FieldPath, issues: &mut Vec<Issue>) {
    if !probability(post.posters) {
        issues.push(issue(path.clone().key("posters"), "must be in [0, 1]"));
    }
    if post.size.shape.mean().is_none_or(|m| m < 1.0) {
        issues.push(issue(
            path.clone().key("size"),
            "needs a mean of at least 1B",
        ));
    }
}

fn validate_dict(dict: &DictLoad, path: &FieldPath, issues: &mut Vec<Issue>) {
    if dict.fields.is_empty() {
        issues.push(issue(
            path.clone().key("fields"),
            "needs at least one field",
        ));
    }
    let distinct: BTreeSet<&String> = dict.fields.iter().collect();
    if distinct.len() != dict.fields.len() {
        issues.push(issue(path.clone().key("fields"), "fields must be distinct"));
    }
    let count = u32::try_from(dict.fields.len()).unwrap_or(u32::MAX);
    if dict.fields_per_update == 0 || dict.fields_per_update > count {
        issues.push(issue(
            path.clone().key("fields_per_update"),
            format!("must be between 1 and the number of fields ({count})"),
        ));
    }
}

fn validate_set(set: &SetLoad, path: &FieldPath, issues: &mut Vec<Issue>) {
    if !probability(set.delete) {
        issues.push(issue(path.clone().key("delete"), "must be in [0, 1]"));
    }
    if set.items == 0 {
        issues.push(issue(path.clone().key("items"), "must be > 0"));
    }
}

fn not_used(path: &FieldPath, field: &str, action: FaultAction) -> Issue {
    issue(
        path.clone().key(field),
        format!("is not used by action `{action}`"),
    )
}

/// A fault's values: `latency` for latency faults, `fail_rate` for loss, `break_rate` for
/// break, none elsewhere.
fn validate_fault_values(fault: &Fault, path: &FieldPath, issues: &mut Vec<Issue>) {
    match (fault.action, &fault.latency) {
        (FaultAction::Latency, None) => {
            issues.push(issue(path.clone(), "`latency` needs `latency`"))
        }
        (FaultAction::Latency, Some(latency)) => {
            // Without `a` it changes every link, so a global model (min, max, curve) is fine.
            let on_all_links = fault.a.is_none();
            Scenario::validate_latency(
                latency,
                &path.clone().key("latency"),
                !on_all_links,
                issues,
            );
        }
        (_, Some(_)) => issues.push(not_used(path, "latency", fault.action)),
        (_, None) => {}
    }
    match (fault.action, fault.fail_rate) {
        (FaultAction::Loss, None) => issues.push(issue(path.clone(), "`loss` needs `fail_rate`")),
        (FaultAction::Loss, Some(rate)) if !probability(rate) => {
            issues.push(issue(path.clone().key("fail_rate"), "must be in [0, 1]"));
        }
        (FaultAction::Loss, Some(_)) | (_, None) => {}
        (_, Some(_)) => issues.push(not_used(path, "fail_rate", fault.action)),
    }
    match (fault.action, fault.break_rate) {
        (FaultAction::Break, None) => {
            issues.push(issue(path.clone(), "`break` needs `break_rate`"));
        }
        (FaultAction::Break, Some(rate)) if !probability(rate) => {
            issues.push(issue(path.clone().key("break_rate"), "must be in [0, 1]"));
        }
        (FaultAction::Break, Some(_)) | (_, None) => {}
        (_, Some(_)) => issues.push(not_used(path, "break_rate", fault.action)),
    }
}
