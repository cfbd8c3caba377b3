//! The wake-up loop every consuming stage runs (score: batch deadlines, finished batches and tick broadcasts;
//! aggregate: checkpoints; notify: commits at the low-water mark): one place decides what wins when several
//! things are ready, so the stages cannot drift apart on it.

use crate::client::GroupConsumer;
use crate::error::WorkerError;
use crate::role::Stage;
use crate::shutdown::Shutdown;
use prometheus::IntCounter;
use rdkafka::message::BorrowedMessage;
use tokio::time::Interval;
use tracing::warn;

/// What a stage does at each wake-up of `drive`.
pub(crate) trait Handler {
    const STAGE: Stage;
    /// The stage's own wake-ups besides ticks and records (the score stage: a finished batch, a batch's
    /// deadline, the committer's failure); a stage without any says `Infallible`.
    type Event;
    /// The periodic duty (make outputs durable, commit).
    async fn tick(&mut self) -> Result<(), WorkerError>;
    /// One record from the stage's group consumer.
    async fn record(&mut self, m: &BorrowedMessage<'_>) -> Result<(), WorkerError>;
    /// False for a record the stage drops unseen (below its partition's resume floor): not counted as consumed.
    fn admit(&mut self, _m: &BorrowedMessage<'_>) -> bool {
        true
    }
    /// False while the stage cannot take another record (its work in flight is at its bound).
    fn accepting(&self) -> bool {
        true
    }
    /// Waits for the next event. Only waits: `drive` may drop it for a readier branch, so the work an event
    /// calls for is done in `on_event`, never half-done here.
    async fn next_event(&mut self) -> Self::Event {
        std::future::pending().await
    }
    /// Handles an event; `Ok(false)` ends the loop as shutdown does.
    async fn on_event(&mut self, _event: Self::Event) -> Result<bool, WorkerError> {
        Ok(true)
    }
}

/// Runs `h` until shutdown or an event that ends it (`Ok`), or its first failed step (`Err`); the caller then
/// takes its one shutdown path, whichever way the loop ended. Shutdown wins over pending work (`biased`), the
/// stage's events over the tick, and the tick over records, so a flood of records never starves the checkpoint
/// or the publishing of finished work. A consumer error is logged and the loop goes on: librdkafka reconnects
/// by itself, and only a failed step (an output that cannot be made durable) stops the stage.
pub(crate) async fn drive<H: Handler>(
    h: &mut H,
    consumer: &GroupConsumer,
    tick: &mut Interval,
    shutdown: &mut Shutdown,
    consumed: &IntCounter,
) -> Result<(), WorkerError> {
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.recv() => return Ok(()),
            event = h.next_event() => {
                if !h.on_event(event).await? {
                    return Ok(());
                }
            }
            _ = tick.tick() => h.tick().await?,
            msg = consumer.recv(), if h.accepting() => match msg {
                Ok(m) => {
                    if h.admit(&m) {
                        consumed.inc();
                        h.record(&m).await?
                    }
                }
                Err(e) => warn!(stage = H::STAGE.as_str(), error = %e, "consumer error"),
            },
        }
    }
}
