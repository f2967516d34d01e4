//! `admin export`: the score log, one file per UTC day, for archives and
//! analysis. Streaming (`Store::export_log_page`, a page at a time; the
//! formats in `export_formats`) and resumable: a day is written under a
//! temporary name, synced and renamed, so a file with the final name is
//! always complete, and a day whose file exists is skipped.

use super::export_formats::Format;
use crate::serve_cmd::now;
use crate::util::usage;
use anyhow::{Context, Result};
use server::admin::{format_date, parse_date};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;
use store::Store;

/// Rows read from the store at a time.
const PAGE_ROWS: i64 = 5_000;
const DAY_S: i64 = 86_400;

/// Export the score log to one file per UTC day.
///
/// Writes log_scores-YYYY-MM-DD.parquet (or .csv) into --out for every day from
/// --from to --to, both included, in UTC. Columns: id, ts (unix seconds),
/// server_ip, monitor_name (empty for the aggregate score), step, score,
/// offset (seconds), rtt_us (microseconds), stratum, leap, refid, error,
/// no_response. Parquet keeps NULLs; CSV writes them as empty fields.
///
/// Resumable: a day whose file exists is skipped, and a file appears under
/// its final name only when complete (written as .NAME.part, synced,
/// renamed), so after a crash or Ctrl-C run the same command again. A day
/// that is not over yet (today) is not exported. Rows that arrive for a
/// day after its export (an agent's spool replayed late, up to 30 days)
/// are not in its file: delete the file and export the day again.
/// An empty day gives a file with the header (CSV) or schema (Parquet) and
/// no rows. Only reads the log; safe while `serve` runs.
#[derive(clap::Args, Debug)]
#[command(after_long_help = EXPORT_EXAMPLES)]
pub(super) struct ExportArgs {
    /// First day, YYYY-MM-DD (UTC).
    #[arg(long, value_name = "DATE")]
    from: String,
    /// Last day, YYYY-MM-DD (UTC), included.
    #[arg(long, value_name = "DATE")]
    to: String,
    /// File format: parquet (Snappy-compressed columns) or csv.
    #[arg(long, value_enum)]
    format: Format,
    /// Directory for the files, created if missing [default: the current
    /// directory].
    #[arg(
        long,
        value_name = "DIR",
        default_value = ".",
        hide_default_value = true
    )]
    out: PathBuf,
}

const EXPORT_EXAMPLES: &str = "\
Examples:
  poolwatch admin export --from 2026-11-01 --to 2026-11-30 --format parquet --out /srv/archive
  poolwatch admin --database-url postgres://poolwatch@db/poolwatch export \\
      --from 2026-12-06 --to 2026-12-06 --format csv";

/// The checked arguments: midnights (UTC) of the first and last day.
pub(super) struct Plan {
    first: i64,
    last: i64,
    format: Format,
    out: PathBuf,
}

impl ExportArgs {
    /// Everything that needs no store, before it is opened: the dates, their
    /// order and a writable --out. Usage errors name the flag.
    pub(super) fn check(&self) -> Result<Plan> {
        let date = |flag: &str, s: &str| parse_date(s).map_err(|e| usage(format!("{flag}: {e}")));
        let first = date("--from", &self.from)?;
        let last = date("--to", &self.to)?;
        if first > last {
            return Err(usage(format!(
                "--from {} is after --to {}",
                self.from, self.to
            )));
        }
        writable(&self.out)?;
        Ok(Plan {
            first,
            last,
            format: self.format,
            out: self.out.clone(),
        })
    }
}

/// Creates --out if missing and proves a file can be made in it (then
/// removes that file).
fn writable(dir: &Path) -> Result<()> {
    let refuse =
        |e: std::io::Error| usage(format!("--out: cannot write to {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(refuse)?;
    let probe = dir.join(format!(".poolwatch-export-probe-{}", std::process::id()));
    File::create(&probe).map_err(refuse)?;
    std::fs::remove_file(&probe).map_err(refuse)
}

/// What one run did.
#[derive(Default)]
struct Totals {
    days: u64,
    rows: u64,
    bytes: u64,
    skipped: u64,
    not_over: u64,
}

pub(super) async fn export(store: &Store, plan: Plan) -> Result<()> {
    let started = Instant::now();
    let mut t = Totals::default();
    let mut day = plan.first;
    while day <= plan.last {
        let date = format_date(day);
        let name = format!("log_scores-{date}.{}", plan.format.extension());
        let path = plan.out.join(&name);
        if day + DAY_S > now() {
            // This day and every later one: one line, however far --to is.
            let later = match (plan.last - day) / DAY_S {
                0 => String::new(),
                _ => format!(" to {}", format_date(plan.last)),
            };
            eprintln!(
                "{date}{later}: not over until {} 00:00 UTC; not exported (a later run will)",
                format_date(day + DAY_S)
            );
            t.not_over += ((plan.last - day) / DAY_S + 1) as u64;
            break;
        } else if path.exists() {
            eprintln!("{date}: {} exists; skipped", path.display());
            t.skipped += 1;
        } else {
            let day_started = Instant::now();
            let (rows, bytes) = export_day(store, plan.format, day, &plan.out, &name).await?;
            println!(
                "{date}  {name}  {rows} rows  {bytes} bytes  {:.1} s",
                day_started.elapsed().as_secs_f64()
            );
            t.days += 1;
            t.rows += rows;
            t.bytes += bytes;
        }
        day += DAY_S;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "exported {} day(s): {} rows, {} bytes in {secs:.1} s ({:.0} rows/s); \
         skipped {} existing, {} not over",
        t.days,
        t.rows,
        t.bytes,
        t.rows as f64 / secs.max(1e-9),
        t.skipped,
        t.not_over
    );
    Ok(())
}

/// Writes one day into `.NAME.part` and renames it to NAME once complete
/// and synced; on failure the partial file is removed (and a later run
/// would replace one left by a crash). (rows, bytes).
async fn export_day(
    store: &Store,
    format: Format,
    day: i64,
    dir: &Path,
    name: &str,
) -> Result<(u64, u64)> {
    let part = dir.join(format!(".{name}.part"));
    let result = write_day(store, format, day, &part).await;
    let (rows, file) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
    };
    let bytes = file.metadata()?.len();
    drop(file);
    let path = dir.join(name);
    std::fs::rename(&part, &path)
        .with_context(|| format!("cannot rename {} to {}", part.display(), path.display()))?;
    // The rename itself is durable only once the directory is synced.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok((rows, bytes))
}

/// The day's rows, page by page, into a new file at `part` (truncating a
/// leftover); the file comes back synced.
async fn write_day(store: &Store, format: Format, day: i64, part: &Path) -> Result<(u64, File)> {
    let file = File::create(part).with_context(|| format!("cannot create {}", part.display()))?;
    let mut w = format.open(file)?;
    let mut after = None;
    let mut rows = 0u64;
    loop {
        let page = store
            .export_log_page(day, day + DAY_S, after, PAGE_ROWS)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.key());
        rows += page.len() as u64;
        w.push(page)?;
    }
    let file = w.finish()?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", part.display()))?;
    Ok((rows, file))
}
