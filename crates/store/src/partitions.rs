//! PostgreSQL's time partitions of the score log and the check samples
//! (migration `0012_log_partitions.sql`; SQLite keeps plain tables and none
//! of this runs there).
//!
//! Each table is a chain of `ts` ranges with no gap: `<table>_before`
//! (MINVALUE to the oldest period), one partition per period, and
//! `<table>_after` (the end of the newest period to MAXVALUE). Two range
//! catch-alls instead of a DEFAULT partition: an insert never fails, and
//! PostgreSQL still reads the partitions in order (an "ordered Append": a
//! server's newest-first log read stops in the newest partition holding its
//! rows), which a DEFAULT partition prevents (BENCHMARKS.md, "Issue 16:
//! partitions").
//!
//! - [`Store::ensure_partitions`] (housekeeping, at start and hourly) makes
//!   the periods up to [`LOG_MONTHS_AHEAD`] / [`SAMPLE_DAYS_AHEAD`] ahead by
//!   splitting `_after`: detach it, create the periods, move the rows that
//!   fell into them (written while housekeeping was behind), attach it again
//!   above them. One transaction: a failure leaves the chain as it was.
//! - [`Store::drop_expired_partitions`] (retention) drops the periods whose
//!   whole range is older than the cutoff and widens `_before` over them
//!   (emptied first: its rows are older still); the rows it took away are
//!   counted first. The boundary period, which straddles the cutoff, is
//!   left to the row deletes that follow (`Store::housekeep`,
//!   `Store::prune_samples`): they only find rows there, so retention stays
//!   exact and the same on both backends.
//!
//! DDL takes an ACCESS EXCLUSIVE lock on the table; `lock_timeout`
//! ([`DDL_LOCK_TIMEOUT`]) gives up instead of queueing every reader and
//! writer behind a long read. A pass that gives up is logged and the next
//! one (an hour later, with periods to spare) tries again.

use crate::conn::Conn;
use crate::{Store, StoreError};

/// Months of score log partitions made ahead of the current one. The log's
/// period is a calendar month: monthly partitions keep the count low (12 a
/// year, the per-server read touches each), and two months ahead leave a
/// month of housekeeping outage before rows land in `_after` (which still
/// takes them, to be moved when the period is made).
pub const LOG_MONTHS_AHEAD: u32 = 2;
/// Days of check sample partitions made ahead of today. Samples are kept
/// days (15 by default) and read by window, so a day is the period; a
/// week ahead covers a long outage at the cost of seven empty tables.
pub const SAMPLE_DAYS_AHEAD: u32 = 7;
/// How long partition DDL waits for its table lock before giving up.
pub const DDL_LOCK_TIMEOUT: &str = "5s";

/// A period's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    Day,
    Month,
}

const DAY: i64 = 86_400;

impl Width {
    /// The start of the period holding `ts` (UTC).
    fn floor(self, ts: i64) -> i64 {
        let day = ts.div_euclid(DAY);
        match self {
            Width::Day => day * DAY,
            Width::Month => {
                let (y, m, _) = civil_from_days(day);
                days_from_civil(y, m, 1) * DAY
            }
        }
    }

    /// The start of the period after the one holding `ts`.
    fn next(self, ts: i64) -> i64 {
        match self {
            Width::Day => self.floor(ts) + DAY,
            Width::Month => {
                let (y, m, _) = civil_from_days(ts.div_euclid(DAY));
                let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                days_from_civil(y, m, 1) * DAY
            }
        }
    }

