//! The exposure check (接触確認): fetch the index, fetch and verify the served
//! configuration ([`crate::served`]), download the export files not seen before,
//! verify each against the configured public key, match their keys against the
//! sighting log, score the days, and keep what was found.
//!
//! Memory stays proportional to one file and to the sighting log, never to
//! the number of keys: files are processed one at a time, and their keys are
//! streamed out of `export.bin` in chunks straight into the matcher.

use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use en_protocol::export::{
    ExportArchive, ExposureKey, KeyRecord, TekSignatureList, VerificationKey, export_key_records,
    export_revised_key_records, read_header, read_zip, verify,
};
use en_protocol::exposure_configuration::{ExposureWindow, ReportType};
use en_protocol::matcher::{DiagnosisKey, KeyMatch, SightingIndex};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::net::{MAX_DOWNLOAD_BYTES, MAX_SMALL_BYTES, fetch, fetch_optional};
use crate::phone::Phone;
use crate::prefecture::{CentreOverride, ConsultationCentre, consultation_centre};
use crate::served::ConfigurationState;
use crate::store::{FailedFileRow, StoredExposure};
use crate::text::{Lang, Text, ja_date};

/// Keys handed to the matcher at a time.
const CHUNK: usize = 16_384;

/// The id under which a matched key is kept: SHA-256 of the key and its
/// validity, first 16 bytes (so a key published twice counts once).
pub fn key_id(k: &impl DiagnosisKey) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(k.key_bytes());
    h.update(k.rolling_start().get().to_le_bytes());
    h.update(k.rolling_period().to_le_bytes());
    h.finalize()[..16].to_vec()
}

/// How long a failed export file waits before it is tried again, after
/// `failures` failures in a row: 1 hour, doubling up to a day (a phone checks
/// every few hours, so a file that is missing for a moment is fetched at the
/// next check or the one after; one that stays missing costs one request a
/// day).
pub fn retry_delay(failures: u32) -> Duration {
    Duration::hours(1i64 << failures.saturating_sub(1).min(5)).min(Duration::hours(24))
}

/// An export file that could not be processed: not found, not downloadable,
/// or refused (unsigned, signed by another key, another region, not an
/// export file). It is tried again at later checks ([`retry_delay`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedFile {
    /// Its URL.
    pub url: String,
    /// Why (English): `not found (HTTP 404)`, `unsigned`,
    /// `signature does not verify...`.
    pub reason: String,
    /// Failures in a row so far.
    #[serde(default)]
    pub failures: u32,
    /// Whether this check tried it (false: it waits for its next attempt).
    #[serde(default)]
    pub tried: bool,
    /// When it is tried again (at the first check from then on).
    #[serde(default)]
    pub next_attempt: Option<DateTime<Utc>>,
}

impl FailedFile {
    /// Why it failed, in words for people (the `reason` is English, for logs).
    pub fn reason_text(&self) -> Text {
        let r = self.reason.as_str();
        let ja = if r.starts_with("not found") {
            "見つかりません（HTTP 404）"
        } else if r.starts_with("download failed") {
            "ダウンロードできませんでした"
        } else if r == "unsigned" {
            "署名がありません"
        } else if r.starts_with("signature does not verify") {
            "署名を確認できません（設定の公開鍵と合いません）"
        } else if r.starts_with("region ") {
            "別の地域のファイルです"
        } else {
            "接触確認のファイルとして読めません"
        };
        Text::new(ja, r)
    }

    fn of(row: &FailedFileRow, tried: bool) -> Self {
        Self {
            url: row.url.clone(),
            reason: row.reason.clone(),
            failures: row.failures,
            tried,
            next_attempt: DateTime::from_timestamp(row.next_attempt_at, 0),
        }
    }
}

/// A check that failed as a whole (the index could not be read, a setting is
/// missing...): kept until a check succeeds, so that the phone can say that
/// exposure checking does not work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckFailure {
    /// When the check ran.
    pub at: DateTime<Utc>,
    /// The error's code (`index_not_found`, `unavailable`...).
    pub code: String,
    /// What the user was told.
    pub message: Text,
}

