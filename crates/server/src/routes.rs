//! Every route, wired in one place. Handlers are thin: they check who is asking, apply the
//! rate limits and translate HTTP to the service.
//!
//! The endpoints a widget (or a Rasa REST client) on a site owner's page calls answer CORS
//! for the allowed origins; a request or WebSocket upgrade from any other origin is refused.
//! Every error is the JSON body `{"error", "message"}`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequestParts, Query, Request, State, WebSocketUpgrade,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use baton_protocol::MAX_FRAME_BYTES;
use baton_protocol::bot::{ApiError, BotMessage, BotRequest};
use baton_protocol::decide::Refusal;
use baton_protocol::status::{OffloadState, OffloadStatus};
use baton_protocol::time::rfc3339_from_unix_ms;
use baton_protocol::ws::{
    ErrorCode, HandoverRequest, HandoverResponse, LeaveMessageRequest, LeftMessage, LoginRequest,
    LoginResponse, OffloadingRequest, OffloadingResponse, RatingRequest, Ratings,
    VisitorCredentials,
};
use serde::Deserialize;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::client_ip;
use crate::limits::Limited;
use crate::service::Service;
use crate::sockets;
use crate::store::Staff;

/// The Content-Security-Policy of the pages Baton serves: the strict policy the widget
/// promises to work under, so the demo and the end-to-end test prove it.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
    connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'; object-src 'none'";

/// The demo host page: a plain page that embeds the widget the way a site owner would.
const DEMO_PAGE: &str = include_str!("../../../demo/index.html");
/// The preview page (rehearse every state without real agents) and its script.
const PREVIEW_PAGE: &str = include_str!("../../../demo/preview.html");
const PREVIEW_JS: &str = include_str!("../../../demo/preview.js");

/// Largest request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The one error type of the HTTP API.
#[derive(Debug)]
pub struct ApiErr {
    status: StatusCode,
    body: ApiError,
    retry_after: Option<Duration>,
}

impl ApiErr {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ApiError {
                error: code_name(code),
                message: message.into(),
            },
            retry_after: None,
        }
    }
}

fn code_name(code: ErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "internal".into())
}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if let Some(wait) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

impl From<JsonRejection> for ApiErr {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::TooLarge,
                format!("the request body is over {MAX_BODY_BYTES} bytes"),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                ErrorCode::BadRequest,
                "send the body as JSON with Content-Type: application/json",
            ),
            _ => Self::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                r.body_text(),
            ),
        }
    }
}

impl From<Refusal> for ApiErr {
    fn from(r: Refusal) -> Self {
        let status = match r.code {
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::InvalidState | ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Internal | ErrorCode::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::BadFrame | ErrorCode::BadRequest | ErrorCode::Empty => {
                StatusCode::BAD_REQUEST
            }
        };
        let mut e = Self::new(status, r.code, r.message);
        if r.code == ErrorCode::RateLimited {
            e.retry_after = Some(Duration::from_secs(1));
        }
        e
    }
}

fn limited(l: Limited) -> ApiErr {
    let mut e = ApiErr::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!(
            "too many requests; retry in {} s",
            l.0.as_secs_f64().ceil() as u64
        ),
    );
    e.retry_after = Some(l.0);
    e
}

type Svc = State<Arc<Service>>;

/// Whether a page of `origin` may call the visitor endpoints: it is allowed by the config,
/// or it is Baton's own origin (the demo page and the console).
fn origin_allowed(svc: &Service, origin: &HeaderValue, headers: &HeaderMap) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    let own = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(_, o)| o.eq_ignore_ascii_case(host))
        });
    own || match &svc.config.allowed_origins {
        None => true,
        Some(list) => list.contains(&origin),
    }
}

