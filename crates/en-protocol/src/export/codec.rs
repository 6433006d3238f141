//! Encoding and decoding of `export.bin` and `export.sig`, and the streaming
//! key reader.
//!
//! Repeated non-repeated fields follow protobuf: the last one wins. Unknown
//! fields of every wire type are skipped.

use std::iter::FusedIterator;

use super::model::{
    EXPORT_BIN_HEADER, ExposureKey, KeyRecord, ReportType, SignatureInfo, TekSignature,
    TekSignatureList, TemporaryExposureKeyExport,
};
use super::wire::{self, I64, LEN, Reader, VARINT};
use super::{BuildError, DecodeError, MAX_EXPORT_BIN_LEN, MAX_EXPORT_SIG_LEN};
use crate::time::{EnIntervalNumber, TEK_ROLLING_PERIOD};

// TemporaryExposureKeyExport fields.
const EXPORT_START: u32 = 1;
const EXPORT_END: u32 = 2;
const EXPORT_REGION: u32 = 3;
const EXPORT_BATCH_NUM: u32 = 4;
const EXPORT_BATCH_SIZE: u32 = 5;
const EXPORT_SIGNATURE_INFOS: u32 = 6;
const EXPORT_KEYS: u32 = 7;
const EXPORT_REVISED_KEYS: u32 = 8;

// TemporaryExposureKey fields.
const KEY_DATA: u32 = 1;
const KEY_TRL: u32 = 2;
const KEY_RSIN: u32 = 3;
const KEY_ROLLING_PERIOD: u32 = 4;
const KEY_REPORT_TYPE: u32 = 5;
const KEY_DSOS: u32 = 6;
const KEY_VOC: u32 = 8;

// SignatureInfo fields (1 and 2 are legacy and skipped).
const INFO_KEY_VERSION: u32 = 3;
const INFO_KEY_ID: u32 = 4;
const INFO_ALGORITHM: u32 = 5;

// TEKSignatureList / TEKSignature fields.
const LIST_SIGNATURES: u32 = 1;
const SIG_INFO: u32 = 1;
const SIG_BATCH_NUM: u32 = 2;
const SIG_BATCH_SIZE: u32 = 3;
const SIG_SIGNATURE: u32 = 4;

/// Checks the size limit and the header, and returns a reader over the
/// message that follows.
fn body(bin: &[u8], limit: usize) -> Result<Reader<'_>, DecodeError> {
    if bin.len() > limit {
        return Err(DecodeError::TooLarge {
            len: bin.len() as u64,
            limit: limit as u64,
        });
    }
    match bin.split_at_checked(EXPORT_BIN_HEADER.len()) {
        Some((header, rest)) if header == EXPORT_BIN_HEADER => {
            Ok(Reader::new(rest, EXPORT_BIN_HEADER.len()))
        }
        _ => Err(DecodeError::BadHeader),
    }
}

/// Everything in `export.bin` except the keys themselves: what a phone or a
/// key server reads to decide whether a file is worth streaming.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportHeader {
    /// start_timestamp.
    pub start_timestamp: u64,
    /// end_timestamp.
    pub end_timestamp: u64,
    /// region.
    pub region: String,
    /// batch_num.
    pub batch_num: i32,
    /// batch_size.
    pub batch_size: i32,
    /// signature_infos.
    pub signature_infos: Vec<SignatureInfo>,
    /// How many `keys` entries the file holds (not decoded, only counted).
    pub key_count: usize,
    /// How many `revised_keys` entries the file holds.
    pub revised_key_count: usize,
}

