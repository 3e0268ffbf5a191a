//! The Redis backend's files import one way (no cycle); see docs/engine-layering.md.

use std::path::Path;

use activenow_testkit::imports::ImportGraph;

#[test]
fn the_redis_backend_files_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = ImportGraph::read(&src).expect("read crates/redis/src");
    assert!(graph.files.len() > 15, "read {} files", graph.files.len());
    let cycles = graph.cycles();
    assert!(
        cycles.is_empty(),
        "import cycles in crates/redis/src: {cycles:?}\n{}",
        graph.render()
    );
}
