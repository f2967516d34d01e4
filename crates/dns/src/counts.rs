//! Client distribution on the hot path (issue 17 item 3): every address
//! answer sent adds 1 to each server in it × the client's country, and to
//! its label's answers and records; [`AnswerCounts::harvest`] turns what
//! was counted since the last harvest into [`CountReport`]s.
//!
//! Why this shape: a query must not hash a string, allocate or take a lock
//! every thread shares. So servers get dense indexes when a zone loads
//! (each [`Label`] keeps, per item of its `Weighted`, the server's index),
//! countries a fixed slot (geo's country list, then "unknown"), and a count
//! is a relaxed atomic add into `cells[server][country]`.
//!
//! Refreshes lose nothing: the cells live outside the zone, in [`Shared`]
//! (one per [`crate::ZoneStore`]), indexed by address, so a server keeps
//! its index across zone versions. Per-label counters live in the zone's
//! [`ZoneTally`], registered with `Shared`; a harvest drains every
//! registered tally, and a harvest or the next load folds a replaced
//! zone's into a per-server carry once no query can hold it (its `Arc` is
//! only the registry's), so the registry stays small even unharvested. Indexes of servers no live zone
//! holds are then reused, so memory follows the zone, not its history:
//! cells are `slots` (251) × 8 bytes per server, allocated 64 servers at a
//! time: about 20 MB at 10,000 servers.

use crate::locate::Located;
use crate::zone::Label;
use api::dns_counts::{CountReport, MAX_SERVERS_PER_REPORT, ServerCount, UNKNOWN_COUNTRY};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock};

/// Servers per allocation of cells.
const CHUNK: usize = 64;
/// Most servers counted at once (distinct addresses in the zones held
/// since the last harvest); more are answered but not counted (logged).
pub const MAX_COUNTED_SERVERS: usize = 1 << 15;
/// The index of a server that is not counted (over the limit).
const NOT_COUNTED: u32 = u32::MAX;

/// The address family of an answer: A (IPv4) or AAAA (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    V4 = 0,
    V6 = 1,
}

/// The country slots: geo's country zone names in order, then unknown.
struct Countries {
    names: Vec<String>,
    /// Slot by two-letter code, `(a - 'a') * 26 + (b - 'a')`.
    by_code: [u16; 26 * 26],
}

static COUNTRIES: LazyLock<Countries> = LazyLock::new(|| {
    let names: Vec<String> = geo::zone_tree()
        .into_iter()
        .filter(|z| geo::continent_of_country(&z.name).is_some())
        .map(|z| z.name)
        .collect();
    let mut by_code = [names.len() as u16; 26 * 26];
    for (slot, name) in names.iter().enumerate() {
        if let Some(code) = code_index(name) {
            by_code[code] = slot as u16;
        }
    }
    Countries { names, by_code }
});

fn code_index(cc: &str) -> Option<usize> {
    match cc.as_bytes() {
        [a @ b'a'..=b'z', b @ b'a'..=b'z'] => {
            Some(usize::from(a - b'a') * 26 + usize::from(b - b'a'))
        }
        _ => None,
    }
}

/// Slots per server: every country and unknown.
fn slots() -> usize {
    COUNTRIES.names.len() + 1
}

/// The country slot of the location answered for: `locate` gives
/// `[country, continent, "@"]` for a located client and `["@"]` otherwise.
pub(crate) fn country_slot(loc: &Located) -> usize {
    let c = &*COUNTRIES;
    match loc.targets.as_slice() {
        [country, _, ..] => {
            code_index(country).map_or(c.names.len(), |i| usize::from(c.by_code[i]))
        }
        _ => c.names.len(),
    }
}

fn country_name(slot: usize) -> &'static str {
    COUNTRIES
        .names
        .get(slot)
        .map_or(UNKNOWN_COUNTRY, String::as_str)
}

/// Per label, the zone-wide server index of each item of its `Weighted`s.
#[derive(Debug, Default)]
pub(crate) struct LabelIds {
    /// The label's row in its zone's [`ZoneTally`].
    index: usize,
    a: Box<[u32]>,
    aaaa: Box<[u32]>,
}

/// The cells every zone version of one store counts into.
pub(crate) struct Cells {
    slots: usize,
    /// `CHUNK` servers × `slots` each, allocated when a zone first holds them.
    chunks: Box<[OnceLock<Box<[AtomicU64]>>]>,
    /// Answers by country slot.
    by_country: Box<[AtomicU64]>,
}

impl Cells {
    fn cell(&self, id: u32, slot: usize) -> Option<&AtomicU64> {
        let id = id as usize;
        self.chunks
            .get(id / CHUNK)?
            .get()?
            .get((id % CHUNK) * self.slots + slot)
    }
}

