//! One connection type for both backends, so every `Store` method body is
//! written (and compiled) once. The backend is chosen in one place: the
//! [`Conn`] variant, matched once per query inside [`Query`]'s methods.
//! SQL text is one `&'static str` where both dialects accept it (sqlx binds
//! `$N` placeholders on SQLite too, positionally) and a [`Sql`] pair where
//! they differ.
//!
//! Rows are named structs deriving `sqlx::FromRow` (one derive serves both
//! backends, see [`Row`]), or [`positional_row!`] on the ingest path. Reads that fold their rows into one JSON array on
//! SQLite (see [`Query::fetch_folded`]) also derive `serde::Deserialize`:
//! serde reads a struct from a JSON array field by field, in order.

use sqlx::postgres::{PgArguments, PgConnection, PgRow};
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqliteRow};
use sqlx::{Encode, FromRow, Postgres, Sqlite, Type};

/// Which SQL dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A statement whose text differs by dialect.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sql {
    pub sqlite: &'static str,
    pub pg: &'static str,
}

/// SQL text for a dialect: a plain `&'static str` serves both.
pub(crate) trait SqlText {
    fn text(&self, d: Dialect) -> &'static str;
}

impl SqlText for &'static str {
    fn text(&self, _: Dialect) -> &'static str {
        self
    }
}

impl SqlText for Sql {
    fn text(&self, d: Dialect) -> &'static str {
        match d {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.pg,
        }
    }
}

/// A row type both backends can decode: what `#[derive(sqlx::FromRow)]`
/// (or a tuple) gives.
pub(crate) trait Row:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}
impl<T> Row for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{}

/// A connection of either backend (from the read pool, or the write
/// transaction), as [`Store::read`](crate::Store) and `Store::write` hand it
/// to a method's body.
pub(crate) enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Pg(&'a mut PgConnection),
}

impl Conn<'_> {
    pub(crate) fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Pg(_) => Dialect::Postgres,
        }
    }

    /// A statement to bind and run on this connection.
    pub(crate) fn query(&mut self, sql: impl SqlText) -> Query<'_> {
        let sql = sql.text(self.dialect());
        match self {
            Conn::Sqlite(c) => Query::Sqlite(c, sqlx::query(sql)),
            Conn::Pg(c) => Query::Pg(c, sqlx::query(sql)),
        }
    }
}

/// One statement with its bound values, ready to run once.
pub(crate) enum Query<'c> {
    Sqlite(
        &'c mut SqliteConnection,
        sqlx::query::Query<'static, Sqlite, SqliteArguments>,
    ),
    Pg(
        &'c mut PgConnection,
        sqlx::query::Query<'static, Postgres, PgArguments>,
    ),
}

impl<'c> Query<'c> {
    /// Binds the next `$N`.
    pub(crate) fn bind<'t, T>(self, v: T) -> Self
    where
        T: Encode<'t, Sqlite> + Type<Sqlite> + Encode<'t, Postgres> + Type<Postgres>,
    {
        match self {
            Query::Sqlite(c, q) => Query::Sqlite(c, q.bind(v)),
            Query::Pg(c, q) => Query::Pg(c, q.bind(v)),
        }
    }

    /// Binds a list of ids: SQLite reads it as JSON text
    /// (`IN (SELECT value FROM json_each($N))`), PostgreSQL as an array
    /// (`= ANY($N)`).
    pub(crate) fn bind_ids(self, ids: &[i64]) -> Self {
        match self {
            Query::Sqlite(c, q) => Query::Sqlite(c, q.bind(ids_json(ids))),
            Query::Pg(c, q) => Query::Pg(c, q.bind(ids)),
        }
    }

    /// Runs it; the number of rows it changed.
    pub(crate) async fn execute(self) -> Result<u64, sqlx::Error> {
        Ok(match self {
            Query::Sqlite(c, q) => q.execute(c).await?.rows_affected(),
            Query::Pg(c, q) => q.execute(c).await?.rows_affected(),
        })
    }

    pub(crate) async fn fetch_one<R: Row>(self) -> Result<R, sqlx::Error> {
        match self {
            Query::Sqlite(c, q) => q.try_map(|r| R::from_row(&r)).fetch_one(c).await,
            Query::Pg(c, q) => q.try_map(|r| R::from_row(&r)).fetch_one(c).await,
        }
    }

    pub(crate) async fn fetch_optional<R: Row>(self) -> Result<Option<R>, sqlx::Error> {
        match self {
            Query::Sqlite(c, q) => q.try_map(|r| R::from_row(&r)).fetch_optional(c).await,
            Query::Pg(c, q) => q.try_map(|r| R::from_row(&r)).fetch_optional(c).await,
        }
    }

    pub(crate) async fn fetch_all<R: Row>(self) -> Result<Vec<R>, sqlx::Error> {
        match self {
            Query::Sqlite(c, q) => q.try_map(|r| R::from_row(&r)).fetch_all(c).await,
            Query::Pg(c, q) => q.try_map(|r| R::from_row(&r)).fetch_all(c).await,
        }
    }

    /// [`fetch_all`](Self::fetch_all) for a statement whose SQLite text
    /// ([`folded`]) returns all its rows as one JSON array of arrays. SQLite
    /// hands rows to sqlx one by one through a channel (~2 µs each); one
    /// JSON text is much cheaper for the reads that run in every submission
    /// and selector pass. PostgreSQL reads the rows as they are.
    pub(crate) async fn fetch_folded<R>(self) -> Result<Vec<R>, sqlx::Error>
    where
        R: Row + serde::de::DeserializeOwned,
    {
        match self {
            Query::Sqlite(c, q) => folded_json(c, q).await,
            Query::Pg(c, q) => q.try_map(|r| R::from_row(&r)).fetch_all(c).await,
        }
    }
}

