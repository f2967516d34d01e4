//! What `serve` needs to publish the zone: plain settings, below the job.

/// What `serve` needs to publish the zone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DnsZoneConfig {
    /// The pool zone, e.g. `pool.example.org`.
    pub origin: String,
    /// Name servers of the zone (relative to the origin unless they end in `.`).
    pub ns: Vec<String>,
    /// AAAA in every name, not only in `2.` (`--ipv6-everywhere`).
    pub ipv6_everywhere: bool,
    /// sha256 (hex) of the token `poolwatch dns` presents; `None` keeps the
    /// route closed.
    pub token_hash: Option<String>,
}
