//! The clock sanity check each monitor last reported.

use crate::{Backend, Store, StoreError, finish};

/// A monitor's last reported clock check.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    pub async fn set_monitor_clock(&self, c: &MonitorClock) -> Result<(), StoreError> {
        write_tx!(self, |conn, _d| {
            sqlx::query(UPSERT)
                .bind(c.monitor_id)
                .bind(c.ok)
                .bind(&c.detail)
                .bind(c.ts)
                .execute(&mut *conn)
                .await?;
            Ok(())
        })
    }

    /// Every monitor's last reported clock check.
    pub async fn monitor_clocks(&self) -> Result<Vec<MonitorClock>, StoreError> {
        let rows: Vec<(i64, bool, String, i64)> = read!(self, |conn, _d| Ok(sqlx::query_as(ALL)
            .fetch_all(&mut *conn)
            .await?))?;
        Ok(rows
            .into_iter()
            .map(|(monitor_id, ok, detail, ts)| MonitorClock {
                monitor_id,
                ok,
                detail,
                ts,
            })
            .collect())
    }
}
