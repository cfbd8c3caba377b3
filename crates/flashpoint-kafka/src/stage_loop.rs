//! The wake-up loop every consuming stage with a periodic duty runs (aggregate: checkpoints; notify: commits at
//! the low-water mark): one place decides what wins when several things are ready, so the stages cannot drift
//! apart on it.

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
    /// The periodic duty (make outputs durable, commit).
    async fn tick(&mut self) -> Result<(), WorkerError>;
    /// One record from the stage's group consumer.
    async fn record(&mut self, m: &BorrowedMessage<'_>) -> Result<(), WorkerError>;
}

/// Runs `h` until shutdown (`Ok`) or its first failed step (`Err`); the caller then takes its one shutdown path,
/// whichever way the loop ended. Shutdown wins over pending work (`biased`), and the tick over records, so a
/// flood of records never starves the checkpoint. A consumer error is logged and the loop goes on: librdkafka
/// reconnects by itself, and only a failed step (an output that cannot be made durable) stops the stage.
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
            _ = tick.tick() => h.tick().await?,
            msg = consumer.recv() => match msg {
                Ok(m) => {
                    consumed.inc();
                    h.record(&m).await?
                }
                Err(e) => warn!(stage = H::STAGE.as_str(), error = %e, "consumer error"),
            },
        }
    }
}
