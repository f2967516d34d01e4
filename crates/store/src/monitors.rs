//! Monitors: registration, status, keys, configuration.

use crate::conn::Conn;
use crate::{
    GlobalStatus, MonitorRow, NewMonitor, Store, StoreError, constraint, ip_version, non_empty,
    parse_global, parse_ip, sql, touched,
};

impl Store {
    /// Registers a monitor, active for every server of its IP version.
    /// `Conflict` on a duplicate name or key hash.
    pub async fn add_monitor(&self, new: NewMonitor, now: i64) -> Result<MonitorRow, StoreError> {
        non_empty("monitor name", &new.name)?;
        non_empty("key hash", &new.key_hash)?;
        self.write(async |c| {
            let id = insert_monitor(c, &new, None, now).await?;
            let row: MonitorRead = c.query(sql::MONITOR_BY_ID).bind(id).fetch_one().await?;
            row.row()
        })
        .await
    }

    pub async fn monitor_by_key_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<MonitorRow>, StoreError> {
        self.read(async |c| {
            let row: Option<MonitorRead> = c
                .query(sql::MONITOR_BY_KEY)
                .bind(key_hash)
                .fetch_optional()
                .await?;
            row.map(MonitorRead::row).transpose()
        })
        .await
    }

    pub async fn monitor_by_name(&self, name: &str) -> Result<Option<MonitorRow>, StoreError> {
        self.read(async |c| {
            let row: Option<MonitorRead> = c
                .query(sql::MONITOR_BY_NAME)
                .bind(name)
                .fetch_optional()
                .await?;
            row.map(MonitorRead::row).transpose()
        })
        .await
    }

    pub async fn monitor_by_id(&self, id: i64) -> Result<Option<MonitorRow>, StoreError> {
        self.read(async |c| {
            let row: Option<MonitorRead> = c
                .query(sql::MONITOR_BY_ID)
                .bind(id)
                .fetch_optional()
                .await?;
            row.map(MonitorRead::row).transpose()
        })
        .await
    }

    /// Every monitor (deleted ones too), by id.
    pub async fn list_monitors(&self) -> Result<Vec<MonitorRow>, StoreError> {
        self.read(async |c| {
            let rows: Vec<MonitorRead> = c.query(sql::MONITOR_ALL).fetch_all().await?;
            rows.into_iter().map(MonitorRead::row).collect()
        })
        .await
    }

