//! DNS response rate limiting flags, shared by `serve` and `dns`.

use crate::util::usage;
use anyhow::Result;
use dns::RrlConfig;
use server::file_config::FileDnsRrl;

#[derive(clap::Args, Debug, Clone)]
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
    #[arg(long, value_name = "N", env = "POOLWATCH_DNS_RRL_RATE")]
    dns_rrl_rate: Option<u32>,

    /// Of the responses over the rate, every N-th is sent truncated (TC=1)
    /// instead of dropped; 0 drops all, 1 truncates all [default: 2].
    #[arg(long, value_name = "N", env = "POOLWATCH_DNS_RRL_SLIP")]
    dns_rrl_slip: Option<u32>,

    /// IPv4 clients whose addresses share this many leading bits count as
    /// one [default: 24].
    #[arg(long, value_name = "BITS", env = "POOLWATCH_DNS_RRL_IPV4_PREFIX",
          value_parser = clap::value_parser!(u8).range(0..=32))]
    dns_rrl_ipv4_prefix: Option<u8>,

    /// IPv6 clients whose addresses share this many leading bits count as
    /// one [default: 64].
    #[arg(long, value_name = "BITS", env = "POOLWATCH_DNS_RRL_IPV6_PREFIX",
          value_parser = clap::value_parser!(u8).range(0..=128))]
    dns_rrl_ipv6_prefix: Option<u8>,

    /// Buckets in the rate table, 24 bytes each, allocated once: the table
    /// never grows, however many source addresses send (a bucket another
    /// prefix needs is reused) [default: 1000000].
    #[arg(long, value_name = "N", env = "POOLWATCH_DNS_RRL_SIZE")]
    dns_rrl_size: Option<usize>,
}

impl RrlArgs {
    /// Flags, then the file's `[dns_rrl]`, then NSD's defaults.
    pub fn config(&self, file: &FileDnsRrl) -> Result<RrlConfig> {
        let d = RrlConfig::default();
        let cfg = RrlConfig {
            rate: self.dns_rrl_rate.or(file.rate).unwrap_or(d.rate),
            slip: self.dns_rrl_slip.or(file.slip).unwrap_or(d.slip),
            ipv4_prefix: self
                .dns_rrl_ipv4_prefix
                .or(file.ipv4_prefix)
                .unwrap_or(d.ipv4_prefix),
            ipv6_prefix: self
                .dns_rrl_ipv6_prefix
                .or(file.ipv6_prefix)
                .unwrap_or(d.ipv6_prefix),
            size: self.dns_rrl_size.or(file.size).unwrap_or(d.size),
        };
        cfg.validate()
            .map_err(|e| usage(format!("DNS rate limiting ([dns_rrl]): {e}")))?;
        Ok(cfg)
    }
}
