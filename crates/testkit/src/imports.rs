//! The file-level import graph of a crate's `src/`, so a crate's tests can fail on an import
//! cycle (a layering rule that reviews alone do not keep).
//!
//! An edge `a.rs -> b.rs` is any path in `a.rs` that resolves into `b.rs`: `use crate::...`,
//! `use super::...`, `use self::...`, a `use` of a child module, and inline `crate::x::Y`
//! paths. A path resolves to the deepest module file it names, so a re-export counts as an
//! import of the re-exporting file. `mod x;` declarations are the module tree, not edges.
//! Comments are skipped; a `//` inside a string literal ends the scan of that line, which
//! can only miss an edge, never invent one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Files of the crate by module path (`[]` is `lib.rs`), and the edges between them.
#[derive(Debug, Default)]
pub struct ImportGraph {
    /// Module path -> file, relative to `src/`.
    pub files: BTreeMap<Vec<String>, String>,
    /// File -> the files it imports from.
    pub edges: BTreeMap<String, BTreeSet<String>>,
}

impl ImportGraph {
    /// Reads every `.rs` file under `src` (a library crate's `src/`).
    pub fn read(src: &Path) -> std::io::Result<ImportGraph> {
        let mut paths = Vec::new();
        collect(src, &mut paths)?;
        let mut graph = ImportGraph::default();
        let mut texts = Vec::new();
        for path in paths {
            let rel = path
                .strip_prefix(src)
                .map_err(std::io::Error::other)?
                .to_string_lossy()
                .replace('\\', "/");
            if rel == "main.rs" || rel.starts_with("bin/") {
                continue;
            }
            graph.files.insert(module_of(&rel), rel.clone());
            texts.push((rel, std::fs::read_to_string(&path)?));
        }
        for (rel, text) in texts {
            let module = module_of(&rel);
            let targets: BTreeSet<String> = references(&text, &module)
                .into_iter()
                .filter_map(|path| graph.resolve(&path))
                .filter(|target| *target != rel)
                .collect();
            graph.edges.insert(rel, targets);
        }
        Ok(graph)
    }

    /// The file of the deepest module that `path` (absolute, from the crate root) names.
    fn resolve(&self, path: &[String]) -> Option<String> {
        (0..=path.len())
            .rev()
            .find_map(|n| self.files.get(&path[..n]).cloned())
    }

