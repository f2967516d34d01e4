//! The two file formats of `admin export`: the same columns, in the same
//! order, with the same values; only the encoding differs.
//!
//! Columns (the pool's archive fields): `id` (the log row's id), `ts`
//! (unix seconds, UTC), `server_ip`, `monitor_name` (empty for the
//! aggregate, the server's own score), `step`, `score`, `offset` (seconds),
//! `rtt_us` (microseconds, as stored), `stratum`, `leap`, `refid`, `error`,
//! `no_response`. Parquet keeps NULLs (optional columns); CSV writes them
//! as empty fields, numbers as Rust prints them (the shortest text that
//! reads back the same `f64`), the flag as `true`/`false`.

use anyhow::{Context, Result};
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DataType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use store::ExportLogRow;

/// The column names, in file order (the CSV header).
pub const LOG_COLUMNS: [&str; 13] = [
    "id",
    "ts",
    "server_ip",
    "monitor_name",
    "step",
    "score",
    "offset",
    "rtt_us",
    "stratum",
    "leap",
    "refid",
    "error",
    "no_response",
];

/// The Parquet schema of [`LOG_COLUMNS`].
const LOG_SCHEMA: &str = "message log_scores {
    required int64 id;
    required int64 ts;
    required binary server_ip (STRING);
    required binary monitor_name (STRING);
    required double step;
    required double score;
    optional double offset;
    optional int64 rtt_us;
    optional int64 stratum;
    optional int64 leap;
    optional binary refid (STRING);
    optional binary error (STRING);
    required boolean no_response;
}";

/// Rows held before they go out as one Parquet row group: memory stays
/// flat (about 25 MB more than CSV, BENCHMARKS.md) whatever a day holds,
/// and readers can skip by group.
pub const ROW_GROUP_ROWS: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Parquet,
    Csv,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Parquet => "parquet",
            Format::Csv => "csv",
        }
    }

    /// A writer of one day's file into `file`.
    pub fn open(self, file: File) -> Result<Box<dyn DayWriter>> {
        Ok(match self {
            Format::Parquet => Box::new(ParquetDay::new(file)?),
            Format::Csv => Box::new(CsvDay::new(file)?),
        })
    }
}

/// One day's file being written.
pub trait DayWriter {
    fn push(&mut self, rows: Vec<ExportLogRow>) -> Result<()>;
    /// Writes what is left (the Parquet footer) and hands the file back,
    /// flushed but not yet synced.
    fn finish(self: Box<Self>) -> Result<File>;
}

struct CsvDay {
    out: csv::Writer<BufWriter<File>>,
}

impl CsvDay {
    fn new(file: File) -> Result<CsvDay> {
        let mut out = csv::Writer::from_writer(BufWriter::with_capacity(1 << 16, file));
        out.write_record(LOG_COLUMNS)?;
        Ok(CsvDay { out })
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(T::to_string).unwrap_or_default()
}

impl DayWriter for CsvDay {
    fn push(&mut self, rows: Vec<ExportLogRow>) -> Result<()> {
        for r in &rows {
            self.out.write_record([
                r.id.to_string().as_str(),
                &r.ts.to_string(),
                &r.server_ip,
                r.monitor_name.as_deref().unwrap_or(""),
                &r.step.to_string(),
                &r.score.to_string(),
                &opt(&r.offset),
                &opt(&r.rtt_us),
                &opt(&r.stratum),
                &opt(&r.leap),
                r.refid.as_deref().unwrap_or(""),
                r.error.as_deref().unwrap_or(""),
                if r.no_response { "true" } else { "false" },
            ])?;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<File> {
        let buf = self.out.into_inner().map_err(|e| e.into_error())?;
        buf.into_inner()
            .map_err(|e| e.into_error())
            .context("flushing the CSV file")
    }
}

struct ParquetDay {
    out: SerializedFileWriter<BufWriter<File>>,
    rows: Vec<ExportLogRow>,
}

impl ParquetDay {
    fn new(file: File) -> Result<ParquetDay> {
        let schema = Arc::new(parse_message_type(LOG_SCHEMA)?);
        // Snappy: pure Rust (snap), fast, what the pool's tools read.
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let out = SerializedFileWriter::new(
            BufWriter::with_capacity(1 << 16, file),
            schema,
            Arc::new(props),
        )?;
        Ok(ParquetDay {
            out,
            rows: Vec::with_capacity(ROW_GROUP_ROWS),
        })
    }

    /// Writes the held rows as one row group, column by column.
    fn flush_group(&mut self) -> Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let mut g = self.out.next_row_group()?;
        required::<Int64Type>(&mut g, rows.iter().map(|r| r.id).collect())?;
        required::<Int64Type>(&mut g, rows.iter().map(|r| r.ts).collect())?;
        required::<ByteArrayType>(&mut g, rows.iter().map(|r| text(&r.server_ip)).collect())?;
        required::<ByteArrayType>(
            &mut g,
            rows.iter()
                .map(|r| text(r.monitor_name.as_deref().unwrap_or("")))
                .collect(),
        )?;
        required::<DoubleType>(&mut g, rows.iter().map(|r| r.step).collect())?;
        required::<DoubleType>(&mut g, rows.iter().map(|r| r.score).collect())?;
        optional::<DoubleType>(&mut g, rows.iter().map(|r| r.offset))?;
        optional::<Int64Type>(&mut g, rows.iter().map(|r| r.rtt_us))?;
        optional::<Int64Type>(&mut g, rows.iter().map(|r| r.stratum))?;
        optional::<Int64Type>(&mut g, rows.iter().map(|r| r.leap))?;
        optional::<ByteArrayType>(&mut g, rows.iter().map(|r| r.refid.as_deref().map(text)))?;
        optional::<ByteArrayType>(&mut g, rows.iter().map(|r| r.error.as_deref().map(text)))?;
        required::<BoolType>(&mut g, rows.iter().map(|r| r.no_response).collect())?;
        g.close()?;
        self.rows = rows;
        self.rows.clear();
        Ok(())
    }
}

fn text(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

/// The next column of the row group, all values present.
fn required<T: DataType>(
    g: &mut SerializedRowGroupWriter<'_, BufWriter<File>>,
    values: Vec<T::T>,
) -> Result<()> {
    let mut col = g.next_column()?.context("schema has fewer columns")?;
    col.typed::<T>().write_batch(&values, None, None)?;
    col.close()?;
    Ok(())
}

/// The next column of the row group: definition level 1 where a value
/// is present, 0 for NULL; only the present values are written.
fn optional<T: DataType>(
    g: &mut SerializedRowGroupWriter<'_, BufWriter<File>>,
    values: impl Iterator<Item = Option<T::T>>,
) -> Result<()> {
    let mut present = Vec::new();
    let mut defs = Vec::new();
    for v in values {
        defs.push(i16::from(v.is_some()));
        present.extend(v);
    }
    let mut col = g.next_column()?.context("schema has fewer columns")?;
    col.typed::<T>().write_batch(&present, Some(&defs), None)?;
    col.close()?;
    Ok(())
}

impl DayWriter for ParquetDay {
    fn push(&mut self, rows: Vec<ExportLogRow>) -> Result<()> {
        for r in rows {
            self.rows.push(r);
            if self.rows.len() >= ROW_GROUP_ROWS {
                self.flush_group()?;
            }
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<File> {
        self.flush_group()?;
        let mut buf = self.out.into_inner()?;
        buf.flush()?;
        buf.into_inner()
            .map_err(|e| e.into_error())
            .context("flushing the Parquet file")
    }
}
