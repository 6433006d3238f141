//! The issuer and the key server in the simulation's process, as their
//! crates' functions over in-memory state. Every rule is theirs:
//!
//! | step | function called |
//! |---|---|
//! | draw a number | `issuer::domain::codes::ProcessingNumber::generate` |
//! | store only its HMAC | `issuer::domain::codes::CodeHasher::hash` |
//! | validity (24 h by default) | `issuer::domain::rules::expires_at` |
//! | report type and risk of a confirmed case | `keyserver::trust::report_type_of` |
//! | key validation | `keyserver::validate::validate_keys` |
//! | hour truncation, embargo | `keyserver::validate::{truncate_to_hour, available_at}` |
//! | batch windows (1 h, exported 2 h after closing) | `keyserver::export::windows` |
//! | fake keys up to 1,000 + random(0..100) | `keyserver::export::fake_keys` |
//! | sort, split, sign, zip | `keyserver::export::build_batch` |
//!
//! What is modelled rather than run: the verification token and the ES256
//! certificate (one step each, counted; their cryptography is tested in the
//! issuer and key server), the database (a `Vec`), and the exporter's
//! 60-second cycle (cycles run when a window can close: on the hour plus a
//! minute, which is when the 60-second cycle would find it).

use std::collections::HashMap;

use api_types::publish::PublishKey;
use api_types::verify::{TEST_TYPE_CONFIRMED, codes as verify_codes};
use en_protocol::export::{MAX_KEYS_PER_FILE, SignatureInfo, SoftwareSigner, VerificationKey};
use issuer::domain::codes::{CodeHasher, CodeKind, ProcessingNumber};
use issuer::domain::model::Centre;
use issuer::domain::rules::expires_at;
use keyserver::export::{build_batch, fake_keys, windows};
use keyserver::store::{BatchRow, KeyRow};
use keyserver::validate::{KeyLimits, available_at, truncate_to_hour, validate_keys};
use rand_chacha::ChaCha20Rng;
use rand_core::RngCore;

use super::{
    Backend, BackendError, IssuedNumber, PublishedFile, RegisterError, Registered, ServerWork,
};
use crate::config::SimConfig;
use crate::rng::{CoreRng, Purpose, Rng, crypto_rng};
use crate::time::{Calendar, SimTime};

/// Japan's region.
pub const REGION: &str = "440";

#[derive(Debug, Clone, Copy)]
struct NumberRecord {
    expires_at: i64,
    used: bool,
}

#[derive(Debug, Clone)]
struct PendingKey {
    row: KeyRow,
    available_at: i64,
}

/// The issuer and the key server, in process.
pub struct InProcess {
    calendar: Calendar,
    centre: Centre,
    hasher: CodeHasher,
    number_rng: ChaCha20Rng,
    numbers: HashMap<String, NumberRecord>,
    pending: Vec<PendingKey>,
    last_end: Option<i64>,
    next_batch: i64,
    signer: SoftwareSigner,
    fake_rng: CoreRng,
    batch_period: i64,
    min_age: i64,
    retention: i64,
    pad_to: usize,
    pad_jitter: usize,
    files: Vec<PublishedFile>,
    work: ServerWork,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("files", &self.files.len())
            .field("work", &self.work)
            .finish_non_exhaustive()
    }
}

impl InProcess {
    /// Servers for the run `config`, with keys drawn from its seed.
    pub fn new(config: &SimConfig, calendar: Calendar) -> Self {
        let mut key_rng = crypto_rng(config.seed, Purpose::Server, &[0]);
        let signer = SoftwareSigner::generate(&mut key_rng, SignatureInfo::new(REGION, "v1"));
        let mut secret = [0u8; 32];
        key_rng.fill_bytes(&mut secret);
        let centre = Centre {
            id: 1,
            name: "シミュレーション保健所".into(),
            prefecture: "13".into(),
            consultation_name: String::new(),
            consultation_phone: String::new(),
            consultation_url: String::new(),
            consultation_hours: String::new(),
            validity_seconds: config.health.validity_seconds,
            auto_issue: config.health.auto_issue,
            allow_clinical: false,
            delivery_fallback: false,
            reminder_after_hours: None,
        };
        Self {
            calendar,
            centre,
            hasher: CodeHasher::new(&secret),
            number_rng: crypto_rng(config.seed, Purpose::Server, &[1]),
            numbers: HashMap::new(),
            pending: Vec::new(),
            last_end: None,
            next_batch: 1,
            signer,
            fake_rng: CoreRng(Rng::new(config.seed, Purpose::Server, &[2])),
            batch_period: config.server.batch_period_seconds,
            min_age: config.server.min_age_seconds,
            retention: config.server.retention_seconds,
            pad_to: config.server.pad_to,
            pad_jitter: config.server.pad_jitter,
            files: Vec::new(),
            work: ServerWork::default(),
        }
    }

