//! `GET /openapi.json`: the OpenAPI 3.1 document of every HTTP route, a committed file
//! (`openapi.json` beside this one) embedded at build time. The test below holds it to the
//! router: every `.route(...)` in the server's source is documented, with its methods, and
//! nothing else is (but the Socket.IO layer, marked `x-activenow-layer`).

use std::collections::BTreeSet;

use axum::http::header;
use axum::response::{IntoResponse, Response};

pub const OPENAPI_JSON: &str = include_str!("openapi.json");

pub async fn serve() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(path, method)` of every operation the document lists, but those served by a layer.
pub fn documented_routes() -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).unwrap_or_default();
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            let op = &item[method];
            if op.is_object() && op.get("x-activenow-layer").is_none() {
                out.insert((path.clone(), method.to_owned()));
            }
        }
    }
    out
}

/// `(path, method)` of every `.route("path", get(..).post(..))` in this Rust source.
#[cfg(test)]
fn routes_in(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let call = &rest[..end];
        let Some(path) = call.split('"').nth(1) else {
            continue;
        };
        for method in METHODS {
            let bytes = call.as_bytes();
            let found = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || b"_:".contains(&bytes[i - 1]))
            });
            if found {
                out.push((path.to_owned(), method.to_owned()));
            }
        }
        rest = &rest[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("source dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(std::fs::read_to_string(&path).expect("source"));
            }
        }
    }

    #[test]
    fn document_matches_the_router() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&dir, &mut files);
        let routed: BTreeSet<(String, String)> = files
            .iter()
            // This file's own test text names `.route(` too.
            .filter(|f| !f.contains("fn routes_in("))
            .flat_map(|f| routes_in(f))
            .collect();
        assert!(routed.len() > 40, "found only {routed:?}");
        let documented = documented_routes();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let stale: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from openapi.json: {undocumented:?}"
        );
        assert!(
            stale.is_empty(),
            "openapi.json lists routes the router has not: {stale:?}"
        );
    }

    #[test]
    fn route_parser_reads_chained_methods() {
        let src = r#".route(
            "/v1/x/{id}",
            get(http::get_thing).delete(http::remove),
        ).route("/y", post(|| async { asset("a", B) }))"#;
        assert_eq!(
            routes_in(src),
            vec![
                ("/v1/x/{id}".into(), "get".into()),
                ("/v1/x/{id}".into(), "delete".into()),
                ("/y".into(), "post".into()),
            ]
        );
    }

    #[test]
    fn document_is_openapi_3_1() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("valid JSON");
        assert_eq!(doc["openapi"], "3.1.0");
    }
}
