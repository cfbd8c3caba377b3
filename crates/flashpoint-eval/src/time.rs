//! The durations the evaluations count in (event-time milliseconds, as the core's `Millis`).

use flashpoint_core::time::Millis;

pub(crate) const MIN: Millis = 60_000;
pub(crate) const HOUR: Millis = 3_600_000;
pub(crate) const DAY: Millis = 86_400_000;
/// The NAB corpora's row: every series is a count per 5 minutes.
pub(crate) const STEP: Millis = 300_000;
