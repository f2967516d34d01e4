//! DNS response rate limiting flags, shared by `serve` and `dns`
//! (`[dns_rrl]` in the file).

#[derive(clap::Args, Debug, Clone)]
#[allow(dead_code)] // declares flags; settings::load reads them by id
#[command(next_help_heading = "DNS response rate limiting (UDP)")]
pub struct RrlArgs {
    /// UDP responses per second to one client prefix and kind of answer (an
    /// answer per name and type, NODATA per name, all NXDOMAINs together,
    /// all errors together), as NSD's RRL counts them. Above it responses
    /// are dropped and every --dns-rrl-slip-th is sent empty with TC=1, so a
    /// real resolver behind that prefix retries over TCP, which is never
    /// limited. A new prefix may burst to twice the rate in its first
    /// second. This keeps the server from amplifying floods of spoofed
    /// queries. 0 turns it off [default: 200].
    #[arg(
        long,
        id = "dns_rrl.rate",
        value_name = "N",
        env = "POOLWATCH_DNS_RRL_RATE"
    )]
    dns_rrl_rate: Option<String>,

    /// Of the responses over the rate, every N-th is sent truncated (TC=1)
    /// instead of dropped; 0 drops all, 1 truncates all [default: 2].
    #[arg(
        long,
        id = "dns_rrl.slip",
        value_name = "N",
        env = "POOLWATCH_DNS_RRL_SLIP"
    )]
    dns_rrl_slip: Option<String>,

    /// IPv4 clients whose addresses share this many leading bits count as
    /// one [default: 24].
    #[arg(
        long,
        id = "dns_rrl.ipv4_prefix",
        value_name = "BITS",
        env = "POOLWATCH_DNS_RRL_IPV4_PREFIX"
    )]
    dns_rrl_ipv4_prefix: Option<String>,

    /// IPv6 clients whose addresses share this many leading bits count as
    /// one [default: 64].
    #[arg(
        long,
        id = "dns_rrl.ipv6_prefix",
        value_name = "BITS",
        env = "POOLWATCH_DNS_RRL_IPV6_PREFIX"
    )]
    dns_rrl_ipv6_prefix: Option<String>,

    /// Buckets in the rate table, 24 bytes each, allocated once: the table
    /// never grows, however many source addresses send (a bucket another
    /// prefix needs is reused) [default: 1000000].
    #[arg(
        long,
        id = "dns_rrl.size",
        value_name = "N",
        env = "POOLWATCH_DNS_RRL_SIZE"
    )]
    dns_rrl_size: Option<String>,
}