    /// The period's name suffix, as the migration names it.
    fn suffix(self, start: i64) -> String {
        let (y, m, d) = civil_from_days(start.div_euclid(DAY));
        match self {
            Width::Day => format!("p{y:04}_{m:02}_{d:02}"),
            Width::Month => format!("p{y:04}_{m:02}"),
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (the inverse of [`days_from_civil`]).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A partitioned table: its name (a closed set, also the metrics' `table`
/// label), its period and how many periods are made ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionedTable {
    pub table: &'static str,
    pub(crate) width: Width,
    pub(crate) ahead: u32,
}

pub const LOG_TABLE: PartitionedTable = PartitionedTable {
    table: "log_scores",
    width: Width::Month,
    ahead: LOG_MONTHS_AHEAD,
};
pub const SAMPLES_TABLE: PartitionedTable = PartitionedTable {
    table: "check_samples",
    width: Width::Day,
    ahead: SAMPLE_DAYS_AHEAD,
};

/// One table's partitions after [`Store::ensure_partitions`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionState {
    pub table: &'static str,
    /// Period partitions (the two catch-alls not counted).
    pub partitions: u64,
    /// Start of the oldest period and end of the newest (unix seconds).
    pub oldest: i64,
    pub newest_end: i64,
    /// Periods this call made, and rows it moved out of `_after` into them.
    pub created: u64,
    pub moved: u64,
}

/// One partition and its range; the catch-alls have `i64::MIN`/`MAX`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    name: String,
    lo: i64,
    hi: i64,
}

const PARTITIONS: &str = "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) \
     FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
     WHERE i.inhparent = $1::text::regclass";

/// `FOR VALUES FROM ('1733011200') TO (MAXVALUE)` → (lo, hi).
fn parse_bound(expr: &str) -> Option<(i64, i64)> {
    let value = |s: &str| -> Option<i64> {
        match s.trim().trim_matches('\'') {
            "MINVALUE" => Some(i64::MIN),
            "MAXVALUE" => Some(i64::MAX),
            v => v.parse().ok(),
        }
    };
    let rest = expr.strip_prefix("FOR VALUES FROM (")?;
    let (lo, rest) = rest.split_once(") TO (")?;
    Some((value(lo)?, value(rest.strip_suffix(')')?)?))
}

/// Runs one statement built here on PostgreSQL. DDL takes no binds; the
/// text holds only the table's own names (constants, the migration's and
/// this module's partition names read from `pg_class`) and integers.
async fn pg(c: &mut Conn<'_>, sql: String) -> Result<u64, StoreError> {
    match c {
        Conn::Pg(c) => Ok(sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut **c)
            .await?
            .rows_affected()),
        Conn::Sqlite(_) => Err(StoreError::Invalid(
            "partitions are PostgreSQL's only".into(),
        )),
    }
}

/// `SELECT count(*)` of one partition.
async fn count(c: &mut Conn<'_>, name: &str) -> Result<u64, StoreError> {
    match c {
        Conn::Pg(c) => {
            let (n,): (i64,) =
                sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {name}")))
                    .fetch_one(&mut **c)
                    .await?;
            Ok(n as u64)
        }
        Conn::Sqlite(_) => Ok(0),
    }
}

