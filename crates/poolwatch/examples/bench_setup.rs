//! Fill a store for the agent benchmark: N lab servers counting up from a
//! base address (zone de) and one active monitor; prints the monitor's key.
//! Used by bench/agent.sh, not by tests.
//!
//! ```text
//! cargo run --release -p poolwatch --example bench_setup -- DATA_DIR COUNT BASE_IP MONITOR_IP
//! ```

use server::admin::{AddMonitor, AddServer};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use store::{GlobalStatus, Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        a.len() == 5,
        "usage: bench_setup DATA_DIR COUNT BASE_IP MONITOR_IP"
    );
    let dir = PathBuf::from(&a[1]);
    let count: u32 = a[2].parse()?;
    let base: Ipv4Addr = a[3].parse()?;
    let store = Store::open(None, &dir).await?;
    store.seed_zones(&server::admin::zone_seeds()).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    let (mut ip, mut added) = (u32::from(base), 0);
    while added < count {
        // Same addresses as `poolwatch sim`'s [generate]: skip .0 and .255.
        let o = ip.to_be_bytes();
        if o[3] != 0 && o[3] != 255 {
            let s = AddServer {
                ip: IpAddr::V4(Ipv4Addr::from(ip)),
                zone: Some("de".into()),
                netspeed: 10_000,
                account: None,
                allow_private: true,
            };
            server::admin::add_server(&store, None, s, now).await?;
            added += 1;
        }
        ip += 1;
    }
    let m = AddMonitor {
        name: "bench".into(),
        ip: a[4].parse()?,
        location: "bench".into(),
        account: None,
        status: GlobalStatus::Active,
    };
    let (_, key) = server::admin::add_monitor(&store, m, now).await?;
    println!("{key}");
    store.close().await;
    Ok(())
}