    /// Every group of files that import each other, directly or not (largest first).
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let mut cycles: Vec<Vec<String>> = strongly_connected(&self.edges)
            .into_iter()
            .filter(|c| c.len() > 1)
            .collect();
        cycles.sort_by_key(|c| std::cmp::Reverse(c.len()));
        cycles
    }

    /// `a.rs -> b.rs, c.rs`, one line per file that imports anything.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (from, to) in self.edges.iter().filter(|(_, to)| !to.is_empty()) {
            let to: Vec<&str> = to.iter().map(String::as_str).collect();
            out.push_str(&format!("{from} -> {}\n", to.join(", ")));
        }
        out
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// `lib.rs` -> `[]`, `a.rs` and `a/mod.rs` -> `[a]`, `a/b.rs` -> `[a, b]`.
fn module_of(rel: &str) -> Vec<String> {
    let trimmed = rel.trim_end_matches(".rs");
    let mut parts: Vec<String> = trimmed.split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The code without comments (doc comments included) and with string and character
/// literals emptied, so that neither their words nor their braces count.
fn strip_comments(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_ident = i > 0 && is_ident(chars[i - 1]);
        if c == '/' && next == Some('*') {
            i = find(&chars, i + 2, "*/").map_or(chars.len(), |j| j + 2);
        } else if c == '/' && next == Some('/') {
            i = find(&chars, i, "\n").unwrap_or(chars.len());
        } else if c == '"' {
            i = end_of_string(&chars, i + 1);
            out.push_str("\"\"");
        } else if c == 'r' && !prev_ident && matches!(next, Some('"' | '#')) {
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            if chars.get(i + 1 + hashes) == Some(&'"') {
                let close: String = std::iter::once('"')
                    .chain("#".repeat(hashes).chars())
                    .collect();
                i = find(&chars, i + 2 + hashes, &close).map_or(chars.len(), |j| j + close.len());
                out.push_str("\"\"");
            } else {
                out.push(c);
                i += 1;
            }
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal (a lifetime has no closing quote right after one char).
            let from = if next == Some('\\') { i + 3 } else { i + 2 };
            i = find(&chars, from, "'").map_or(chars.len(), |j| j + 1);
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn find(chars: &[char], from: usize, needle: &str) -> Option<usize> {
    let needle: Vec<char> = needle.chars().collect();
    (from..chars.len()).find(|&j| chars[j..].starts_with(&needle))
}

/// Where a `"` string whose contents start at `i` ends (after its closing quote).
fn end_of_string(chars: &[char], mut i: usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    i
}

/// Absolute module paths that `text` (the file of `module`) refers to.
fn references(text: &str, module: &[String]) -> Vec<Vec<String>> {
    let code = strip_comments(text);
    let chars: Vec<char> = code.chars().collect();
    // Inline `mod name {` blocks: `super` inside one is relative to it.
    let mut scope: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let boundary = i == 0 || !(is_ident(chars[i - 1]) || chars[i - 1] == '$');
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if scope.last().is_some_and(|(_, d)| *d == depth) {
                    scope.pop();
                }
            }
            _ if boundary && is_ident(c) => {
                let (word, end) = ident_at(&chars, i);
                let here: Vec<String> = module
                    .iter()
                    .cloned()
                    .chain(scope.iter().map(|(m, _)| m.clone()))
                    .collect();
                if word == "mod" {
                    let (name, after) = ident_at(&chars, skip_ws(&chars, end));
                    if !name.is_empty() && chars.get(skip_ws(&chars, after)) == Some(&'{') {
                        scope.push((name, depth));
                    }
                } else if word == "use" {
                    let (trees, next) = use_tree(&chars, skip_ws(&chars, end));
                    for path in trees {
                        out.extend(absolute(&path, &here, true));
                    }
                    i = next;
                    continue;
                } else if matches!(word.as_str(), "crate" | "super" | "self")
                    && chars.get(end) == Some(&':')
                {
                    let (trees, next) = use_tree(&chars, i);
                    for path in trees {
                        out.extend(absolute(&path, &here, false));
                    }
                    i = next;
                    continue;
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn skip_ws(chars: &[char], mut i: usize) -> usize {
    while chars.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

fn ident_at(chars: &[char], i: usize) -> (String, usize) {
    let mut end = i;
    while chars.get(end).is_some_and(|c| is_ident(*c)) {
        end += 1;
    }
    (chars[i.min(chars.len())..end].iter().collect(), end)
}

/// Parses `a::b::{c, d::e}` at `i` into its full paths; returns where it ended.
fn use_tree(chars: &[char], i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    let mut i = skip_ws(chars, i);
    loop {
        if chars.get(i) == Some(&'{') {
            let mut out = Vec::new();
            i += 1;
            loop {
                i = skip_ws(chars, i);
                match chars.get(i) {
                    None => return (out, i),
                    Some('}') => return (out, i + 1),
                    Some(',') => i += 1,
                    Some(_) => {
                        let (subs, next) = use_tree(chars, i);
                        out.extend(subs.into_iter().map(|s| [prefix.clone(), s].concat()));
                        if next == i {
                            i += 1;
                        } else {
                            i = next;
                        }
                    }
                }
            }
        }
        let (word, end) = ident_at(chars, i);
        if word.is_empty() {
            return (vec![prefix], i);
        }
        prefix.push(word);
        i = end;
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i = skip_ws(chars, i + 2);
        } else {
            return (vec![prefix], i);
        }
    }
}

/// `path` as written in module `here`, made absolute; `None` for other crates. In a `use`,
/// a first segment that is neither `crate`, `super` nor `self` may be a child module.
fn absolute(path: &[String], here: &[String], in_use: bool) -> Option<Vec<String>> {
    let mut base = here.to_vec();
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
        }
        Some(_) if in_use => {}
        _ => return None,
    }
    let mut full = base;
    full.extend(rest.iter().cloned());
    Some(full)
}

/// Tarjan's strongly connected components.
fn strongly_connected(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(paths: Vec<Vec<String>>) -> Vec<String> {
        paths.into_iter().map(|p| p.join("::")).collect()
    }

    #[test]
    fn reads_use_trees_and_inline_paths() {
        let here = vec!["engine".to_owned(), "reaper".to_owned()];
        let text = "use super::handle::{Engine, Shared};\n\
                    use crate::{clock, model::{Room, self}};\n\
                    // use crate::commented::Out;\n\
                    fn f() { crate::memory::X::default(); $crate::macro_only::y(); }\n\
                    const S: &str = \"crate::in_a_string {\"; const C: char = '}';\n\
                    mod tests { use super::*; }\n";
        assert_eq!(
            strs(references(text, &here)),
            [
                "engine::handle::Engine",
                "engine::handle::Shared",
                "clock",
                "model::Room",
                "model::self",
                "memory::X::default",
                "engine::reaper",
            ]
        );
    }

    #[test]
    fn finds_a_cycle() {
        let mut edges = BTreeMap::new();
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        edges.insert("a.rs".to_owned(), set(&["b.rs"]));
        edges.insert("b.rs".to_owned(), set(&["c.rs"]));
        edges.insert("c.rs".to_owned(), set(&["a.rs"]));
        edges.insert("d.rs".to_owned(), set(&["a.rs"]));
        let graph = ImportGraph {
            files: BTreeMap::new(),
            edges,
        };
        assert_eq!(graph.cycles(), vec![vec!["a.rs", "b.rs", "c.rs"]]);
    }
}