const LAST_FAILURE: &str = "last_check_failure";

/// What one check did and found. Kept in the phone (cocoa #128: people
/// asked to see when the last check ran and what it found).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    /// When it ran.
    pub ran_at: DateTime<Utc>,
    /// Files listed in the index.
    pub files_listed: usize,
    /// Files downloaded and processed (not seen before).
    pub files_new: usize,
    /// Keys in them.
    pub keys: u64,
    /// Keys that matched the sighting log.
    pub matched_keys: usize,
    /// Files that could not be processed (tried now and failed, or waiting
    /// for their next attempt); the others were processed.
    #[serde(default, alias = "refused")]
    pub failed: Vec<FailedFile>,
    /// Contact days after this check (Japan's calendar dates of the
    /// sightings, within 14 days).
    pub contact_dates: Vec<NaiveDate>,
    /// Seconds the check took.
    pub seconds: f64,
    /// Of which: fetching the index and the files.
    #[serde(default)]
    pub fetch_seconds: f64,
    /// Unzipping and verifying signatures.
    #[serde(default)]
    pub verify_seconds: f64,
    /// Decoding, matching and scoring the keys.
    #[serde(default)]
    pub match_seconds: f64,
    /// The configuration the days were scored with (served or built-in) and what this check
    /// refused of the served one ([`crate::served`]).
    #[serde(default)]
    pub configuration: ConfigurationState,
}

/// What a notified user is told (the seed's FAQ 問2): how many contacts and
/// on which dates, and whom to call — never the time, the place or the person.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    /// When the last check ran.
    pub last_checked: Option<DateTime<Utc>>,
    /// Contacts: days with a contact (ENv2 daily summaries meeting the thresholds).
    pub contacts: usize,
    /// Their dates, `YYYY-MM-DD`, oldest first (Japan's calendar dates).
    pub dates: Vec<String>,
    /// The same dates as dates (Japan's calendar dates of the sightings);
    /// not serialized (`dates` holds them).
    #[serde(skip)]
    pub contact_dates: Vec<NaiveDate>,
    /// For each date of `dates`, the whole minutes the phone was near the positive's keys that
    /// day ([`crate::risk::minutes_on`]): how long, never the time of day.
    pub minutes: Vec<u32>,
    /// The consultation centre (受診・相談センター) of the phone's prefecture.
    pub consultation_centre: ConsultationCentre,
    /// The message.
    pub message: Text,
}

/// What `check` returns: the notification and what this check did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckReport {
    /// The notification state after the check.
    #[serde(flatten)]
    pub notification: Notification,
    /// This check.
    pub check: CheckRecord,
}

/// An entry of COCOA's `list.json`.
#[derive(Debug, Deserialize)]
struct ListEntry {
    url: String,
}

const CENTRES: &str = "consultation_centres";

/// Reads an index: `list.json` (by its name) or `index.txt`; returns the
/// file URLs, oldest first.
fn parse_index(index_url: &reqwest::Url, body: &[u8]) -> Result<Vec<reqwest::Url>> {
    let bad = |e: String| Error::UnexpectedAnswer {
        detail: format!("index {index_url}: {e}"),
    };
    let text = std::str::from_utf8(body).map_err(|e| bad(e.to_string()))?;
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let entries: Vec<String> = if index_url.path().ends_with(".json") {
        let list: Vec<ListEntry> = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        list.into_iter().map(|e| e.url).collect()
    } else {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    entries
        .iter()
        .map(|e| {
            index_url
                .join(e)
                .map_err(|err| bad(format!("{e:?}: {err}")))
        })
        .collect()
}

/// One matched key: its id, report type and exposure windows.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyExposure {
    /// [`key_id`] of the key.
    pub key_id: Vec<u8>,
    /// Its report type (export wire value; 0 when absent).
    pub report_type: i32,
    /// Its exposure windows (at least one), Android's shape, dated by Japan's calendar.
    pub windows: Vec<ExposureWindow>,
}

