//! What a service registers, wrappers, hooks, timeouts and stopping.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use micro::{Call, Context, Error, Handler, Next, Replies};
use micro_core::registry::{DESCRIPTOR_METADATA, PROTO_SERVICE_METADATA};

use crate::fixture::{PingRequest, PingResponse, handler, json_call, proto_call, reply, start};

#[tokio::test]
async fn describe_lists_endpoints_schemas_and_the_descriptor() {
    let service = micro::Service::new("echo")
        .version("v2")
        .metadata("owner", "tests")
        .handle(handler())
        .start_local()
        .await
        .unwrap();
    let described = service.describe();
    assert_eq!(described.name, "echo");
    assert_eq!(described.version, "v2");
    assert_eq!(described.metadata["owner"], "tests");
    assert_eq!(described.metadata[PROTO_SERVICE_METADATA], "echo.Echo");
    let descriptor = base64::engine::general_purpose::STANDARD
        .decode(&described.metadata[DESCRIPTOR_METADATA])
        .unwrap();
    assert!(
        micro::Transcoder::new([descriptor.as_slice()])
            .unwrap()
            .message("echo.PingRequest")
            .is_some()
    );

    let names: Vec<&str> = described
        .endpoints
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["Echo.Ping", "Echo.Panic", "Echo.Count", "Echo.Upload"]
    );
    let ping = described
        .endpoints
        .iter()
        .find(|e| e.name == "Echo.Ping")
        .unwrap();
    assert_eq!(ping.metadata["stream"], "false");
    let request = ping.request.as_ref().unwrap();
    assert_eq!(
        (request.name.as_str(), request.r#type.as_str()),
        ("PingRequest", "PingRequest")
    );
    let fields: Vec<(&str, &str)> = request
        .values
        .iter()
        .map(|v| (v.name.as_str(), v.r#type.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("msg", "string"),
            ("n", "int64"),
            ("tags", "[]string"),
            ("labels", "map[string]string"),
            ("inner", "Inner")
        ]
    );
    assert_eq!(request.values[4].values[0].name, "ok");
    let count = described
        .endpoints
        .iter()
        .find(|e| e.name == "Echo.Count")
        .unwrap();
    assert_eq!(count.metadata["stream"], "true");
    service.stop().await.unwrap();
}

#[tokio::test]
async fn wrappers_run_in_order_and_may_answer_themselves() {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let count = move |call: Call, next: Next| -> Replies {
        counter.fetch_add(1, Ordering::Relaxed);
        next.run(call)
    };
    let deny = |call: Call, next: Next| -> Replies {
        if call.metadata.contains_key("authorization") {
            return next.run(call);
        }
        let err = micro::errors::unauthorized("echo", "no token");
        Box::pin(futures::stream::once(async move { Err(err) }))
    };
    let service = micro::Service::new("echo")
        .wrap_handler(count)
        .wrap_handler(deny)
        .handle(handler())
        .start_local()
        .await
        .unwrap();
    let err = reply(&service, json_call("Echo.Ping", "{}"))
        .await
        .unwrap_err();
    assert_eq!(err.code, 401);
    let mut call = json_call("Echo.Ping", "{}");
    call.metadata
        .insert("authorization".into(), "Bearer t".into());
    assert!(reply(&service, call).await.is_ok());
    assert_eq!(seen.load(Ordering::Relaxed), 2);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn hooks_run_around_start_and_stop() {
    let runs = Arc::new(AtomicUsize::new(0));
    let hook = |runs: &Arc<AtomicUsize>| {
        let runs = runs.clone();
        move || {
            let runs = runs.clone();
            async move {
                runs.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
    };
    let service = micro::Service::new("echo")
        .handle(handler())
        .before_start(hook(&runs))
        .after_start(hook(&runs))
        .before_stop(hook(&runs))
        .after_stop(hook(&runs))
        .start_local()
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::Relaxed), 2);
    service.stop().await.unwrap();
    assert_eq!(runs.load(Ordering::Relaxed), 4);

    tracing::info!("a stopped service answers 503; stopping again is a no-op");
    let err = reply(&service, json_call("Echo.Ping", "{}"))
        .await
        .unwrap_err();
    assert_eq!(err.code, 503);
    service.stop().await.unwrap();
    assert_eq!(runs.load(Ordering::Relaxed), 4);

    tracing::info!("a failing before_start aborts the start");
    let failed = micro::Service::new("echo")
        .before_start(|| async { Err(micro::errors::internal("echo", "no database")) })
        .start_local()
        .await;
    assert_eq!(failed.unwrap_err().detail, "no database");
}

#[tokio::test]
async fn slow_handlers_time_out_with_408() {
    let slow = Handler::new("echo.Echo", crate::fixture::descriptor()).unary(
        "Echo.Ping",
        "echo.PingRequest",
        "echo.PingResponse",
        |_ctx: Context, _req: PingRequest| async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<_, Error>(PingResponse::default())
        },
    );
    let service = micro::Service::new("echo")
        .handler_timeout(Duration::from_millis(50))
        .handle(slow)
        .start_local()
        .await
        .unwrap();
    let err = reply(&service, proto_call("Echo.Ping", &PingRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code, 408);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_services_do_not_start() {
    let twice = micro::Service::new("echo")
        .handle(handler())
        .handle(handler())
        .start_local()
        .await;
    assert_eq!(twice.unwrap_err().code, 400);
    let nameless = micro::Service::new("").start_local().await;
    assert_eq!(nameless.unwrap_err().code, 400);
    let idle = micro::Service::new("echo")
        .concurrency(0)
        .start_local()
        .await;
    assert_eq!(idle.unwrap_err().code, 400);
    let _unused = start;
}
