//! The module tree of one crate target, read from its source files: which file holds which
//! module, and what each module defines, imports (`use`) and names in its code (paths).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use syn::visit::Visit;

use crate::Error;

/// Index of a module in [`Crate::modules`]; the crate root is 0.
pub type ModId = usize;

/// One module: a file, or an inline `mod name { … }` inside a file.
#[derive(Debug)]
pub struct Module {
    pub parent: Option<ModId>,
    /// The file that holds the module (an inline module shares its file's).
    pub file: PathBuf,
    pub children: BTreeMap<String, ModId>,
    /// Names the module defines: functions, types, traits, constants, statics, macros.
    pub items: BTreeSet<String>,
    pub uses: Vec<Use>,
    /// Every path with a `::` written in the module's code, and every single-name path.
    pub paths: Vec<PathRef>,
}

/// One leaf of a `use` tree.
#[derive(Debug, Clone)]
pub struct Use {
    /// The name it binds; `None` for a glob or `as _`.
    pub name: Option<String>,
    /// What it names; for a glob, the module (or enum) whose members it brings in.
    pub path: Vec<String>,
    pub glob: bool,
    /// `pub use` (any visibility but private): passes a name through, depends on nothing.
    pub reexport: bool,
    pub line: usize,
}

/// A path written in code (types, expressions, patterns, macro bodies).
#[derive(Debug, Clone)]
pub struct PathRef {
    pub segments: Vec<String>,
    pub line: usize,
}

/// All modules of one crate target, read from its root file (`lib.rs`, `main.rs`, a test).
#[derive(Debug)]
pub struct Crate {
    pub modules: Vec<Module>,
}

impl Crate {
    /// Reads the crate whose root file is `root`, following `mod name;` to files.
    pub fn load(root: &Path) -> Result<Crate, Error> {
        let mut krate = Crate {
            modules: Vec::new(),
        };
        let dir = root.parent().unwrap_or(Path::new(".")).to_path_buf();
        krate.load_file(root, None, &dir)?;
        Ok(krate)
    }

    fn load_file(
        &mut self,
        file: &Path,
        parent: Option<ModId>,
        child_dir: &Path,
    ) -> Result<ModId, Error> {
        let text = fs::read_to_string(file).map_err(|source| Error::Read {
            file: file.to_path_buf(),
            source,
        })?;
        let ast = syn::parse_file(&text).map_err(|source| Error::Parse {
            file: file.to_path_buf(),
            line: source.span().start().line,
            message: source.to_string(),
        })?;
        let id = self.add_module(parent, file);
        self.fill(id, &ast.items, child_dir)?;
        Ok(id)
    }

    fn add_module(&mut self, parent: Option<ModId>, file: &Path) -> ModId {
        self.modules.push(Module {
            parent,
            file: file.to_path_buf(),
            children: BTreeMap::new(),
            items: BTreeSet::new(),
            uses: Vec::new(),
            paths: Vec::new(),
        });
        self.modules.len() - 1
    }

    /// Records what `items` define, import and name, as members of module `id`; `dir` is
    /// where the files of its `mod name;` children are.
    fn fill(&mut self, id: ModId, items: &[syn::Item], dir: &Path) -> Result<(), Error> {
        for item in items {
            match item {
                syn::Item::Mod(module) => {
                    let child = self.child_module(id, module, dir)?;
                    self.modules[id]
                        .children
                        .insert(module.ident.to_string(), child);
                }
                syn::Item::Use(item_use) => {
                    let reexport = !matches!(item_use.vis, syn::Visibility::Inherited);
                    let line = item_use.use_token.span.start().line;
                    if item_use.leading_colon.is_none() {
                        let uses = &mut self.modules[id].uses;
                        flatten_use(&item_use.tree, &mut Vec::new(), reexport, line, uses);
                    }
                }
                other => {
                    if let Some(name) = item_name(other) {
                        self.modules[id].items.insert(name);
                    }
                    let module = &mut self.modules[id];
                    let mut collector = Collector {
                        paths: &mut module.paths,
                        uses: &mut module.uses,
                    };
                    collector.visit_item(other);
                }
            }
        }
        Ok(())
    }

    fn child_module(
        &mut self,
        parent: ModId,
        module: &syn::ItemMod,
        dir: &Path,
    ) -> Result<ModId, Error> {
        let name = module.ident.to_string();
        if let Some((_, items)) = &module.content {
            let file = self.modules[parent].file.clone();
            let child = self.add_module(Some(parent), &file);
            self.fill(child, items, &dir.join(&name))?;
            return Ok(child);
        }
        let (file, beside) = match path_attribute(module) {
            // Relative to the declaring file's directory; its children are beside it.
            Some(explicit) => {
                let declaring = &self.modules[parent].file;
                (declaring.parent().unwrap_or(dir).join(explicit), true)
            }
            None => {
                let file = module_file(dir, &name)?;
                let is_mod_rs = file.file_name().is_some_and(|f| f == "mod.rs");
                (file, is_mod_rs)
            }
        };
        // `a/mod.rs` keeps its children beside it; `a.rs` keeps them in `a/`.
        let child_dir = if beside {
            file.parent().unwrap_or(dir).to_path_buf()
        } else {
            dir.join(&name)
        };
        self.load_file(&file, Some(parent), &child_dir)
    }
}

