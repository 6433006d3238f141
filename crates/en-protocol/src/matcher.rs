//! The matcher: which diagnosis keys did this phone hear?
//!
//! A phone keeps a log of the advertisements it heard (its *sightings*). To
//! check for exposure it derives, for every published diagnosis key, the RPIs
//! the key's owner broadcast, and looks each one up in the log. A sighting of
//! `RPI(j)` counts when it was heard within ±2 hours (12 intervals) of
//! interval `j` (PROTOCOLS.md §1).
//!
//! The work is dominated by the keys (millions a day at Japan's peak) and not
//! by the log (at most ~100,000 sightings over 14 days), so:
//!
//! * the log is indexed once ([`SightingIndex`]), in memory proportional to
//!   the log; keys are streamed through and never stored;
//! * per key the cost is one HKDF (six SHA-256 compressions with the fixed
//!   salt precomputed, see [`crate::crypto`]), one AES key schedule and one
//!   batch AES call over the key's intervals that can meet the log, reading
//!   its input (`PaddedData`, the same for every key of a day) from a buffer
//!   built once per day rather than per key;
//! * the index is split by UTC day: an RPI of day `d` can only match what was
//!   heard from 2 hours before `d` to 2 hours after it, and one day's part is
//!   small enough that its filter stays in L1 and its table in L2. Keys are
//!   taken in chunks and matched day by day (export files list keys sorted by
//!   key bytes, i.e. in random day order);
//! * each RPI goes through three stages, all indexed by the RPI's own random
//!   bits (no hashing: RPIs are AES outputs): a 16 KB one-bit sieve (17 bits
//!   of the RPI; about eight branch-free instructions per RPI, passes ~6 %),
//!   then the day's Bloom filter (passes ~0.2 % of those), then its hash
//!   table;
//! * the AEMK is derived, and AEMs decrypted, only for keys that matched.
//!
//! Measured with `cocoa bench match`, `cargo run --release -p en-protocol
//! --example match_perf` and `cargo bench -p en-protocol --bench matcher`;
//! the README has the numbers and the CPU's floor (`scripts/bench-floor`).
//! With the HKDF and the AES at the speed `openssl speed` measures, the
//! lookups and the key handling are what is left above the floor.

use std::thread;

use crate::crypto::{AesBlock, diagnosis_key_rpi_cipher_bytes, padded_blocks};
use crate::keys::{Aem, BluetoothMetadata, Rpi, Tek};
use crate::time::{
    EN_INTERVAL_SECONDS, EnIntervalNumber, MATCH_TOLERANCE_INTERVALS, TEK_ROLLING_PERIOD,
};

/// One advertisement the phone heard: RPI and AEM, when, how loud, and how
/// many seconds of contact this observation stands for (the time since the
/// previous scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    /// The Rolling Proximity Identifier heard.
    pub rpi: Rpi,
    /// The Associated Encrypted Metadata heard with it.
    pub aem: Aem,
    /// Received signal strength, dBm.
    pub rssi: i8,
    /// When it was heard, Unix seconds.
    pub at: i64,
    /// Seconds of contact this observation accounts for.
    pub seconds: u32,
}

/// A published diagnosis key as the matcher needs it. Implemented by the
/// export file's key types ([`ExposureKey`](crate::export::ExposureKey),
/// [`KeyRecord`](crate::export::KeyRecord)) and by `(Tek, start, period)`
/// tuples.
pub trait DiagnosisKey {
    /// The key bytes (published, so no longer secret).
    fn key_bytes(&self) -> &[u8; 16];
    /// First interval of validity.
    fn rolling_start(&self) -> EnIntervalNumber;
    /// Number of intervals of validity (1..=144).
    fn rolling_period(&self) -> u32;
}

impl DiagnosisKey for crate::export::ExposureKey {
    fn key_bytes(&self) -> &[u8; 16] {
        self.key_data.as_bytes()
    }
    fn rolling_start(&self) -> EnIntervalNumber {
        self.rolling_start_interval_number
    }
    fn rolling_period(&self) -> u32 {
        self.rolling_period
    }
}

impl DiagnosisKey for crate::export::KeyRecord {
    fn key_bytes(&self) -> &[u8; 16] {
        &self.key_data
    }
    fn rolling_start(&self) -> EnIntervalNumber {
        self.rolling_start_interval_number
    }
    fn rolling_period(&self) -> u32 {
        self.rolling_period
    }
}