/// Walks the top-level fields of `export.bin`, decoding everything but the
/// keys, which are handed to `on_key` (field number, payload, its offset).
fn walk_export<'a>(
    bin: &'a [u8],
    limit: usize,
    mut on_key: impl FnMut(u32, &'a [u8], usize) -> Result<(), DecodeError>,
) -> Result<ExportHeader, DecodeError> {
    let mut r = body(bin, limit)?;
    let mut h = ExportHeader::default();
    while !r.is_empty() {
        let (field, wt) = r.tag()?;
        match field {
            EXPORT_START => {
                wire::expect("TemporaryExposureKeyExport.start_timestamp", I64, wt)?;
                h.start_timestamp = r.fixed64()?;
            }
            EXPORT_END => {
                wire::expect("TemporaryExposureKeyExport.end_timestamp", I64, wt)?;
                h.end_timestamp = r.fixed64()?;
            }
            EXPORT_REGION => {
                let name = "TemporaryExposureKeyExport.region";
                wire::expect(name, LEN, wt)?;
                h.region = wire::string(name, r.bytes()?.0)?;
            }
            EXPORT_BATCH_NUM => {
                let name = "TemporaryExposureKeyExport.batch_num";
                wire::expect(name, VARINT, wt)?;
                h.batch_num = wire::int32(name, r.varint()?)?;
            }
            EXPORT_BATCH_SIZE => {
                let name = "TemporaryExposureKeyExport.batch_size";
                wire::expect(name, VARINT, wt)?;
                h.batch_size = wire::int32(name, r.varint()?)?;
            }
            EXPORT_SIGNATURE_INFOS => {
                wire::expect("TemporaryExposureKeyExport.signature_infos", LEN, wt)?;
                let (msg, at) = r.bytes()?;
                h.signature_infos.push(decode_signature_info(msg, at)?);
            }
            EXPORT_KEYS | EXPORT_REVISED_KEYS => {
                let name = if field == EXPORT_KEYS {
                    h.key_count += 1;
                    "TemporaryExposureKeyExport.keys"
                } else {
                    h.revised_key_count += 1;
                    "TemporaryExposureKeyExport.revised_keys"
                };
                wire::expect(name, LEN, wt)?;
                let (msg, at) = r.bytes()?;
                on_key(field, msg, at)?;
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(h)
}

/// Decodes everything in `export.bin` except the keys, which are only
/// counted. Allocation-free apart from the strings of the header.
pub fn read_header(bin: &[u8]) -> Result<ExportHeader, DecodeError> {
    walk_export(bin, MAX_EXPORT_BIN_LEN, |_, _, _| Ok(()))
}

impl TemporaryExposureKeyExport {
    /// Decodes a whole `export.bin`, header included, refusing inputs over
    /// [`MAX_EXPORT_BIN_LEN`].
    pub fn decode(bin: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_with_limit(bin, MAX_EXPORT_BIN_LEN)
    }

    /// [`decode`](Self::decode) with another size limit.
    pub fn decode_with_limit(bin: &[u8], limit: usize) -> Result<Self, DecodeError> {
        let mut keys = Vec::new();
        let mut revised_keys = Vec::new();
        let h = walk_export(bin, limit, |field, msg, at| {
            let key = decode_key(msg, at)?;
            if field == EXPORT_KEYS {
                keys.push(key);
            } else {
                revised_keys.push(key);
            }
            Ok(())
        })?;
        Ok(Self {
            start_timestamp: h.start_timestamp,
            end_timestamp: h.end_timestamp,
            region: h.region,
            batch_num: h.batch_num,
            batch_size: h.batch_size,
            signature_infos: h.signature_infos,
            keys,
            revised_keys,
        })
    }

    /// Encodes `export.bin`, header included. Keys are written sorted by key
    /// bytes whatever their order here, `rolling_period` is left out when it
    /// is 144, and fields come in field-number order, so the same content
    /// always gives the same bytes.
    pub fn encode(&self) -> Result<Vec<u8>, BuildError> {
        check_keys("keys", &self.keys)?;
        check_keys("revised_keys", &self.revised_keys)?;
        let keys_len: usize = self.keys.iter().map(keyed_len).sum();
        let revised_len: usize = self.revised_keys.iter().map(keyed_len).sum();
        let infos: Vec<Vec<u8>> = self
            .signature_infos
            .iter()
            .map(encode_signature_info)
            .collect();
        let infos_len: usize = infos
            .iter()
            .map(|i| 1 + wire::varint_len(i.len() as u64) + i.len())
            .sum();
        let len = EXPORT_BIN_HEADER.len()
            + 2 * 9
            + 1
            + wire::varint_len(self.region.len() as u64)
            + self.region.len()
            + 1
            + wire::int32_len(self.batch_num)
            + 1
            + wire::int32_len(self.batch_size)
            + infos_len
            + keys_len
            + revised_len;
        if len > MAX_EXPORT_BIN_LEN {
            return Err(BuildError::TooLarge {
                len,
                limit: MAX_EXPORT_BIN_LEN,
            });
        }

        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(EXPORT_BIN_HEADER);
        wire::put_fixed64(&mut out, EXPORT_START as u8, self.start_timestamp);
        wire::put_fixed64(&mut out, EXPORT_END as u8, self.end_timestamp);
        wire::put_bytes(&mut out, EXPORT_REGION as u8, self.region.as_bytes());
        wire::put_int32(&mut out, EXPORT_BATCH_NUM as u8, self.batch_num);
        wire::put_int32(&mut out, EXPORT_BATCH_SIZE as u8, self.batch_size);
        for info in &infos {
            wire::put_bytes(&mut out, EXPORT_SIGNATURE_INFOS as u8, info);
        }
        for_each_in_write_order(&self.keys, |k| put_key(&mut out, EXPORT_KEYS as u8, k));
        for_each_in_write_order(&self.revised_keys, |k| {
            put_key(&mut out, EXPORT_REVISED_KEYS as u8, k);
        });
        debug_assert_eq!(out.len(), len);
        Ok(out)
    }
}

fn check_keys(list: &'static str, keys: &[ExposureKey]) -> Result<(), BuildError> {
    match keys
        .iter()
        .enumerate()
        .find_map(|(i, k)| k.problem().map(|p| (i, p)))
    {
        Some((index, problem)) => Err(BuildError::InvalidKey {
            list,
            index,
            problem,
        }),
        None => Ok(()),
    }
}

/// Calls `f` on each key in write order: straight through when already
/// sorted (the usual case, since the builder sorts in place), else through a
/// sorted list of references.
fn for_each_in_write_order(keys: &[ExposureKey], mut f: impl FnMut(&ExposureKey)) {
    if keys.is_sorted_by(|a, b| a.write_order(b).is_le()) {
        keys.iter().for_each(f);
    } else {
        let mut refs: Vec<&ExposureKey> = keys.iter().collect();
        refs.sort_unstable_by(|a, b| a.write_order(b));
        refs.into_iter().for_each(&mut f);
    }
}

/// Length of a key's message body.
#[inline]
fn key_body_len(k: &ExposureKey) -> usize {
    let mut len = 2 + 16; // key_data
    if let Some(v) = k.transmission_risk_level {
        len += 1 + wire::int32_len(v);
    }
    len += 1 + wire::varint_len(u64::from(k.rolling_start_interval_number.get()));
    if k.rolling_period != TEK_ROLLING_PERIOD {
        len += 1 + wire::varint_len(u64::from(k.rolling_period));
    }
    if let Some(v) = k.report_type {
        len += 1 + wire::int32_len(v.0);
    }
    if let Some(v) = k.days_since_onset_of_symptoms {
        len += 1 + wire::varint_len(wire::zigzag(v));
    }
    if let Some(v) = k.variant_of_concern {
        len += 1 + wire::int32_len(v);
    }
    len
}

/// Length of a key with its tag and length prefix.
#[inline]
fn keyed_len(k: &ExposureKey) -> usize {
    let body = key_body_len(k);
    1 + wire::varint_len(body as u64) + body
}

#[inline]
fn put_key(out: &mut Vec<u8>, field: u8, k: &ExposureKey) {
    wire::put_tag(out, field, LEN);
    wire::put_varint(out, key_body_len(k) as u64);
    wire::put_bytes(out, KEY_DATA as u8, k.key_data.as_bytes());
    if let Some(v) = k.transmission_risk_level {
        wire::put_int32(out, KEY_TRL as u8, v);
    }
    wire::put_tag(out, KEY_RSIN as u8, VARINT);
    wire::put_varint(out, u64::from(k.rolling_start_interval_number.get()));
    if k.rolling_period != TEK_ROLLING_PERIOD {
        wire::put_tag(out, KEY_ROLLING_PERIOD as u8, VARINT);
        wire::put_varint(out, u64::from(k.rolling_period));
    }
    if let Some(v) = k.report_type {
        wire::put_int32(out, KEY_REPORT_TYPE as u8, v.0);
    }
    if let Some(v) = k.days_since_onset_of_symptoms {
        wire::put_tag(out, KEY_DSOS as u8, VARINT);
        wire::put_varint(out, wire::zigzag(v));
    }
    if let Some(v) = k.variant_of_concern {
        wire::put_int32(out, KEY_VOC as u8, v);
    }
}

/// Decodes one `TemporaryExposureKey`; `at` is its offset in the input.
fn decode_key(msg: &[u8], at: usize) -> Result<ExposureKey, DecodeError> {
    decode_record(msg, at).map(ExposureKey::from)
}

/// Decodes one `TemporaryExposureKey` into a [`KeyRecord`]: the common
/// layout through [`decode_record_fast`], anything else (and every error)
/// through [`decode_record_general`].
#[inline]
fn decode_record(msg: &[u8], at: usize) -> Result<KeyRecord, DecodeError> {
    match decode_record_fast(msg) {
        Some(k) => Ok(k),
        None => decode_record_general(msg, at),
    }
}

/// A varint of at most four bytes (under 2^28, so every int32 reading of it
/// is itself); `None` for anything longer or cut short.
#[inline(always)]
fn short_varint(msg: &[u8], pos: &mut usize) -> Option<u32> {
    let mut value = 0u32;
    for i in 0..4 {
        let b = *msg.get(*pos)?;
        *pos += 1;
        value |= u32::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some(value);
        }
    }
    None
}

/// The fast path of [`decode_record`], for keys written the usual way:
/// `key_data` first and 16 bytes long, then only the known varint fields
/// with one-byte tags and values under 2^28 (what every server writes, and
/// what this crate's encoder writes). Returns `None` at the first thing it
/// does not expect (another `key_data`, an unknown field, a longer varint,
/// a `rolling_period` out of range, truncation), and the general decoder
/// then decides, so both give the same result for every input.
#[inline]
fn decode_record_fast(msg: &[u8]) -> Option<KeyRecord> {
    const KEY_DATA_TAG: u8 = (KEY_DATA as u8) << 3 | LEN;
    let (head, rest) = msg.split_first_chunk::<18>()?;
    if head[0] != KEY_DATA_TAG || head[1] != 16 {
        return None;
    }
    let mut key_data = [0u8; 16];
    key_data.copy_from_slice(&head[2..]);
    let mut k = KeyRecord {
        key_data,
        transmission_risk_level: None,
        rolling_start_interval_number: EnIntervalNumber::new(0),
        rolling_period: TEK_ROLLING_PERIOD,
        report_type: None,
        days_since_onset_of_symptoms: None,
        variant_of_concern: None,
    };
    let mut pos = 0;
    while let Some(&tag) = rest.get(pos) {
        pos += 1;
        let value = short_varint(rest, &mut pos)?;
        if tag & 7 != VARINT {
            return None;
        }
        match u32::from(tag >> 3) {
            KEY_TRL => k.transmission_risk_level = Some(value as i32),
            KEY_RSIN => k.rolling_start_interval_number = EnIntervalNumber::new(value),
            KEY_ROLLING_PERIOD => k.rolling_period = value,
            KEY_REPORT_TYPE => k.report_type = Some(ReportType(value as i32)),
            KEY_DSOS => {
                k.days_since_onset_of_symptoms = Some(wire::sint32("", u64::from(value)).ok()?);
            }
            KEY_VOC => k.variant_of_concern = Some(value as i32),
            _ => return None,
        }
    }
    (1..=TEK_ROLLING_PERIOD)
        .contains(&k.rolling_period)
        .then_some(k)
}

/// Decodes one `TemporaryExposureKey` into a [`KeyRecord`], whatever its
/// layout; `at` is its offset in the input.
fn decode_record_general(msg: &[u8], at: usize) -> Result<KeyRecord, DecodeError> {
    let mut r = Reader::new(msg, at);
    let mut key_data: Option<&[u8]> = None;
    let mut trl = None;
    let mut rsin = 0i32;
    let mut rolling_period = None;
    let mut report_type = None;
    let mut dsos = None;
    let mut voc = None;
    while !r.is_empty() {
        let (field, wt) = r.tag()?;
        match field {
            KEY_DATA => {
                wire::expect("TemporaryExposureKey.key_data", LEN, wt)?;
                key_data = Some(r.bytes()?.0);
            }
            KEY_TRL => {
                trl = Some(int32_field(
                    &mut r,
                    "TemporaryExposureKey.transmission_risk_level",
                    wt,
                )?)
            }
            KEY_RSIN => {
                rsin = int32_field(
                    &mut r,
                    "TemporaryExposureKey.rolling_start_interval_number",
                    wt,
                )?;
            }
            KEY_ROLLING_PERIOD => {
                rolling_period = Some(int32_field(
                    &mut r,
                    "TemporaryExposureKey.rolling_period",
                    wt,
                )?);
            }
            KEY_REPORT_TYPE => {
                report_type = Some(ReportType(int32_field(
                    &mut r,
                    "TemporaryExposureKey.report_type",
                    wt,
                )?));
            }
            KEY_DSOS => {
                let name = "TemporaryExposureKey.days_since_onset_of_symptoms";
                wire::expect(name, VARINT, wt)?;
                dsos = Some(wire::sint32(name, r.varint()?)?);
            }
            KEY_VOC => {
                voc = Some(int32_field(
                    &mut r,
                    "TemporaryExposureKey.variant_of_concern",
                    wt,
                )?)
            }
            _ => r.skip(field, wt)?,
        }
    }
    let key_data = key_data.unwrap_or_default();
    let key_data = <[u8; 16]>::try_from(key_data).map_err(|_| DecodeError::KeyDataLength {
        len: key_data.len(),
    })?;
    let rsin =
        u32::try_from(rsin).map_err(|_| DecodeError::RollingStartOutOfRange { value: rsin })?;
    let rolling_period = match rolling_period {
        None => TEK_ROLLING_PERIOD,
        Some(p @ 1..=144) => p as u32,
        Some(value) => return Err(DecodeError::RollingPeriodOutOfRange { value }),
    };
    Ok(KeyRecord {
        key_data,
        transmission_risk_level: trl,
        rolling_start_interval_number: EnIntervalNumber::new(rsin),
        rolling_period,
        report_type,
        days_since_onset_of_symptoms: dsos,
        variant_of_concern: voc,
    })
}

#[inline]
fn int32_field(r: &mut Reader<'_>, name: &'static str, wt: u8) -> Result<i32, DecodeError> {
    wire::expect(name, VARINT, wt)?;
    wire::int32(name, r.varint()?)
}

fn decode_signature_info(msg: &[u8], at: usize) -> Result<SignatureInfo, DecodeError> {
    let mut r = Reader::new(msg, at);
    let mut info = SignatureInfo::default();
    while !r.is_empty() {
        let (field, wt) = r.tag()?;
        let (name, slot) = match field {
            INFO_KEY_VERSION => (
                "SignatureInfo.verification_key_version",
                &mut info.verification_key_version,
            ),
            INFO_KEY_ID => (
                "SignatureInfo.verification_key_id",
                &mut info.verification_key_id,
            ),
            INFO_ALGORITHM => (
                "SignatureInfo.signature_algorithm",
                &mut info.signature_algorithm,
            ),
            _ => {
                r.skip(field, wt)?;
                continue;
            }
        };
        wire::expect(name, LEN, wt)?;
        *slot = wire::string(name, r.bytes()?.0)?;
    }
    Ok(info)
}

fn encode_signature_info(info: &SignatureInfo) -> Vec<u8> {
    let mut out = Vec::new();
    for (field, value) in [
        (INFO_KEY_VERSION, &info.verification_key_version),
        (INFO_KEY_ID, &info.verification_key_id),
        (INFO_ALGORITHM, &info.signature_algorithm),
    ] {
        if !value.is_empty() {
            wire::put_bytes(&mut out, field as u8, value.as_bytes());
        }
    }
    out
}

impl TekSignatureList {
    /// Decodes `export.sig`, refusing inputs over [`MAX_EXPORT_SIG_LEN`]. An
    /// empty input is an empty list (an unsigned file).
    pub fn decode(sig: &[u8]) -> Result<Self, DecodeError> {
        if sig.len() > MAX_EXPORT_SIG_LEN {
            return Err(DecodeError::TooLarge {
                len: sig.len() as u64,
                limit: MAX_EXPORT_SIG_LEN as u64,
            });
        }
        let mut r = Reader::new(sig, 0);
        let mut list = Self::default();
        while !r.is_empty() {
            let (field, wt) = r.tag()?;
            if field == LIST_SIGNATURES {
                wire::expect("TEKSignatureList.signatures", LEN, wt)?;
                let (msg, at) = r.bytes()?;
                list.signatures.push(decode_tek_signature(msg, at)?);
            } else {
                r.skip(field, wt)?;
            }
        }
        Ok(list)
    }

    /// Encodes `export.sig`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for s in &self.signatures {
            let mut msg = Vec::with_capacity(s.signature.len() + 64);
            wire::put_bytes(
                &mut msg,
                SIG_INFO as u8,
                &encode_signature_info(&s.signature_info),
            );
            wire::put_int32(&mut msg, SIG_BATCH_NUM as u8, s.batch_num);
            wire::put_int32(&mut msg, SIG_BATCH_SIZE as u8, s.batch_size);
            wire::put_bytes(&mut msg, SIG_SIGNATURE as u8, &s.signature);
            wire::put_bytes(&mut out, LIST_SIGNATURES as u8, &msg);
        }
        out
    }
}

