//! The phones' side: download the export files, check them, find the
//! published keys in the sighting logs, score, notify.
//!
//! # What every phone does, and how the simulation does it at city scale
//!
//! A phone checks every 4 to 6 hours: it fetches the index, downloads the
//! files it has not seen, verifies their signatures, streams their keys
//! through its matcher and scores the days. Done literally for 30,000 phones
//! and 67,000 published keys (mostly the fake keys that pad small batches)
//! that is 2 × 10⁹ key derivations; the work is avoided, not the answers:
//!
//! 1. **Files are checked once.** Every phone downloads the same bytes, so
//!    each zip is opened, its signature verified and its keys read once
//!    ([`crate::device_adapter::check_file`]); the downloads and checks of
//!    each phone are counted (bytes per phone per day, server work).
//! 2. **Keys are found through what was broadcast.** For each UTC day, the
//!    RPIs of the published keys of that day are derived once and put in a
//!    directory (64-bit prefix → key); every RPI every app user could have
//!    broadcast that day is derived and looked up. A key whose RPIs nobody
//!    broadcast (every fake key) cannot be in any log. A key that someone
//!    broadcast can only be in the logs of the phones that met that someone
//!    while the key was valid.
//! 3. **Those phones run the real matcher.** Each such phone builds its full
//!    sighting log (every encounter with every app user, heard through the
//!    radio model), indexes it (`SightingIndex`) and, at each of its checks,
//!    streams the newly published keys that reached it through
//!    `match_keys`, decrypts the AEMs, cuts exposure windows and applies the
//!    day rule — exactly the device's path.
//!
//! A phone not reached in step 2 would have matched nothing: its matcher
//! only reports keys whose RPIs are in its log, and its log holds only the
//! RPIs of phones it met. [`Matching::Exhaustive`] runs step 3 for every
//! app user with every key instead; a test checks both give the same
//! notifications.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::NaiveDate;
use en_protocol::crypto::{AesBlock, RpiCipher};
use en_protocol::export::{ExposureKey, VerificationKey};
use en_protocol::exposure_configuration::ExposureWindow;
use en_protocol::matcher::SightingIndex;
use en_protocol::time::TEK_ROLLING_PERIOD;
use serde::Serialize;

use crate::backend::PublishedFile;
use crate::config::{Matching, SimConfig};
use crate::device_adapter::{check_file, contact_days, daily_key, file_keys, windows_of};
use crate::progress::Progress;
use crate::radio::{AttenuationBin, Broadcasts, DISTANCE_BINS_M, Ear, day_interval};
use crate::scoring::Scoring;
use crate::time::{DAY, SimTime};
use crate::world::World;

/// A published key, as phones read it.
#[derive(Debug)]
pub struct KeyRecord {
    /// The key.
    pub key: ExposureKey,
    /// Index of its file in publication order.
    pub file: u32,
    /// The app users who broadcast its RPIs (normally one; found through the
    /// directory, used only to attribute matches in the report).
    pub senders: Vec<u32>,
}

/// What one phone that met a broadcaster of a published key found.
#[derive(Debug, Clone, PartialEq)]
pub struct HearerOutcome {
    /// The phone's owner.
    pub person: u32,
    /// When it notified, per scoring variant (COCOA's first).
    pub notified_at: Vec<Option<SimTime>>,
    /// Contact dates shown at the first notification (COCOA's scoring).
    pub dates: Vec<NaiveDate>,
    /// Registered people whose keys alone make a contact day for this phone
    /// (COCOA's scoring, every window).
    pub detected_senders: Vec<u32>,
    /// Keys that matched.
    pub matched_keys: u32,
    /// Sightings in the log.
    pub sightings: u32,
    /// Keys streamed through its matcher.
    pub keys_matched: u64,
}

/// The phones' work, as the simulation did it and as the phones would.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PhoneWork {
    /// Distinct files opened and verified by the simulation.
    pub files_checked: u64,
    /// Files refused (bad signature, region, format).
    pub files_refused: u64,
    /// Keys read from the files.
    pub keys_read: u64,
    /// File downloads by all phones (each verified on the phone).
    pub file_downloads: u64,
    /// Index downloads by all phones (one per check).
    pub index_downloads: u64,
    /// Keys all phones would stream through their matchers.
    pub keys_streamed_by_phones: u64,
    /// UTC days for which a directory of published keys was built.
    pub directory_days: u64,
    /// RPIs of published keys put in the directories.
    pub key_rpis_indexed: u64,
    /// RPIs broadcast by app users, derived and looked up.
    pub broadcast_rpis_looked_up: u64,
    /// Published keys someone broadcast.
    pub keys_broadcast_by_someone: u64,
    /// (phone, key) pairs sent to a phone's matcher.
    pub candidate_pairs: u64,
    /// Phones whose log was built and matched.
    pub logs_built: u64,
    /// Sightings generated in those logs.
    pub sightings_generated: u64,
    /// Keys streamed through those matchers.
    pub keys_matched: u64,
    /// Keys that matched.
    pub key_matches: u64,
}

