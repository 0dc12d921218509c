//! The default handler: an HTTP request on `/service/endpoint` becomes a call.
//!
//! ```text
//! body (≤ limit, else 413) ─> JSON: the body, or a form as a flat map; the query on GET,
//!                             merged into the body otherwise
//! path ─resolve─> (service, Handler.Method); namespace from Micro-Namespace
//! registered descriptor? ─yes─> JSON ─prost-reflect─> protobuf ─> router ─> protobuf ─> JSON
//!                        ─no──> JSON as it is (application/grpc+json) ─> router ─> JSON
//! reply: 200 JSON, 204 when empty; errors {id, code, detail, status} with their status
//! WebSocket upgrade: the first message is the request, each reply one message (streams)
//! ```

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use micro_actors::RegistryHandle;
use micro_core::registry::{DESCRIPTOR_METADATA, Service};
use micro_core::service::{CONTENT_JSON, CONTENT_PROTO, Call, ServiceCaller};
use micro_core::{Code, MicroError, Namespace};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};

use crate::api::error_response;
use crate::api::resolve::resolve;

/// The default largest request body (10 MiB).
pub const BODY_LIMIT_DEFAULT: usize = 10 * 1024 * 1024;

/// What the auth hook is asked about one request: the resource (`service:NAME:ENDPOINT`
/// in Micro's terms), the namespace and the caller's token.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    /// The resolved service.
    pub service: String,
    /// The resolved endpoint (`Handler.Method`).
    pub endpoint: String,
    /// The namespace the request names (`Micro-Namespace`), if any.
    pub namespace: Option<Namespace>,
    /// The bearer token (`Authorization: Bearer ...`, else the `micro-token` cookie).
    pub token: Option<String>,
}

/// Decides whether a request may proceed and in which namespace it acts: `Err` with 401
/// (no or bad credentials) or 403 (not allowed) stops it with that error. The node
/// installs [`crate::auth_hook`]; without a hook every request proceeds in the namespace
/// it names, else `micro`.
pub type AuthHook = Arc<
    dyn Fn(AuthRequest) -> micro_core::replicator::BoxFuture<'static, Result<Namespace, MicroError>>
        + Send
        + Sync,
>;

/// What the handler calls through.
#[derive(Clone)]
pub struct ApiState {
    /// Where calls go (the node's router).
    pub caller: Arc<dyn ServiceCaller>,
    /// Where services' descriptors are looked up.
    pub registry: RegistryHandle,
    /// The largest request body accepted.
    pub body_limit: usize,
    /// Asked before every call, when set.
    pub auth: Option<AuthHook>,
    /// The node's metrics and the state they read, served on `GET /metrics`.
    pub metrics: Option<(crate::Metrics, Arc<dyn micro_core::replicator::Replicator>)>,
    /// Trace ids this api gives calls that come without one: this base and a counter.
    trace_base: u32,
    next_trace: Arc<std::sync::atomic::AtomicU32>,
    pools: Arc<Mutex<HashMap<u64, DescriptorPool>>>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("body_limit", &self.body_limit)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// A handler calling through `caller`, reading descriptors from `registry`.
    pub fn new(
        caller: Arc<dyn ServiceCaller>,
        registry: RegistryHandle,
        body_limit: usize,
    ) -> Self {
        Self {
            caller,
            registry,
            body_limit,
            auth: None,
            metrics: None,
            trace_base: 0,
            next_trace: Arc::default(),
            pools: Arc::default(),
        }
    }

    /// Counts requests into `metrics` and serves them, with `replicator`'s gauges, on
    /// `GET /metrics`.
    #[must_use]
    pub fn with_metrics(
        mut self,
        metrics: crate::Metrics,
        replicator: Arc<dyn micro_core::replicator::Replicator>,
    ) -> Self {
        self.metrics = Some((metrics, replicator));
        self
    }

    /// Gives calls without a trace id one starting with `base` (unique per node: the
    /// node passes a hash of its address, so a simulation replays the same ids).
    #[must_use]
    pub fn with_trace_base(mut self, base: u32) -> Self {
        self.trace_base = base;
        self
    }

    /// The trace id of a call that came without one.
    fn trace_id(&self) -> String {
        let n = self
            .next_trace
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{:08x}{n:08x}", self.trace_base)
    }

    /// Asks `hook` before every call.
    #[must_use]
    pub fn with_auth(mut self, hook: AuthHook) -> Self {
        self.auth = Some(hook);
        self
    }