impl DiagnosisKey for (Tek, EnIntervalNumber, u32) {
    fn key_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
    fn rolling_start(&self) -> EnIntervalNumber {
        self.1
    }
    fn rolling_period(&self) -> u32 {
        self.2
    }
}

/// One sighting that matched a diagnosis key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The interval `j` whose `RPI(j)` was heard.
    pub interval: EnIntervalNumber,
    /// Index of the sighting in [`SightingIndex::sightings`].
    pub sighting: usize,
}

/// A diagnosis key that matched, with every sighting of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMatch {
    /// Position of the key in the stream given to the matcher.
    pub key_index: usize,
    /// The matching sightings, in time order.
    pub hits: Vec<Hit>,
}

/// A matched sighting with its metadata decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedSighting {
    /// The sighting.
    pub sighting: Sighting,
    /// The interval of the RPI that matched.
    pub interval: EnIntervalNumber,
    /// The decrypted metadata (version and TX power of the sender).
    pub metadata: BluetoothMetadata,
    /// `TX power − RSSI`, in dB, clamped to 0..=255.
    pub attenuation_db: u8,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    rpi: [u8; 16],
    /// Range of this RPI's sightings in `SightingIndex::sightings`.
    start: u32,
    end: u32,
}

/// The index of the RPIs that can match keys of one UTC day: those heard
/// from 2 hours before the day to 2 hours after it. About 8,000 RPIs for a
/// full log, so its filter stays in cache while the keys of that day are
/// matched.
#[derive(Debug, Clone)]
struct DayIndex {
    /// First sieve: one bit per value of the RPI's low 17 bits (16 KB, in
    /// L1). Cheap enough to run on every RPI; passes ~6 % of random RPIs
    /// for a full day.
    prefix: Box<[u64; PREFIX_WORDS]>,
    /// Second sieve: a blocked Bloom filter, three bits in one 64-bit word per RPI and
    /// 16 to 32 bits per RPI (32 KB at most for a full day, so it stays in
    /// L1/L2): a clear bit proves the RPI was not heard; about one random
    /// RPI in 500 passes on to the table, whose lines are cold, so each
    /// false pass costs a trip to memory.
    filter: Vec<u64>,
    filter_shift: u32,
    /// Open-addressing table, at most half full: 0 empty, else
    /// `fingerprint << 32 | (entry + 1)`.
    table: Vec<u64>,
    table_mask: u64,
}

/// The phone's sighting log, indexed for matching. Memory is proportional to
/// the log (under 100 bytes per sighting), never to the number of keys.
#[derive(Debug, Clone)]
pub struct SightingIndex {
    /// Sightings sorted by RPI, then time.
    sightings: Vec<Sighting>,
    /// Interval of each sighting (parallel to `sightings`); `None` for times
    /// that have no interval, which therefore never match.
    intervals: Vec<Option<u32>>,
    /// One entry per distinct RPI.
    entries: Vec<Entry>,
    /// UTC day number (interval / 144) of `days[0]`.
    first_day: u32,
    /// One index per UTC day the log can match.
    days: Vec<DayIndex>,
}

/// The random bits of an RPI, split for the index: `h` (bytes 0..8) picks
/// the filter word (top bits) and the table slot (low bits); `hi` (bytes
/// 8..16) gives the 32-bit fingerprint (low half) and the filter bit
/// positions within the word (high half). RPIs are AES outputs, so their
/// bits are already uniformly random: no hashing needed.
#[inline]
fn rpi_bits(rpi: &[u8; 16]) -> (u64, u64) {
    let v = u128::from_le_bytes(*rpi);
    (v as u64, (v >> 64) as u64)
}

/// Words of the first sieve: 2^17 bits.
const PREFIX_WORDS: usize = (1 << 17) / 64;

/// The first sieve's bit for an RPI: 17 of the bits of its first 32, the
/// word from the top 11 and the bit within it from the low 6 (so that one
/// 32-bit load serves, and `bt` does the masking).
#[inline(always)]
fn prefix_bits(rpi: &[u8]) -> (usize, u32) {
    let low = u32::from_le_bytes([rpi[0], rpi[1], rpi[2], rpi[3]]);
    ((low >> 21) as usize, low & 63)
}

#[inline]
fn fingerprint(hi: u64) -> u32 {
    // A fingerprint of 0 would read as an empty slot; fold it onto 1.
    (hi as u32).max(1)
}