fn decode_tek_signature(msg: &[u8], at: usize) -> Result<TekSignature, DecodeError> {
    let mut r = Reader::new(msg, at);
    let mut s = TekSignature::default();
    while !r.is_empty() {
        let (field, wt) = r.tag()?;
        match field {
            SIG_INFO => {
                wire::expect("TEKSignature.signature_info", LEN, wt)?;
                let (info, at) = r.bytes()?;
                s.signature_info = decode_signature_info(info, at)?;
            }
            SIG_BATCH_NUM => s.batch_num = int32_field(&mut r, "TEKSignature.batch_num", wt)?,
            SIG_BATCH_SIZE => s.batch_size = int32_field(&mut r, "TEKSignature.batch_size", wt)?,
            SIG_SIGNATURE => {
                wire::expect("TEKSignature.signature", LEN, wt)?;
                s.signature = r.bytes()?.0.to_vec();
            }
            _ => r.skip(field, wt)?,
        }
    }
    Ok(s)
}

/// Streams the `keys` of an `export.bin` one by one, without decoding the
/// rest of the file or allocating. See [`KeyIter`].
pub fn export_keys(bin: &[u8]) -> KeyIter<'_> {
    KeyIter(export_key_records(bin))
}

/// Streams the `revised_keys` of an `export.bin`. See [`KeyIter`].
pub fn export_revised_keys(bin: &[u8]) -> KeyIter<'_> {
    KeyIter(export_revised_key_records(bin))
}

