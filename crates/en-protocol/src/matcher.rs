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
//!   batch AES call over the key's intervals that can meet the log;
//! * each RPI is looked up first in a small bit filter that fits in the L2
//!   cache and only then in the hash table, both indexed by the RPI's own
//!   random bits (no hashing needed: RPIs are AES outputs);
//! * the AEMK is derived, and AEMs decrypted, only for keys that matched.

use std::thread;

use crate::crypto::{AesBlock, RpiCipher};
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
/// export file's key type and by `(Tek, start, period)` tuples.
pub trait DiagnosisKey {
    /// The key bytes.
    fn tek(&self) -> &Tek;
    /// First interval of validity.
    fn rolling_start(&self) -> EnIntervalNumber;
    /// Number of intervals of validity (1..=144).
    fn rolling_period(&self) -> u32;
}

impl DiagnosisKey for (Tek, EnIntervalNumber, u32) {
    fn tek(&self) -> &Tek {
        &self.0
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

/// The phone's sighting log, indexed for matching. Memory is proportional to
/// the log (about 60 bytes per sighting), never to the number of keys.
#[derive(Debug, Clone)]
pub struct SightingIndex {
    /// Sightings sorted by RPI, then time.
    sightings: Vec<Sighting>,
    /// Interval of each sighting (parallel to `sightings`); `None` for times
    /// that have no interval, which therefore never match.
    intervals: Vec<Option<u32>>,
    /// One entry per distinct RPI.
    entries: Vec<Entry>,
    /// Open-addressing table: 0 empty, else `fingerprint << 32 | (entry + 1)`.
    table: Vec<u64>,
    table_mask: u64,
    /// A blocked Bloom filter (two bits in one 64-bit word per RPI, 16 bits
    /// per distinct RPI, so it stays in L2 for a full log): a clear bit
    /// proves the RPI was not heard, and only ~2 % of random RPIs pass on
    /// to the larger table.
    filter: Vec<u64>,
    filter_shift: u32,
    /// Interval range of the log, for skipping keys that cannot meet it.
    first_interval: u32,
    last_interval: u32,
}

/// The random bits of an RPI, split for the index: `h` (bytes 0..8) picks
/// the filter word (top bits) and the table slot (low bits); `hi` (bytes
/// 8..16) gives the 32-bit fingerprint (low half) and the two filter bit
/// positions within the word (high half).
#[inline]
fn rpi_bits(rpi: &[u8; 16]) -> (u64, u64) {
    let v = u128::from_le_bytes(*rpi);
    (v as u64, (v >> 64) as u64)
}

#[inline]
fn fingerprint(hi: u64) -> u32 {
    // A fingerprint of 0 would read as an empty slot; fold it onto 1.
    (hi as u32).max(1)
}

#[inline]
fn filter_mask(hi: u64) -> u64 {
    (1u64 << ((hi >> 32) & 63)) | (1u64 << ((hi >> 38) & 63))
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

        // Table at most half full; filter with 16 bits (a quarter word) per
        // distinct RPI.
        let table_len = (entries.len() * 2).next_power_of_two().max(64);
        let filter_words = (entries.len() / 4).next_power_of_two().max(1);
        let filter_shift = 64 - filter_words.trailing_zeros();
        let mut table = vec![0u64; table_len];
        let mut filter = vec![0u64; filter_words];
        let table_mask = table_len as u64 - 1;
        for (n, e) in entries.iter().enumerate() {
            let (h, hi) = rpi_bits(&e.rpi);
            let fp = fingerprint(hi);
            filter[h.checked_shr(filter_shift).unwrap_or(0) as usize] |= filter_mask(hi);
            let mut slot = h & table_mask;
            while table[slot as usize] != 0 {
                slot = (slot + 1) & table_mask;
            }
            table[slot as usize] = (u64::from(fp) << 32) | (n as u64 + 1);
        }

        let first_interval = intervals
            .iter()
            .flatten()
            .copied()
            .min()
            .unwrap_or(u32::MAX);
        let last_interval = intervals.iter().flatten().copied().max().unwrap_or(0);
        Self {
            sightings,
            intervals,
            entries,
            table,
            table_mask,
            filter,
            filter_shift,
            first_interval,
            last_interval,
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
            + self.table.capacity() * 8
            + self.filter.capacity() * 8
    }

    /// Whether the filter lets `rpi` through (false: certainly not heard).
    #[inline]
    fn may_contain(&self, rpi: &[u8; 16]) -> bool {
        let (h, hi) = rpi_bits(rpi);
        let want = filter_mask(hi);
        // With one word the shift would be 64, which `checked_shr` maps to word 0.
        let word = h.checked_shr(self.filter_shift).unwrap_or(0) as usize;
        self.filter[word] & want == want
    }

    #[inline]
    fn find(&self, rpi: &[u8; 16]) -> Option<&Entry> {
        let (h, hi) = rpi_bits(rpi);
        let fp = fingerprint(hi);
        let mut slot = h & self.table_mask;
        loop {
            let v = self.table[slot as usize];
            if v == 0 {
                return None;
            }
            if (v >> 32) as u32 == fp {
                let e = &self.entries[(v & 0xffff_ffff) as usize - 1];
                if &e.rpi == rpi {
                    return Some(e);
                }
            }
            slot = (slot + 1) & self.table_mask;
        }
    }

    /// The intervals of a key that can possibly meet the log: its validity,
    /// clipped to the log's span widened by the matching tolerance.
    fn candidate_intervals(&self, start: u32, period: u32) -> Option<(u32, u32)> {
        let period = period.min(TEK_ROLLING_PERIOD);
        let lo = start.max(
            self.first_interval
                .saturating_sub(MATCH_TOLERANCE_INTERVALS),
        );
        let hi = start.saturating_add(period).min(
            self.last_interval
                .saturating_add(MATCH_TOLERANCE_INTERVALS + 1),
        );
        (lo < hi).then_some((lo, hi))
    }

    /// Matches one key; `key_index` is copied into the result.
    pub fn match_key<K: DiagnosisKey + ?Sized>(
        &self,
        key: &K,
        key_index: usize,
    ) -> Option<KeyMatch> {
        let (lo, hi) = self.candidate_intervals(key.rolling_start().get(), key.rolling_period())?;
        let cipher = RpiCipher::new(&key.tek().rpik());
        let mut blocks = [AesBlock::default(); TEK_ROLLING_PERIOD as usize];
        let blocks = &mut blocks[..(hi - lo) as usize];
        cipher.rpis_into(EnIntervalNumber::new(lo), blocks);

        // First the filter over all the key's RPIs, without branches, so the
        // loads of the filter words overlap; then the table, for the few
        // RPIs that pass.
        let mut passed = [0u8; TEK_ROLLING_PERIOD as usize];
        let mut n_passed = 0;
        for (offset, block) in blocks.iter().enumerate() {
            passed[n_passed] = offset as u8;
            n_passed += usize::from(self.may_contain(block.as_ref()));
        }

        let mut hits = Vec::new();
        for &offset in &passed[..n_passed] {
            let Some(entry) = self.find(blocks[offset as usize].as_ref()) else {
                continue;
            };
            let j = lo + u32::from(offset);
            for s in entry.start..entry.end {
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
        if hits.is_empty() {
            return None;
        }
        hits.sort_unstable_by_key(|h| (self.sightings[h.sighting].at, h.sighting));
        Some(KeyMatch { key_index, hits })
    }

    /// Streams keys through the matcher on this thread. `first_index` is the
    /// stream position of the first key (for [`KeyMatch::key_index`]).
    pub fn match_keys<'k, K, I>(&self, keys: I, first_index: usize) -> Vec<KeyMatch>
    where
        K: DiagnosisKey + 'k,
        I: IntoIterator<Item = &'k K>,
    {
        keys.into_iter()
            .enumerate()
            .filter_map(|(i, k)| self.match_key(k, first_index + i))
            .collect()
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
