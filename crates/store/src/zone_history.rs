//! The history of each zone's server counts, one row per zone and UTC day.

use crate::{Store, StoreError};

/// One day of a zone's counts; `day` is unix seconds at 00:00 UTC.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ZoneCountRow {
    pub day: i64,
    pub v4_active: i64,
    pub v4_registered: i64,
    pub v6_active: i64,
    pub v6_registered: i64,
}

const UPSERT: &str = "INSERT INTO zone_server_counts \
     (zone_name, day, v4_active, v4_registered, v6_active, v6_registered) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (zone_name, day) DO UPDATE SET v4_active = excluded.v4_active, \
     v4_registered = excluded.v4_registered, v6_active = excluded.v6_active, \
     v6_registered = excluded.v6_registered";

const HISTORY: &str = "SELECT day, v4_active, v4_registered, v6_active, v6_registered \
     FROM zone_server_counts WHERE zone_name = $1 ORDER BY day DESC LIMIT $2";

impl Store {
    /// Record today's counts of every zone that has servers (the latest
    /// call of a day wins). Returns how many zones were written.
    pub async fn record_zone_counts(&self, now: i64) -> Result<usize, StoreError> {
        let day = now - now.rem_euclid(86_400);
        let zones: Vec<_> = self
            .zone_list(now)
            .await?
            .into_iter()
            .filter(|z| z.v4_registered + z.v6_registered > 0)
            .collect();
        self.write(async |c| {
            for z in &zones {
                c.query(UPSERT)
                    .bind(&z.name)
                    .bind(day)
                    .bind(z.v4_active)
                    .bind(z.v4_registered)
                    .bind(z.v6_active)
                    .bind(z.v6_registered)
                    .execute()
                    .await?;
            }
            Ok(zones.len())
        })
        .await
    }

    /// A zone's daily counts, newest first.
    pub async fn zone_history(
        &self,
        zone: &str,
        limit: i64,
    ) -> Result<Vec<ZoneCountRow>, StoreError> {
        self.read(async |c| Ok(c.query(HISTORY).bind(zone).bind(limit).fetch_all().await?))
            .await
    }
}
