//! `ferry serve`: a read-only dashboard over the ledger (SQLite or PostgreSQL). Server-rendered
//! HTML (maud escapes every value it inserts), one small script for live progress (server-sent
//! events), readable on a phone. Every page asks for the access token: `?token=` once (it is then
//! kept in an HttpOnly cookie) or `Authorization: Bearer`. No page shows a secret: the ledger
//! holds none (step messages are scrubbed when written) and the token is never echoed.

mod pages;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::ledger::{JobRow, Ledger, LedgerError, LedgerLocation, RunRow, Step};

pub use pages::ErrorQuery;

/// What the server needs.
struct AppState {
    ledger: Ledger,
    token_sha: [u8; 32],
}

type St = Arc<AppState>;

fn sha(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

/// Opens the ledger and serves the dashboard on `listener` until the process ends.
pub async fn serve(
    loc: LedgerLocation,
    listener: tokio::net::TcpListener,
    token: Secret,
) -> Result<(), String> {
    let ledger = tokio::task::spawn_blocking(move || Ledger::open_at(&loc))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let state = Arc::new(AppState {
        ledger,
        token_sha: sha(token.expose()),
    });
    axum::serve(listener, router(state))
        .await
        .map_err(|e| e.to_string())
}

fn router(state: St) -> Router {
    Router::new()
        .route("/", get(runs_page))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/report", get(report_page))
        .route("/errors", get(errors_page))
        .route("/jobs", get(jobs_page))
        .route("/events", get(events))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

fn cookie_token(h: &HeaderMap) -> Option<String> {
    let c = h.get(header::COOKIE)?.to_str().ok()?;
    c.split(';')
        .filter_map(|kv| kv.trim().strip_prefix("ferry_token="))
        .next()
        .map(|v| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
}

fn query_token(q: Option<&str>) -> Option<String> {
    url::form_urlencoded::parse(q?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// Lets through requests that carry the token (bearer, cookie or `?token=`); a `?token=` sets the
/// cookie so that links and the event stream work without it.
async fn auth(State(st): State<St>, req: Request, next: Next) -> Response {
    let h = req.headers();
    let bearer = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let from_query = query_token(req.uri().query());
    let given = bearer.or_else(|| cookie_token(h)).or(from_query.clone());
    if given.map(|t| sha(&t)) != Some(st.token_sha) {
        let page = pages::login();
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    let mut resp = next.run(req).await;
    if let Some(t) = from_query {
        let v = format!(
            "ferry_token={}; HttpOnly; SameSite=Strict; Path=/",
            percent_encoding::utf8_percent_encode(&t, percent_encoding::NON_ALPHANUMERIC)
        );
        if let Ok(v) = v.parse() {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'self' 'unsafe-inline'; connect-src 'self'",
        ),
    );
    resp
}

/// Runs a ledger read off the async threads.
async fn read<T: Send + 'static>(
    st: &St,
    f: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, Response> {
    let st = st.clone();
    tokio::task::spawn_blocking(move || f(&st.ledger))
        .await
        .map_err(|e| fail(e.to_string()))?
        .map_err(|e| fail(e.to_string()))
}

fn fail(msg: String) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Html(pages::message("Ledger error", &msg)),
    )
        .into_response()
}

async fn runs_page(State(st): State<St>) -> Response {
    match read(&st, |l| l.runs(100)).await {
        Ok(runs) => Html(pages::runs(&runs)).into_response(),
        Err(r) => r,
    }
}

/// A run with its steps and backup jobs, or `None` when the ledger has no such run.
type RunData = Option<(RunRow, Vec<Step>, Vec<JobRow>)>;

async fn run_data(st: &St, id: String) -> Result<RunData, Response> {
    read(st, move |l| {
        let Some(run) = l.run(&id)? else {
            return Ok(None);
        };
        let steps = l.steps(&id)?;
        let jobs = l.jobs(&id)?;
        Ok(Some((run, steps, jobs)))
    })
    .await
}

async fn run_page(State(st): State<St>, Path(id): Path<String>) -> Response {
    match run_data(&st, id).await {
        Ok(Some((run, steps, jobs))) => Html(pages::run(&run, &steps, &jobs)).into_response(),
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::message("Not found", "No such run in the ledger.")),
    )
        .into_response()
}

/// The run's report.html, as the run wrote it (less the sections only its folder holds).
async fn report_page(State(st): State<St>, Path(id): Path<String>) -> Response {
    match run_data(&st, id).await {
        Ok(Some((run, steps, jobs))) => {
            let mut report = crate::ledger::Report::build(run.info, &steps);
            report.extra = run.extra;
            report.backup_jobs = jobs;
            Html(report.to_html()).into_response()
        }
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

async fn errors_page(State(st): State<St>, Query(q): Query<ErrorQuery>) -> Response {
    let filter = match q.filter() {
        Ok(f) => f,
        Err(m) => {
            return (
                StatusCode::BAD_REQUEST,
                Html(pages::message("Bad filter", &m)),
            )
                .into_response();
        }
    };
    match read(&st, move |l| l.errors(&filter)).await {
        Ok(rows) => Html(pages::errors(&q, &rows)).into_response(),
        Err(r) => r,
    }
}

async fn jobs_page(State(st): State<St>) -> Response {
    match read(&st, |l| l.all_jobs(200)).await {
        Ok(jobs) => Html(pages::jobs(&jobs)).into_response(),
        Err(r) => r,
    }
}

/// Every second, the progress of the runs still running (JSON events `progress`).
async fn events(State(st): State<St>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = futures::stream::unfold(st, |st| async move {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let runs = read(&st, |l| l.runs(50)).await.unwrap_or_default();
        let live: Vec<serde_json::Value> = runs
            .iter()
            .filter(|r| r.info.ended.is_none())
            .map(pages::progress_json)
            .collect();
        let ev = Event::default()
            .event("progress")
            .data(serde_json::Value::Array(live).to_string());
        Some((Ok(ev), st))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A router over an open ledger (for tests that serve on their own listener).
pub fn app(ledger: Ledger, token: &Secret) -> Router {
    router(Arc::new(AppState {
        ledger,
        token_sha: sha(token.expose()),
    }))
}

/// The listen address: `--listen`, else `[serve] listen`, else `127.0.0.1:8640`.
pub fn listen_addr(flag: Option<&str>, config: Option<&str>) -> Result<SocketAddr, String> {
    let s = flag.or(config).unwrap_or("127.0.0.1:8640");
    s.parse()
        .map_err(|e| format!("listen address `{s}`: {e} (expected HOST:PORT, e.g. 127.0.0.1:8640)"))
}
