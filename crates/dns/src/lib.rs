//! Authoritative GeoDNS for the pool zone: the zone as GeoDNS-compatible
//! JSON ([`ZoneData`]), the generator that builds it from in-DNS servers
//! ([`build_zone`]), and a hickory-server [`RequestHandler`] that answers
//! each query with up to `max_hosts` servers near the client, picked at
//! random by netspeed ([`GeoDnsHandler`]), served over UDP and TCP
//! ([`run_dns`]; plain address queries take a wire-format fast path that
//! answers as the handler would) from a zone that refreshes without
//! blocking queries ([`ZoneStore`], [`refresh_loop`]). UDP responses are rate-limited per
//! client prefix as NSD does ([`RrlConfig`]); EDNS Client Subnet options
//! are checked as RFC 7871 asks.
//!
//! The model, generator, picker, location rules and lookups are pure
//! (`model`, `generate`, `pick`, `locate`, `zone`); sockets and HTTP live in
//! `server` and `store`. It knows nothing of scores: callers pass only the
//! servers that are in DNS. It must not panic on any packet.
//!
//! [`RequestHandler`]: hickory_server::server::RequestHandler

mod count_post;
mod counts;
mod ecs;
mod fast;
mod generate;
mod handler;
mod live_zone;
mod locate;
mod metrics;
mod model;
mod pick;
mod rrl;
mod sockets;
#[cfg(test)]
mod test_support;
mod vendor;
mod zone;

pub use api::dns_counts::{
    COUNTS_PATH, CountReport, CountsStored, MAX_SERVERS_PER_REPORT, ServerCount, UNKNOWN_COUNTRY,
};
pub use count_post::{
    CountPoster, FINAL_SEND_TIMEOUT, MAX_BACKLOG_AGE, MAX_BACKLOG_SERVERS, count_loop,
};
pub use counts::{AnswerCounts, MAX_COUNTED_SERVERS};
pub use ecs::EcsError;
pub use generate::{DnsServer, SPLIT_MIN_SERVERS, ZoneOptions, build_zone};
pub use handler::{GeoDnsHandler, MAX_UDP_PAYLOAD};
pub use live_zone::{ApiSource, FetchError, ZoneStore, refresh_loop};
pub use locate::{Located, Subnet, is_global_unicast, locate};
pub use model::{DEFAULT_MAX_HOSTS, DEFAULT_TTL, LabelData, ZoneData};
pub use pick::Weighted;
pub use rrl::{ResponseKind, Rrl, RrlConfig, Verdict};
pub use sockets::{DnsListener, TCP_IDLE_TIMEOUT, run_dns};
pub use vendor::{Vendor, check_vendor_name, vendor_zone};
pub use zone::{Apex, Label, Lookup, MAX_HOSTS_LIMIT, Zone, ZoneError};