/// Streams the `keys` of an `export.bin` as [`KeyRecord`]s: the same keys
/// and the same errors as [`export_keys`], without building a [`Tek`](crate::Tek) per
/// key. What a phone matching a file of 500,000 keys wants.
pub fn export_key_records(bin: &[u8]) -> KeyRecordIter<'_> {
    KeyRecordIter::new(bin, EXPORT_KEYS)
}

/// Streams the `revised_keys` of an `export.bin` as [`KeyRecord`]s; see
/// [`export_key_records`].
pub fn export_revised_key_records(bin: &[u8]) -> KeyRecordIter<'_> {
    KeyRecordIter::new(bin, EXPORT_REVISED_KEYS)
}

/// An allocation-free iterator over the keys of one list of an `export.bin`,
/// as [`ExposureKey`]s: [`KeyRecordIter`], each key wrapped in its [`Tek`](crate::Tek).
#[derive(Debug, Clone)]
pub struct KeyIter<'a>(KeyRecordIter<'a>);

impl Iterator for KeyIter<'_> {
    type Item = Result<ExposureKey, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|r| r.map(ExposureKey::from))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl FusedIterator for KeyIter<'_> {}

/// An allocation-free iterator over the keys of one list of an `export.bin`,
/// as [`KeyRecord`]s.
///
/// It checks the size limit and the header first, then walks the top-level
/// fields: the framing of every field and the wire types of the known ones
/// are checked, every key of the list is fully decoded, and the content of
/// the other fields (region, signature infos, the other key list) is skipped
/// unread. After the first error it yields nothing more.
#[derive(Debug, Clone)]
pub struct KeyRecordIter<'a> {
    reader: Option<Reader<'a>>,
    pending: Option<DecodeError>,
    field: u32,
    /// Entries of the other key list skipped so far.
    other_list: usize,
}

