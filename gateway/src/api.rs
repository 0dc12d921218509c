//! The HTTP API listener (:8080). For now it answers what load balancers and operators
//! need of every node: `GET /` (the version) and `GET /health` (200 once the node
//! serves). Every other path is a micro error `{id, code, detail, status}` with 404; the
//! `/service/endpoint` routing to RPCs joins it later.

use std::future::Future;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use micro_core::{Code, MicroError};

/// The version this node reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The router of the API listener.
pub fn api_router() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { axum::Json(serde_json::json!({ "version": VERSION })) }),
        )
        .route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .fallback(|uri: axum::http::Uri| async move {
            let detail = format!(
                "no route for {}: service calls over HTTP are not served yet",
                uri.path()
            );
            error_response(&MicroError::new("api", Code::NotFound, detail))
        })
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
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, api_router())
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn health_is_ok_and_unknown_paths_are_micro_errors() {
        let health = api_router()
            .oneshot(Request::get("/health").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let missing = api_router()
            .oneshot(Request::get("/foo/bar").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(missing.into_body(), 1 << 16)
            .await
            .unwrap();
        let err = MicroError::from_json(std::str::from_utf8(&body).unwrap()).unwrap();
        assert_eq!((err.code, err.id.as_str()), (404, "api"));
    }
}