/// An answer to count once sent: the generic path's, which learns only
/// after encoding how many records fitted.
pub(crate) struct Pending {
    label: usize,
    family: Family,
    ids: Vec<u32>,
    slot: usize,
}

impl Pending {
    /// The answer from `label` holding its `family` items `picked`, for a
    /// client in country `slot`.
    pub(crate) fn new(label: &Label, family: Family, picked: &[usize], slot: usize) -> Pending {
        let ids = match family {
            Family::V4 => &label.ids.a,
            Family::V6 => &label.ids.aaaa,
        };
        Pending {
            label: label.ids.index,
            family,
            ids: picked.iter().filter_map(|&i| ids.get(i).copied()).collect(),
            slot,
        }
    }
}

/// One label's shape, for the harvest: its pool zone and its members.
struct LabelShape {
    /// Index into [`ZoneTally::zones`].
    zone: usize,
    /// Per family: (server index, weight) of each item.
    members: [Vec<(u32, u32)>; 2],
    /// Per family: the sum of the weights.
    total: [u64; 2],
}

/// One zone version's counters: per label, answers and records per family.
pub(crate) struct ZoneTally {
    cells: Arc<Cells>,
    /// Per label: answers v4, records v4, answers v6, records v6.
    labels: Box<[[AtomicU64; 4]]>,
    shapes: Vec<LabelShape>,
    zones: Vec<Arc<str>>,
}

impl std::fmt::Debug for ZoneTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneTally")
            .field("labels", &self.labels.len())
            .finish()
    }
}

impl ZoneTally {
    /// Counts one address answer sent: from `label`, of `family`, holding
    /// the servers of `label` at item indexes `picked`, for a client in
    /// country `slot`. The hot path: relaxed atomic adds only.
    pub(crate) fn answered(&self, label: &Label, family: Family, picked: &[usize], slot: usize) {
        let ids = match family {
            Family::V4 => &label.ids.a,
            Family::V6 => &label.ids.aaaa,
        };
        self.add(
            label.ids.index,
            family,
            picked.iter().filter_map(|&i| ids.get(i).copied()),
            slot,
        );
    }

    /// Counts the answer `p` once its first `records` records were sent
    /// (none: nothing to count).
    pub(crate) fn sent(&self, p: &Pending, records: usize) {
        if records > 0 {
            self.add(
                p.label,
                p.family,
                p.ids.iter().take(records).copied(),
                p.slot,
            );
        }
    }