impl<'a> KeyRecordIter<'a> {
    fn new(bin: &'a [u8], field: u32) -> Self {
        match body(bin, MAX_EXPORT_BIN_LEN) {
            Ok(reader) => Self {
                reader: Some(reader),
                pending: None,
                field,
                other_list: 0,
            },
            Err(e) => Self {
                reader: None,
                pending: Some(e),
                field,
                other_list: 0,
            },
        }
    }

    /// How many entries of the other key list (`revised_keys` when
    /// streaming `keys`, and the reverse) were skipped so far. Once the
    /// iterator has ended without an error, 0 means the file has none, so a
    /// second pass over them can be spared.
    pub fn other_list_len(&self) -> usize {
        self.other_list
    }

    fn step(
        r: &mut Reader<'a>,
        wanted: u32,
        other_list: &mut usize,
    ) -> Result<Option<KeyRecord>, DecodeError> {
        while !r.is_empty() {
            let (field, wt) = r.tag()?;
            let expected = match field {
                EXPORT_START | EXPORT_END => I64,
                EXPORT_BATCH_NUM | EXPORT_BATCH_SIZE => VARINT,
                EXPORT_REGION | EXPORT_SIGNATURE_INFOS | EXPORT_KEYS | EXPORT_REVISED_KEYS => LEN,
                _ => {
                    r.skip(field, wt)?;
                    continue;
                }
            };
            if wt != expected {
                wire::expect(export_field_name(field), expected, wt)?;
            }
            if field == wanted {
                let (msg, at) = r.bytes()?;
                return decode_record(msg, at).map(Some);
            }
            r.skip(field, wt)?;
            if matches!(field, EXPORT_KEYS | EXPORT_REVISED_KEYS) {
                *other_list += 1;
            }
        }
        Ok(None)
    }
}

