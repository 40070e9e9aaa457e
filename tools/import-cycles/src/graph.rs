//! The dependency graph between the files of one crate, and its cycles.
//!
//! A file depends on another when its code names something the other defines: through a
//! private `use`, a path in code (`crate::a::B`, `super::c`, a child module's `d::E`), or a
//! name a glob brought in. A `pub use` re-export is a passage, not a dependency: the name is
//! followed to the file that defines it. Inline modules (`mod tests { … }`) belong to their
//! file, so `use super::*` in one depends on nothing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;

use crate::resolve::Found;
use crate::tree::{Crate, ModId};

/// Where the dependency of one file on another is first written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    pub line: usize,
    /// The path as written, `a::b::C`.
    pub path: String,
}

/// The files of one crate and which depends on which (`from → to → first witness`).
#[derive(Debug, Default)]
pub struct Graph {
    pub edges: BTreeMap<PathBuf, BTreeMap<PathBuf, Witness>>,
}

impl Graph {
    /// The file-level dependency graph of `krate`.
    pub fn of(krate: &Crate) -> Graph {
        let mut graph = Graph::default();
        for (id, module) in krate.modules.iter().enumerate() {
            graph.edges.entry(module.file.clone()).or_default();
            for binding in module.uses.iter().filter(|u| !u.reexport && !u.glob) {
                // Importing a module depends on nothing yet: its paths in code will.
                if let Some(Found::Item(definer)) = krate.resolve(id, &binding.path) {
                    graph.add(krate, id, definer, binding.line, &binding.path);
                }
            }
            for path in &module.paths {
                let definer = match path.segments.as_slice() {
                    [name] => krate.through_glob(id, name),
                    segments => match krate.resolve(id, segments) {
                        Some(Found::Item(definer) | Found::Module(definer)) => Some(definer),
                        None => None,
                    },
                };
                if let Some(definer) = definer {
                    graph.add(krate, id, definer, path.line, &path.segments);
                }
            }
        }
        graph
    }

    fn add(&mut self, krate: &Crate, from: ModId, to: ModId, line: usize, path: &[String]) {
        let (Some(from), Some(to)) = (krate.modules.get(from), krate.modules.get(to)) else {
            return;
        };
        if from.file == to.file {
            return;
        }
        let witness = Witness {
            line,
            path: path.join("::"),
        };
        let targets = self.edges.entry(from.file.clone()).or_default();
        targets.entry(to.file.clone()).or_insert(witness);
    }

    pub fn file_count(&self) -> usize {
        self.edges.len()
    }

    pub fn edge_count(&self) -> usize {
        self.edges.values().map(BTreeMap::len).sum()
    }

    /// The files reachable from `start` (itself included only through a cycle).
    fn reachable(&self, start: &PathBuf) -> BTreeSet<&PathBuf> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<&PathBuf> = VecDeque::from([start]);
        while let Some(file) = queue.pop_front() {
            for next in self.edges.get(file).into_iter().flat_map(BTreeMap::keys) {
                if seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        seen
    }

    /// The strongly connected components with more than one file, each sorted, in order.
    /// Quadratic in the files, which is nothing for a crate's few hundred.
    pub fn cycles(&self) -> Vec<Vec<PathBuf>> {
        let reach: BTreeMap<&PathBuf, BTreeSet<&PathBuf>> = self
            .edges
            .keys()
            .map(|file| (file, self.reachable(file)))
            .collect();
        let mut placed = BTreeSet::new();
        let mut components = Vec::new();
        for (file, from_file) in &reach {
            if placed.contains(*file) || !from_file.contains(file) {
                continue;
            }
            let component: Vec<PathBuf> = from_file
                .iter()
                .filter(|other| reach.get(*other).is_some_and(|back| back.contains(file)))
                .map(|other| (*other).clone())
                .collect();
            placed.extend(component.iter().cloned());
            components.push(component);
        }
        components
    }

    /// One shortest cycle through `start` inside `component`, as the files in order.
    pub fn shortest_cycle(&self, start: &PathBuf, component: &[PathBuf]) -> Vec<PathBuf> {
        let inside: BTreeSet<&PathBuf> = component.iter().collect();
        let mut came_from: BTreeMap<&PathBuf, &PathBuf> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(file) = queue.pop_front() {
            for next in self.edges.get(file).into_iter().flat_map(BTreeMap::keys) {
                if !inside.contains(next) || came_from.contains_key(next) {
                    continue;
                }
                came_from.insert(next, file);
                if next == start {
                    return walk_back(start, &came_from);
                }
                queue.push_back(next);
            }
        }
        Vec::new()
    }
}

fn walk_back(start: &PathBuf, came_from: &BTreeMap<&PathBuf, &PathBuf>) -> Vec<PathBuf> {
    let mut cycle = vec![start.clone()];
    let mut at = came_from.get(start).copied();
    while let Some(file) = at {
        cycle.push(file.clone());
        if file == start {
            break;
        }
        at = came_from.get(file).copied();
    }
    cycle.reverse();
    cycle
}