impl KeyExposure {
    fn stored(&self) -> std::result::Result<StoredExposure, String> {
        let last = self
            .windows
            .iter()
            .map(crate::risk::window_date)
            .max()
            .unwrap_or_default();
        Ok(StoredExposure {
            key_id: self.key_id.clone(),
            report_type: self.report_type,
            windows_json: serde_json::to_string(&self.windows).map_err(|e| e.to_string())?,
            last_day: last.to_string(),
        })
    }
}

/// What matching one file found.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMatches {
    /// Keys in the file.
    pub keys: u64,
    /// The keys that matched the sighting log.
    pub exposures: Vec<KeyExposure>,
    /// Revised keys: (key id, new report type).
    pub revisions: Vec<(Vec<u8>, i32)>,
    /// Seconds spent unzipping and verifying.
    pub verify_seconds: f64,
    /// Seconds spent decoding and matching.
    pub match_seconds: f64,
}

/// Takes an export zip apart and checks it: refused (`Err(reason)`) when it
/// is not an export file, `export.sig` holds no signature (`unsigned`), no
/// signature verifies with `verification_keys`, or its region is not
/// `region` (unless empty).
pub fn verify_file(
    zip: &[u8],
    verification_keys: &[VerificationKey],
    region: &str,
) -> std::result::Result<ExportArchive, String> {
    let archive = read_zip(zip).map_err(|e| format!("not an export file: {e}"))?;
    let signatures =
        TekSignatureList::decode(&archive.export_sig).map_err(|e| format!("export.sig: {e}"))?;
    if signatures.signatures.is_empty() {
        return Err("unsigned".into());
    }
    if verify(&archive.export_bin, &signatures, verification_keys).is_none() {
        return Err("signature does not verify with the configured public key".into());
    }
    let header = read_header(&archive.export_bin).map_err(|e| format!("export.bin: {e}"))?;
    if !region.is_empty() && header.region != region {
        return Err(format!("region {:?} is not {region:?}", header.region));
    }
    Ok(archive)
}

/// What one matched key adds: its sightings decrypted (TX power, so
/// attenuation = TX power − RSSI) and cut into exposure windows dated by Japan's calendar
/// ([`crate::risk::japan_day_windows`]), with the key's report type; `None` when no window
/// results.
pub fn key_exposure(index: &SightingIndex, key: &ExposureKey, m: &KeyMatch) -> Option<KeyExposure> {
    let matched = index.decrypt_hits(&key.key_data, m);
    let report_type = key.report_type.map_or(0, |r| r.0);
    let windows = crate::risk::japan_day_windows(
        matched,
        ReportType::try_from(report_type).unwrap_or(ReportType::Unknown),
    );
    (!windows.is_empty()).then(|| KeyExposure {
        key_id: key_id(key),
        report_type,
        windows,
    })
}

/// Streams the keys of a verified `export.bin` through the matcher in
/// chunks (memory: one chunk, never the whole file's keys). Keys are read
/// as plain [`KeyRecord`]s; only a key that matched becomes an
/// [`ExposureKey`].
pub fn match_file(
    export_bin: &[u8],
    index: &SightingIndex,
) -> std::result::Result<FileMatches, String> {
    let started = Instant::now();
    let mut keys = 0u64;
    let mut exposures = Vec::new();
    let mut chunk: Vec<KeyRecord> = Vec::with_capacity(CHUNK);
    let mut stream = export_key_records(export_bin);
    loop {
        chunk.clear();
        for k in stream.by_ref().take(CHUNK) {
            chunk.push(k.map_err(|e| format!("export.bin: {e}"))?);
        }
        if chunk.is_empty() {
            break;
        }
        keys += chunk.len() as u64;
        exposures.extend(
            index
                .match_keys(&chunk, 0)
                .iter()
                .filter_map(|m| key_exposure(index, &chunk[m.key_index].into(), m)),
        );
    }
    let mut revisions = Vec::new();
    // The pass above checked the framing of the whole file; when it met no
    // revised key, a second pass would find none and no error.
    if stream.other_list_len() > 0 {
        for k in export_revised_key_records(export_bin) {
            let k = k.map_err(|e| format!("export.bin: {e}"))?;
            revisions.push((key_id(&k), k.report_type.map_or(0, |r| r.0)));
        }
    }
    Ok(FileMatches {
        keys,
        exposures,
        revisions,
        verify_seconds: 0.0,
        match_seconds: started.elapsed().as_secs_f64(),
    })
}