/// Refuses a request whose `Origin` is not allowed. Requests without one (servers, scripts,
/// Rasa clients) pass: the Origin check protects visitors' browsers, not the API.
async fn origin_guard(State(svc): Svc, req: Request, next: Next) -> Response {
    if let Some(origin) = req.headers().get(header::ORIGIN)
        && !origin_allowed(&svc, origin, req.headers())
    {
        return ApiErr::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            format!(
                "pages of {} may not use this chat server (allowed_origins)",
                origin.to_str().unwrap_or("this origin")
            ),
        )
        .into_response();
    }
    next.run(req).await
}

fn cors(svc: &Arc<Service>) -> CorsLayer {
    let s = svc.clone();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, parts: &Parts| origin_allowed(&s, origin, &parts.headers),
        ))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(86_400))
}

/// Builds the router.
pub fn app(svc: Arc<Service>) -> Router {
    let widget = ServeDir::new(&svc.config.widget_dir);
    let console_dir = svc.config.console_dir.clone();
    let console =
        ServeDir::new(&console_dir).fallback(ServeFile::new(console_dir.join("index.html")));
    // What a widget or a Rasa client on a site owner's page calls.
    let visitor_api = Router::new()
        .route(
            "/webhooks/rest/",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/webhooks/rest/webhook", post(webhook))
        .route("/api/v1/status", get(status))
        .route("/api/v1/status/events", get(status_events))
        .route("/api/v1/widget", get(widget_settings))
        .route("/api/v1/visitor", post(new_visitor))
        .route("/api/v1/handover", post(handover))
        .route("/api/v1/visitor/message", post(leave_message))
        .route("/api/v1/visitor/rating", post(rate))
        .route("/api/v1/visitor/ws", get(visitor_ws))
        // Before the layers, so that a preflight still reaches CORS.
        .method_not_allowed_fallback(not_allowed)
        .layer(middleware::from_fn_with_state(svc.clone(), origin_guard))
        .layer(cors(&svc));
    let agent_api = Router::new()
        .route("/api/v1/agent/login", post(login))
        .route("/api/v1/agent/logout", post(logout))
        .route("/api/v1/agent/ws", get(agent_ws))
        .route("/api/v1/offloading", get(offloading).post(set_offloading))
        .route("/api/v1/ratings", get(ratings))
        .route("/api/v1/messages", get(left_messages))
        .route("/api/v1/messages/done", post(message_done))
        .method_not_allowed_fallback(not_allowed)
        .layer(middleware::from_fn_with_state(svc.clone(), origin_guard));
    Router::new()
        .merge(visitor_api)
        .merge(agent_api)
        .route("/metrics", get(metrics))
        .route("/", get(|| async { Redirect::to("/demo/") }))
        .route("/demo/", get(demo_page))
        .route(
            "/preview/",
            get(|| async { ([(header::CONTENT_SECURITY_POLICY, CSP)], Html(PREVIEW_PAGE)) }),
        )
        .route(
            "/preview/preview.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CONTENT_SECURITY_POLICY, CSP),
                    ],
                    PREVIEW_JS,
                )
            }),
        )
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
        .fallback(|| async {
            ApiErr::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "no such endpoint",
            )
        })
        .method_not_allowed_fallback(not_allowed)
        // Revalidate everything, unless a handler says otherwise (the widget's texts).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(svc)
}

async fn not_allowed() -> ApiErr {
    ApiErr::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        "this endpoint does not take that method",
    )
}

async fn demo_page() -> impl IntoResponse {
    ([(header::CONTENT_SECURITY_POLICY, CSP)], Html(DEMO_PAGE))
}

/// The bearer token of `Authorization: Bearer …`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The TCP peer of a request, when the listener recorded it (tests may call the router
/// without one).
struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

fn ip_of(svc: &Service, peer: Peer, headers: &HeaderMap) -> std::net::IpAddr {
    client_ip(peer.0, headers, svc.config.trust_forwarded_for)
}

