//! `import-cycles [ROOT.rs …]`: exits 1 when the modules of a crate import each other in a
//! cycle, printing each cycle with the line that makes each step. Without arguments it checks
//! every target of the workspace it is run in (`cargo run -p import-cycles`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use import_cycles::graph::Graph;
use import_cycles::tree::Crate;
use import_cycles::workspace::{Target, targets};

fn main() -> ExitCode {
    let roots: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let targets = if roots.is_empty() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        match targets(Path::new(&cargo), Path::new(".")) {
            Ok(targets) => targets,
            Err(error) => {
                eprintln!("import-cycles: {error}");
                return ExitCode::from(2);
            }
        }
    } else {
        roots
            .into_iter()
            .map(|root| Target {
                label: root.display().to_string(),
                root,
            })
            .collect()
    };
    let (mut files, mut edges, mut cycles) = (0, 0, 0);
    for target in &targets {
        let graph = match Crate::load(&target.root) {
            Ok(krate) => Graph::of(&krate),
            Err(error) => {
                eprintln!("import-cycles: {}: {error}", target.label);
                return ExitCode::from(2);
            }
        };
        files += graph.file_count();
        edges += graph.edge_count();
        for component in graph.cycles() {
            cycles += 1;
            print_cycle(&target.label, &graph, &component);
        }
    }
    let summary = format!(
        "{} targets, {files} files, {edges} dependencies",
        targets.len()
    );
    if cycles > 0 {
        println!("FAILED: {cycles} import cycle(s) ({summary})");
        return ExitCode::FAILURE;
    }
    println!("no import cycles ({summary})");
    ExitCode::SUCCESS
}

fn print_cycle(label: &str, graph: &Graph, component: &[PathBuf]) {
    println!("import cycle in {label} between {} files:", component.len());
    let Some(start) = component.first() else {
        return;
    };
    let cycle = graph.shortest_cycle(start, component);
    let steps: Vec<String> = cycle.iter().map(|file| shown(file)).collect();
    println!("  {}", steps.join(" -> "));
    println!("  every dependency inside it:");
    for from in component {
        for (to, witness) in graph.edges.get(from).into_iter().flatten() {
            if component.contains(to) {
                let (from, to) = (shown(from), shown(to));
                println!(
                    "    {from} -> {to}   ({from}:{} names {})",
                    witness.line, witness.path
                );
            }
        }
    }
}

/// A file relative to the directory the check runs in.
fn shown(file: &Path) -> String {
    let here = std::env::current_dir().unwrap_or_default();
    file.strip_prefix(&here)
        .unwrap_or(file)
        .display()
        .to_string()
}