#[inline]
fn filter_mask(hi: u64) -> u64 {
    (1u64 << ((hi >> 32) & 63)) | (1u64 << ((hi >> 38) & 63)) | (1u64 << ((hi >> 44) & 63))
}

impl DayIndex {
    fn new(entries: &[Entry], members: &[u32]) -> Self {
        let mut prefix = Box::new([0u64; PREFIX_WORDS]);
        let filter_words = (members.len() / 4).next_power_of_two().max(1);
        // `checked_shr` maps the shift of 64 (one word) to word 0.
        let filter_shift = 64 - filter_words.trailing_zeros();
        let table_len = (members.len() * 2).next_power_of_two().max(16);
        let table_mask = table_len as u64 - 1;
        let mut filter = vec![0u64; filter_words];
        let mut table = vec![0u64; table_len];
        for &n in members {
            let (h, hi) = rpi_bits(&entries[n as usize].rpi);
            let (word, bit) = prefix_bits(&entries[n as usize].rpi);
            prefix[word] |= 1 << bit;
            filter[h.checked_shr(filter_shift).unwrap_or(0) as usize] |= filter_mask(hi);
            let mut slot = h & table_mask;
            while table[slot as usize] != 0 {
                slot = (slot + 1) & table_mask;
            }
            table[slot as usize] = (u64::from(fingerprint(hi)) << 32) | (u64::from(n) + 1);
        }
        Self {
            prefix,
            filter,
            filter_shift,
            table,
            table_mask,
        }
    }

    /// The first sieve over up to 64 RPIs: bit `i` of the result is set
    /// when `rpis[i]` passes. Branch-free, about eight instructions an RPI.
    #[inline(always)]
    fn sieve(&self, rpis: &[AesBlock]) -> u64 {
        let prefix = &*self.prefix;
        let one = |bits: u64, rpi: &AesBlock| {
            let (word, bit) = prefix_bits(rpi);
            (bits << 1) | ((prefix[word] >> bit) & 1)
        };
        // Last RPI first, so that the first ends up in bit 0; four at a time
        // to spare loop counting.
        let quads = rpis.rchunks_exact(4);
        let first = quads.remainder();
        let bits = quads.fold(0, |bits, q| {
            one(one(one(one(bits, &q[3]), &q[2]), &q[1]), &q[0])
        });
        first.iter().rev().fold(bits, one)
    }

    /// Whether the filter lets `rpi` through (false: certainly not heard).
    #[inline]
    fn may_contain(&self, rpi: &[u8; 16]) -> bool {
        let (h, hi) = rpi_bits(rpi);
        let want = filter_mask(hi);
        self.filter[h.checked_shr(self.filter_shift).unwrap_or(0) as usize] & want == want
    }

    /// The entry number of `rpi`, if it was heard.
    #[inline]
    fn find(&self, entries: &[Entry], rpi: &[u8; 16]) -> Option<usize> {
        let (h, hi) = rpi_bits(rpi);
        let fp = fingerprint(hi);
        let mut slot = h & self.table_mask;
        loop {
            let v = self.table[slot as usize];
            if v == 0 {
                return None;
            }
            if (v >> 32) as u32 == fp {
                let n = (v & 0xffff_ffff) as usize - 1;
                if &entries[n].rpi == rpi {
                    return Some(n);
                }
            }
            slot = (slot + 1) & self.table_mask;
        }
    }

    fn memory_bytes(&self) -> usize {
        (PREFIX_WORDS + self.filter.capacity() + self.table.capacity()) * 8
    }
}

/// Keys are matched in chunks of this many, grouped by day so that one
/// day's index stays in cache while its keys go through.
const CHUNK: usize = 8192;

/// Words of the bit mask of a key's RPIs that passed the first sieve.
const PASSED_WORDS: usize = (TEK_ROLLING_PERIOD as usize).div_ceil(64);

/// A key of a chunk in [`SightingIndex::match_keys`]: its position in the
/// stream, its intervals clipped to the log, and its bytes (published
/// diagnosis keys, so copying them is harmless).
#[derive(Debug, Clone, Copy, Default)]
struct ChunkKey {
    key_index: usize,
    lo: u32,
    hi: u32,
    tek: [u8; 16],
}

