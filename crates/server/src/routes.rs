//! Every route, wired in one place. Handlers are thin: they translate HTTP to the service.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Query, State, WebSocketUpgrade};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use baton_protocol::MAX_FRAME_BYTES;
use baton_protocol::bot::{ApiError, BotMessage, BotRequest};
use baton_protocol::status::OffloadStatus;
use baton_protocol::ws::{
    ErrorCode, HandoverRequest, HandoverResponse, LoginRequest, LoginResponse,
};
use serde::Deserialize;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::service::{Refusal, Service};
use crate::sockets;

/// The Content-Security-Policy of the pages Baton serves: the strict policy the widget
/// promises to work under, so the demo and the end-to-end test prove it.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; object-src 'none'";

/// The demo host page: a plain page that embeds the widget the way a site owner would.
const DEMO_PAGE: &str = include_str!("../../../demo/index.html");

/// The one error type of the HTTP API.
#[derive(Debug)]
pub struct ApiErr(StatusCode, ApiError);

impl ApiErr {
    fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        Self(
            status,
            ApiError {
                error: error.into(),
                message: message.into(),
            },
        )
    }
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        (self.0, Json(self.1)).into_response()
    }
}

impl From<JsonRejection> for ApiErr {
    fn from(r: JsonRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", r.body_text())
    }
}

impl From<Refusal> for ApiErr {
    fn from(r: Refusal) -> Self {
        let status = match r.code {
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::InvalidState | ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Internal | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::BadFrame | ErrorCode::Empty => StatusCode::BAD_REQUEST,
        };
        let code = serde_json::to_value(r.code)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self::new(status, &code, r.message)
    }
}

type Svc = State<Arc<Service>>;

/// Builds the router.
pub fn app(svc: Arc<Service>) -> Router {
    let widget = ServeDir::new(&svc.config.widget_dir);
    let console_dir = svc.config.console_dir.clone();
    let console =
        ServeDir::new(&console_dir).fallback(ServeFile::new(console_dir.join("index.html")));
    Router::new()
        .route(
            "/webhooks/rest/",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/webhooks/rest/webhook", post(webhook))
        .route("/api/v1/status", get(status))
        .route("/api/v1/handover", post(handover))
        .route("/api/v1/agent/login", post(login))
        .route("/api/v1/visitor/ws", get(visitor_ws))
        .route("/api/v1/agent/ws", get(agent_ws))
        .route("/", get(|| async { Redirect::to("/demo/") }))
        .route("/demo/", get(demo_page))
        .nest_service(
            "/widget",
            Router::new()
                .fallback_service(widget)
                .layer(SetResponseHeaderLayer::overriding(
                    // Host pages on other origins load the widget's module and wasm.
                    header::ACCESS_CONTROL_ALLOW_ORIGIN,
                    HeaderValue::from_static("*"),
                )),
        )
        .nest_service(
            "/console",
            Router::new()
                .fallback_service(console)
                .layer(SetResponseHeaderLayer::overriding(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CSP),
                )),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .with_state(svc)
}

async fn demo_page() -> impl IntoResponse {
    ([(header::CONTENT_SECURITY_POLICY, CSP)], Html(DEMO_PAGE))
}

async fn webhook(
    State(svc): Svc,
    body: Result<Json<BotRequest>, JsonRejection>,
) -> Result<Json<Vec<BotMessage>>, ApiErr> {
    let Json(req) = body?;
    Ok(Json(svc.bot_turn(&req)?))
}

async fn status(State(svc): Svc) -> Result<Json<OffloadStatus>, ApiErr> {
    Ok(Json(svc.status()?))
}

async fn handover(
    State(svc): Svc,
    body: Result<Json<HandoverRequest>, JsonRejection>,
) -> Result<Json<HandoverResponse>, ApiErr> {
    let Json(req) = body?;
    Ok(Json(svc.request_handover(&req.visitor_id, &req.directive)?))
}

async fn login(
    State(svc): Svc,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>, ApiErr> {
    let Json(req) = body?;
    match svc.login(&req.email, &req.password)? {
        Some((token, agent)) => Ok(Json(LoginResponse { token, agent })),
        None => Err(ApiErr::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong e-mail or password",
        )),
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    token: String,
}

async fn visitor_ws(
    State(svc): Svc,
    Query(q): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiErr> {
    let conv = svc.visitor_conversation(&q.token)?.ok_or_else(|| {
        ApiErr::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown visitor token",
        )
    })?;
    Ok(ws
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| sockets::visitor(svc, conv.id, socket)))
}

async fn agent_ws(
    State(svc): Svc,
    Query(q): Query<TokenQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiErr> {
    let agent = svc.agent_by_token(&q.token)?.ok_or_else(|| {
        ApiErr::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "unknown agent token; log in again",
        )
    })?;
    Ok(ws
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| sockets::agent(svc, agent, socket)))
}