    /// Runs the auth hook, if any, for a call of `endpoint` of `service`: the namespace
    /// the call acts in and the caller's token.
    async fn authorize(
        &self,
        headers: &HeaderMap,
        service: &str,
        endpoint: &str,
    ) -> Result<(Namespace, Option<String>), MicroError> {
        let named = namespace(headers)?;
        let Some(hook) = &self.auth else {
            return Ok((named.unwrap_or_default(), None));
        };
        // The same parsing as the proxy's: another scheme than Bearer is refused.
        let bearer = match headers.get("authorization") {
            None => None,
            Some(value) => {
                let text = value.to_str().map_err(|_| {
                    api_error(Code::Unauthorized, "the Authorization header is not text")
                })?;
                Some(crate::bearer(text).map_err(|e| MicroError::from_error("api", &e))?)
            }
        };
        let cookie = headers
            .get_all("cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix("micro-token="));
        let token = bearer.or(cookie).map(str::to_owned);
        let namespace = hook(AuthRequest {
            service: service.to_owned(),
            endpoint: endpoint.to_owned(),
            namespace: named,
            token: token.clone(),
        })
        .await?;
        Ok((namespace, token))
    }

    /// The decoded descriptor set a service registered, cached by its content.
    fn pool(&self, service: &Service) -> Option<DescriptorPool> {
        let encoded = service.metadata.get(DESCRIPTOR_METADATA)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        encoded.hash(&mut hasher);
        let key = hasher.finish();
        let mut pools = self
            .pools
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pool) = pools.get(&key) {
            return Some(pool.clone());
        }
        let pool = micro_proto::transcode::descriptor_pool(service)?;
        // Registrations change rarely; a bound keeps a churn of versions from growing it.
        if pools.len() >= 256 {
            pools.clear();
        }
        pools.insert(key, pool.clone());
        Some(pool)
    }
}

fn api_error(code: Code, detail: impl Into<String>) -> MicroError {
    MicroError::new("api", code, detail)
}

/// Serves one `/service/endpoint` request; a WebSocket upgrade streams the replies.
pub(super) async fn handle(state: ApiState, request: Request<Body>) -> Response {
    let upgrade = request
        .headers()
        .get("upgrade")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let result = if upgrade {
        stream(state, request).await
    } else {
        call(&state, request).await
    };
    result.unwrap_or_else(|err| error_response(&err))
}

/// The metadata (and response header) carrying a call's trace id.
const TRACE_HEADER: &str = "micro-trace-id";

/// A streaming call over WebSocket: the client's first text message is the JSON request;
/// each reply is sent as one text message of JSON, an error as the micro error's JSON,
/// then the socket closes.
async fn stream(state: ApiState, request: Request<Body>) -> Result<Response, MicroError> {
    use axum::extract::FromRequest;
    use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
    let (service, endpoint) = resolve(request.uri().path()).ok_or_else(|| {
        api_error(
            Code::NotFound,
            format!("{} names no service", request.uri().path()),
        )
    })?;
    let (namespace, token) = state
        .authorize(request.headers(), &service, &endpoint)
        .await?;
    let metadata = metadata(request.headers(), token.as_deref());
    let upgrade = WebSocketUpgrade::from_request(request, &())
        .await
        .map_err(|e| api_error(Code::BadRequest, format!("not a WebSocket upgrade: {e}")))?;
    Ok(upgrade.on_upgrade(move |mut socket| async move {
        let outcome: Result<(), MicroError> = async {
            let first = loop {
                match socket.recv().await {
                    Some(Ok(WsMessage::Text(text))) => break text.as_str().as_bytes().to_vec(),
                    Some(Ok(WsMessage::Binary(bytes))) => break bytes.to_vec(),
                    Some(Ok(_)) => {}
                    _ => return Ok(()),
                }
            };
            let json: serde_json::Value = if first.trim_ascii().is_empty() {
                serde_json::json!({})
            } else {
                serde_json::from_slice(&first).map_err(|e| {
                    api_error(
                        Code::BadRequest,
                        format!("the request is not valid JSON: {e}"),
                    )
                })?
            };
            let services = state.registry.lookup_local(&namespace, &service)?;
            let method = match services.first() {
                Some(registered) => find_method(&state, registered, &service, &endpoint)?,
                None => None,
            };
            let (content_type, body) = encode(&service, method.as_ref(), json)?;
            let call = Call {
                namespace,
                service: service.clone(),
                endpoint,
                content_type: content_type.to_owned(),
                metadata,
                body,
            };
            let mut replies = state.caller.dispatch(call);
            while let Some(reply) = replies.next().await {
                let json = render(&service, method.as_ref(), reply?)?;
                let text = String::from_utf8_lossy(&json).into_owned();
                if socket.send(WsMessage::Text(text.into())).await.is_err() {
                    return Ok(());
                }
            }
            Ok(())
        }
        .await;
        if let Err(err) = outcome {
            let _ = socket.send(WsMessage::Text(err.to_json().into())).await;
        }
        let _ = socket.send(WsMessage::Close(None)).await;
    }))
}