/// Bytes downloaded per phone.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DownloadStats {
    /// Mean over app users, bytes per day.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// Maximum.
    pub max: f64,
    /// Bytes per app user on each day (index and files).
    pub per_day: Vec<f64>,
}

/// Everything the phones did.
#[derive(Debug, Clone, Default)]
pub struct FleetResult {
    /// Phones that ran the matcher, by person id.
    pub outcomes: Vec<HearerOutcome>,
    /// Work.
    pub work: PhoneWork,
    /// Estimated attenuation by true distance ([`DISTANCE_BINS_M`]), over
    /// every sighting generated.
    pub attenuation: Vec<AttenuationBin>,
    /// Downloads.
    pub downloads: DownloadStats,
    /// Files refused, with the reason.
    pub refused: Vec<(String, String)>,
    /// Seconds spent in each step (not deterministic; not in the summary).
    pub timings: Vec<(String, f64)>,
}

/// A hasher for keys that are already random (RPI bits).
#[derive(Debug, Default, Clone, Copy)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

type Directory = HashMap<u64, u32, BuildHasherDefault<PassThrough>>;

fn prefix(block: &AesBlock) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&block[..8]);
    u64::from_le_bytes(b)
}

/// Runs `f` over `items` on `threads` threads, each item once, and returns
/// the results in item order.
fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < 2 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads.min(items.len()) {
            scope.spawn(|| {
                let mut local = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    local.push((i, f(&items[i])));
                }
                results
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(local);
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_unstable_by_key(|r| r.0);
    results.into_iter().map(|r| r.1).collect()
}

/// Reads and checks every file; the keys in publication order.
fn read_files(
    files: &[PublishedFile],
    verification_keys: &[VerificationKey],
    region: &str,
    work: &mut PhoneWork,
    refused: &mut Vec<(String, String)>,
) -> Vec<KeyRecord> {
    let mut keys = Vec::new();
    for (i, f) in files.iter().enumerate() {
        work.files_checked += 1;
        match check_file(&f.zip, verification_keys, region).and_then(|bin| file_keys(&bin)) {
            Ok(ks) => {
                work.keys_read += ks.len() as u64;
                keys.extend(ks.into_iter().map(|k| KeyRecord {
                    key: k,
                    file: i as u32,
                    senders: Vec::new(),
                }));
            }
            Err(reason) => {
                work.files_refused += 1;
                refused.push((f.path.clone(), reason));
            }
        }
    }
    keys
}

/// Step 2: who broadcast each key's RPIs.
fn find_senders(
    world: &World,
    config: &SimConfig,
    keys: &mut [KeyRecord],
    threads: usize,
    work: &mut PhoneWork,
    progress: &dyn Progress,
) {
    let users: Vec<u32> = (0..world.population.len() as u32)
        .filter(|&p| world.population.people[p as usize].phone.is_some())
        .collect();
    let first_day = world.calendar.utc_day(0);
    let last_day = world.calendar.utc_day(world.end() - 1);
    let mut by_day: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (i, k) in keys.iter().enumerate() {
        let start = i64::from(k.key.rolling_start_interval_number.get());
        let end = start + i64::from(k.key.rolling_period.max(1));
        let period = i64::from(TEK_ROLLING_PERIOD);
        for day in start / period..=(end - 1) / period {
            if (first_day..=last_day).contains(&day) {
                by_day.entry(day).or_default().push(i as u32);
            }
        }
    }
    progress.phase("published-key directory", by_day.len() as u64);
    let chunk = users.len().div_ceil(threads.max(1) * 8).max(1);
    let user_chunks: Vec<&[u32]> = users.chunks(chunk).collect();
    let period = i64::from(TEK_ROLLING_PERIOD);
    for (day, key_ids) in by_day {
        // The RPIs the published keys of that day stand for.
        let keys_ref: &[KeyRecord] = keys;
        let id_chunks: Vec<&[u32]> = key_ids.chunks(1024).collect();
        let parts = parallel_map(&id_chunks, threads, |ids| {
            let mut out = Vec::with_capacity(ids.len() * TEK_ROLLING_PERIOD as usize);
            let mut blocks = [AesBlock::default(); TEK_ROLLING_PERIOD as usize];
            for &i in *ids {
                let k = &keys_ref[i as usize].key;
                let start = i64::from(k.rolling_start_interval_number.get());
                let end = start + i64::from(k.rolling_period);
                let lo = start.max(day * period);
                let hi = end.min((day + 1) * period);
                if lo >= hi {
                    continue;
                }
                let blocks = &mut blocks[..(hi - lo) as usize];
                RpiCipher::new(&k.key_data.rpik())
                    .rpis_into(en_protocol::EnIntervalNumber::new(lo as u32), blocks);
                out.extend(blocks.iter().map(|b| (prefix(b), i)));
            }
            out
        });
        let total: usize = parts.iter().map(Vec::len).sum();
        let mut directory = Directory::with_capacity_and_hasher(total, Default::default());
        for part in parts {
            directory.extend(part);
        }
        work.directory_days += 1;
        work.key_rpis_indexed += total as u64;
        // Every RPI every app user broadcast that day, looked up.
        let found = parallel_map(&user_chunks, threads, |part| {
            let mut out: Vec<(u32, u32)> = Vec::new();
            let mut blocks = [AesBlock::default(); TEK_ROLLING_PERIOD as usize];
            for &p in *part {
                let key = daily_key(config.seed, p, day);
                RpiCipher::new(&key.tek.rpik()).rpis_into(day_interval(day), &mut blocks);
                for b in &blocks {
                    if let Some(&i) = directory.get(&prefix(b)) {
                        out.push((i, p));
                    }
                }
            }
            out
        });
        work.broadcast_rpis_looked_up += users.len() as u64 * u64::from(TEK_ROLLING_PERIOD);
        for (i, s) in found.into_iter().flatten() {
            let senders = &mut keys[i as usize].senders;
            if !senders.contains(&s) {
                senders.push(s);
            }
        }
        progress.inc(1);
    }
    for k in keys.iter_mut() {
        k.senders.sort_unstable();
    }
    work.keys_broadcast_by_someone = keys.iter().filter(|k| !k.senders.is_empty()).count() as u64;
}

/// The (phone, key) pairs to match: the app users who met a broadcaster
/// of the key while it was valid.
fn candidates(world: &World, keys: &[KeyRecord]) -> Vec<(u32, Vec<u32>)> {
    let cal = &world.calendar;
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if k.senders.is_empty() {
            continue;
        }
        let start = k.key.rolling_start_interval_number.to_unix_seconds();
        let end = start + i64::from(k.key.rolling_period) * 600;
        for &s in &k.senders {
            for id in world.encounters.of_between(s, cal.sim(start), cal.sim(end)) {
                let q = world.encounters.get(id).partner(s);
                if world.population.people[q as usize].phone.is_some() {
                    pairs.push((q, i as u32));
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    let mut out: Vec<(u32, Vec<u32>)> = Vec::new();
    for (q, i) in pairs {
        match out.last_mut() {
            Some((last, list)) if *last == q => list.push(i),
            _ => out.push((q, vec![i])),
        }
    }
    out
}

/// The checks of a phone: from its phase, every period, up to `end`.
pub fn check_times(period: u32, phase: u32, end: SimTime) -> impl Iterator<Item = SimTime> {
    let period = i64::from(period.max(60));
    (0..)
        .map(move |k| i64::from(phase) + k * period)
        .take_while(move |&t| t <= end)
}

struct HearerContext<'a> {
    world: &'a World,
    config: &'a SimConfig,
    keys: &'a [KeyRecord],
    files: &'a [PublishedFile],
    variants: &'a [Scoring],
    horizon: SimTime,
}

/// Step 3 for one phone.
fn hear_and_check(
    ctx: &HearerContext<'_>,
    q: u32,
    key_ids: &[u32],
    stats: &mut [AttenuationBin],
) -> HearerOutcome {
    let world = ctx.world;
    let people = &world.population.people;
    let me = people[q as usize];
    let models = &ctx.config.phone_models;
    let rx = &models[usize::from(me.phone.unwrap_or(0))];
    let ear = Ear {
        config: ctx.config,
        calendar: &world.calendar,
    };
    let mut broadcasts = Broadcasts::new(ctx.config);
    let mut log = Vec::new();
    for &id in world.encounters.of(q) {
        let e = world.encounters.get(id);
        let s = e.partner(q);
        let Some(model) = people[s as usize].phone else {
            continue;
        };
        let tx = &models[usize::from(model)];
        ear.hear(
            id,
            e,
            q,
            rx,
            me.scan_phase,
            s,
            tx,
            &mut broadcasts,
            &mut log,
            Some(stats),
        );
    }
    let sightings = log.len() as u32;
    let index = SightingIndex::new(log);

    let mut notified_at = vec![None; ctx.variants.len()];
    let mut dates = Vec::new();
    let mut windows: Vec<ExposureWindow> = Vec::new();
    let mut senders: Vec<Option<u32>> = Vec::new();
    let mut next = 0;
    let mut matched_keys = 0;
    let mut keys_matched = 0u64;
    for t in check_times(me.check_period, me.check_phase, ctx.horizon) {
        let from = next;
        while next < key_ids.len()
            && ctx.files[ctx.keys[key_ids[next] as usize].file as usize].published_at <= t
        {
            next += 1;
        }
        if from == next {
            continue;
        }
        let fresh = &key_ids[from..next];
        keys_matched += fresh.len() as u64;
        let matches = index.match_keys(fresh.iter().map(|&i| &ctx.keys[i as usize].key), 0);
        if matches.is_empty() {
            continue;
        }
        for m in &matches {
            let record = &ctx.keys[fresh[m.key_index] as usize];
            matched_keys += 1;
            let sender = record.senders.first().copied();
            let found = windows_of(&index, &record.key, m);
            senders.extend(std::iter::repeat_n(sender, found.len()));
            windows.extend(found);
        }
        let now = world.calendar.datetime(t);
        for (v, config) in ctx.variants.iter().enumerate() {
            if notified_at[v].is_some() {
                continue;
            }
            let days = contact_days(&windows, config, now);
            if !days.is_empty() {
                notified_at[v] = Some(t);
                if v == 0 {
                    dates = days;
                }
            }
        }
    }

    // Which registered person's keys alone make a contact day.
    let mut by_sender: BTreeMap<u32, Vec<ExposureWindow>> = BTreeMap::new();
    for (s, w) in senders.into_iter().zip(windows) {
        if let Some(s) = s {
            by_sender.entry(s).or_default().push(w);
        }
    }
    let cocoa = &ctx.variants[0];
    let last = world.calendar.datetime(ctx.horizon);
    let detected_senders = by_sender
        .into_iter()
        .filter(|(_, ws)| {
            !cocoa
                .contact_days(ws, NaiveDate::MIN, en_protocol::time::japan_date(last))
                .is_empty()
        })
        .map(|(s, _)| s)
        .collect();
    HearerOutcome {
        person: q,
        notified_at,
        dates,
        detected_senders,
        matched_keys,
        sightings,
        keys_matched,
    }
}

/// What each app user downloads: the index at every check, and each file
/// once, from the first check after it is published (while it is kept).
fn downloads(
    world: &World,
    config: &SimConfig,
    files: &[PublishedFile],
    horizon: SimTime,
    work: &mut PhoneWork,
) -> DownloadStats {
    let cal = &world.calendar;
    let mut bytes = vec![0u64; files.len() + 1];
    let mut index = vec![0u64; files.len() + 1];
    for (i, f) in files.iter().enumerate() {
        bytes[i + 1] = bytes[i] + f.zip.len() as u64;
        index[i + 1] = index[i] + f.path.len() as u64 + 1;
    }
    let keys_total: Vec<u64> = files
        .iter()
        .scan(0u64, |acc, f| {
            *acc += f.keys as u64;
            Some(*acc)
        })
        .collect();
    let days = (horizon as f64 / DAY as f64).max(1.0 / 24.0);
    let mut per_day = vec![0f64; (horizon / DAY + 1) as usize];
    let mut per_phone = Vec::new();
    let retention = config.server.retention_seconds;
    for person in &world.population.people {
        if person.phone.is_none() {
            continue;
        }
        let mut seen = 0usize;
        let mut total = 0u64;
        for t in check_times(person.check_period, person.check_phase, horizon) {
            let published = files.partition_point(|f| f.published_at <= t);
            let dropped = files.partition_point(|f| f.batch_end < cal.unix(t) - retention);
            let index_bytes = index[published] - index[dropped.min(published)];
            let first_new = seen.max(dropped).min(published);
            let file_bytes = bytes[published] - bytes[first_new];
            work.index_downloads += 1;
            work.file_downloads += (published - first_new) as u64;
            if published > first_new {
                let before = if first_new == 0 {
                    0
                } else {
                    keys_total[first_new - 1]
                };
                work.keys_streamed_by_phones += keys_total[published - 1] - before;
            }
            seen = published;
            total += index_bytes + file_bytes;
            per_day[(t / DAY) as usize] += (index_bytes + file_bytes) as f64;
        }
        per_phone.push(total as f64 / days);
    }
    let users = per_phone.len().max(1) as f64;
    per_phone.sort_by(f64::total_cmp);
    let pick = |q: f64| -> f64 {
        if per_phone.is_empty() {
            return 0.0;
        }
        per_phone[((per_phone.len() - 1) as f64 * q).round() as usize]
    };
    DownloadStats {
        mean: per_phone.iter().sum::<f64>() / users,
        p50: pick(0.5),
        p95: pick(0.95),
        max: pick(1.0),
        per_day: per_day.into_iter().map(|b| b / users).collect(),
    }
}

/// The phones' side of a run.
pub fn run_fleet(
    world: &World,
    config: &SimConfig,
    files: &[PublishedFile],
    verification_keys: &[VerificationKey],
    region: &str,
    progress: &dyn Progress,
) -> FleetResult {
    let threads = config.worker_threads();
    let horizon = world.end() + i64::from(config.follow_up_days) * DAY;
    let mut result = FleetResult::default();
    let mut clock = Instant::now();
    let mut lap = |name: &str, result: &mut FleetResult| {
        result
            .timings
            .push((name.to_owned(), clock.elapsed().as_secs_f64()));
        clock = Instant::now();
    };
    let mut keys = read_files(
        files,
        verification_keys,
        region,
        &mut result.work,
        &mut result.refused,
    );
    lap("phones: download and verify files", &mut result);
    find_senders(
        world,
        config,
        &mut keys,
        threads,
        &mut result.work,
        progress,
    );
    lap("phones: who broadcast the published keys", &mut result);
    let hearers: Vec<(u32, Vec<u32>)> = match config.matching {
        Matching::Inverted => candidates(world, &keys),
        Matching::Exhaustive => {
            let all: Vec<u32> = (0..keys.len() as u32).collect();
            (0..world.population.len() as u32)
                .filter(|&p| world.population.people[p as usize].phone.is_some())
                .map(|p| (p, all.clone()))
                .collect()
        }
    };
    result.work.candidate_pairs = hearers.iter().map(|h| h.1.len() as u64).sum();
    let variants = config.scoring_variants();
    let ctx = HearerContext {
        world,
        config,
        keys: &keys,
        files,
        variants: &variants,
        horizon,
    };
    progress.phase("phones matching", hearers.len() as u64);
    let per_hearer = parallel_map(&hearers, threads, |(q, ids)| {
        let mut stats = vec![AttenuationBin::default(); DISTANCE_BINS_M.len()];
        let outcome = hear_and_check(&ctx, *q, ids, &mut stats);
        progress.inc(1);
        (outcome, stats)
    });
    let mut attenuation = vec![AttenuationBin::default(); DISTANCE_BINS_M.len()];
    for (outcome, stats) in per_hearer {
        for (a, b) in attenuation.iter_mut().zip(&stats) {
            a.merge(b);
        }
        result.work.logs_built += 1;
        result.work.sightings_generated += u64::from(outcome.sightings);
        result.work.keys_matched += outcome.keys_matched;
        result.work.key_matches += u64::from(outcome.matched_keys);
        result.outcomes.push(outcome);
    }
    result.attenuation = attenuation;
    lap("phones: sighting logs, matching, scoring", &mut result);
    result.downloads = downloads(world, config, files, horizon, &mut result.work);
    lap("phones: downloads per check", &mut result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_start_at_the_phase_and_repeat() {
        let t: Vec<_> = check_times(4 * 3600, 100, 9 * 3600).collect();
        assert_eq!(t, [100, 100 + 4 * 3600, 100 + 8 * 3600]);
    }

    #[test]
    fn parallel_map_keeps_order() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(
            parallel_map(&items, 3, |x| x * 2),
            items.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
    }
}
