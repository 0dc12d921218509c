//! [`SeededRuntime`]: openraft's tokio runtime with a seedable RNG.
//!
//! openraft draws its election timeout from `AsyncRuntime::thread_rng`. In production
//! that is OS entropy; inside [`SeededRuntime::scope`] it is derived from a seed, so a
//! simulation replays the same elections from the same seed.

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use openraft::async_runtime::TokioOneShotSender;
use openraft::{AsyncRuntime, OptionalSend, TokioInstant, TokioRuntime};
use rand::SeedableRng;
use rand::rngs::StdRng;

tokio::task_local! {
    static RAFT_SEED: Cell<u64>;
}

/// openraft's tokio runtime, except that `thread_rng` is seeded inside
/// [`SeededRuntime::scope`].
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeededRuntime;

impl SeededRuntime {
    /// Runs `future` (e.g. `Raft::new`) with RNG draws derived from `seed`; each draw
    /// advances the seed, so repeated draws differ but replay identically.
    pub async fn scope<F: Future>(seed: u64, future: F) -> F::Output {
        RAFT_SEED.scope(Cell::new(seed), future).await
    }
}

impl AsyncRuntime for SeededRuntime {
    type JoinError = <TokioRuntime as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <TokioRuntime as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <TokioRuntime as AsyncRuntime>::Sleep;
    type Instant = TokioInstant;
    type TimeoutError = <TokioRuntime as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> =
        <TokioRuntime as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = StdRng;
    type OneshotSender<T: OptionalSend> = TokioOneShotSender<T>;
    type OneshotReceiverError = <TokioRuntime as AsyncRuntime>::OneshotReceiverError;
    type OneshotReceiver<T: OptionalSend> = <TokioRuntime as AsyncRuntime>::OneshotReceiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        TokioRuntime::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        TokioRuntime::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        TokioRuntime::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        TokioRuntime::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        TokioRuntime::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        let seeded = RAFT_SEED.try_with(|seed| {
            let current = seed.get();
            seed.set(current.wrapping_add(0x9E37_79B9_7F4A_7C15));
            current
        });
        match seeded {
            Ok(seed) => StdRng::seed_from_u64(seed),
            Err(_) => StdRng::from_entropy(),
        }
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        TokioRuntime::oneshot()
    }
}
