//! The NTP measuring core of poolwatch: an NTPv4 packet codec (every header
//! field, era-aware timestamps), the rules that turn a reply into an offset
//! or a stable error code (kiss codes, socket errors, bad replies), the
//! best-sample choice of a *check*, and the address policy.
//!
//! Everything except `client` is pure: no sockets, no clocks. `client` is the
//! one I/O edge (tokio UDP). This crate depends on nothing else of ours.

pub mod check;
pub mod classify;
pub mod client;
pub mod packet;
pub mod target;
pub mod time;

pub use check::{CheckConfig, CheckResult, Sample, best_index};
pub use classify::ErrorCode;
pub use client::{check, check_allowed, check_until, query, query_from};
pub use packet::Packet;
pub use target::{TargetPolicy, parse_host_port};
pub use time::NtpTimestamp;