/// [`verify_file`] then [`match_file`]: what the check does with one file.
pub fn process_file(
    zip: &[u8],
    verification_keys: &[VerificationKey],
    region: &str,
    index: &SightingIndex,
) -> std::result::Result<FileMatches, String> {
    let started = Instant::now();
    let archive = verify_file(zip, verification_keys, region)?;
    let verify_seconds = started.elapsed().as_secs_f64();
    let mut found = match_file(&archive.export_bin, index)?;
    found.verify_seconds = verify_seconds;
    Ok(found)
}

impl Phone {
    /// Runs an exposure check against the configured exports.
    ///
    /// One export file that cannot be processed (not found, not
    /// downloadable, refused) never stops the check: it is recorded as
    /// failed, the other files are processed, and it is tried again at a
    /// later check after [`retry_delay`] (kept in the phone's database, so
    /// the backoff survives a restart). The check itself fails when the
    /// index cannot be read — a missing index (404) is what a wrong URL looks
    /// like ([`Error::IndexNotFound`]) — and the failure is kept for
    /// [`Phone::status`] ([`CheckFailure`]) until a check succeeds. A served
    /// configuration that is refused never stops it either: the last good one (or the
    /// built-in values) scores the days, and [`CheckRecord::configuration`] says why.
    pub async fn check(&mut self) -> Result<CheckReport> {
        let ran_at = self.now();
        match self.run_check(ran_at).await {
            Ok(report) => {
                self.store.set(LAST_FAILURE, &None::<CheckFailure>)?;
                Ok(report)
            }
            Err(e) => {
                let failure = CheckFailure {
                    at: ran_at,
                    code: e.code().to_owned(),
                    message: e.check_text(),
                };
                // The check's own error matters more than a second failure
                // to write it down.
                let _ = self.store.set(LAST_FAILURE, &Some(failure));
                Err(e)
            }
        }
    }

    /// The last check, when it failed (cleared by the next successful check).
    pub fn last_check_failure(&self) -> Result<Option<CheckFailure>> {
        Ok(self
            .store
            .get::<Option<CheckFailure>>(LAST_FAILURE)?
            .flatten())
    }

    /// The export files waiting to be tried again.
    pub fn failed_files(&self) -> Result<Vec<FailedFile>> {
        Ok(self
            .store
            .failed_files()?
            .iter()
            .map(|f| FailedFile::of(f, false))
            .collect())
    }