/// `dir/name.rs` or `dir/name/mod.rs`, whichever exists.
fn module_file(dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let flat = dir.join(format!("{name}.rs"));
    if flat.is_file() {
        return Ok(flat);
    }
    let nested = dir.join(name).join("mod.rs");
    if nested.is_file() {
        return Ok(nested);
    }
    Err(Error::NoModuleFile {
        module: name.to_owned(),
        dir: dir.to_path_buf(),
    })
}

/// The value of `#[path = "…"]` on a `mod` item.
fn path_attribute(module: &syn::ItemMod) -> Option<String> {
    module.attrs.iter().find_map(|attr| match &attr.meta {
        syn::Meta::NameValue(pair) if pair.path.is_ident("path") => match &pair.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(text),
                ..
            }) => Some(text.value()),
            _ => None,
        },
        _ => None,
    })
}

fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(item) => &item.ident,
        syn::Item::Enum(item) => &item.ident,
        syn::Item::Fn(item) => &item.sig.ident,
        syn::Item::Macro(item) => item.ident.as_ref()?,
        syn::Item::Static(item) => &item.ident,
        syn::Item::Struct(item) => &item.ident,
        syn::Item::Trait(item) => &item.ident,
        syn::Item::TraitAlias(item) => &item.ident,
        syn::Item::Type(item) => &item.ident,
        syn::Item::Union(item) => &item.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// Turns `use a::{b, c::{self, d as e}, f::*}` into one [`Use`] per leaf.
fn flatten_use(
    tree: &syn::UseTree,
    prefix: &mut Vec<String>,
    reexport: bool,
    line: usize,
    out: &mut Vec<Use>,
) {
    let mut leaf = |name: Option<String>, path: Vec<String>, glob: bool| {
        out.push(Use {
            name,
            path,
            glob,
            reexport,
            line,
        });
    };
    match tree {
        syn::UseTree::Path(step) => {
            prefix.push(step.ident.to_string());
            flatten_use(&step.tree, prefix, reexport, line, out);
            prefix.pop();
        }
        syn::UseTree::Name(name) => {
            let (bound, path) = named(prefix, &name.ident);
            leaf(bound, path, false);
        }
        syn::UseTree::Rename(rename) => {
            let (_, path) = named(prefix, &rename.ident);
            let bound = Some(rename.rename.to_string()).filter(|name| name != "_");
            leaf(bound, path, false);
        }
        syn::UseTree::Glob(_) => leaf(None, prefix.clone(), true),
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                flatten_use(tree, prefix, reexport, line, out);
            }
        }
    }
}

/// The name and path of a `use` leaf; `self` names the prefix itself.
fn named(prefix: &[String], ident: &syn::Ident) -> (Option<String>, Vec<String>) {
    if ident == "self" {
        return (prefix.last().cloned(), prefix.to_vec());
    }
    let mut path = prefix.to_vec();
    path.push(ident.to_string());
    (Some(ident.to_string()), path)
}

/// Collects the paths and function-local `use`s inside one item.
struct Collector<'a> {
    paths: &'a mut Vec<PathRef>,
    uses: &'a mut Vec<Use>,
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() {
            let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
            let line = path
                .segments
                .first()
                .map_or(0, |s| s.ident.span().start().line);
            self.paths.push(PathRef { segments, line });
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_use(&mut self, item_use: &'ast syn::ItemUse) {
        if item_use.leading_colon.is_none() {
            let line = item_use.use_token.span.start().line;
            flatten_use(&item_use.tree, &mut Vec::new(), false, line, self.uses);
        }
    }

    /// A module inside a function body: rare, and its paths resolve from inside it.
    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {}

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.visit_path(&mac.path);
        macro_paths(mac.tokens.clone(), self.paths);
    }
}

/// Paths (`a::b::c`) in a macro's tokens, which syn leaves unparsed: `matches!`, `assert!`,
/// `select!`, `macro_rules!` bodies (`$crate::x`).
fn macro_paths(tokens: proc_macro2::TokenStream, out: &mut Vec<PathRef>) {
    use proc_macro2::TokenTree;
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut at = 0;
    while let Some(token) = tokens.get(at) {
        match token {
            TokenTree::Group(group) => macro_paths(group.stream(), out),
            TokenTree::Ident(first) if !follows_colons(&tokens, at) => {
                let mut segments = vec![first.to_string()];
                while let (Some(TokenTree::Ident(next)), true) =
                    (tokens.get(at + 3), is_colons(&tokens, at + 1))
                {
                    segments.push(next.to_string());
                    at += 3;
                }
                if segments.len() > 1 {
                    out.push(PathRef {
                        segments,
                        line: first.span().start().line,
                    });
                }
            }
            _ => {}
        }
        at += 1;
    }
}

/// Whether `tokens[at]` and `tokens[at + 1]` are `::`.
fn is_colons(tokens: &[proc_macro2::TokenTree], at: usize) -> bool {
    let colon = |i: usize| matches!(tokens.get(i), Some(proc_macro2::TokenTree::Punct(p)) if p.as_char() == ':');
    colon(at) && colon(at + 1)
}

/// Whether the identifier at `at` continues a path (`::x`), so is not the start of one.
fn follows_colons(tokens: &[proc_macro2::TokenTree], at: usize) -> bool {
    at >= 2 && is_colons(tokens, at - 2)
}
