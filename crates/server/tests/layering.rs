//! The server crate's file imports, checked on its sources: no file may be in an import
//! cycle. `app.rs` is the only file that knows every protocol; protocols, services,
//! `observe.rs`, `pages/` and `transport/` take their own state or the shared `Host`, never
//! the whole `AppState` (see docs/architecture.md).

use std::path::Path;

use activenow_testkit::imports::ImportGraph;

#[test]
fn no_file_is_in_an_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = ImportGraph::read(&src).expect("read crates/server/src");
    assert!(graph.files.len() > 40, "read {} files", graph.files.len());
    let cycles = graph.cycles();
    assert!(
        cycles.is_empty(),
        "import cycles in crates/server/src: {cycles:?}\n{}",
        graph.render()
    );
}

#[test]
fn only_the_app_and_the_crate_root_import_the_app() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = ImportGraph::read(&src).expect("read crates/server/src");
    let importers: Vec<&String> = graph
        .edges
        .iter()
        .filter(|(_, to)| to.contains("app.rs"))
        .map(|(from, _)| from)
        .collect();
    assert_eq!(importers, ["lib.rs"], "{}", graph.render());
}