async fn call(state: &ApiState, request: Request<Body>) -> Result<Response, MicroError> {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, state.body_limit)
        .await
        .map_err(|_| {
            api_error(
                Code::PayloadTooLarge,
                format!(
                    "the request body exceeds the {}-byte limit",
                    state.body_limit
                ),
            )
        })?;
    let (service, endpoint) = resolve(parts.uri.path()).ok_or_else(|| {
        api_error(
            Code::NotFound,
            format!(
                "{} names no service (use /service/endpoint)",
                parts.uri.path()
            ),
        )
    })?;
    let (namespace, token) = state.authorize(&parts.headers, &service, &endpoint).await?;
    let json = request_json(&parts.method, parts.uri.query(), &parts.headers, &bytes)?;
    let services = state.registry.lookup_local(&namespace, &service)?;
    let method = match services.first() {
        Some(registered) => find_method(state, registered, &service, &endpoint)?,
        None => None,
    };
    let (content_type, body) = encode(&service, method.as_ref(), json)?;
    let mut metadata = metadata(&parts.headers, token.as_deref());
    let trace = metadata
        .entry(TRACE_HEADER.to_owned())
        .or_insert_with(|| state.trace_id())
        .clone();
    let call = Call {
        namespace,
        service: service.clone(),
        endpoint,
        content_type: content_type.to_owned(),
        metadata,
        body,
    };
    let mut replies = state.caller.dispatch(call);
    let reply = match replies.next().await {
        Some(reply) => reply?,
        None => Vec::new(),
    };
    let json = render(&service, method.as_ref(), reply)?;
    // The trace id, so a caller can ask `/<service>/debug/trace` for the call's spans.
    let traced = [(TRACE_HEADER, trace)];
    if json.is_empty() || json == b"{}" {
        return Ok((StatusCode::NO_CONTENT, traced).into_response());
    }
    let json_type = ("content-type", "application/json".to_owned());
    Ok((
        StatusCode::OK,
        [json_type, (TRACE_HEADER, traced[0].1.clone())],
        json,
    )
        .into_response())
}

/// The call body of a JSON request: protobuf through the method's descriptors, else the
/// JSON itself for a service that takes JSON.
pub fn encode(
    service: &str,
    method: Option<&MethodDescriptor>,
    json: serde_json::Value,
) -> Result<(&'static str, Vec<u8>), MicroError> {
    let Some(method) = method else {
        return Ok((CONTENT_JSON, json.to_string().into_bytes()));
    };
    let message = DynamicMessage::deserialize(method.input(), json).map_err(|e| {
        MicroError::new(
            service,
            Code::BadRequest,
            format!(
                "the request is not a valid {}: {e}",
                method.input().full_name()
            ),
        )
    })?;
    Ok((CONTENT_PROTO, message.encode_to_vec()))
}

/// A reply as JSON bytes (proto field names, numbers as numbers).
fn render(
    service: &str,
    method: Option<&MethodDescriptor>,
    reply: Vec<u8>,
) -> Result<Vec<u8>, MicroError> {
    let Some(method) = method else {
        return Ok(reply);
    };
    micro_proto::transcode::reply_json(&method.output(), &reply, false)
        .map_err(|why| MicroError::new(service, Code::BadGateway, why))
}

/// The namespace of a request: `Micro-Namespace`, else `micro`.
fn namespace(headers: &HeaderMap) -> Result<Option<Namespace>, MicroError> {
    match headers.get("micro-namespace").map(|v| v.to_str()) {
        None | Some(Ok("")) => Ok(None),
        Some(Ok(text)) => Namespace::new(text)
            .map(Some)
            .map_err(|e| MicroError::from_error("api", &e)),
        Some(Err(_)) => Err(api_error(
            Code::BadRequest,
            "Micro-Namespace must be ASCII text",
        )),
    }
}

