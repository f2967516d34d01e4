//! Simulated NTP servers for labs, the demo and tests: each listens on its
//! own UDP socket (any 127.x.y.z or `::1` address, any port) and answers
//! like a good server, or with a chosen fault — an offset, a stratum, a
//! leap indicator, a kiss-o'-death, silence, loss, delay, a broken reply, a
//! wrong origin timestamp, or a reply from another address. It listens only
//! on loopback, private and link-local addresses, so it can never mislead a
//! real client; it never sends a packet except in answer to one.
//!
//! `reply` (what to answer) is pure; `server` is the tokio edge.
//!
//! The other simulation, [`pool`], sends no packet at all: the pool itself
//! (servers, monitors, events) on a virtual clock, scored by the service's
//! own `scoring` code under chosen policies (`poolwatch policy simulate`).
//!
//! # Fleet file (TOML)
//!
//! ```toml
//! seed = 42                      # optional: makes loss/garbage reproducible
//!
//! [[server]]                     # one server; repeat as needed
//! name = "ok"                    # optional label
//! addr = "127.0.0.1:11123"       # IP:PORT, port 0 = a free port
//! behaviour = "good"             # a preset (the default) …
//!
//! [[server]]
//! addr = "[::1]:11123"
//! behaviour = { offset = 0.25, loss = 0.5, delay_ms = 100 }   # … or a table
//!
//! [generate]                     # or [[generate]]: many servers at once
//! count = 10000
//! base = "127.1.0.1"             # addresses count up, skipping .0 and .255
//! port = 11123                   # default 11123
//! per_address = 1                # servers per address, on consecutive ports
//! behaviour = "good"
//! ```
//!
//! Presets: `good`, `silent`, `malformed` (a 20-byte reply), `wrong-origin`,
//! `other-address`, `rate-limited` (`rate_limit` with its defaults). Table fields, all optional and combinable:
//!
//! | field | meaning |
//! |---|---|
//! | `offset` | clock offset, seconds |
//! | `drift_ppm` | offset grows by this many µs per second since start |
//! | `stratum` | stratum (default 2) |
//! | `leap` | leap indicator 0–3 (default 0; 3 for kiss-o'-death) |
//! | `refid` | IPv4 address or up to 4 ASCII characters |
//! | `kod` | answer with a kiss-o'-death carrying this code (`RATE`, `DENY`, `RSTR`…) |
//! | `silent` | never answer |
//! | `loss` | probability 0–1 that a request is dropped |
//! | `drop_first` | drop the first N requests |
//! | `drop_from` | drop requests from these client IPs, e.g. `["127.0.4.3"]` |
//! | `path_loss` | `{ "127.0.4.3" = 0.5 }`: loss only on the path from these clients |
//! | `delay_ms` | added round-trip delay (timestamps stay symmetric) |
//! | `malformed` | `"short"` (20 bytes), `"garbage"` (48 random bytes), `"empty"` |
//! | `wrong_origin` | origin timestamp that is not the request's |
//! | `reply_from` | `"other"` or an IP: reply from a second socket there |
//! | `rate_limit` | `{ average = 8, minimum = 2, burst = 1, kod = true }` (each optional): per client, one answer per `average` s, none sooner than `minimum` s after its last request; refused with `RATE` (or silence without `kod`) — ntpd's `discard average 3 minimum 2` with `restrict … kod limited` |

pub mod behaviour;
pub mod fleet;
pub mod pool;
pub mod rate_limit;
pub mod reply;
pub mod udp_edge;

pub use behaviour::{Behaviour, Malformed, ReplyFrom};
pub use fleet::{Fleet, FleetError, Generate, ServerSpec};
pub use rate_limit::{Decision, Limiter, RateLimit};
pub use udp_edge::{RunningFleet, RunningServer, SpawnError, Stats};