/// Runs a handler's work in its own task, so it finishes (stored, published, the bot asked)
/// even when the client goes away mid-request and the request future is dropped.
async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, Refusal>> + Send + 'static,
) -> Result<T, ApiErr> {
    match tokio::spawn(work).await {
        Ok(result) => Ok(result?),
        Err(e) => {
            tracing::error!("a request handler failed: {e}");
            Err(ApiErr::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "the server failed; please retry",
            ))
        }
    }
}

async fn webhook(
    State(svc): Svc,
    peer: Peer,
    headers: HeaderMap,
    q: Result<Query<LocaleQuery>, QueryRejection>,
    body: Result<Json<BotRequest>, JsonRejection>,
) -> Result<Json<Vec<BotMessage>>, ApiErr> {
    let ip = ip_of(&svc, peer, &headers);
    svc.limits.ip(ip).map_err(limited)?;
    let Json(req) = body?;
    let bearer = bearer(&headers).map(str::to_owned);
    let locale = q.ok().and_then(|q| q.0.locale);
    let answer = detached(async move {
        svc.bot_turn(&req, bearer.as_deref(), ip, locale.as_deref())
            .await
    })
    .await?;
    Ok(Json(answer))
}

/// `?locale=de`: the language a widget asks for.
#[derive(Deserialize)]
struct LocaleQuery {
    locale: Option<String>,
}

async fn status(
    State(svc): Svc,
    peer: Peer,
    headers: HeaderMap,
    q: Result<Query<LocaleQuery>, QueryRejection>,
) -> Result<Json<OffloadStatus>, ApiErr> {
    svc.limits
        .ip(ip_of(&svc, peer, &headers))
        .map_err(limited)?;
    let mut status = svc.status().await?;
    svc.localize(&mut status, q.ok().and_then(|q| q.0.locale).as_deref());
    Ok(Json(status))
}

/// How long one status stream lasts: a browser's `EventSource` then reconnects by itself,
/// so a client that vanished without a word holds its connection this long at most.
const STATUS_STREAM_LIFETIME: Duration = Duration::from_secs(300);

/// `GET /api/v1/status/events`: the offloading status as Server-Sent Events, for widgets
/// still with the bot (queued and agent chats hear it on the visitor socket). The status
/// now, then each change of what the visitor would be told, in the widget's language;
/// comments keep the connection alive in between.
async fn status_events(
    State(svc): Svc,
    peer: Peer,
    headers: HeaderMap,
    q: Result<Query<LocaleQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiErr> {
    use axum::response::sse::{Event as Sse, KeepAlive};
    svc.limits
        .ip(ip_of(&svc, peer, &headers))
        .map_err(limited)?;
    let locale = q.ok().and_then(|q| q.0.locale);
    let keep_alive = KeepAlive::new().interval(STATUS_KEEP_ALIVE.min(svc.config.idle_timeout / 3));
    let mut changes = svc.status_changes();
    changes.mark_changed();
    let shutdown = svc.shutdown_signal();
    let until = tokio::time::Instant::now() + STATUS_STREAM_LIFETIME;
    let stream = futures_util::stream::unfold(
        (svc, changes, shutdown, None),
        move |(svc, mut changes, mut shutdown, mut last)| {
            let locale = locale.clone();
            async move {
                loop {
                    tokio::select! {
                        r = changes.changed() => r.ok()?,
                        _ = shutdown.changed() => return None,
                        _ = tokio::time::sleep_until(until) => return None,
                    }
                    // The first is read fresh: the watch is empty until the first re-check.
                    let told = changes.borrow_and_update().clone();
                    let mut status = match told {
                        Some(s) if last.is_some() => s,
                        _ => svc.status().await.ok()?,
                    };
                    svc.localize(&mut status, locale.as_deref());
                    if last
                        .as_ref()
                        .is_some_and(|l: &OffloadStatus| l.tells_the_same(&status))
                    {
                        continue;
                    }
                    last = Some(status.clone());
                    let event = Sse::default()
                        .json_data(&status)
                        .expect("a status serialises");
                    return Some((
                        Ok::<_, std::convert::Infallible>(event),
                        (svc, changes, shutdown, last),
                    ));
                }
            }
        },
    );
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::response::sse::Sse::new(stream).keep_alive(keep_alive),
    ))
}

