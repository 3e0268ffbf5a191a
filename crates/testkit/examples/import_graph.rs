//! Prints the file-level import graph of each crate `src/` directory given, and its cycles:
//! `cargo run -p activenow-testkit --example import_graph -- crates/engine/src crates/redis/src`.

use activenow_testkit::imports::ImportGraph;

fn main() -> std::io::Result<()> {
    for dir in std::env::args().skip(1) {
        let graph = ImportGraph::read(std::path::Path::new(&dir))?;
        println!("# {dir}");
        print!("{}", graph.render());
        match graph.cycles().as_slice() {
            [] => println!("no cycle"),
            cycles => {
                for c in cycles {
                    println!("cycle: {}", c.join(" <-> "));
                }
            }
        }
    }
    Ok(())
}
