//! The HTTP API listener (:8080): `GET /` (the version), `GET /health` (200 once the
//! node serves), `GET /metrics` (Prometheus text, [`crate::metrics`]), and every other path through the default handler ([`call`]):
//! `/service/endpoint` + JSON (or a form, or the query) becomes a call through the
//! node's router. CORS is on (preflights answered, headers on every response).

mod auth;
mod call;
mod resolve;

use std::future::Future;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use micro_core::MicroError;

/// The version this node reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub use auth::auth_hook;
pub use call::{ApiState, AuthHook, AuthRequest, BODY_LIMIT_DEFAULT};
pub use resolve::resolve;

/// The request decoding of the default handler, private to it, reachable here for the
/// fuzz targets (`fuzz/`) and property tests only: not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    pub use super::call::{encode as encode_request, request_json};
}

/// The router of the API listener.
pub fn api_router(state: ApiState) -> Router {
    let metrics = state.metrics.clone();
    let router = Router::new()
        .route(
            "/",
            get(|| async { axum::Json(serde_json::json!({ "version": VERSION })) }),
        )
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .fallback(move |request: axum::http::Request<axum::body::Body>| {
            let state = state.clone();
            async move { call::handle(state, request).await }
        })
        // Bodies are limited by the handler itself (413 whatever the path), not here.
        .layer(axum::extract::DefaultBodyLimit::disable());
    let router = match metrics {
        Some((metrics, replicator)) => {
            let exposition = metrics.clone();
            router
                .route(
                    "/metrics",
                    get(move || {
                        let text = exposition.render(replicator.as_ref());
                        async move {
                            (
                                [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                                text,
                            )
                        }
                    }),
                )
                .layer(axum::middleware::from_fn_with_state(
                    metrics,
                    crate::metrics::http_layer,
                ))
        }
        None => router,
    };
    router
        .layer(axum::middleware::from_fn(header_limit))
        .layer(axum::middleware::from_fn(cors))
}

/// The largest header block (names and values) a request may carry, as on the proxy.
pub(crate) const HEADER_LIST_LEN_MAX: usize = 64 * 1024;

/// Refuses a request whose headers are over [`HEADER_LIST_LEN_MAX`] with `431` (hyper's
/// own limit is several times larger).
async fn header_limit(
    request: axum::http::Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    let len: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if len > HEADER_LIST_LEN_MAX {
        let err = MicroError {
            id: "api".to_owned(),
            code: 431,
            detail: format!(
                "the request headers are {len} bytes, over the limit of {HEADER_LIST_LEN_MAX}"
            ),
            status: "Request Header Fields Too Large".to_owned(),
        };
        return error_response(&err);
    }
    next.run(request).await
}

/// Headers every response carries (Micro v3's CORS defaults, but credentials).
const CORS_METHODS: &str = "POST, PATCH, GET, OPTIONS, PUT, DELETE";
const CORS_HEADERS: &str = "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token, Authorization, Micro-Namespace";

/// CORS: a preflight (`OPTIONS`) gets 204 with the headers; every response gets them.
async fn cors(
    request: axum::http::Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> Response {
    let origin = request
        .headers()
        .get("origin")
        .cloned()
        .unwrap_or_else(|| axum::http::HeaderValue::from_static("*"));
    let mut response = if request.method() == axum::http::Method::OPTIONS {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert("access-control-allow-origin", origin);
    // Unlike v3, no `Access-Control-Allow-Credentials`: the api takes the `micro-token`
    // cookie as a login, and any site a logged-in browser visits could otherwise call it
    // with that cookie and read the answer. Cross-origin callers send `Authorization`.
    headers.insert(
        "access-control-allow-methods",
        axum::http::HeaderValue::from_static(CORS_METHODS),
    );
    headers.insert(
        "access-control-allow-headers",
        axum::http::HeaderValue::from_static(CORS_HEADERS),
    );
    response
}

/// The HTTP response of a micro error: its JSON with the status of its code.
pub fn error_response(err: &MicroError) -> Response {
    let status = u16::try_from(err.code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [("content-type", "application/json")],
        err.to_json(),
    )
        .into_response()
}

/// Serves the API on `listener` until `shutdown` resolves.
pub async fn serve_api<L>(
    listener: L,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, api_router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use axum::http::Request;
    use micro_core::service::{Call, Replies, ServiceCaller};
    use tower::ServiceExt;

    use micro_core::Code;

    use super::*;

    /// An in-memory caller: `helloworld` greets in JSON, `empty` answers nothing, and
    /// every other service is unknown.
    struct Fake;

    impl ServiceCaller for Fake {
        fn dispatch(&self, call: Call) -> Replies {
            let reply = match call.service.as_str() {
                "helloworld" => {
                    let req: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
                    let name = req["name"].as_str().unwrap_or_default().to_owned();
                    Ok(serde_json::json!({ "msg": format!("Hello {name}") })
                        .to_string()
                        .into_bytes())
                }
                "empty" => Ok(b"{}".to_vec()),
                other => Err(MicroError::new(
                    other,
                    Code::NotFound,
                    format!("service {other} not found"),
                )),
            };
            Box::pin(futures::stream::once(async move { reply }))
        }
    }

    fn router(limit: usize) -> Router {
        let replicator = Arc::new(micro_core::replicator::MemReplicator::new(Arc::new(
            micro_core::SystemClock,
        )));
        let registry = micro_actors::RegistryHandle::new(replicator);
        api_router(ApiState::new(Arc::new(Fake), registry, limit))
    }

    async fn send(request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = router(1024).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn health_and_version() {
        let (status, _, _) = send(Request::get("/health").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        let (_, _, body) = send(Request::get("/").body(Body::empty()).unwrap()).await;
        assert!(body.contains(VERSION));
    }

    #[tokio::test]
    async fn json_bodies_forms_and_queries_become_calls() {
        let post = Request::post("/helloworld/call")
            .body(Body::from(r#"{"name":"John"}"#))
            .unwrap();
        let (status, _, body) = send(post).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, r#"{"msg":"Hello John"}"#)
        );
        let get = Request::get("/helloworld/call?name=John")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(get).await.2, r#"{"msg":"Hello John"}"#);
        // What `curl -d` sends: JSON with the form content type.
        let curl = Request::post("/helloworld")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(r#"{"name":"Ann"}"#))
            .unwrap();
        assert_eq!(send(curl).await.2, r#"{"msg":"Hello Ann"}"#);
        let form = Request::post("/helloworld/call")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from("name=Bo"))
            .unwrap();
        assert_eq!(send(form).await.2, r#"{"msg":"Hello Bo"}"#);
        let empty = Request::post("/empty/call").body(Body::empty()).unwrap();
        assert_eq!(send(empty).await.0, StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn bad_input_gets_micro_errors() {
        let bad = Request::post("/helloworld/call")
            .header("content-type", "application/json")
            .body(Body::from("{bad"))
            .unwrap();
        let (status, _, body) = send(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(MicroError::from_json(&body).unwrap().code, 400);
        let unknown = Request::post("/nosuch/call")
            .body(Body::from("{}"))
            .unwrap();
        let (status, _, body) = send(unknown).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(
            MicroError::from_json(&body)
                .unwrap()
                .detail
                .contains("nosuch")
        );
        let big = Request::post("/any/path/at/all")
            .body(Body::from(vec![b'x'; 2048]))
            .unwrap();
        assert_eq!(send(big).await.0, StatusCode::PAYLOAD_TOO_LARGE);
        let bad_ns = Request::post("/helloworld")
            .header("micro-namespace", "a/b")
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(bad_ns).await.0, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn the_auth_hook_sees_the_resource_and_can_refuse() {
        let replicator = Arc::new(micro_core::replicator::MemReplicator::new(Arc::new(
            micro_core::SystemClock,
        )));
        let registry = micro_actors::RegistryHandle::new(replicator);
        let hook: AuthHook = Arc::new(|req: AuthRequest| {
            Box::pin(async move {
                match req.token.as_deref() {
                    None => Err(MicroError::new(
                        "auth",
                        Code::Unauthorized,
                        "unauthorized request",
                    )),
                    Some("good")
                        if req.service == "helloworld" && req.endpoint == "Helloworld.Call" =>
                    {
                        Ok(req.namespace.unwrap_or_default())
                    }
                    Some(_) => Err(MicroError::new(
                        "auth",
                        Code::Forbidden,
                        "Forbidden request",
                    )),
                }
            })
        });
        let app = api_router(ApiState::new(Arc::new(Fake), registry, 1024).with_auth(hook));
        let request = |token: Option<&str>| {
            let mut builder = Request::post("/helloworld/call");
            if let Some(token) = token {
                builder = builder.header("authorization", format!("Bearer {token}"));
            }
            builder.body(Body::from(r#"{"name":"A"}"#)).unwrap()
        };
        let status = |r: Request<Body>| {
            let app = app.clone();
            async move { app.oneshot(r).await.unwrap().status() }
        };
        assert_eq!(status(request(None)).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(request(Some("bad"))).await, StatusCode::FORBIDDEN);
        assert_eq!(status(request(Some("good"))).await, StatusCode::OK);
        let cookie = Request::post("/helloworld/call")
            .header("cookie", "a=b; micro-token=good")
            .body(Body::from("{}"))
            .unwrap();
        assert_eq!(status(cookie).await, StatusCode::OK);
    }

    #[tokio::test]
    async fn cors_preflights_and_headers() {
        let preflight = Request::builder()
            .method("OPTIONS")
            .uri("/helloworld/call")
            .header("origin", "https://example.com")
            .body(Body::empty())
            .unwrap();
        let (status, headers, _) = send(preflight).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(
            headers["access-control-allow-origin"],
            "https://example.com"
        );
        assert!(
            headers["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .contains("Micro-Namespace")
        );
        let (_, headers, _) = send(Request::get("/health").body(Body::empty()).unwrap()).await;
        assert_eq!(headers["access-control-allow-origin"], "*");
    }
}