/// Where one key's RPIs are looked up.
#[derive(Debug, Clone, Copy)]
struct Span<'a> {
    /// Position of the key in the stream.
    key_index: usize,
    /// Interval of the first RPI.
    lo: u32,
    /// Number of RPIs.
    n: usize,
    /// A key that does not start at UTC midnight spans two days: its RPIs
    /// before `split` belong to the first, the others to the second.
    split: usize,
    /// The index of each of the two days, if the log has one.
    days: [Option<&'a DayIndex>; 2],
}

impl SightingIndex {
    /// Indexes a sighting log.
    pub fn new(mut sightings: Vec<Sighting>) -> Self {
        sightings.sort_unstable_by(|a, b| a.rpi.cmp(&b.rpi).then(a.at.cmp(&b.at)));
        let intervals: Vec<Option<u32>> = sightings
            .iter()
            .map(|s| {
                EnIntervalNumber::from_unix_seconds(s.at)
                    .ok()
                    .map(EnIntervalNumber::get)
            })
            .collect();

        let mut entries: Vec<Entry> = Vec::new();
        for (i, s) in sightings.iter().enumerate() {
            match entries.last_mut() {
                Some(e) if e.rpi == s.rpi.0 => e.end = i as u32 + 1,
                _ => entries.push(Entry {
                    rpi: s.rpi.0,
                    start: i as u32,
                    end: i as u32 + 1,
                }),
            }
        }

        // The days each RPI can match: the day of every sighting, widened by
        // the tolerance (a sighting at 00:30 can match an RPI of 23:00 the
        // day before).
        let day_of = |i: u32| i / TEK_ROLLING_PERIOD;
        let valid = intervals.iter().flatten();
        let first_day = valid
            .clone()
            .map(|&i| day_of(i.saturating_sub(MATCH_TOLERANCE_INTERVALS)))
            .min();
        let last_day = valid
            .map(|&i| day_of(i.saturating_add(MATCH_TOLERANCE_INTERVALS)))
            .max();
        let (first_day, days) = match (first_day, last_day) {
            (Some(first), Some(last)) => {
                let mut members: Vec<Vec<u32>> = vec![Vec::new(); (last - first + 1) as usize];
                for (n, e) in entries.iter().enumerate() {
                    let mut previous = None;
                    for i in intervals[e.start as usize..e.end as usize].iter().flatten() {
                        let lo = day_of(i.saturating_sub(MATCH_TOLERANCE_INTERVALS));
                        let hi = day_of(i.saturating_add(MATCH_TOLERANCE_INTERVALS));
                        for d in lo..=hi {
                            // Sightings of one RPI are in time order, so a
                            // repeated day is always the previous one.
                            if previous.is_none_or(|p| d > p) {
                                members[(d - first) as usize].push(n as u32);
                                previous = Some(d);
                            }
                        }
                    }
                }
                (
                    first,
                    members.iter().map(|m| DayIndex::new(&entries, m)).collect(),
                )
            }
            _ => (0, Vec::new()),
        };
        Self {
            sightings,
            intervals,
            entries,
            first_day,
            days,
        }
    }

    /// The sightings, in the order [`Hit::sighting`] refers to.
    pub fn sightings(&self) -> &[Sighting] {
        &self.sightings
    }

    /// Number of sightings.
    pub fn len(&self) -> usize {
        self.sightings.len()
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.sightings.is_empty()
    }

    /// Bytes of memory held by the index.
    pub fn memory_bytes(&self) -> usize {
        self.sightings.capacity() * size_of::<Sighting>()
            + self.intervals.capacity() * size_of::<Option<u32>>()
            + self.entries.capacity() * size_of::<Entry>()
            + self.days.iter().map(DayIndex::memory_bytes).sum::<usize>()
    }

    /// The day index for intervals of UTC day `day`, if the log has one.
    fn day(&self, day: u32) -> Option<&DayIndex> {
        self.days.get(day.checked_sub(self.first_day)? as usize)
    }

    /// The intervals of a key that can meet the log: its validity clipped
    /// to the days the log can match.
    fn clip<K: DiagnosisKey + ?Sized>(&self, key: &K) -> Option<(u32, u32)> {
        let start = key.rolling_start().get();
        let period = key.rolling_period().min(TEK_ROLLING_PERIOD);
        let log_start = self.first_day.saturating_mul(TEK_ROLLING_PERIOD);
        let log_end = (self.first_day + self.days.len() as u32).saturating_mul(TEK_ROLLING_PERIOD);
        let lo = start.max(log_start);
        let hi = start.saturating_add(period).min(log_end);
        (lo < hi).then_some((lo, hi))
    }

