//! Vendor zones (issue 17): the names `<vendor>.<zone>` and
//! `0`–`3.<vendor>.<zone>` that answer as the apex or a chosen pool zone.
//! The store keeps the list; the rules for a vendor's name and zone are the
//! `dns` crate's (`dns::check_vendor_name`, `dns::vendor_zone`), applied by
//! `poolwatch admin vendor` before anything is written.

use crate::{Store, StoreError, constraint, non_empty, touched};

/// Longest note on a vendor, in characters.
pub const VENDOR_NOTE_MAX: usize = 500;

/// One vendor zone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct VendorRow {
    /// Its label, e.g. `debian`.
    pub name: String,
    /// The pool zone it answers from: `@` (the apex), `europe`, `de`, ….
    pub zone: String,
    /// The operator's note (who asked, a ticket), `''` when none.
    pub note: String,
    /// When the name was first added, unix seconds (kept by a replace).
    pub created_on: i64,
}

const INSERT: &str = "INSERT INTO vendor_zones (name, zone, note, created_on) \
     VALUES ($1, $2, $3, $4) RETURNING name, zone, note, created_on";

const UPSERT: &str = "INSERT INTO vendor_zones (name, zone, note, created_on) \
     VALUES ($1, $2, $3, $4) \
     ON CONFLICT (name) DO UPDATE SET zone = excluded.zone, note = excluded.note \
     RETURNING name, zone, note, created_on";

const LIST: &str = "SELECT name, zone, note, created_on FROM vendor_zones ORDER BY name";

const DELETE: &str = "DELETE FROM vendor_zones WHERE name = $1";

impl Store {
    /// Adds the vendor `name` answering from `zone` (`@` for the apex).
    /// An existing name is a `Conflict` unless `replace`, which changes its
    /// zone and note and keeps its `created_on`.
    pub async fn add_vendor(
        &self,
        name: &str,
        zone: &str,
        note: &str,
        replace: bool,
        now: i64,
    ) -> Result<VendorRow, StoreError> {
        non_empty("vendor name", name)?;
        non_empty("vendor zone", zone)?;
        if note.chars().count() > VENDOR_NOTE_MAX {
            return Err(StoreError::Invalid(format!(
                "vendor note: at most {VENDOR_NOTE_MAX} characters"
            )));
        }
        self.write(async |c| {
            c.query(if replace { UPSERT } else { INSERT })
                .bind(name)
                .bind(zone)
                .bind(note)
                .bind(now)
                .fetch_one()
                .await
                .map_err(|e| {
                    constraint(
                        e,
                        || format!("vendor '{name}' (give --replace to change it)"),
                        String::new,
                    )
                })
        })
        .await
    }

    /// Every vendor zone, by name.
    pub async fn vendors(&self) -> Result<Vec<VendorRow>, StoreError> {
        self.read(async |c| Ok(c.query(LIST).fetch_all().await?))
            .await
    }

    /// Removes the vendor `name`; `NotFound` when there is none.
    pub async fn remove_vendor(&self, name: &str) -> Result<(), StoreError> {
        self.write(async |c| {
            let rows = c.query(DELETE).bind(name).execute().await?;
            touched(rows, || format!("vendor '{name}'"))
        })
        .await
    }
}