/// The table's partitions by range, oldest first, checked to be the
/// migration's chain (`_before`, periods, `_after`, no gap).
async fn chain(c: &mut Conn<'_>, t: PartitionedTable) -> Result<Vec<Part>, StoreError> {
    let rows: Vec<(String, String)> = c.query(PARTITIONS).bind(t.table).fetch_all().await?;
    let mut parts = rows
        .into_iter()
        .map(|(name, bound)| {
            let (lo, hi) = parse_bound(&bound).ok_or_else(|| {
                StoreError::Invalid(format!("partition {name}: unexpected bound {bound}"))
            })?;
            Ok(Part { name, lo, hi })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    parts.sort_by_key(|p| p.lo);
    let whole = parts.first().is_some_and(|p| p.lo == i64::MIN)
        && parts.last().is_some_and(|p| p.hi == i64::MAX)
        && parts.windows(2).all(|w| w[0].hi == w[1].lo);
    if !whole || parts.len() < 2 {
        return Err(StoreError::Invalid(format!(
            "{}: partitions do not cover every time without gaps",
            t.table
        )));
    }
    Ok(parts)
}

async fn lock_timeout(c: &mut Conn<'_>) -> Result<(), StoreError> {
    pg(c, format!("SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'")).await?;
    Ok(())
}

impl Store {
    /// PostgreSQL: makes each partitioned table's periods up to its
    /// periods-ahead past the one holding `now`, moving rows `_after`
    /// holds for them; the state of both tables. SQLite: nothing, `[]`.
    pub async fn ensure_partitions(&self, now: i64) -> Result<Vec<PartitionState>, StoreError> {
        if self.backend_name() != "postgres" {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for t in [LOG_TABLE, SAMPLES_TABLE] {
            out.push(self.write(async |c| ensure(c, t, now).await).await?);
        }
        Ok(out)
    }

    /// PostgreSQL: drops `t`'s periods whose whole range is before
    /// `before`, and empties `_before` when its range is; the rows they
    /// held (counted first). SQLite: 0. See the module doc for the
    /// boundary period.
    pub async fn drop_expired_partitions(
        &self,
        t: PartitionedTable,
        before: i64,
    ) -> Result<u64, StoreError> {
        if self.backend_name() != "postgres" {
            return Ok(0);
        }
        self.write(async |c| drop_expired(c, t, before).await).await
    }
}

async fn ensure(
    c: &mut Conn<'_>,
    t: PartitionedTable,
    now: i64,
) -> Result<PartitionState, StoreError> {
    let mut parts = chain(c, t).await?;
    let mut target = t.width.next(now);
    for _ in 0..t.ahead {
        target = t.width.next(target);
    }
    let after = parts.pop().expect("chain has two catch-alls");
    let mut lo = after.lo;
    let (mut created, mut moved) = (0, 0);
    if lo < target {
        lock_timeout(c).await?;
        let table = t.table;
        pg(
            c,
            format!("ALTER TABLE {table} DETACH PARTITION {}", after.name),
        )
        .await?;
        while lo < target {
            let hi = t.width.next(lo);
            let name = format!("{table}_{}", t.width.suffix(t.width.floor(lo)));
            pg(
                c,
                format!(
                    "CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ({lo}) TO ({hi})"
                ),
            )
            .await?;
            parts.push(Part { name, lo, hi });
            created += 1;
            lo = hi;
        }
        let from = &after.name;
        moved = pg(
            c,
            format!("INSERT INTO {table} SELECT * FROM {from} WHERE ts < {lo}"),
        )
        .await?;
        pg(c, format!("DELETE FROM {from} WHERE ts < {lo}")).await?;
        pg(
            c,
            format!(
                "ALTER TABLE {table} ATTACH PARTITION {from} FOR VALUES FROM ({lo}) TO (MAXVALUE)"
            ),
        )
        .await?;
    }
    let periods = &parts[1..];
    Ok(PartitionState {
        table: t.table,
        partitions: periods.len() as u64,
        oldest: periods.first().map_or(lo, |p| p.lo),
        newest_end: lo,
        created,
        moved,
    })
}

async fn drop_expired(
    c: &mut Conn<'_>,
    t: PartitionedTable,
    before: i64,
) -> Result<u64, StoreError> {
    let parts = chain(c, t).await?;
    let first = &parts[0];
    if first.hi > before {
        return Ok(0);
    }
    let expired: Vec<&Part> = parts[1..parts.len() - 1]
        .iter()
        .take_while(|p| p.hi <= before)
        .collect();
    lock_timeout(c).await?;
    let mut rows = count(c, &first.name).await?;
    if rows > 0 {
        pg(c, format!("TRUNCATE {}", first.name)).await?;
    }
    if let Some(last) = expired.last() {
        let table = t.table;
        pg(
            c,
            format!("ALTER TABLE {table} DETACH PARTITION {}", first.name),
        )
        .await?;
        for p in &expired {
            rows += count(c, &p.name).await?;
            pg(c, format!("DROP TABLE {}", p.name)).await?;
        }
        pg(
            c,
            format!(
                "ALTER TABLE {table} ATTACH PARTITION {} FOR VALUES FROM (MINVALUE) TO ({})",
                first.name, last.hi
            ),
        )
        .await?;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_calendar() {
        // 2026-12-07 14:00 UTC.
        let t = 1_796_652_000;
        assert_eq!(Width::Day.floor(t), 1_796_601_600);
        assert_eq!(Width::Day.next(t), 1_796_688_000);
        assert_eq!(Width::Month.floor(t), 1_796_083_200, "2026-12-01");
        assert_eq!(Width::Month.next(t), 1_798_761_600, "2027-01-01");
        // February of a leap year has 29 days.
        let feb = days_from_civil(2028, 2, 1) * DAY;
        assert_eq!(Width::Month.next(feb) - feb, 29 * DAY);
        assert_eq!(Width::Month.suffix(feb), "p2028_02");
        assert_eq!(Width::Day.suffix(feb), "p2028_02_01");
        for day in -800_000..800_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn bounds_parse() {
        assert_eq!(
            parse_bound("FOR VALUES FROM (MINVALUE) TO ('1733011200')"),
            Some((i64::MIN, 1_733_011_200))
        );
        assert_eq!(
            parse_bound("FOR VALUES FROM ('1') TO (MAXVALUE)"),
            Some((1, i64::MAX))
        );
        assert_eq!(parse_bound("DEFAULT"), None);
    }
}
