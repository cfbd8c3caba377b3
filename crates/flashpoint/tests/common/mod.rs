//! What `kafka_notify.rs` still reaches as `common`: the test kit, re-exported. The other test files use
//! `flashpoint_testkit` directly; this file goes once `kafka_notify.rs` does too.

pub use flashpoint_testkit::*;

/// `kafka_notify.rs`'s name for [`flashpoint_testkit::flashpoint`] (a command for the binary).
pub fn bin() -> std::process::Command {
    flashpoint()
}
