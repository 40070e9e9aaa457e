//! The check on small crates written to a temporary directory: each kind of dependency makes a
//! cycle it must find, and the shapes that are not cycles (re-exporting facades, inline test
//! modules) stay quiet.

use std::fs;

use import_cycles::graph::Graph;
use import_cycles::tree::Crate;

/// The cycles of the crate made of `files` (`lib.rs` first), as file names relative to `src/`.
fn cycles(files: &[(&str, &str)]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (name, text) in files {
        let path = dir.path().join(name);
        fs::create_dir_all(path.parent().expect("a parent")).expect("directories");
        fs::write(&path, text).expect("write a source file");
    }
    let krate = Crate::load(&dir.path().join("lib.rs")).expect("the crate reads");
    let shown = |file: &std::path::PathBuf| {
        file.strip_prefix(dir.path())
            .expect("inside")
            .display()
            .to_string()
    };
    Graph::of(&krate)
        .cycles()
        .iter()
        .map(|c| c.iter().map(shown).collect())
        .collect()
}

#[test]
fn siblings_that_use_each_other_are_a_cycle() {
    let found = cycles(&[
        ("lib.rs", "mod a; mod b;"),
        ("a.rs", "use crate::b::B; pub struct A(Option<B>);"),
        ("b.rs", "use super::a::A; pub struct B(Option<Box<A>>);"),
    ]);
    assert_eq!(found, vec![vec!["a.rs".to_owned(), "b.rs".to_owned()]]);
}

#[test]
fn a_cycle_through_three_files_and_paths_in_code() {
    let found = cycles(&[
        ("lib.rs", "mod a; mod b; mod c;"),
        ("a.rs", "pub fn a() { crate::b::b() }"),
        ("b.rs", "pub fn b() { let _ = super::c::C::default(); }"),
        (
            "c.rs",
            "#[derive(Default)] pub struct C; impl C { fn f() { crate::a::a() } }",
        ),
    ]);
    assert_eq!(
        found,
        vec![vec![
            "a.rs".to_owned(),
            "b.rs".to_owned(),
            "c.rs".to_owned()
        ]]
    );
}

#[test]
fn a_facade_that_re_exports_its_children_is_no_cycle() {
    // `peer/mod.rs` re-exports `Msg`; `worker.rs` names it through the facade, which leads to
    // `msgs.rs`, not to `mod.rs`.
    let found = cycles(&[
        ("lib.rs", "pub mod peer;"),
        (
            "peer/mod.rs",
            "mod msgs; mod worker; pub use msgs::Msg; pub use worker::Worker;",
        ),
        ("peer/msgs.rs", "pub enum Msg { Ping }"),
        (
            "peer/worker.rs",
            "use super::Msg; pub struct Worker(pub Msg);",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_parent_that_calls_its_child_and_lends_it_a_helper_is_a_cycle() {
    let found = cycles(&[
        ("lib.rs", "mod cli;"),
        (
            "cli/mod.rs",
            "mod db; fn open() {} pub fn main() { db::run() }",
        ),
        ("cli/db.rs", "pub fn run() { super::open() }"),
    ]);
    assert_eq!(
        found,
        vec![vec!["cli/db.rs".to_owned(), "cli/mod.rs".to_owned()]]
    );
}

#[test]
fn inline_test_modules_belong_to_their_file() {
    let found = cycles(&[
        ("lib.rs", "mod a; mod b;"),
        (
            "a.rs",
            "pub fn a() {} #[cfg(test)] mod tests { use super::*; #[test] fn t() { a() } }",
        ),
        ("b.rs", "pub fn b() { crate::a::a() }"),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn a_name_brought_in_by_a_glob_is_a_dependency() {
    let found = cycles(&[
        ("lib.rs", "mod a; mod b;"),
        (
            "a.rs",
            "use crate::b::*; pub struct A; pub fn f() -> B { B }",
        ),
        (
            "b.rs",
            "pub struct B; pub fn g() -> crate::a::A { crate::a::A }",
        ),
    ]);
    assert_eq!(found, vec![vec!["a.rs".to_owned(), "b.rs".to_owned()]]);
}

#[test]
fn a_path_inside_a_macro_is_a_dependency() {
    let found = cycles(&[
        ("lib.rs", "mod a; mod b;"),
        (
            "a.rs",
            "pub enum A { X } pub fn f(b: &crate::b::B) -> bool { b.0 }",
        ),
        (
            "b.rs",
            "pub struct B(pub bool); pub fn g(a: &A) -> bool { matches!(a, crate::a::A::X) }",
        ),
    ]);
    assert_eq!(found, vec![vec!["a.rs".to_owned(), "b.rs".to_owned()]]);
}

#[test]
fn a_one_way_chain_through_a_re_export_is_no_cycle() {
    // `b` names `a`'s type through the crate root's re-export; `a` names nothing of `b`.
    let found = cycles(&[
        ("lib.rs", "mod a; mod b; pub use a::A;"),
        ("a.rs", "pub struct A;"),
        ("b.rs", "use crate::A; pub fn b() -> A { A }"),
    ]);
    assert!(found.is_empty(), "{found:?}");
}