    fn refuse(&mut self, code: &str) -> RegisterError {
        match code {
            verify_codes::CODE_EXPIRED => self.work.codes_expired += 1,
            _ => self.work.codes_invalid += 1,
        }
        RegisterError::Issuer(code.to_owned())
    }
}

impl Backend for InProcess {
    fn name(&self) -> &'static str {
        "in-process"
    }

    fn issue_number(&mut self, at: SimTime) -> Result<IssuedNumber, BackendError> {
        let now = self.calendar.unix(at);
        loop {
            let number = ProcessingNumber::generate(&mut self.number_rng);
            let hash = self.hasher.hash(CodeKind::Number, number.expose());
            // A number is drawn again while it collides with a live one.
            if self
                .numbers
                .get(&hash)
                .is_some_and(|r| !r.used && r.expires_at > now)
            {
                continue;
            }
            let expires = expires_at(now, &self.centre);
            self.numbers.insert(
                hash,
                NumberRecord {
                    expires_at: expires,
                    used: false,
                },
            );
            self.work.numbers_issued += 1;
            return Ok(IssuedNumber {
                number: number.expose().to_owned(),
                expires_at: self.calendar.sim(expires),
            });
        }
    }

    fn register(
        &mut self,
        number: &str,
        keys: &[PublishKey],
        at: SimTime,
    ) -> Result<Registered, RegisterError> {
        let now = self.calendar.unix(at);
        // /api/verify: the number, by its HMAC.
        self.work.verify_requests += 1;
        let hash = self.hasher.hash(CodeKind::Number, number);
        let record = match self.numbers.get(&hash).copied() {
            None => return Err(self.refuse(verify_codes::CODE_INVALID)),
            Some(r) if r.used => return Err(self.refuse(verify_codes::CODE_INVALID)),
            Some(r) if now >= r.expires_at => return Err(self.refuse(verify_codes::CODE_EXPIRED)),
            Some(r) => r,
        };
        self.numbers.insert(
            hash,
            NumberRecord {
                used: true,
                ..record
            },
        );
        // /api/certificate, then /v1/publish.
        self.work.certificates += 1;
        self.work.publish_requests += 1;
        self.work.keys_received += keys.len() as u64;
        let now_interval = (now / en_protocol::time::EN_INTERVAL_SECONDS) as u32;
        let (valid, dropped) = match validate_keys(keys, now_interval, KeyLimits::default()) {
            Ok(v) => v,
            Err(rejection) => {
                self.work.publish_rejected += 1;
                return Err(RegisterError::Keyserver(rejection.code().to_owned()));
            }
        };
        let (risk, report_type) = keyserver::trust::report_type_of(TEST_TYPE_CONFIRMED)
            .ok_or_else(|| RegisterError::Keyserver("unsupported report type".into()))?;
        let hour = truncate_to_hour(now);
        let mut embargoed = 0;
        for k in &valid {
            let available = available_at(k, hour);
            if available > hour {
                embargoed += 1;
            }
            self.pending.push(PendingKey {
                row: KeyRow {
                    key_data: k.key_data,
                    rolling_start: i64::from(k.rolling_start),
                    rolling_period: i64::from(k.rolling_period),
                    transmission_risk: i64::from(risk),
                    report_type: i64::from(report_type.0),
                },
                available_at: available,
            });
        }
        self.work.keys_accepted += valid.len() as u64;
        self.work.keys_dropped += dropped.len() as u64;
        self.work.keys_embargoed += embargoed as u64;
        Ok(Registered {
            inserted: valid.len(),
            dropped: dropped.len(),
            embargoed,
        })
    }

    fn export_cycle(&mut self, at: SimTime) -> Result<usize, BackendError> {
        let now = self.calendar.unix(at);
        let earliest = if self.last_end.is_none() {
            self.pending.iter().map(|k| k.available_at).min()
        } else {
            None
        };
        let cut = windows(
            self.last_end,
            earliest,
            now - self.min_age,
            self.batch_period,
            false,
            now - self.retention,
        );
        let before = self.files.len();
        for (start, end) in cut {
            self.work.batches_cut += 1;
            self.last_end = Some(end);
            let (ready, waiting): (Vec<PendingKey>, Vec<PendingKey>) =
                std::mem::take(&mut self.pending)
                    .into_iter()
                    .partition(|k| k.available_at < end);
            self.pending = waiting;
            let real: Vec<KeyRow> = ready.into_iter().map(|k| k.row).collect();
            if real.is_empty() {
                self.work.batches_empty += 1;
                continue;
            }
            let fakes = fake_keys(&real, self.pad_to, self.pad_jitter, &mut self.fake_rng);
            let batch = BatchRow {
                id: self.next_batch,
                region: REGION.into(),
                start_timestamp: start,
                end_timestamp: end,
                status: "pending".into(),
            };
            self.next_batch += 1;
            let real_count = real.len();
            self.work.real_keys_exported += real_count as u64;
            self.work.fake_keys_exported += fakes.len() as u64;
            let built = build_batch(
                &batch,
                real,
                fakes,
                std::slice::from_ref(&self.signer),
                MAX_KEYS_PER_FILE,
            )
            .map_err(|e| BackendError(format!("building batch {start}-{end}: {e:#}")))?;
            let files = built.len();
            for f in built {
                self.work.files_built += 1;
                self.work.signatures += 1;
                self.work.export_bytes += f.zip.len() as u64;
                self.files.push(PublishedFile {
                    path: f.path,
                    published_at: at,
                    batch_start: start,
                    batch_end: end,
                    keys: f.key_count,
                    real_keys: if files == 1 { real_count } else { 0 },
                    zip: f.zip,
                });
            }
        }
        Ok(self.files.len() - before)
    }

    fn files(&self) -> &[PublishedFile] {
        &self.files
    }

    fn verification_keys(&self) -> Vec<VerificationKey> {
        vec![self.signer.public_key()]
    }

    fn region(&self) -> &str {
        REGION
    }

    fn work(&self) -> ServerWork {
        self.work.clone()
    }
}