    async fn run_check(&mut self, ran_at: DateTime<Utc>) -> Result<CheckReport> {
        let started = Instant::now();
        let index_url = self.settings.exports_url()?;
        let verification_keys = self.settings.verification_keys()?;
        self.refresh_centres().await;

        let fetching = Instant::now();
        let body = fetch_optional(&self.http, &index_url, MAX_SMALL_BYTES)
            .await?
            .ok_or_else(|| Error::IndexNotFound {
                url: index_url.to_string(),
            })?;
        let files = parse_index(&index_url, &body)?;
        // Once the index is read (a check that fails scores nothing), before scoring: the
        // days are scored with what this applies (or keeps).
        let configuration = self.refresh_configuration(&verification_keys).await?;
        let mut fetch_seconds = fetching.elapsed().as_secs_f64();
        let listed: Vec<String> = files.iter().map(reqwest::Url::to_string).collect();
        self.store.forget_failed_files_except(&listed)?;
        let mut record = CheckRecord {
            ran_at,
            files_listed: files.len(),
            files_new: 0,
            keys: 0,
            matched_keys: 0,
            failed: Vec::new(),
            contact_dates: Vec::new(),
            seconds: 0.0,
            fetch_seconds: 0.0,
            verify_seconds: 0.0,
            match_seconds: 0.0,
            configuration,
        };
        let mut index: Option<SightingIndex> = None;
        for url in files {
            let name = url.to_string();
            if self.store.file_seen(&name)? {
                continue;
            }
            let previous = self.store.failed_file(&name)?;
            if let Some(f) = &previous
                && f.next_attempt_at > ran_at.timestamp()
            {
                record.failed.push(FailedFile::of(f, false));
                continue;
            }
            let fetching = Instant::now();
            let fetched = fetch_optional(&self.http, &url, MAX_DOWNLOAD_BYTES).await;
            fetch_seconds += fetching.elapsed().as_secs_f64();
            let processed = match fetched {
                Ok(Some(zip)) => {
                    let index = match &index {
                        Some(i) => i,
                        None => index.insert(SightingIndex::new(self.store.sightings()?)),
                    };
                    // The zip is dropped once unpacked: memory holds one export.bin.
                    let verifying = Instant::now();
                    let verified = verify_file(&zip, &verification_keys, &self.settings.region);
                    drop(zip);
                    let verify_seconds = verifying.elapsed().as_secs_f64();
                    verified
                        .and_then(|archive| match_file(&archive.export_bin, index))
                        .map(|mut found| {
                            found.verify_seconds = verify_seconds;
                            found
                        })
                }
                Ok(None) => Err("not found (HTTP 404)".to_owned()),
                Err(Error::Unavailable { detail } | Error::UnexpectedAnswer { detail }) => {
                    Err(format!("download failed: {detail}"))
                }
                Err(e) => return Err(e),
            };
            match processed {
                Ok(found) => {
                    record.files_new += 1;
                    record.verify_seconds += found.verify_seconds;
                    record.match_seconds += found.match_seconds;
                    record.keys += found.keys;
                    record.matched_keys += found.exposures.len();
                    let stored = found
                        .exposures
                        .iter()
                        .map(KeyExposure::stored)
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(Error::Corrupt)?;
                    self.store.record_file(
                        &name,
                        ran_at.timestamp(),
                        found.keys,
                        &stored,
                        &found.revisions,
                    )?;
                }
                Err(reason) => {
                    let now = ran_at.timestamp();
                    let failures = previous.as_ref().map_or(0, |f| f.failures) + 1;
                    let row = FailedFileRow {
                        url: name,
                        failures,
                        reason,
                        first_failed_at: previous.as_ref().map_or(now, |f| f.first_failed_at),
                        last_failed_at: now,
                        next_attempt_at: (ran_at + retry_delay(failures)).timestamp(),
                    };
                    self.store.save_failed_file(&row)?;
                    record.failed.push(FailedFile::of(&row, true));
                }
            }
        }
        record.contact_dates = self.contact_days()?;
        record.fetch_seconds = fetch_seconds;
        record.seconds = started.elapsed().as_secs_f64();
        self.store.insert_check(ran_at.timestamp(), &record)?;
        Ok(CheckReport {
            notification: self.notification()?,
            check: record,
        })
    }

    /// Fetches the server's list of consultation centres when one is
    /// configured; on failure the last list (or the built-in table) stays.
    async fn refresh_centres(&mut self) {
        let Some(url) = self.settings.consultation_centres_url.clone() else {
            return;
        };
        let Ok(url) = reqwest::Url::parse(&url) else {
            return;
        };
        if let Ok(body) = fetch(&self.http, &url, MAX_SMALL_BYTES).await
            && let Ok(list) = serde_json::from_slice::<Vec<CentreOverride>>(&body)
        {
            let _ = self.store.set(CENTRES, &list);
        }
    }

    /// Replaces the consultation centres of the built-in table (e.g. from a
    /// file the health authority ships).
    pub fn set_consultation_centres(&mut self, list: &[CentreOverride]) -> Result<()> {
        self.store.set(CENTRES, &list)
    }

