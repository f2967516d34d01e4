//! The clock sanity check each monitor last reported.

use crate::{Store, StoreError};

/// A monitor's last reported clock check.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MonitorClock {
    pub monitor_id: i64,
    pub ok: bool,
    /// The agent's one-line summary ("clock agrees with 3 reference servers", …).
    pub detail: String,
    pub ts: i64,
}

const UPSERT: &str = "INSERT INTO monitor_clock (monitor_id, ok, detail, ts) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (monitor_id) DO UPDATE SET ok = excluded.ok, detail = excluded.detail, ts = excluded.ts";
const ALL: &str = "SELECT monitor_id, ok, detail, ts FROM monitor_clock";

impl Store {
    /// Record a monitor's clock check (the latest one wins).
    pub async fn set_monitor_clock(&self, m: &MonitorClock) -> Result<(), StoreError> {
        self.write(async |c| {
            c.query(UPSERT)
                .bind(m.monitor_id)
                .bind(m.ok)
                .bind(&m.detail)
                .bind(m.ts)
                .execute()
                .await?;
            Ok(())
        })
        .await
    }

    /// Every monitor's last reported clock check.
    pub async fn monitor_clocks(&self) -> Result<Vec<MonitorClock>, StoreError> {
        self.read(async |c| Ok(c.query(ALL).fetch_all().await?))
            .await
    }
}