#[cfg(test)]
mod tests {
    use en_protocol::{EnIntervalNumber, Tek};

    use super::*;
    use crate::device_adapter::DailyKey;
    use crate::time::{DAY, HOUR};

    fn key(byte: u8, day: i64) -> PublishKey {
        device::register::publish_key(&DailyKey {
            tek: Tek::from_bytes([byte; 16]),
            rolling_start: EnIntervalNumber::new((day * 144) as u32),
            rolling_period: 144,
        })
    }

    #[test]
    fn numbers_are_single_use_and_expire() {
        let config = SimConfig::default();
        let cal = Calendar::new(config.start_date);
        let mut b = InProcess::new(&config, cal);
        let today = cal.utc_day(DAY);
        let n = b.issue_number(DAY).unwrap();
        assert_eq!(n.number.len(), 8);
        assert_eq!(n.expires_at, 2 * DAY, "24 h");
        let late = b.issue_number(DAY).unwrap();
        let keys = [key(1, today - 1), key(2, today)];
        let ok = b.register(&n.number, &keys, DAY + HOUR).unwrap();
        assert_eq!(ok.inserted, 2);
        assert_eq!(ok.embargoed, 1, "today's key waits for its end");
        let again = b.register(&n.number, &keys, DAY + 2 * HOUR).unwrap_err();
        assert_eq!(again.code(), "code_invalid");
        let expired = b.register(&late.number, &keys, 2 * DAY).unwrap_err();
        assert_eq!(expired.code(), "code_expired");
        assert_eq!(
            b.register("00000000", &keys, DAY).unwrap_err().code(),
            "code_invalid"
        );
        let w = b.work();
        assert_eq!(
            (w.numbers_issued, w.verify_requests, w.certificates),
            (2, 4, 1)
        );
    }

    #[test]
    fn keys_are_exported_two_hours_after_their_hour_padded_and_signed() {
        let config = SimConfig::default();
        let cal = Calendar::new(config.start_date);
        let mut b = InProcess::new(&config, cal);
        let at = 2 * DAY + 10 * HOUR + 600;
        let today = cal.utc_day(at);
        let n = b.issue_number(at).unwrap();
        b.register(
            &n.number,
            &[key(1, today - 2), key(2, today - 1), key(3, today)],
            at,
        )
        .unwrap();
        // Not before the window closed two hours ago.
        let hour = at - at.rem_euclid(HOUR);
        assert_eq!(b.export_cycle(hour + 2 * HOUR).unwrap(), 0);
        assert_eq!(b.export_cycle(hour + 3 * HOUR + 60).unwrap(), 1);
        let f = &b.files()[0];
        assert_eq!(f.real_keys, 2, "today's key is embargoed");
        assert!((1000..1100).contains(&f.keys), "{}", f.keys);
        let bin =
            crate::device_adapter::check_file(&f.zip, &b.verification_keys(), REGION).unwrap();
        assert_eq!(
            crate::device_adapter::file_keys(&bin).unwrap().len(),
            f.keys
        );
        // Today's key once its day has ended.
        let end_of_day = cal.utc_day_start(today + 1);
        assert_eq!(b.export_cycle(end_of_day + 3 * HOUR + 60).unwrap(), 1);
        assert_eq!(b.files()[1].real_keys, 1);
        assert_eq!(b.work().keys_embargoed, 1);
    }
}