/// A comment this often keeps a status stream open: well within the idle timeout.
const STATUS_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The site owner's texts for the widget (it ships none of its own).
async fn widget_settings(
    State(svc): Svc,
    peer: Peer,
    headers: HeaderMap,
    q: Result<Query<LocaleQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiErr> {
    svc.limits
        .ip(ip_of(&svc, peer, &headers))
        .map_err(limited)?;
    let (locale, texts) = svc
        .config
        .texts_for(q.as_ref().ok().and_then(|q| q.0.locale.as_deref()));
    let settings = baton_protocol::ws::WidgetSettings {
        v: baton_protocol::PROTOCOL_VERSION,
        texts: texts.all.clone(),
        locale: locale.to_owned(),
        dir: if crate::config::right_to_left(locale) {
            "rtl"
        } else {
            "ltr"
        }
        .into(),
        request_item_after: svc.config.request_item.after(),
    };
    // They change only when the server restarts with another configuration.
    Ok((
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(settings),
    ))
}

async fn new_visitor(
    State(svc): Svc,
    peer: Peer,
    headers: HeaderMap,
) -> Result<(StatusCode, Json<VisitorCredentials>), ApiErr> {
    let ip = ip_of(&svc, peer, &headers);
    svc.limits.ip(ip).map_err(limited)?;
    svc.limits.new_visitor(ip).map_err(limited)?;
    let credentials = detached(async move { svc.new_visitor().await }).await?;
    Ok((StatusCode::CREATED, Json(credentials)))
}

fn no_credential() -> ApiErr {
    ApiErr::new(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
        "send the visitor credential as Authorization: Bearer … (get one from POST /api/v1/visitor)",
    )
}

async fn handover(
    State(svc): Svc,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Json<HandoverRequest>, JsonRejection>,
) -> Result<Json<HandoverResponse>, ApiErr> {
    svc.limits
        .ip(ip_of(&svc, peer, &headers))
        .map_err(limited)?;
    let Json(req) = body?;
    let token = bearer(&headers).ok_or_else(no_credential)?.to_owned();
    let answer = detached(async move {
        svc.handover(
            &token,
            &req.visitor_id,
            req.directive,
            req.page_url,
            req.locale.as_deref(),
        )
        .await
    })
    .await?;
    Ok(Json(answer))
}

async fn login(
    State(svc): Svc,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<LoginResponse>, ApiErr> {
    let Json(req) = body?;
    let ip = ip_of(&svc, peer, &headers);
    svc.limits.ip(ip).map_err(limited)?;
    let keys = vec![
        format!("ip:{ip}"),
        format!("email:{}", req.email.trim().to_lowercase()),
    ];
    if let Err(wait) = svc.login_begin(&keys) {
        let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
        let mut e = ApiErr::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!(
                "too many failed logins; try again in {} s",
                wait.as_secs_f64().ceil() as u64
            ),
        );
        e.retry_after = Some(wait);
        return Err(e);
    }
    let answer = detached(async move { svc.login(&req.email, &req.password, &keys).await }).await?;
    match answer {
        Some(r) => Ok(Json(r)),
        None => Err(ApiErr::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "wrong e-mail or password",
        )),
    }
}

/// Stage counters for operators (and the bench), behind their own bearer token.
async fn metrics(State(svc): Svc, headers: HeaderMap) -> Result<Response, ApiErr> {
    let Some(expected) = &svc.config.metrics_token else {
        return Err(ApiErr::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "metrics are off; set [server] metrics_token to turn them on",
        ));
    };
    let given = bearer(&headers).unwrap_or_default();
    // Compare hashes, so the comparison takes the same time whatever the guess.
    if crate::auth::token_hash(given) != crate::auth::token_hash(expected) {
        return Err(ApiErr::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send the metrics token as Authorization: Bearer …",
        ));
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(),
    )
        .into_response())
}