fn export_field_name(field: u32) -> &'static str {
    match field {
        EXPORT_START => "TemporaryExposureKeyExport.start_timestamp",
        EXPORT_END => "TemporaryExposureKeyExport.end_timestamp",
        EXPORT_REGION => "TemporaryExposureKeyExport.region",
        EXPORT_BATCH_NUM => "TemporaryExposureKeyExport.batch_num",
        EXPORT_BATCH_SIZE => "TemporaryExposureKeyExport.batch_size",
        EXPORT_SIGNATURE_INFOS => "TemporaryExposureKeyExport.signature_infos",
        EXPORT_KEYS => "TemporaryExposureKeyExport.keys",
        _ => "TemporaryExposureKeyExport.revised_keys",
    }
}

impl Iterator for KeyRecordIter<'_> {
    type Item = Result<KeyRecord, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.take() {
            return Some(Err(e));
        }
        let r = self.reader.as_mut()?;
        match Self::step(r, self.field, &mut self.other_list) {
            Ok(Some(key)) => Some(Ok(key)),
            Ok(None) => {
                self.reader = None;
                None
            }
            Err(e) => {
                self.reader = None;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match (&self.pending, &self.reader) {
            (Some(_), _) => (1, Some(1)),
            // A valid key takes at least 20 bytes (tag, length, key_data);
            // one error may follow the last of them.
            (None, Some(r)) => (0, Some(r.remaining() / 20 + 1)),
            (None, None) => (0, Some(0)),
        }
    }
}