/// The method behind `endpoint` in the service's descriptors, if it registered them.
fn find_method(
    state: &ApiState,
    registered: &Service,
    service: &str,
    endpoint: &str,
) -> Result<Option<MethodDescriptor>, MicroError> {
    let Some(pool) = state.pool(registered) else {
        return Ok(None);
    };
    let found = micro_proto::transcode::find_method(&pool, registered, service, endpoint);
    match found {
        Some(method) => Ok(Some(method)),
        None => {
            let known: Vec<&str> = registered
                .endpoints
                .iter()
                .map(|e| e.name.as_str())
                .collect();
            Err(MicroError::new(
                service,
                Code::NotFound,
                format!(
                    "service {service} has no endpoint {endpoint} (endpoints: {})",
                    known.join(", ")
                ),
            ))
        }
    }
}

/// The request as JSON: the body (JSON, or a form as a flat map), with the query merged
/// in; on GET the query alone.
pub fn request_json(
    method: &Method,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<serde_json::Value, MicroError> {
    let query = query.map(form_json).unwrap_or_default();
    if *method == Method::GET {
        return Ok(serde_json::Value::Object(query));
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let trimmed = body.trim_ascii();
    let mut value = if trimmed.is_empty() {
        serde_json::Value::Object(serde_json::Map::new())
    } else if let Ok(json) = serde_json::from_slice::<serde_json::Value>(trimmed) {
        // `curl -d '{...}'` sends JSON as a form: a body that parses as JSON is JSON.
        json
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_json::Value::Object(form_json(&String::from_utf8_lossy(trimmed)))
    } else {
        let why = serde_json::from_slice::<serde_json::Value>(trimmed)
            .err()
            .map_or_else(String::new, |e| e.to_string());
        return Err(api_error(
            Code::BadRequest,
            format!("the body is not valid JSON: {why}"),
        ));
    };
    if let serde_json::Value::Object(object) = &mut value {
        for (k, v) in query {
            object.entry(k).or_insert(v);
        }
    }
    Ok(value)
}

/// The deepest a dotted form or query key nests (`a.b.c` is 3); the parts past it stay in
/// the last key, dots and all. A key must not nest as deep as the body is long: building,
/// transcoding and dropping the JSON all recurse per level, and a 200 KB form key of
/// 100,000 parts overflowed a 2 MiB stack (a tokio worker's): the process aborted.
/// (serde_json stops JSON bodies at 128 levels for the same reason.)
const FORM_DEPTH_MAX: usize = 32;

/// A query string or form as a JSON object: repeated keys joined with commas, dotted keys
/// nested (`a.b=1` -> `{"a":{"b":"1"}}`) up to [`FORM_DEPTH_MAX`] levels.
fn form_json(text: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut flat: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(text.as_bytes()) {
        flat.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    let mut root = serde_json::Map::new();
    for (key, values) in flat {
        let parts: Vec<&str> = key.splitn(FORM_DEPTH_MAX, '.').collect();
        insert_path(
            &mut root,
            &parts,
            serde_json::Value::String(values.join(",")),
        );
    }
    root
}

/// Sets `value` at the dotted path `parts`, creating objects on the way; a path through
/// a value that is not an object keeps the first value.
fn insert_path(
    object: &mut serde_json::Map<String, serde_json::Value>,
    parts: &[&str],
    value: serde_json::Value,
) {
    match parts {
        [] => {}
        [last] => {
            object.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let entry = object
                .entry((*first).to_owned())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            if let serde_json::Value::Object(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Request headers as call metadata (lower-case names), plus `host`, `method`, `url`.
/// The call's metadata: the request headers, with the caller's token (from a cookie,
/// say) as `authorization`, so the service and any node the call is forwarded to see it;
/// an `authorization` header the api did not accept is dropped.
fn metadata(headers: &HeaderMap, token: Option<&str>) -> BTreeMap<String, String> {
    let mut metadata: BTreeMap<String, String> = headers
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "content-length" | "content-type" | "connection" | "authorization"
            )
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    if let Some(token) = token {
        metadata.insert("authorization".to_owned(), format!("Bearer {token}"));
    }
    metadata
}
