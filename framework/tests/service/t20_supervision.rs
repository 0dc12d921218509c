//! A panicking handler answers 500 promptly, its worker is restarted, and the service
//! keeps serving.

use std::time::Duration;

use prost::Message;

use crate::fixture::{
    CountRequest, CountResponse, PingRequest, PingResponse, proto_call, replies, reply, start,
};

fn ping(msg: &str) -> PingRequest {
    PingRequest {
        msg: msg.into(),
        ..PingRequest::default()
    }
}

#[tokio::test]
async fn panic_is_500_and_the_next_call_succeeds() {
    for concurrency in [1, 4] {
        let service = start(concurrency).await;
        tracing::info!(concurrency, "a panicking call gets a 500, not a hang");
        let call = proto_call("Echo.Panic", &ping("boom"));
        let err = tokio::time::timeout(Duration::from_secs(2), reply(&service, call))
            .await
            .expect("the failed call is answered promptly")
            .unwrap_err();
        assert_eq!(err.code, 500, "{err:?}");

        tracing::info!("the worker was restarted: the next calls succeed at once");
        let started = tokio::time::Instant::now();
        for _ in 0..2 * concurrency {
            let bytes = reply(&service, proto_call("Echo.Panic", &ping("calm")))
                .await
                .unwrap();
            assert_eq!(PingResponse::decode(bytes.as_slice()).unwrap().msg, "calm");
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "no call waited for a restart"
        );
        service.stop().await.unwrap();
    }
}

#[tokio::test]
async fn repeated_panics_never_exhaust_the_pool() {
    let service = start(2).await;
    for _ in 0..5 {
        let err = reply(&service, proto_call("Echo.Panic", &ping("boom")))
            .await
            .unwrap_err();
        assert_eq!(err.code, 500);
    }
    let bytes = reply(&service, proto_call("Echo.Ping", &ping("ok")))
        .await
        .unwrap();
    assert_eq!(PingResponse::decode(bytes.as_slice()).unwrap().n, 1);
    service.stop().await.unwrap();
}

#[tokio::test]
async fn panic_inside_a_stream_ends_it_with_a_500() {
    let service = start(1).await;
    let request = CountRequest {
        count: 2,
        panic_at_end: true,
    };
    let all = replies(&service, proto_call("Echo.Count", &request)).await;
    assert_eq!(all.len(), 3, "two replies, then the error: {all:?}");
    let first = CountResponse::decode(all[0].as_ref().unwrap().as_slice()).unwrap();
    assert_eq!(first.count, 1);
    assert_eq!(all[2].as_ref().unwrap_err().code, 500);

    tracing::info!("the service still serves");
    assert!(
        reply(&service, proto_call("Echo.Ping", &ping("x")))
            .await
            .is_ok()
    );
    service.stop().await.unwrap();
}