    /// Changes a monitor's global status. A monitor brought back from
    /// `deleted` gets its missing per-server rows.
    pub async fn set_monitor_status(
        &self,
        name: &str,
        status: GlobalStatus,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let row: Option<Changed> = c
                .query(sql::MONITOR_SET_STATUS)
                .bind(name)
                .bind(status.as_str())
                .fetch_optional()
                .await?;
            let Some(Changed { id, ip_version }) = row else {
                return Err(StoreError::NotFound(format!("monitor {name:?}")));
            };
            if status != GlobalStatus::Deleted {
                c.query(sql::SERVER_SCORES_FOR_MONITOR)
                    .bind(id)
                    .bind(ip_version)
                    .execute()
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// Replaces the monitor's key hash: the old key stops working at once.
    /// `NotFound` for an unknown name, `Conflict` if another monitor has
    /// this hash.
    pub async fn set_monitor_key_hash(&self, name: &str, key_hash: &str) -> Result<(), StoreError> {
        self.write(async |c| {
            let n = c
                .query(sql::MONITOR_SET_KEY)
                .bind(name)
                .bind(key_hash)
                .execute()
                .await
                .map_err(|e| {
                    constraint(
                        e,
                        || "another monitor has this key".into(),
                        || "monitor key".into(),
                    )
                })?;
            touched(n, || format!("monitor {name:?}"))
        })
        .await
    }

    /// Writes a monitor's own settings (`monitors.config`, JSON the
    /// service reads over its defaults; `None` clears them) and an audit
    /// entry (`monitor.settings`, in the monitor's account's log when it
    /// has one) in one transaction. `NotFound` for an unknown name,
    /// `Invalid` for text that is not a JSON object.
    pub async fn set_monitor_settings(
        &self,
        name: &str,
        config: Option<&str>,
        actor: &str,
        detail: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        if let Some(text) = config
            && !serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| v.is_object())
        {
            return Err(StoreError::Invalid(
                "monitor config must be a JSON object".into(),
            ));
        }
        self.write(async |c| {
            let row: Option<MonitorRead> = c
                .query(sql::MONITOR_BY_NAME)
                .bind(name)
                .fetch_optional()
                .await?;
            let Some(row) = row else {
                return Err(StoreError::NotFound(format!("monitor {name:?}")));
            };
            c.query(sql::MONITOR_SET_CONFIG)
                .bind(name)
                .bind(config)
                .execute()
                .await?;
            crate::audit::record(
                c,
                &crate::AuditEntry {
                    account_id: row.account_id,
                    actor: actor.into(),
                    action: "monitor.settings",
                    subject: name.into(),
                    detail: detail.into(),
                },
                now,
            )
            .await
        })
        .await
    }

    /// Records that the monitor was seen now (and its client version).
    pub async fn touch_monitor(
        &self,
        id: i64,
        now: i64,
        client_version: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(async |c| {
            let n = c
                .query(sql::MONITOR_TOUCH)
                .bind(id)
                .bind(now)
                .bind(client_version)
                .execute()
                .await?;
            touched(n, || format!("monitor id {id}"))
        })
        .await
    }
}

/// Inserts `new` (from `registration_id` when it came from `agent
/// setup`) with its per-server rows, inside the caller's transaction; its
/// id. `Conflict` on a duplicate name or key hash.
pub(crate) async fn insert_monitor(
    c: &mut Conn<'_>,
    new: &NewMonitor,
    registration_id: Option<i64>,
    now: i64,
) -> Result<i64, StoreError> {
    let ip = new.ip.to_canonical();
    let version = ip_version(ip);
    let exists: Option<MonitorRead> = c
        .query(sql::MONITOR_BY_NAME)
        .bind(&new.name)
        .fetch_optional()
        .await?;
    if exists.is_some() {
        return Err(StoreError::Conflict(format!(
            "monitor {:?} already exists",
            new.name
        )));
    }
    let (id,): (i64,) = c
        .query(sql::MONITOR_INSERT)
        .bind(&new.name)
        .bind(&new.location)
        .bind(ip.to_string())
        .bind(version)
        .bind(new.account_id)
        .bind(new.status.as_str())
        .bind(&new.key_hash)
        .bind(now)
        .bind(registration_id)
        .fetch_one()
        .await
        .map_err(|e| {
            constraint(
                e,
                || "monitor key already in use".to_string(),
                || format!("account {:?} does not exist", new.account_id),
            )
        })?;
    if new.status != GlobalStatus::Deleted {
        c.query(sql::SERVER_SCORES_FOR_MONITOR)
            .bind(id)
            .bind(version)
            .execute()
            .await?;
    }
    Ok(id)
}

/// A `monitors` row as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct MonitorRead {
    id: i64,
    name: String,
    location: String,
    ip: String,
    ip_version: i64,
    account_id: Option<i64>,
    status: String,
    key_hash: String,
    config: Option<String>,
    last_seen: Option<i64>,
    last_submit_batch: Option<i64>,
    client_version: Option<String>,
    created_on: i64,
}

impl MonitorRead {
    pub(crate) fn row(self) -> Result<MonitorRow, StoreError> {
        Ok(MonitorRow {
            id: self.id,
            name: self.name,
            location: self.location,
            ip: parse_ip(&self.ip)?,
            ip_version: self.ip_version as u8,
            account_id: self.account_id,
            status: parse_global(&self.status)?,
            key_hash: self.key_hash,
            config: self.config,
            last_seen: self.last_seen,
            last_submit_batch: self.last_submit_batch,
            client_version: self.client_version,
            created_on: self.created_on,
        })
    }
}

/// The monitor whose status changed.
#[derive(sqlx::FromRow)]
struct Changed {
    id: i64,
    ip_version: i64,
}
