//! The pages the binary serves with no build step: `/demo` (the seed-0 test page on the
//! SDK), `/dashboard` (the operator's live view) and the SDK's browser bundle at `/sdk.js`,
//! all embedded at compile time; plus the dashboard's data (`/v1/stats`, `/v1/stats/history`,
//! `/v1/stats/stream`). It only reads the engine and the protocols' counters; it joins no room,
//! so watching the dashboard makes nobody a member of anything.
//!
//! # Layout
//! - [`stats`]: the snapshot, the endpoints, the sampler and the shared push to dashboards.
//! - [`history`]: samples, this node's ring, the merge of every node's samples.
//! - this file: routes and the embedded assets.

pub mod history;
pub mod stats;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use stats::{Stats, StatsSources};

/// The SDK's browser bundle, built by `clients/js` (`npm run build`); `scripts/test` fails when
/// it is stale against the SDK's source.
const SDK_JS: &str = include_str!("../../assets/activenow.js");
const DEMO_HTML: &str = include_str!("../../assets/demo.html");
const DEMO_JS: &str = include_str!("../../assets/demo.js");
const DASHBOARD_HTML: &str = include_str!("../../assets/dashboard.html");
const DASHBOARD_JS: &str = include_str!("../../assets/dashboard.js");
const PAGES_CSS: &str = include_str!("../../assets/pages.css");

/// The pages' routes (none with `PAGES=false`) and the stats endpoints (always: the
/// dashboard is one client of them, scripts are others).
pub fn routes<S>(app: &StatsSources) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let stats = Stats::start(app);
    let data = Router::new()
        .route("/v1/stats", get(stats::snapshot))
        .route("/v1/stats/history", get(stats::history))
        .route("/v1/stats/stream", get(stats::stream))
        .with_state(stats);
    if !app.settings.pages {
        return data;
    }
    Router::new()
        .route("/demo", get(|| async { page(DEMO_HTML) }))
        .route("/dashboard", get(|| async { page(DASHBOARD_HTML) }))
        .route(
            "/sdk.js",
            get(|| async { asset("text/javascript; charset=utf-8", SDK_JS) }),
        )
        .route(
            "/assets/demo.js",
            get(|| async { asset("text/javascript; charset=utf-8", DEMO_JS) }),
        )
        .route(
            "/assets/dashboard.js",
            get(|| async { asset("text/javascript; charset=utf-8", DASHBOARD_JS) }),
        )
        .route(
            "/assets/pages.css",
            get(|| async { asset("text/css; charset=utf-8", PAGES_CSS) }),
        )
        .merge(data)
}

/// Scripts only from this origin, no inline script, no framing: the pages hold no secret, but
/// the dashboard handles the API key the operator types in.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

fn page(html: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    (headers, html).into_response()
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
