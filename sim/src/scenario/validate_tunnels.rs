//! Validation of tunnel hubs and peers behind NATs: where they fit and where they do not.
//!
//! A peer behind a NAT can only dial out, so nothing in the plan may dial it; it reaches other
//! peers through the tunnel hubs it attends, which hub-and-spoke gives it. A tunnel hub holds
//! no msgs and dials no one, so it belongs only in hub-and-spoke, beside leaves that attend it.
//! Only a tunnel hub has an admission (`open`, or `invites`: members only).

use super::error::{FieldPath, Issue, at, issue};
use super::model::{Role, Scenario, TopologyKind};

impl Scenario {
    pub(super) fn validate_tunnels(&self, issues: &mut Vec<Issue>) {
        let hub_and_spoke = self.topology.kind == TopologyKind::HubAndSpoke;
        let tunnel_hubs = self.groups.iter().any(|g| g.role == Role::TunnelHub);
        for (i, group) in self.groups.iter().enumerate() {
            let path = at("group").index(i);
            if group.role == Role::TunnelHub {
                self.validate_tunnel_hub_group(i, hub_and_spoke, &path, issues);
            } else if !group.admission.is_open() {
                issues.push(issue(
                    path.clone().key("admission"),
                    "only a tunnel hub admits by invite: set it in a group with role = \"tunnel-hub\"",
                ));
            }
            if !group.nat {
                continue;
            }
            let nat = path.clone().key("nat");
            if group.role != Role::Leaf {
                issues.push(issue(nat.clone(), "only leaves can be behind a NAT"));
            }
            if !hub_and_spoke || !tunnel_hubs {
                issues.push(issue(
                    nat.clone(),
                    "a peer behind a NAT reaches others only through tunnel hubs: it needs \
                     topology kind = \"hub-and-spoke\" and a group with role = \"tunnel-hub\"",
                ));
            }
            if self.topology.dial_follows {
                issues.push(issue(
                    nat,
                    "no one can dial a peer behind a NAT, so `topology.dial_follows` cannot be set",
                ));
            }
        }
    }

    fn validate_tunnel_hub_group(
        &self,
        index: usize,
        hub_and_spoke: bool,
        path: &FieldPath,
        issues: &mut Vec<Issue>,
    ) {
        let group = &self.groups[index];
        if !hub_and_spoke {
            issues.push(issue(
                path.clone().key("role"),
                "a tunnel hub is attended by the leaves of a hub-and-spoke topology",
            ));
        }
        for (field, set) in [
            ("goals", group.goals.is_some()),
            ("follow_goals", group.follow_goals.is_some()),
            ("follow", group.follow.is_some()),
            ("follow_groups", group.follow_groups.is_some()),
        ] {
            if set {
                issues.push(issue(
                    path.clone().key(field),
                    "a tunnel hub holds no msgs: it has no goals and follows no one",
                ));
            }
        }
        if self.transport == super::model::Transport::Plaintext {
            issues.push(issue(
                at("transport"),
                "tunnels run SHSE end to end: tunnel hubs need transport = \"shse\"",
            ));
        }
    }
}