    /// The notification state: contacts and their dates since the last
    /// checks, and the consultation centre to call.
    pub fn notification(&self) -> Result<Notification> {
        let last: Option<CheckRecord> = self.store.last_check()?;
        let dates = self.contact_days()?;
        let windows = if dates.is_empty() {
            Vec::new()
        } else {
            self.exposure_windows()?
        };
        let minutes = dates
            .iter()
            .map(|d| crate::risk::minutes_on(&windows, *d))
            .collect();
        let overrides: Vec<CentreOverride> = self.store.get(CENTRES)?.unwrap_or_default();
        let centre = consultation_centre(self.settings.prefecture.as_deref(), &overrides);
        let message = notification_text(&dates, &centre, last.as_ref().map(|c| c.ran_at));
        Ok(Notification {
            last_checked: last.map(|c| c.ran_at),
            contacts: dates.len(),
            dates: dates.iter().map(NaiveDate::to_string).collect(),
            contact_dates: dates.clone(),
            minutes,
            consultation_centre: centre,
            message,
        })
    }
}

/// The text of the notification (the seed's FAQ 問2): 「接触の件数及び接触の日付を
/// 通知するとともに、各地域の受診・相談センターなどの連絡先を表示」; never the time,
/// the place or the person.
pub fn notification_text(
    dates: &[NaiveDate],
    centre: &ConsultationCentre,
    last_checked: Option<DateTime<Utc>>,
) -> Text {
    let checked_ja = last_checked
        .map(|t| {
            format!(
                "（最終確認: {}）",
                t.with_timezone(&crate::window::jst())
                    .format("%Y年%-m月%-d日 %H:%M")
            )
        })
        .unwrap_or_else(|| "（まだ確認していません）".into());
    let checked_en = last_checked
        .map(|t| {
            format!(
                " (last checked {})",
                t.with_timezone(&crate::window::jst())
                    .format("%Y-%m-%d %H:%M JST")
            )
        })
        .unwrap_or_else(|| " (not checked yet)".into());
    if dates.is_empty() {
        return Text::new(
            format!("陽性者との接触は確認されませんでした{checked_ja}。"),
            format!("No contact with a person who tested positive was found{checked_en}."),
        );
    }
    let ja_dates: Vec<String> = dates.iter().map(|d| ja_date(*d)).collect();
    // English output is all English: the centre's and the line's English
    // names (stored data from before they had one: a plain description).
    let centre_en = if centre.name_en.is_empty() {
        "your prefecture's consultation centre"
    } else {
        &centre.name_en
    };
    let contact_en = match (&centre.phone, &centre.url) {
        (Some(p), _) => format!(" ({p})"),
        (None, Some(u)) => format!(" ({u})"),
        (None, None) => String::new(),
    };
    let national_en = if centre.national_line.name_en.is_empty() {
        crate::prefecture::NATIONAL_LINE_NAME_EN
    } else {
        &centre.national_line.name_en
    };
    let national_hours_en = if centre.national_line.hours_en.is_empty() {
        crate::prefecture::NATIONAL_LINE_HOURS_EN
    } else {
        &centre.national_line.hours_en
    };
    let en_dates: Vec<String> = dates.iter().map(NaiveDate::to_string).collect();
    let contact_ja = match (&centre.phone, &centre.url) {
        (Some(p), _) => format!("{}（{}）", centre.name, p),
        (None, Some(u)) => format!("{}（{}）", centre.name, u),
        (None, None) => centre.name.clone(),
    };
    Text::new(
        format!(
            "陽性者との接触が{}件ありました{checked_ja}。接触日: {}。症状の有無にかかわらず、{}にご連絡のうえ、検査の受診などについてご相談ください。連絡先が分からない場合は{}（{}、受付時間 {}）にお問い合わせください。接触の時刻や場所、相手の情報が通知されることはありません。",
            dates.len(),
            ja_dates.join("、"),
            contact_ja,
            centre.national_line.name,
            centre.national_line.phone,
            centre.national_line.hours
        ),
        format!(
            "You had {} with a person who tested positive{checked_en}, on {}. Whether or not you have symptoms, please contact {}{} about getting tested; if you cannot reach it, call {} ({}, {}). The time, the place and the person are never disclosed.",
            crate::text::contacts_count(Lang::En, dates.len()),
            en_dates.join(", "),
            centre_en,
            contact_en,
            national_en,
            centre.national_line.phone,
            national_hours_en
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use en_protocol::Tek;
    use en_protocol::time::EnIntervalNumber;

    /// A check runs on a multi-threaded runtime (the phone UI spawns it): its future must be
    /// `Send`, so nothing of it may hold a `&Phone` across an await. A compile-time check.
    #[allow(dead_code)]
    fn the_check_can_be_spawned(p: &mut Phone) {
        fn send<T: Send>(_: T) {}
        send(p.check());
    }

    #[test]
    fn indexes_of_both_styles_resolve_against_their_url() {
        let u = reqwest::Url::parse("http://h.example/exports/index.txt").unwrap();
        let files = parse_index(&u, b"c19r/440/1.zip\n\nc19r/440/2.zip\n").unwrap();
        assert_eq!(files[1].as_str(), "http://h.example/exports/c19r/440/2.zip");
        let u = reqwest::Url::parse("http://h.example/exports/440/list.json").unwrap();
        let files = parse_index(
            &u,
            br#"[{"region":"440","url":"/exports/c19r/440/1.zip","created":1},{"region":"440","url":"https://cdn.example/2.zip","created":2}]"#,
        )
        .unwrap();
        assert_eq!(files[0].as_str(), "http://h.example/exports/c19r/440/1.zip");
        assert_eq!(files[1].as_str(), "https://cdn.example/2.zip");
        assert!(parse_index(&u, b"not json").is_err());
    }

    #[test]
    fn files_of_another_region_are_refused() {
        use en_protocol::export::{ExportMeta, SignatureInfo, SoftwareSigner, build_export};
        use rand_core::SeedableRng;
        let signer = SoftwareSigner::generate(
            &mut rand_chacha::ChaCha20Rng::seed_from_u64(1),
            SignatureInfo::new("440", "v1"),
        );
        let key = ExposureKey::new(Tek::from_bytes([1; 16]), EnIntervalNumber::new(2_650_032));
        let meta = ExportMeta {
            start_timestamp: 0,
            end_timestamp: 1,
            region: "310".into(),
        };
        let zip = build_export(&meta, vec![key], &[&signer]).unwrap();
        let keys = [signer.public_key()];
        assert_eq!(
            verify_file(&zip, &keys, "440").unwrap_err(),
            r#"region "310" is not "440""#
        );
        assert!(verify_file(&zip, &keys, "").is_ok());
        let idx = SightingIndex::new(Vec::new());
        let found = process_file(&zip, &keys, "310", &idx).unwrap();
        assert_eq!((found.keys, found.exposures.len()), (1, 0));
    }

    /// `match_file` as it was before it streamed [`KeyRecord`]s: every key
    /// decoded into an [`ExposureKey`], the file's keys matched as one slice.
    fn match_file_with_exposure_keys(export_bin: &[u8], index: &SightingIndex) -> FileMatches {
        use en_protocol::export::{export_keys, export_revised_keys};
        let keys: Vec<ExposureKey> = export_keys(export_bin).map(|k| k.unwrap()).collect();
        let exposures = index
            .match_keys(&keys, 0)
            .iter()
            .filter_map(|m| key_exposure(index, &keys[m.key_index], m))
            .collect();
        let revisions = export_revised_keys(export_bin)
            .map(|k| k.unwrap())
            .map(|k| (key_id(&k), k.report_type.map_or(0, |r| r.0)))
            .collect();
        FileMatches {
            keys: keys.len() as u64,
            exposures,
            revisions,
            verify_seconds: 0.0,
            match_seconds: 0.0,
        }
    }

    #[test]
    fn streamed_records_match_like_whole_exposure_keys() {
        use en_protocol::export::{
            ExportMeta, ExportSigner, ReportType, SignatureInfo, SoftwareSigner,
            TemporaryExposureKeyExport,
        };
        use en_protocol::matcher::Sighting;
        use en_protocol::{Aem, BluetoothMetadata, Rpi};
        use rand_core::{RngCore, SeedableRng};
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let today = 2_947_680u32; // a UTC midnight
        let log_start = i64::from(today) * 600 - 13 * 86_400;
        let mut sightings = Vec::new();
        let mut keys = Vec::new();
        // Keys of every day, some heard (a few sightings each, some out of
        // the tolerance), some revised, some with a shorter validity.
        for n in 0..40_000u32 {
            let start = today - (n % 15) * 144;
            let mut k = ExposureKey::new(Tek::generate(&mut rng), EnIntervalNumber::new(start));
            k.report_type = Some(ReportType(1 + (n % 3) as i32));
            if n % 7 == 0 {
                k.rolling_period = 1 + n % 144;
            }
            if n % 1000 == 0 {
                let (rpik, aemk) = k.key_data.rpik_and_aemk();
                for scan in 0..4u32 {
                    let j = start + 20 + scan * 30;
                    let rpi = rpik.rpi(EnIntervalNumber::new(j));
                    sightings.push(Sighting {
                        rpi,
                        aem: aemk.encrypt(&rpi, BluetoothMetadata::v1(-8)),
                        rssi: -60 - scan as i8,
                        at: i64::from(j + scan * 5) * 600,
                        seconds: 240,
                    });
                }
            }
            keys.push(k);
        }
        while sightings.len() < 5_000 {
            let mut rpi = [0u8; 16];
            rng.fill_bytes(&mut rpi);
            sightings.push(Sighting {
                rpi: Rpi(rpi),
                aem: Aem([1, 2, 3, 4]),
                rssi: -70,
                at: log_start + i64::from(rng.next_u32() % (14 * 86_400)),
                seconds: 240,
            });
        }
        let index = SightingIndex::new(sightings);
        let mut revised: Vec<ExposureKey> = keys.iter().step_by(3000).cloned().collect();
        for k in &mut revised {
            k.report_type = Some(ReportType::REVOKED);
        }
        let signer = SoftwareSigner::generate(&mut rng, SignatureInfo::new("440", "v1"));
        let meta = ExportMeta {
            start_timestamp: 0,
            end_timestamp: 1,
            region: "440".into(),
        };
        for revised in [Vec::new(), revised] {
            let mut export = TemporaryExposureKeyExport {
                start_timestamp: meta.start_timestamp,
                end_timestamp: meta.end_timestamp,
                region: meta.region.clone(),
                batch_num: 1,
                batch_size: 1,
                signature_infos: vec![signer.signature_info()],
                keys: keys.clone(),
                revised_keys: revised,
            };
            export.sort_keys();
            let bin = export.encode().unwrap();
            let found = match_file(&bin, &index).unwrap();
            let expected = match_file_with_exposure_keys(&bin, &index);
            assert_eq!(found.keys, expected.keys);
            assert_eq!(found.exposures, expected.exposures);
            assert!(found.exposures.len() >= 30, "{}", found.exposures.len());
            assert_eq!(found.revisions, expected.revisions);
            assert_eq!(found.revisions.len(), export.revised_keys.len());
        }
    }

    #[test]
    fn the_notification_says_count_dates_and_whom_to_call_and_nothing_else() {
        let centre = consultation_centre(Some("13"), &[]);
        let d = NaiveDate::from_ymd_opt(2020, 12, 14).unwrap();
        let t = notification_text(&[d], &centre, None);
        assert!(t.ja.contains("接触が1件"), "{}", t.ja);
        assert!(t.ja.contains("2020年12月14日"));
        assert!(t.ja.contains("東京都の受診・相談センター"));
        assert!(t.ja.contains("0120-565653"));
        assert!(t.ja.contains("時刻や場所、相手の情報が通知されることはありません"));
        assert!(t.en.contains("2020-12-14"));
        // English is all English: "1 contact", the centre's English name.
        assert!(t.en.contains("You had 1 contact with"), "{}", t.en);
        assert!(t.en.contains("the Tokyo consultation centre"), "{}", t.en);
        assert!(!t.en.contains("(s)"), "{}", t.en);
        assert!(t.en.is_ascii(), "no Japanese in English: {}", t.en);
        let two = notification_text(&[d, d.succ_opt().unwrap()], &centre, None);
        assert!(two.en.contains("You had 2 contacts with"), "{}", two.en);
        let none = notification_text(&[], &centre, None);
        assert!(none.ja.contains("確認されませんでした"));
    }
}
