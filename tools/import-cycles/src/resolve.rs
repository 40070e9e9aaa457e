//! Name resolution, as far as a dependency graph needs it: which module *defines* what a path
//! names, following `use` bindings, `pub use` re-exports and globs.

use std::collections::BTreeSet;

use crate::tree::{Crate, ModId};

/// What a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    Module(ModId),
    /// An item (or something inside one: a variant, a method) defined in this module, or a
    /// name the module has that the reader cannot see (made by a macro).
    Item(ModId),
}

/// Lookups in progress, so that globs that import each other end.
type Visiting = BTreeSet<(ModId, String)>;

impl Crate {
    /// What `segments`, written in module `from`, names; `None` for another crate, the
    /// prelude, a local variable or a generic parameter.
    pub fn resolve(&self, from: ModId, segments: &[String]) -> Option<Found> {
        self.resolve_in(from, segments, &mut Visiting::new())
    }

    fn resolve_in(
        &self,
        from: ModId,
        segments: &[String],
        visiting: &mut Visiting,
    ) -> Option<Found> {
        let (first, rest) = segments.split_first()?;
        let mut at = match first.as_str() {
            "crate" => Found::Module(0),
            "super" => Found::Module(self.modules.get(from)?.parent?),
            "self" => Found::Module(from),
            name => self.member(from, name, visiting)?,
        };
        for segment in rest {
            let Found::Module(module) = at else {
                return Some(at);
            };
            at = match segment.as_str() {
                "super" => Found::Module(self.modules.get(module)?.parent?),
                "self" => Found::Module(module),
                name => self
                    .member(module, name, visiting)
                    .unwrap_or(Found::Item(module)),
            };
        }
        Some(at)
    }

    /// `name` as a member of `module`: a child module, an item, a `use` binding, or a member
    /// of a glob-imported module.
    pub fn member(&self, module: ModId, name: &str, visiting: &mut Visiting) -> Option<Found> {
        let key = (module, name.to_owned());
        if !visiting.insert(key.clone()) {
            return None;
        }
        let found = self.member_uncached(module, name, visiting);
        visiting.remove(&key);
        found
    }

    fn member_uncached(&self, module: ModId, name: &str, visiting: &mut Visiting) -> Option<Found> {
        let m = self.modules.get(module)?;
        if let Some(&child) = m.children.get(name) {
            return Some(Found::Module(child));
        }
        if m.items.contains(name) {
            return Some(Found::Item(module));
        }
        if let Some(binding) = m.uses.iter().find(|u| u.name.as_deref() == Some(name)) {
            return self.resolve_in(module, &binding.path, visiting);
        }
        m.uses.iter().filter(|u| u.glob).find_map(|glob| {
            match self.resolve_in(module, &glob.path, visiting)? {
                Found::Module(source) if source != module => self.member(source, name, visiting),
                _ => None,
            }
        })
    }

    /// Whether `module` binds `name` itself (not through a glob).
    pub fn binds(&self, module: ModId, name: &str) -> bool {
        self.modules.get(module).is_some_and(|m| {
            m.children.contains_key(name)
                || m.items.contains(name)
                || m.uses.iter().any(|u| u.name.as_deref() == Some(name))
        })
    }

    /// The module that defines what a single name written in `module` names, when a glob
    /// brought it in; `None` when the module binds it itself (its `use` already counted) or
    /// no glob has it (a local variable, the prelude).
    pub fn through_glob(&self, module: ModId, name: &str) -> Option<ModId> {
        if self.binds(module, name) {
            return None;
        }
        let visiting = &mut Visiting::new();
        let m = self.modules.get(module)?;
        m.uses.iter().filter(|u| u.glob).find_map(|glob| {
            match self.resolve_in(module, &glob.path, visiting)? {
                Found::Module(source) if source != module => {
                    match self.member(source, name, visiting)? {
                        // A lone name in code is never a module; a variable of the same name is.
                        Found::Item(definer) => Some(definer),
                        Found::Module(_) => None,
                    }
                }
                _ => None,
            }
        })
    }
}
