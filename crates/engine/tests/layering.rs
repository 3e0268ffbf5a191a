//! The engine's layering, checked on its sources: it depends on no protocol, HTTP or storage
//! client crate (those belong to the server and to the backends), and its files import one
//! way (no cycle).

use std::path::Path;

use activenow_testkit::imports::ImportGraph;

/// Crates that would bring a wire protocol, HTTP or a storage client into the engine.
const FORBIDDEN: &[&str] = &[
    "axum",
    "hyper",
    "http",
    "tower",
    "tower-http",
    "tungstenite",
    "tokio-tungstenite",
    "socketioxide",
    "engineioxide",
    "reqwest",
    "fred",
    "redis",
    "deadpool-redis",
    "bb8-redis",
    "jsonwebtoken",
];

fn dependency_names(manifest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_deps = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            // Normal and build dependencies ship with the engine; dev-dependencies do not.
            in_deps = matches!(line, "[dependencies]" | "[build-dependencies]")
                || (line.starts_with("[target.") && line.ends_with(".dependencies]"));
            if let Some(table) = line
                .strip_prefix("[dependencies.")
                .and_then(|l| l.strip_suffix(']'))
            {
                names.push(table.to_owned());
            }
            continue;
        }
        if in_deps {
            // `name = ...`, `name.workspace = true`, `"name" = ...`.
            if let Some((key, _)) = line.split_once('=') {
                let name = key.split('.').next().unwrap_or("").trim().trim_matches('"');
                if !name.is_empty() && !name.starts_with('#') {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
}

#[test]
fn the_engine_depends_on_no_protocol_http_or_storage_crate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let manifest = std::fs::read_to_string(&path).expect("read crates/engine/Cargo.toml");
    let names = dependency_names(&manifest);
    assert!(names.iter().any(|n| n == "tokio"), "parsed: {names:?}");
    let found: Vec<&String> = names
        .iter()
        .filter(|n| FORBIDDEN.contains(&n.as_str()))
        .collect();
    assert!(found.is_empty(), "the engine must not depend on {found:?}");
}

#[test]
fn the_manifest_reader_sees_every_dependency_table() {
    let manifest = "[dependencies]\ntokio = \"1\"\nhyper.workspace = true\n[dependencies.fred]\nversion = \"9\"\n\
                    [target.'cfg(linux)'.dependencies]\naxum = \"0.8\"\n\
                    [dev-dependencies]\nhyper = \"1\"\n";
    assert_eq!(
        dependency_names(manifest),
        ["tokio", "hyper", "fred", "axum"]
    );
}

#[test]
fn the_engine_files_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = ImportGraph::read(&src).expect("read crates/engine/src");
    assert!(graph.files.len() > 20, "read {} files", graph.files.len());
    let cycles = graph.cycles();
    assert!(
        cycles.is_empty(),
        "import cycles in crates/engine/src: {cycles:?}\n{}",
        graph.render()
    );
}