/// Runs a statement that folds its rows into one JSON array of arrays
/// (SQLite, see [`folded!`]) and parses that.
pub(crate) async fn folded_json<T: serde::de::DeserializeOwned>(
    c: &mut SqliteConnection,
    q: sqlx::query::Query<'static, Sqlite, SqliteArguments>,
) -> Result<Vec<T>, sqlx::Error> {
    let (json,): (Option<String>,) = q.try_map(|r| FromRow::from_row(&r)).fetch_one(c).await?;
    match json {
        // json_group_array over no rows gives '[]'; NULL only where a
        // query has no rows to group at all.
        None => Ok(Vec::new()),
        Some(json) => serde_json::from_str(&json).map_err(|e| sqlx::Error::Decode(Box::new(e))),
    }
}

/// `[1,2,3]`.
pub(crate) fn ids_json(ids: &[i64]) -> String {
    serde_json::to_string(ids).expect("integers always serialize")
}

/// Wraps `select` (a statement with the columns `cols`, `$N` as it likes)
/// so SQLite returns its rows as one JSON array, ordered by `order`; see
/// [`Query::fetch_folded`].
macro_rules! folded {
    ($cols:expr, $order:expr, $select:expr) => {
        concat!(
            "SELECT json_group_array(json_array(",
            $cols,
            ") ORDER BY ",
            $order,
            ") FROM (",
            $select,
            ")"
        )
    };
}
pub(crate) use folded;

/// Reads a row type from consecutive columns, starting at `*i`.
pub(crate) trait FromColumns<R>: Sized {
    fn from_columns(row: &R, i: &mut usize) -> Result<Self, sqlx::Error>;
}

/// `FromRow` (both backends) that reads the fields from the columns in
/// their order, for the rows read in every submission, work call and
/// selector pass and 10,000 at a time in the log: `derive(FromRow)`
/// looks each column up by name (a hash per value), which cost PostgreSQL
/// ingest about 15 % more client CPU per result (`tests/perf.rs`). The
/// struct's fields must be in the statement's column order; a field
/// written `name(Type)` reads a nested positional struct.
macro_rules! positional_row {
    ($t:ident { $($f:ident $(($nested:ty))?),* $(,)? }) => {
        $crate::conn::positional_row!(@impl $t, sqlx::postgres::PgRow, { $($f $(($nested))?),* });
        $crate::conn::positional_row!(@impl $t, sqlx::sqlite::SqliteRow, { $($f $(($nested))?),* });
    };
    (@impl $t:ident, $row:ty, { $($f:ident $(($nested:ty))?),* }) => {
        impl $crate::conn::FromColumns<$row> for $t {
            fn from_columns(row: &$row, i: &mut usize) -> Result<Self, sqlx::Error> {
                Ok($t {
                    $($f: $crate::conn::positional_row!(@field row, i $(, $nested)?),)*
                })
            }
        }
        impl<'r> sqlx::FromRow<'r, $row> for $t {
            fn from_row(row: &'r $row) -> Result<Self, sqlx::Error> {
                <$t as $crate::conn::FromColumns<$row>>::from_columns(row, &mut 0)
            }
        }
    };
    (@field $row:ident, $i:ident) => {{
        let v = sqlx::Row::try_get($row, *$i)?;
        *$i += 1;
        v
    }};
    (@field $row:ident, $i:ident, $nested:ty) => {
        $crate::conn::FromColumns::from_columns($row, $i)?
    };
}
pub(crate) use positional_row;

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Connection as _;

    #[derive(Debug, PartialEq, sqlx::FromRow, serde::Deserialize)]
    struct Pair {
        n: i64,
        s: String,
    }

    /// The SQL text is shared with PostgreSQL only because sqlx binds
    /// SQLite's `$N` by its number, not by order of appearance.
    #[tokio::test]
    async fn sqlite_binds_dollar_placeholders_by_number() {
        let mut raw = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let mut c = Conn::Sqlite(&mut raw);
        let r: Pair = c
            .query("SELECT $2 AS n, $1 AS s")
            .bind("a")
            .bind(7i64)
            .fetch_one()
            .await
            .unwrap();
        assert_eq!(
            r,
            Pair {
                n: 7,
                s: "a".into()
            }
        );
    }

    #[tokio::test]
    async fn folded_rows_read_back_by_position() {
        let mut raw = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let mut c = Conn::Sqlite(&mut raw);
        const ROWS: Sql = Sql {
            sqlite: folded!(
                "n, s",
                "n DESC",
                "SELECT value AS n, 'x' || value AS s FROM json_each($1)"
            ),
            pg: "unused",
        };
        let rows: Vec<Pair> = c
            .query(ROWS)
            .bind_ids(&[1, 2])
            .fetch_folded()
            .await
            .unwrap();
        assert_eq!(
            rows,
            [
                Pair {
                    n: 2,
                    s: "x2".into()
                },
                Pair {
                    n: 1,
                    s: "x1".into()
                }
            ]
        );
        let none: Vec<Pair> = c.query(ROWS).bind_ids(&[]).fetch_folded().await.unwrap();
        assert!(none.is_empty());
    }
}