async fn logout(State(svc): Svc, headers: HeaderMap) -> Result<StatusCode, ApiErr> {
    let token = bearer(&headers).ok_or_else(|| {
        ApiErr::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send the session token as Authorization: Bearer …",
        )
    })?;
    let token = token.to_owned();
    detached(async move { svc.logout(&token).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The agent of the request's `Authorization: Bearer` session.
async fn staff(svc: &Arc<Service>, headers: &HeaderMap) -> Result<Staff, ApiErr> {
    let unauthorized = || {
        ApiErr::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "send a live session token as Authorization: Bearer …",
        )
    };
    let token = bearer(headers).ok_or_else(unauthorized)?.to_owned();
    let svc = svc.clone();
    detached(async move { svc.agent_by_token(&token).await })
        .await?
        .ok_or_else(unauthorized)
}

async fn offloading_answer(svc: &Arc<Service>) -> Result<Json<OffloadingResponse>, ApiErr> {
    let status = svc.status().await?;
    let switch = svc.switch();
    Ok(Json(OffloadingResponse {
        enabled: status.state != OffloadState::Disabled,
        changed_by: switch.as_ref().map(|s| s.by.clone()),
        changed_at: switch.map(|s| rfc3339_from_unix_ms(s.at_ms)),
        status,
    }))
}

/// `POST /api/v1/visitor/message`: a visitor leaves a message for agents.
async fn leave_message(
    State(svc): Svc,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Json<LeaveMessageRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiErr> {
    svc.limits
        .ip(ip_of(&svc, peer, &headers))
        .map_err(limited)?;
    let Json(req) = body?;
    let token = bearer(&headers).ok_or_else(no_credential)?.to_owned();
    let id = detached(async move { svc.leave_message(&token, req).await }).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": id }))))
}

/// `POST /api/v1/visitor/rating`: a visitor rates its ended agent chat.
async fn rate(
    State(svc): Svc,
    peer: Peer,
    headers: HeaderMap,
    body: Result<Json<RatingRequest>, JsonRejection>,
) -> Result<StatusCode, ApiErr> {
    svc.limits
        .ip(ip_of(&svc, peer, &headers))
        .map_err(limited)?;
    let Json(req) = body?;
    let token = bearer(&headers).ok_or_else(no_credential)?.to_owned();
    detached(async move { svc.rate(&token, req).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/ratings`: the ratings, for supervisors.
async fn ratings(State(svc): Svc, headers: HeaderMap) -> Result<Json<Ratings>, ApiErr> {
    let who = staff(&svc, &headers).await?;
    let s = svc.clone();
    Ok(Json(detached(async move { s.ratings(&who).await }).await?))
}

#[derive(Deserialize)]
struct MessagesQuery {
    #[serde(default)]
    done: bool,
}

/// `GET /api/v1/messages[?done=true]`: what visitors left, for any agent.
async fn left_messages(
    State(svc): Svc,
    headers: HeaderMap,
    q: Result<Query<MessagesQuery>, QueryRejection>,
) -> Result<Json<Vec<LeftMessage>>, ApiErr> {
    staff(&svc, &headers).await?;
    let done = q.is_ok_and(|q| q.0.done);
    let s = svc.clone();
    Ok(Json(
        detached(async move { s.left_messages(done).await }).await?,
    ))
}

#[derive(Deserialize)]
struct DoneRequest {
    id: i64,
}

/// `POST /api/v1/messages/done` `{"id": 3}`: an agent marks a left message done.
async fn message_done(
    State(svc): Svc,
    headers: HeaderMap,
    body: Result<Json<DoneRequest>, JsonRejection>,
) -> Result<StatusCode, ApiErr> {
    let who = staff(&svc, &headers).await?;
    let Json(req) = body?;
    detached(async move { svc.mark_message_done(&who, req.id).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/offloading`: the switch and the status, for any agent.
async fn offloading(
    State(svc): Svc,
    headers: HeaderMap,
) -> Result<Json<OffloadingResponse>, ApiErr> {
    staff(&svc, &headers).await?;
    offloading_answer(&svc).await
}

/// `POST /api/v1/offloading`: a supervisor switches offloading on or off.
async fn set_offloading(
    State(svc): Svc,
    headers: HeaderMap,
    body: Result<Json<OffloadingRequest>, JsonRejection>,
) -> Result<Json<OffloadingResponse>, ApiErr> {
    let who = staff(&svc, &headers).await?;
    let Json(req) = body?;
    let s = svc.clone();
    detached(async move { s.set_offloading(&who, req.enabled).await.map(drop) }).await?;
    offloading_answer(&svc).await
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
    /// The widget's language, for the sentences of `status` frames.
    locale: Option<String>,
}

/// A socket endpoint's request: the upgrade and the token. A request that is not an upgrade
/// gets the JSON error; an upgrade without a usable token is accepted only to be closed with
/// 4401, since a browser never sees an HTTP status on a failed upgrade.
enum SocketRequest {
    /// The upgrade, the token and the language asked for.
    Upgrade(WebSocketUpgrade, Option<String>, Option<String>),
}

fn socket_request(
    q: Result<Query<TokenQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    what: &str,
) -> Result<SocketRequest, ApiErr> {
    let q = q.ok().map(|q| q.0);
    let locale = q.as_ref().and_then(|q| q.locale.clone());
    let token = q.and_then(|q| q.token).filter(|t| !t.is_empty());
    let ws = match ws {
        Ok(ws) => ws,
        Err(_) if token.is_none() => {
            return Err(ApiErr::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                format!("the token query parameter ({what}) is missing"),
            ));
        }
        Err(r) => {
            return Err(ApiErr::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                format!("this endpoint is a WebSocket: {}", r.body_text()),
            ));
        }
    };
    // Small buffers: an idle socket should cost kilobytes, not tungstenite's default 128 KiB
    // read buffer; frames up to the limit still fit, the buffer grows for them.
    let ws = ws
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0);
    Ok(SocketRequest::Upgrade(ws, token, locale))
}

async fn visitor_ws(
    State(svc): Svc,
    peer: Peer,
    headers: HeaderMap,
    q: Result<Query<TokenQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiErr> {
    svc.limits
        .ip(ip_of(&svc, peer, &headers))
        .map_err(limited)?;
    let SocketRequest::Upgrade(ws, token, locale) =
        socket_request(q, ws, "the visitor credential")?;
    let conv = match token {
        Some(t) => match svc.visitor_by_token(&t).await {
            Ok(conv) => Some(conv),
            Err(r) if r.code == ErrorCode::Unauthorized => None,
            // A storage failure is not a verdict on the credential: answer 500 (the widget
            // retries) rather than 4401 (the widget would forget its credential).
            Err(r) => return Err(r.into()),
        },
        None => None,
    };
    Ok(match conv {
        Some(conv) => ws.on_upgrade(move |socket| sockets::visitor(svc, conv, locale, socket)),
        None => ws.on_upgrade(|socket| sockets::refuse(socket, "unknown visitor credential")),
    })
}

async fn agent_ws(
    State(svc): Svc,
    peer: Peer,
    headers: HeaderMap,
    q: Result<Query<TokenQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiErr> {
    svc.limits
        .ip(ip_of(&svc, peer, &headers))
        .map_err(limited)?;
    let SocketRequest::Upgrade(ws, token, _) = socket_request(q, ws, "the session token")?;
    let agent = match &token {
        Some(t) => svc.agent_by_token(t).await?,
        None => None,
    };
    Ok(match (agent, token) {
        (Some(agent), Some(token)) => {
            ws.on_upgrade(move |socket| sockets::agent(svc, agent, token, socket))
        }
        _ => ws.on_upgrade(|socket| {
            sockets::refuse(socket, "unknown or expired session; log in again")
        }),
    })
}