    fn add(&self, label: usize, family: Family, ids: impl Iterator<Item = u32>, slot: usize) {
        let mut records = 0;
        for id in ids {
            records += 1;
            if let Some(c) = self.cells.cell(id, slot) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(l) = self.labels.get(label) {
            let f = family as usize * 2;
            l[f].fetch_add(1, Ordering::Relaxed);
            l[f + 1].fetch_add(records, Ordering::Relaxed);
        }
        if let Some(c) = self.cells.by_country.get(slot) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// What a store's zones count into, and what harvests read.
pub(crate) struct Shared {
    cells: Arc<Cells>,
    index: Mutex<Index>,
    /// A random id of this process (the first part of report ids).
    process: u64,
}

/// Server indexes and the registered tallies: taken at zone load and
/// harvest only, never by a query.
struct Index {
    of: HashMap<IpAddr, u32>,
    addrs: Vec<Option<IpAddr>>,
    free: Vec<u32>,
    tallies: Vec<Arc<ZoneTally>>,
    /// The start of the interval the next harvest reports.
    since: i64,
    /// Reports made so far (the second part of report ids).
    seq: u64,
    /// Whether the server limit was logged.
    warned: bool,
    /// Label sums of replaced zones folded in at a load, for the next
    /// harvest: what keeps the registry small when harvests are rare (or
    /// never come, as in a `serve` that does not report).
    carry: BTreeMap<u32, Sums>,
}

impl Default for Shared {
    fn default() -> Self {
        let slots = slots();
        Shared {
            cells: Arc::new(Cells {
                slots,
                chunks: (0..MAX_COUNTED_SERVERS.div_ceil(CHUNK))
                    .map(|_| OnceLock::new())
                    .collect(),
                by_country: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            }),
            index: Mutex::new(Index {
                of: HashMap::new(),
                addrs: Vec::new(),
                free: Vec::new(),
                tallies: Vec::new(),
                since: now(),
                seq: 0,
                warned: false,
                carry: BTreeMap::new(),
            }),
            process: rand::random(),
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Gives every server of `labels` its index (keeping the one it has),
    /// sets the labels' [`LabelIds`] and registers the zone's tally. Label
    /// rows follow the sorted keys, so a harvest's order is stable.
    pub(crate) fn index(&self, labels: &mut HashMap<String, Label>) -> Arc<ZoneTally> {
        let mut ix = self.lock();
        ix.fold_retired();
        let mut keys: Vec<&String> = labels.keys().collect();
        keys.sort();
        let rows: HashMap<String, usize> = keys
            .into_iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i))
            .collect();
        let mut zones: Vec<Arc<str>> = Vec::new();
        let mut shapes: Vec<Option<LabelShape>> = (0..labels.len()).map(|_| None).collect();
        for (key, label) in labels.iter_mut() {
            let row = rows[key];
            let zone = match zones.iter().position(|z| *z == label.zone) {
                Some(z) => z,
                None => {
                    zones.push(label.zone.clone());
                    zones.len() - 1
                }
            };
            let a: Vec<u32> = (0..label.a.len())
                .map(|i| ix.server(&self.cells, IpAddr::V4(*label.a.get(i))))
                .collect();
            let aaaa: Vec<u32> = (0..label.aaaa.len())
                .map(|i| ix.server(&self.cells, IpAddr::V6(*label.aaaa.get(i))))
                .collect();
            let members = |ids: &[u32], weight: &dyn Fn(usize) -> u32| {
                ids.iter()
                    .enumerate()
                    .filter(|(_, id)| **id != NOT_COUNTED)
                    .map(|(i, id)| (*id, weight(i)))
                    .collect::<Vec<_>>()
            };
            shapes[row] = Some(LabelShape {
                zone,
                members: [
                    members(&a, &|i| label.a.weight(i)),
                    members(&aaaa, &|i| label.aaaa.weight(i)),
                ],
                total: [label.a.total(), label.aaaa.total()],
            });
            label.ids = LabelIds {
                index: row,
                a: a.into(),
                aaaa: aaaa.into(),
            };
        }
        let tally = Arc::new(ZoneTally {
            cells: self.cells.clone(),
            labels: (0..labels.len())
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            shapes: shapes.into_iter().flatten().collect(),
            zones,
        });
        ix.tallies.push(tally.clone());
        tally
    }
}

impl Index {
    /// Folds the label counts of replaced zones no query holds any more
    /// into `carry` and forgets them (their cells live on in [`Cells`]).
    fn fold_retired(&mut self) {
        let retired: Vec<bool> = self
            .tallies
            .iter()
            .map(|t| Arc::strong_count(t) == 1)
            .collect();
        // Pairs with the release of the last query's `Arc<Zone>`.
        fence(Ordering::Acquire);
        for (t, _) in self.tallies.iter().zip(&retired).filter(|(_, r)| **r) {
            drain_tally(t, &mut self.carry);
        }
        let mut keep = retired.iter().map(|r| !r);
        self.tallies.retain(|_| keep.next().unwrap_or(true));
    }

    /// The index of `ip`, given a new one (and its cells) if it has none.
    fn server(&mut self, cells: &Cells, ip: IpAddr) -> u32 {
        if let Some(&id) = self.of.get(&ip) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => id,
            None if self.addrs.len() < MAX_COUNTED_SERVERS => {
                self.addrs.push(None);
                (self.addrs.len() - 1) as u32
            }
            None => {
                if !self.warned {
                    tracing::warn!(
                        "more than {MAX_COUNTED_SERVERS} servers: the others are answered but not counted"
                    );
                    self.warned = true;
                }
                return NOT_COUNTED;
            }
        };
        self.addrs[id as usize] = Some(ip);
        self.of.insert(ip, id);
        cells.chunks[id as usize / CHUNK].get_or_init(|| {
            (0..CHUNK * cells.slots)
                .map(|_| AtomicU64::new(0))
                .collect()
        });
        id
    }
}

/// A handle on the answer counts of one [`crate::GeoDnsHandler`]'s zone
/// store (see [`crate::GeoDnsHandler::counts`]). Cheap to clone.
#[derive(Clone)]
pub struct AnswerCounts {
    shared: Arc<Shared>,
    instance: Arc<str>,
}

/// One server's sums while harvesting.
#[derive(Default)]
struct Sums {
    answers: BTreeMap<String, u64>,
    zone_answers: u64,
    expected: f64,
}

impl AnswerCounts {
    pub(crate) fn new(shared: Arc<Shared>, instance: Arc<str>) -> AnswerCounts {
        AnswerCounts { shared, instance }
    }

    /// Everything counted since the previous harvest (or the start), as
    /// reports of at most [`MAX_SERVERS_PER_REPORT`] servers each, over
    /// `[previous harvest, now_unix)`; empty when nothing was answered.
    pub fn harvest(&self, now_unix: i64) -> Vec<CountReport> {
        let mut ix = self.shared.lock();
        // A replaced zone whose tally only the registry holds can no longer
        // be counted into: drained now for the last time and forgotten.
        ix.fold_retired();
        let mut sums = std::mem::take(&mut ix.carry);
        let cells = &self.shared.cells;
        for (id, addr) in ix.addrs.iter().enumerate() {
            if addr.is_none() {
                continue;
            }
            for slot in 0..cells.slots {
                // Read first: most cells are 0 and stay clean in the cache.
                let n = cells.cell(id as u32, slot).map_or(0, |c| {
                    if c.load(Ordering::Relaxed) == 0 {
                        0
                    } else {
                        c.swap(0, Ordering::Relaxed)
                    }
                });
                if n > 0 {
                    let s = sums.entry(id as u32).or_default();
                    *s.answers.entry(country_name(slot).to_string()).or_default() += n;
                }
            }
        }
        let mut by_country = BTreeMap::new();
        for (slot, c) in cells.by_country.iter().enumerate() {
            let n = c.swap(0, Ordering::Relaxed);
            if n > 0 {
                by_country.insert(country_name(slot).to_string(), n);
            }
        }
        for tally in &ix.tallies {
            drain_tally(tally, &mut sums);
        }

        // Free the indexes no zone holds (their cells were just drained).
        let live: HashSet<u32> = ix
            .tallies
            .iter()
            .flat_map(|t| t.shapes.iter())
            .flat_map(|s| s.members.iter().flatten().map(|(id, _)| *id))
            .collect();
        let dead: Vec<u32> = (0..ix.addrs.len() as u32)
            .filter(|id| ix.addrs[*id as usize].is_some() && !live.contains(id))
            .collect();
        let servers: Vec<ServerCount> = sums
            .into_iter()
            .filter_map(|(id, s)| {
                Some(ServerCount {
                    ip: ix.addrs.get(id as usize).copied().flatten()?,
                    answers: s.answers,
                    zone_answers: s.zone_answers,
                    expected: s.expected,
                })
            })
            .collect();
        for id in dead {
            if let Some(ip) = ix.addrs[id as usize].take() {
                ix.of.remove(&ip);
                ix.free.push(id);
            }
        }

        let from = std::mem::replace(&mut ix.since, now_unix);
        if by_country.is_empty() && servers.is_empty() {
            return Vec::new();
        }
        let mut servers = servers;
        servers.sort_by_key(|s| s.ip);
        let mut reports = Vec::new();
        let mut rest = servers.as_slice();
        loop {
            let (part, tail) = rest.split_at(rest.len().min(MAX_SERVERS_PER_REPORT));
            ix.seq += 1;
            reports.push(CountReport {
                report_id: format!("{:016x}-{}", self.shared.process, ix.seq),
                instance: self.instance.to_string(),
                from,
                to: now_unix,
                answers_by_country: if reports.is_empty() {
                    std::mem::take(&mut by_country)
                } else {
                    BTreeMap::new()
                },
                servers: part.to_vec(),
            });
            rest = tail;
            if rest.is_empty() {
                break;
            }
        }
        reports
    }
}

/// Drains one zone version's label counters into `sums`: each server's
/// `zone_answers` (answers of its family from each pool zone it is in) and
/// `expected` (records × weight / total weight, over its labels).
fn drain_tally(tally: &ZoneTally, sums: &mut BTreeMap<u32, Sums>) {
    let counts: Vec<[u64; 4]> = tally
        .labels
        .iter()
        .map(|l| std::array::from_fn(|i| l[i].swap(0, Ordering::Relaxed)))
        .collect();
    if counts.iter().all(|c| c.iter().all(|&n| n == 0)) {
        return;
    }
    let mut zone_answers = vec![[0u64; 2]; tally.zones.len()];
    for (shape, c) in tally.shapes.iter().zip(&counts) {
        zone_answers[shape.zone][0] += c[0];
        zone_answers[shape.zone][1] += c[2];
    }
    let mut member_of: HashSet<(u32, usize, usize)> = HashSet::new();
    for (shape, c) in tally.shapes.iter().zip(&counts) {
        for family in 0..2 {
            let records = c[family * 2 + 1];
            for &(id, weight) in &shape.members[family] {
                member_of.insert((id, shape.zone, family));
                if records > 0 && shape.total[family] > 0 {
                    sums.entry(id).or_default().expected +=
                        records as f64 * f64::from(weight) / shape.total[family] as f64;
                }
            }
        }
    }
    for (id, zone, family) in member_of {
        let n = zone_answers[zone][family];
        if n > 0 {
            sums.entry(id).or_default().zone_answers += n;
        }
    }
}

#[cfg(test)]
mod tests;