impl FusedIterator for KeyRecordIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Tek;

    fn key(byte: u8) -> ExposureKey {
        let mut k = ExposureKey::new(
            Tek::from_bytes([byte; 16]),
            EnIntervalNumber::new(2_650_000),
        );
        k.transmission_risk_level = Some(4);
        k.report_type = Some(ReportType::CONFIRMED_TEST);
        k
    }

    fn export(keys: Vec<ExposureKey>) -> TemporaryExposureKeyExport {
        TemporaryExposureKeyExport {
            start_timestamp: 1_600_000_000,
            end_timestamp: 1_600_086_400,
            region: "440".into(),
            batch_num: 1,
            batch_size: 1,
            signature_infos: vec![SignatureInfo::new("440", "v1")],
            keys,
            revised_keys: Vec::new(),
        }
    }

    #[test]
    fn encoded_length_is_predicted_exactly() {
        let mut odd = key(9);
        odd.rolling_period = 3;
        odd.transmission_risk_level = Some(-1);
        odd.days_since_onset_of_symptoms = Some(-14);
        odd.variant_of_concern = Some(2);
        let mut e = export(vec![key(3), odd, key(1)]);
        e.revised_keys.push(key(7));
        let bin = e.encode().unwrap(); // debug-asserts the predicted length
        let back = TemporaryExposureKeyExport::decode(&bin).unwrap();
        e.sort_keys();
        assert_eq!(back, e);
    }

    #[test]
    fn typical_key_takes_29_bytes() {
        let one = export(vec![key(1)]).encode().unwrap();
        let two = export(vec![key(1), key(2)]).encode().unwrap();
        assert_eq!(two.len() - one.len(), 29);
    }

    #[test]
    fn iterator_reports_a_bad_header_once() {
        let mut it = export_keys(b"EK Export v2    ");
        assert_eq!(it.next(), Some(Err(DecodeError::BadHeader)));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn iterator_and_header_agree_with_the_full_decoder() {
        let mut e = export(vec![key(5), key(2), key(9)]);
        e.revised_keys = vec![key(4)];
        let bin = e.encode().unwrap();
        let keys: Vec<_> = export_keys(&bin).collect::<Result<_, _>>().unwrap();
        let revised: Vec<_> = export_revised_keys(&bin).collect::<Result<_, _>>().unwrap();
        let full = TemporaryExposureKeyExport::decode(&bin).unwrap();
        assert_eq!(keys, full.keys);
        assert_eq!(revised, full.revised_keys);
        let h = read_header(&bin).unwrap();
        assert_eq!((h.key_count, h.revised_key_count), (3, 1));
        assert_eq!(h.region, "440");
        assert_eq!(h.signature_infos, e.signature_infos);
    }

    #[test]
    fn signature_list_round_trips() {
        let list = TekSignatureList {
            signatures: vec![TekSignature {
                signature_info: SignatureInfo::new("440", "v1"),
                batch_num: 1,
                batch_size: 1,
                signature: vec![0x30, 0x06, 1, 2, 3, 4, 5, 6],
            }],
        };
        assert_eq!(TekSignatureList::decode(&list.encode()).unwrap(), list);
        assert_eq!(
            TekSignatureList::decode(&[]).unwrap(),
            TekSignatureList::default()
        );
    }

    /// The body of one encoded key (without the tag and length before it).
    fn key_body(k: &ExposureKey) -> Vec<u8> {
        let mut out = Vec::new();
        put_key(&mut out, EXPORT_KEYS as u8, k);
        let mut r = Reader::new(&out, 0);
        r.tag().unwrap();
        r.bytes().unwrap().0.to_vec()
    }

    /// The fast path either declines or agrees with the general decoder.
    fn check_fast_path(msg: &[u8]) -> bool {
        match decode_record_fast(msg) {
            None => false,
            Some(fast) => {
                assert_eq!(Ok(fast), decode_record_general(msg, 0), "{msg:02x?}");
                true
            }
        }
    }

    #[test]
    fn fast_key_path_takes_what_encoders_write() {
        let mut odd = key(9);
        odd.rolling_period = 3;
        odd.days_since_onset_of_symptoms = Some(-14);
        odd.variant_of_concern = Some(2);
        let mut bare = ExposureKey::new(Tek::from_bytes([7; 16]), EnIntervalNumber::new(0));
        bare.rolling_period = 1;
        for k in [key(1), odd, bare] {
            let body = key_body(&k);
            assert!(check_fast_path(&body));
            assert_eq!(decode_key(&body, 0).unwrap(), k);
        }
        // Negative int32 values (ten-byte varints) go the general way.
        let mut negative = key(2);
        negative.transmission_risk_level = Some(-1);
        assert!(!check_fast_path(&key_body(&negative)));
        assert_eq!(decode_key(&key_body(&negative), 0).unwrap(), negative);
    }

    #[test]
    fn fast_key_path_declines_or_agrees_on_every_edit() {
        let mut k = key(3);
        k.days_since_onset_of_symptoms = Some(5);
        k.rolling_period = 100;
        let body = key_body(&k);
        for at in 0..body.len() {
            for value in 0..=255u8 {
                let mut m = body.clone();
                m[at] = value;
                check_fast_path(&m);
                m.insert(at, value);
                check_fast_path(&m);
            }
            let mut m = body.clone();
            m.remove(at);
            check_fast_path(&m);
            check_fast_path(&body[..at]);
        }
        // Repeated fields: the last one wins on both paths.
        let mut twice = body.clone();
        twice.extend_from_slice(&[0x20, 0x05, 0x18, 0x01, 0x28, 0x03]);
        assert!(check_fast_path(&twice));
        let mut key_twice = body.clone();
        key_twice.extend_from_slice(&body[..18]);
        assert!(!check_fast_path(&key_twice));
        assert!(decode_record_general(&key_twice, 0).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn fast_key_path_declines_or_agrees_on_random_fields(
            fields in proptest::collection::vec((0u8..80, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..6)), 0..8),
        ) {
            let mut msg = vec![0x0a, 0x10];
            msg.extend_from_slice(&[0x55; 16]);
            for (tag, bytes) in fields {
                msg.push(tag);
                msg.extend_from_slice(&bytes);
            }
            check_fast_path(&msg);
        }
    }

    #[test]
    fn records_skip_and_count_the_other_list() {
        let mut e = export(vec![key(5), key(2), key(9)]);
        let bin = e.encode().unwrap();
        let mut it = export_key_records(&bin);
        assert_eq!(it.by_ref().count(), 3);
        assert_eq!(it.other_list_len(), 0);
        e.revised_keys = vec![key(4), key(6)];
        let bin = e.encode().unwrap();
        let mut it = export_key_records(&bin);
        let records: Vec<_> = it.by_ref().collect::<Result<_, _>>().unwrap();
        assert_eq!(it.other_list_len(), 2);
        let keys: Vec<_> = export_keys(&bin).collect::<Result<_, _>>().unwrap();
        let as_keys: Vec<ExposureKey> = records.into_iter().map(ExposureKey::from).collect();
        assert_eq!(as_keys, keys);
        let mut revised = export_revised_key_records(&bin);
        assert_eq!(revised.by_ref().count(), 2);
        assert_eq!(revised.other_list_len(), 3);
        assert_eq!(
            KeyRecord::from(&key(5)),
            KeyRecord::from(&ExposureKey::from(KeyRecord::from(&key(5))))
        );
        assert!(!format!("{:?}", KeyRecord::from(&key(5))).contains("5, 5"));
    }
}