    /// Matches one key; `key_index` is copied into the result.
    pub fn match_key<K: DiagnosisKey + ?Sized>(
        &self,
        key: &K,
        key_index: usize,
    ) -> Option<KeyMatch> {
        let (lo, hi) = self.clip(key)?;
        let mut padded = [AesBlock::default(); TEK_ROLLING_PERIOD as usize];
        padded_blocks(EnIntervalNumber::new(lo), &mut padded);
        let mut rpis = [AesBlock::default(); TEK_ROLLING_PERIOD as usize];
        diagnosis_key_rpi_cipher_bytes(key.key_bytes()).rpis_from_padded(&padded, &mut rpis);
        let span = self.span(key_index, lo, hi);
        self.finish(&span, &rpis, &self.sieve(&span, &rpis))
    }

    /// Where the RPIs of intervals `lo .. hi` of a key are looked up.
    fn span(&self, key_index: usize, lo: u32, hi: u32) -> Span<'_> {
        let day = lo / TEK_ROLLING_PERIOD;
        Span {
            key_index,
            lo,
            n: (hi - lo) as usize,
            split: (((day + 1) * TEK_ROLLING_PERIOD).min(hi) - lo) as usize,
            days: [self.day(day), self.day(day + 1)],
        }
    }

    /// The first sieve over a key's RPIs: bit `i` of the result is set when
    /// `rpis[i]` passes. Without branches, so the loads overlap, and into a
    /// bit mask held in registers: writing the results to a list at a
    /// position that depends on earlier results made every load wait for the
    /// one before it and once cost half the matching time (and, tried again
    /// as a branch-free list, costs more in the sieve than it saves after).
    #[inline(always)]
    fn sieve(
        &self,
        span: &Span<'_>,
        rpis: &[AesBlock; TEK_ROLLING_PERIOD as usize],
    ) -> [u64; PASSED_WORDS] {
        let mut passed = [0u64; PASSED_WORDS];
        // One word of the mask at a time, cut in two where the day changes.
        for (word, bits) in passed.iter_mut().enumerate() {
            let (start, end) = (word * 64, ((word + 1) * 64).min(span.n));
            for (from, to) in [(start, end.min(span.split)), (start.max(span.split), end)] {
                if from >= to {
                    continue;
                }
                if let Some(index) = span.days[usize::from(from >= span.split)] {
                    *bits |= index.sieve(&rpis[from..to]) << (from - start);
                }
            }
        }
        passed
    }

    /// The second sieve and the table, for the RPIs that passed the first.
    fn finish(
        &self,
        span: &Span<'_>,
        rpis: &[AesBlock; TEK_ROLLING_PERIOD as usize],
        passed: &[u64; PASSED_WORDS],
    ) -> Option<KeyMatch> {
        let mut hits = Vec::new();
        for (word_index, &word) in passed.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                let offset = word_index * 64 + word.trailing_zeros() as usize;
                word &= word - 1;
                let Some(index) = span.days[usize::from(offset >= span.split)] else {
                    continue;
                };
                let rpi = &rpis[offset];
                if index.may_contain(rpi.as_ref()) {
                    self.collect_hits(index, rpi, span.lo + offset as u32, &mut hits);
                }
            }
        }
        if hits.is_empty() {
            return None;
        }
        hits.sort_unstable_by_key(|h| (self.sightings[h.sighting].at, h.sighting));
        Some(KeyMatch {
            key_index: span.key_index,
            hits,
        })
    }

    /// Records the sightings of `rpi` (the RPI of interval `j`) heard within
    /// the tolerance of `j`.
    #[inline]
    fn collect_hits(&self, index: &DayIndex, rpi: &AesBlock, j: u32, hits: &mut Vec<Hit>) {
        let Some(n) = index.find(&self.entries, rpi.as_ref()) else {
            return;
        };
        let e = self.entries[n];
        for s in e.start..e.end {
            if let Some(seen) = self.intervals[s as usize]
                && seen.abs_diff(j) <= MATCH_TOLERANCE_INTERVALS
            {
                hits.push(Hit {
                    interval: EnIntervalNumber::new(j),
                    sighting: s as usize,
                });
            }
        }
    }

    /// Streams keys through the matcher on this thread. `first_index` is the
    /// stream position of the first key (for [`KeyMatch::key_index`]).
    /// Results are in stream order.
    ///
    /// Keys are taken in chunks and each chunk is matched day by day, so the
    /// small index of one day stays in cache while its keys go through:
    /// export files list keys sorted by key bytes, i.e. in random day order.
    pub fn match_keys<'k, K, I>(&self, keys: I, first_index: usize) -> Vec<KeyMatch>
    where
        K: DiagnosisKey + 'k,
        I: IntoIterator<Item = &'k K>,
    {
        let mut out = Vec::new();
        // `PaddedData` of the intervals from `padded_lo`: the same for all
        // the keys of a day, so built once per day of a chunk.
        let mut padded = [AesBlock::default(); TEK_ROLLING_PERIOD as usize];
        let mut padded_lo = None;
        let mut rpis = [AesBlock::default(); TEK_ROLLING_PERIOD as usize];
        // The keys of a chunk that can meet the log, with their key bytes
        // (read here, in stream order, rather than later in day order,
        // where every read would miss the cache), and the same grouped by day.
        let mut chunk: Vec<ChunkKey> = Vec::with_capacity(CHUNK);
        let mut by_day: Vec<ChunkKey> = Vec::with_capacity(CHUNK);
        let mut counts = vec![0u32; self.days.len() + 1];
        let mut keys = keys.into_iter().enumerate().peekable();
        while keys.peek().is_some() {
            chunk.clear();
            chunk.extend(keys.by_ref().take(CHUNK).filter_map(|(i, k)| {
                let (lo, hi) = self.clip(k)?;
                Some(ChunkKey {
                    key_index: first_index + i,
                    lo,
                    hi,
                    tek: *k.key_bytes(),
                })
            }));
            // Group by day (a counting sort: stable, so stream order within a day).
            let day_of = |k: &ChunkKey| (k.lo / TEK_ROLLING_PERIOD - self.first_day) as usize;
            counts.fill(0);
            for k in &chunk {
                counts[day_of(k) + 1] += 1;
            }
            for d in 1..counts.len() {
                counts[d] += counts[d - 1];
            }
            by_day.clear();
            by_day.resize(chunk.len(), ChunkKey::default());
            for k in &chunk {
                let slot = &mut counts[day_of(k)];
                by_day[*slot as usize] = *k;
                *slot += 1;
            }

            let before = out.len();
            for k in &by_day {
                if padded_lo != Some(k.lo) {
                    padded_blocks(EnIntervalNumber::new(k.lo), &mut padded);
                    padded_lo = Some(k.lo);
                }
                diagnosis_key_rpi_cipher_bytes(&k.tek).rpis_from_padded(&padded, &mut rpis);
                let span = self.span(k.key_index, k.lo, k.hi);
                out.extend(self.finish(&span, &rpis, &self.sieve(&span, &rpis)));
            }
            out[before..].sort_unstable_by_key(|m| m.key_index);
        }
        out
    }

    /// Matches a slice of keys on `threads` threads (1 runs on the caller's).
    /// Results are in key order, exactly as [`Self::match_keys`] returns them.
    pub fn match_keys_parallel<K: DiagnosisKey + Sync>(
        &self,
        keys: &[K],
        threads: usize,
    ) -> Vec<KeyMatch> {
        let threads = threads.clamp(1, keys.len().max(1));
        if threads == 1 {
            return self.match_keys(keys, 0);
        }
        let chunk = keys.len().div_ceil(threads);
        thread::scope(|scope| {
            let workers: Vec<_> = keys
                .chunks(chunk)
                .enumerate()
                .map(|(n, part)| scope.spawn(move || self.match_keys(part, n * chunk)))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }

    /// Decrypts the metadata of a match: derives the key's AEMK (done only
    /// for keys that matched) and computes each sighting's attenuation,
    /// `TX power − RSSI`.
    pub fn decrypt_hits(&self, tek: &Tek, m: &KeyMatch) -> Vec<MatchedSighting> {
        let aemk = tek.aemk();
        m.hits
            .iter()
            .map(|h| {
                let sighting = self.sightings[h.sighting];
                let metadata = aemk.decrypt(&sighting.rpi, &sighting.aem);
                let attenuation = i16::from(metadata.tx_power) - i16::from(sighting.rssi);
                MatchedSighting {
                    sighting,
                    interval: h.interval,
                    metadata,
                    attenuation_db: attenuation.clamp(0, 255) as u8,
                }
            })
            .collect()
    }
}

/// Seconds of the start of the interval `j`, for callers that work in time.
pub fn interval_start_seconds(j: EnIntervalNumber) -> i64 {
    i64::from(j.get()) * EN_INTERVAL_SECONDS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8, start: u32) -> (Tek, EnIntervalNumber, u32) {
        (
            Tek::from_bytes([seed; 16]),
            EnIntervalNumber::new(start),
            144,
        )
    }

    fn sighting_of(k: &(Tek, EnIntervalNumber, u32), j: u32, at_offset: i64) -> Sighting {
        let rpi = k.0.rpik().rpi(EnIntervalNumber::new(j));
        let aem = k.0.aemk().encrypt(&rpi, BluetoothMetadata::v1(-10));
        Sighting {
            rpi,
            aem,
            rssi: -60,
            at: i64::from(j) * 600 + at_offset,
            seconds: 240,
        }
    }

    const DAY: u32 = 2_650_032; // a multiple of 144

    #[test]
    fn finds_a_key_heard_during_its_interval() {
        let k = key(1, DAY);
        let other = key(2, DAY);
        let idx = SightingIndex::new(vec![
            sighting_of(&k, DAY + 50, 30),
            sighting_of(&other, DAY + 10, 0),
        ]);
        let m = idx.match_keys([&k], 0);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].hits.len(), 1);
        assert_eq!(m[0].hits[0].interval.get(), DAY + 50);
        let decrypted = idx.decrypt_hits(&k.0, &m[0]);
        assert_eq!(decrypted[0].metadata.tx_power, -10);
        assert_eq!(decrypted[0].attenuation_db, 50);
    }

    #[test]
    fn tolerance_is_two_hours_each_way() {
        let k = key(3, DAY);
        let j = DAY + 70;
        let mut s_ok_late = sighting_of(&k, j, 0);
        s_ok_late.at = i64::from(j + 12) * 600 + 599;
        let mut s_ok_early = sighting_of(&k, j, 0);
        s_ok_early.at = i64::from(j - 12) * 600;
        let mut s_late = sighting_of(&k, j, 0);
        s_late.at = i64::from(j + 13) * 600;
        let mut s_early = sighting_of(&k, j, 0);
        s_early.at = i64::from(j - 13) * 600 + 599;
        let idx = SightingIndex::new(vec![s_ok_late, s_late, s_early, s_ok_early]);
        let m = idx.match_key(&k, 7).expect("match");
        assert_eq!(m.key_index, 7);
        let times: Vec<i64> = m
            .hits
            .iter()
            .map(|h| idx.sightings()[h.sighting].at)
            .collect();
        assert_eq!(times, vec![s_ok_early.at, s_ok_late.at]);
    }

    #[test]
    fn honours_the_keys_own_rolling_period() {
        // A key valid for 10 intervals never produced RPI(start + 10).
        let (tek, start, _) = key(4, DAY);
        let short = (tek.clone(), start, 10);
        let s = sighting_of(&(tek, start, 144), DAY + 10, 0);
        let idx = SightingIndex::new(vec![s]);
        assert!(idx.match_key(&short, 0).is_none());
        let long = (short.0.clone(), start, 11);
        assert!(idx.match_key(&long, 0).is_some());
    }

    #[test]
    fn no_sightings_no_matches_and_no_panic() {
        let idx = SightingIndex::new(Vec::new());
        assert!(idx.is_empty());
        assert!(idx.match_key(&key(1, DAY), 0).is_none());
        // A key at the very end of time does not overflow.
        assert!(idx.match_key(&key(1, u32::MAX - 5), 0).is_none());
    }

    #[test]
    fn parallel_equals_serial() {
        let keys: Vec<_> = (0..200u8)
            .map(|i| key(i, DAY + 144 * u32::from(i % 3)))
            .collect();
        let sightings: Vec<_> = keys
            .iter()
            .filter(|k| k.0.as_bytes()[0] % 7 == 0)
            .map(|k| sighting_of(k, k.1.get() + 5, 0))
            .collect();
        let idx = SightingIndex::new(sightings);
        let serial = idx.match_keys(&keys, 0);
        assert_eq!(serial.len(), 29);
        for t in [2, 3, 8] {
            assert_eq!(idx.match_keys_parallel(&keys, t), serial);
        }
    }
}
