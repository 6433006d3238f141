//! The key export file against real third-party files
//! (`tests/vectors/exports/`, decoded contents in `expected.json`, loaded
//! through serde), plus round trips, signing with several keys, and hostile
//! input that must give an error and never a panic.

use std::collections::BTreeMap;
use std::io::{Cursor, Write};
use std::path::PathBuf;

use en_protocol::export::{
    BuildError, DecodeError, ECDSA_P256_SHA256_OID, EXPORT_BIN_HEADER, ExportMeta, ExportSigner,
    ExposureKey, MAX_EXPORT_BIN_LEN, ReportType, SignError, SignatureInfo, SignatureMatch,
    SoftwareSigner, TekSignatureList, TemporaryExposureKeyExport, VerificationKey, build_export,
    export_keys, export_revised_keys, read_header, read_zip, sign_export, verify, write_zip,
};
use en_protocol::{EnIntervalNumber, Tek};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use serde::Deserialize;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------
// The vector files.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    #[allow(dead_code)]
    description: String,
    files: BTreeMap<String, FileExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileExpect {
    zip_entries: Option<Vec<String>>,
    export_sig_len: Option<usize>,
    export_sig: Option<Vec<SigExpect>>,
    export_bin_len: usize,
    export_bin_sha256: String,
    header_ascii: String,
    export: ExportExpect,
    num_keys: usize,
    num_revised_keys: usize,
    verification_public_key_file: Option<String>,
    signature_verifies: Option<Vec<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SigExpect {
    signature_info: InfoExpect,
    batch_num: i32,
    batch_size: i32,
    signature_der_hex: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InfoExpect {
    verification_key_version: Option<String>,
    verification_key_id: Option<String>,
    signature_algorithm: Option<String>,
    // Legacy fields 1 and 2: the decoder must skip them.
    #[allow(dead_code)]
    legacy_field1_app_bundle_id: Option<String>,
    #[allow(dead_code)]
    legacy_field2_android_package: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportExpect {
    keys: Vec<KeyExpect>,
    revised_keys: Vec<KeyExpect>,
    signature_infos: Vec<InfoExpect>,
    start_timestamp: u64,
    end_timestamp: u64,
    region: String,
    batch_num: i32,
    batch_size: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyExpect {
    key_data: String,
    transmission_risk_level: Option<i32>,
    rolling_start_interval_number: u32,
    rolling_period: Option<u32>,
    report_type: Option<i32>,
    days_since_onset_of_symptoms: Option<i32>,
}

fn vector_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/exports")
}

fn expected() -> Expected {
    let path = vector_dir().join("expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("expected.json parses")
}

/// Every export file in the directory: (name, bytes).
fn vector_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(vector_dir())
        .expect("vector directory")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("zip" | "bin")))
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&p).expect("vector file"))
        })
        .collect();
    files.sort();
    files
}

/// (export.bin, export.sig if the file is a zip).
fn parts(name: &str, bytes: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
    if name.ends_with(".zip") {
        let a = read_zip(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        (a.export_bin, Some(a.export_sig))
    } else {
        (bytes.to_vec(), None)
    }
}

fn public_key(file: &str) -> VerificationKey {
    let pem = std::fs::read_to_string(vector_dir().join(file)).expect("key file");
    VerificationKey::from_public_key_pem(&pem).expect("public key parses")
}

fn check_info(ctx: &str, got: &SignatureInfo, want: &InfoExpect) {
    // Absent strings decode as "" (proto2 default).
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    assert_eq!(
        got.verification_key_version,
        s(&want.verification_key_version),
        "{ctx}"
    );
    assert_eq!(
        got.verification_key_id,
        s(&want.verification_key_id),
        "{ctx}"
    );
    assert_eq!(
        got.signature_algorithm,
        s(&want.signature_algorithm),
        "{ctx}"
    );
}

fn check_key(ctx: &str, got: &ExposureKey, want: &KeyExpect) {
    assert_eq!(hex::encode(got.key_data.as_bytes()), want.key_data, "{ctx}");
    assert_eq!(
        got.transmission_risk_level, want.transmission_risk_level,
        "{ctx}"
    );
    assert_eq!(
        got.rolling_start_interval_number.get(),
        want.rolling_start_interval_number,
        "{ctx}"
    );
    assert_eq!(
        got.rolling_period,
        want.rolling_period.unwrap_or(144),
        "{ctx}"
    );
    assert_eq!(got.report_type.map(|r| r.0), want.report_type, "{ctx}");
    assert_eq!(
        got.days_since_onset_of_symptoms, want.days_since_onset_of_symptoms,
        "{ctx}"
    );
    assert_eq!(got.variant_of_concern, None, "{ctx}");
}

#[test]
fn every_vector_file_decodes_to_its_expected_contents() {
    let expected = expected();
    let files = vector_files();
    let names: Vec<_> = files.iter().map(|(n, _)| n.clone()).collect();
    let listed: Vec<_> = expected.files.keys().cloned().collect();
    assert_eq!(
        names, listed,
        "every file is described and every description has a file"
    );
    assert_eq!(files.len(), 7);

    for (name, bytes) in &files {
        let want = &expected.files[name];
        let (bin, sig) = parts(name, bytes);

        // The zip.
        if let Some(entries) = &want.zip_entries {
            let archive = zip::ZipArchive::new(Cursor::new(&bytes[..])).unwrap();
            let got: Vec<_> = archive.file_names().map(str::to_owned).collect();
            assert_eq!(&got, entries, "{name}");
        }

        // export.bin as bytes.
        assert_eq!(bin.len(), want.export_bin_len, "{name}");
        assert_eq!(
            hex::encode(Sha256::digest(&bin)),
            want.export_bin_sha256,
            "{name}"
        );
        assert_eq!(&bin[..16], want.header_ascii.as_bytes(), "{name}");
        assert_eq!(&bin[..16], EXPORT_BIN_HEADER, "{name}");

        // export.bin decoded.
        let e =
            TemporaryExposureKeyExport::decode(&bin).unwrap_or_else(|err| panic!("{name}: {err}"));
        let w = &want.export;
        assert_eq!(e.start_timestamp, w.start_timestamp, "{name}");
        assert_eq!(e.end_timestamp, w.end_timestamp, "{name}");
        assert_eq!(e.region, w.region, "{name}");
        assert_eq!(e.batch_num, w.batch_num, "{name}");
        assert_eq!(e.batch_size, w.batch_size, "{name}");
        assert_eq!(e.signature_infos.len(), w.signature_infos.len(), "{name}");
        for (i, (got, want)) in e.signature_infos.iter().zip(&w.signature_infos).enumerate() {
            check_info(&format!("{name} signature_infos[{i}]"), got, want);
        }
        assert_eq!(e.keys.len(), want.num_keys, "{name}");
        assert_eq!(e.keys.len(), w.keys.len(), "{name}");
        for (i, (got, want)) in e.keys.iter().zip(&w.keys).enumerate() {
            check_key(&format!("{name} keys[{i}]"), got, want);
        }
        assert_eq!(e.revised_keys.len(), want.num_revised_keys, "{name}");
        assert!(
            w.revised_keys.is_empty() && e.revised_keys.is_empty(),
            "{name}"
        );

        // The streaming reader and the header reader agree.
        let streamed: Vec<_> = export_keys(&bin).collect::<Result<_, _>>().unwrap();
        assert_eq!(streamed, e.keys, "{name}");
        assert_eq!(export_revised_keys(&bin).count(), 0, "{name}");
        let h = read_header(&bin).unwrap();
        assert_eq!(
            (
                h.start_timestamp,
                h.end_timestamp,
                &h.region,
                h.batch_num,
                h.batch_size
            ),
            (
                e.start_timestamp,
                e.end_timestamp,
                &e.region,
                e.batch_num,
                e.batch_size
            ),
            "{name}"
        );
        assert_eq!(h.signature_infos, e.signature_infos, "{name}");
        assert_eq!(
            (h.key_count, h.revised_key_count),
            (e.keys.len(), 0),
            "{name}"
        );

        // export.sig.
        let list = match &sig {
            Some(sig) => {
                assert_eq!(Some(sig.len()), want.export_sig_len, "{name}");
                TekSignatureList::decode(sig).unwrap()
            }
            None => {
                assert!(
                    want.export_sig_len.is_none() && want.export_sig.is_none(),
                    "{name}"
                );
                TekSignatureList::default()
            }
        };
        let want_sigs = want.export_sig.as_deref().unwrap_or_default();
        assert_eq!(list.signatures.len(), want_sigs.len(), "{name}");
        for (i, (got, want)) in list.signatures.iter().zip(want_sigs).enumerate() {
            let ctx = format!("{name} signatures[{i}]");
            check_info(&ctx, &got.signature_info, &want.signature_info);
            assert_eq!(
                (got.batch_num, got.batch_size),
                (want.batch_num, want.batch_size),
                "{ctx}"
            );
            assert_eq!(hex::encode(&got.signature), want.signature_der_hex, "{ctx}");
        }

        // Signatures.
        match &want.verification_public_key_file {
            Some(file) => {
                let key = public_key(file);
                let verdicts: Vec<bool> = list
                    .signatures
                    .iter()
                    .map(|s| key.verifies(&bin, &s.signature))
                    .collect();
                assert_eq!(Some(&verdicts), want.signature_verifies.as_ref(), "{name}");
                assert_eq!(
                    verify(&bin, &list, &[key]),
                    Some(SignatureMatch {
                        signature_index: 0,
                        key_index: 0
                    }),
                    "{name}"
                );
            }
            None => {
                assert!(list.signatures.is_empty(), "{name} is unsigned");
                assert_eq!(
                    verify(&bin, &list, &[public_key("example-server-v1.pub.pem")]),
                    None,
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn a_flipped_byte_anywhere_breaks_every_signed_vector() {
    let expected = expected();
    for (name, bytes) in vector_files() {
        let Some(key_file) = &expected.files[&name].verification_public_key_file else {
            continue;
        };
        let key = public_key(key_file);
        let (bin, sig) = parts(&name, &bytes);
        let list = TekSignatureList::decode(&sig.unwrap()).unwrap();
        assert!(verify(&bin, &list, &[key]).is_some());
        // Header, first field, middle, last byte.
        for at in [0, 15, 16, bin.len() / 2, bin.len() - 1] {
            let mut bad = bin.clone();
            bad[at] ^= 0x01;
            assert_eq!(verify(&bad, &list, &[key]), None, "{name} byte {at}");
        }
        // The wrong key.
        let other = if key_file == "ens-server-example.pub.pem" {
            "example-server-v1.pub.pem"
        } else {
            "ens-server-example.pub.pem"
        };
        assert_eq!(verify(&bin, &list, &[public_key(other)]), None, "{name}");
        // Any of several keys.
        assert_eq!(
            verify(&bin, &list, &[public_key(other), key]).map(|m| m.key_index),
            Some(1),
            "{name}"
        );
    }
}

#[test]
fn google_server_file_re_encodes_byte_for_byte() {
    // The reference server wrote this file the way our encoder does: keys
    // sorted, fields in order, rolling_period 144 omitted. Re-encoding the
    // decoded content must give the very same bytes, so the same signature.
    let bytes =
        std::fs::read(vector_dir().join("ens-server-testExport-2-records-1-of-1.zip")).unwrap();
    let archive = read_zip(&bytes).unwrap();
    let e = TemporaryExposureKeyExport::decode(&archive.export_bin).unwrap();
    assert_eq!(e.encode().unwrap(), archive.export_bin);
}

// ---------------------------------------------------------------------------
// Hostile input.

fn all_decoders(input: &[u8]) {
    let _ = TemporaryExposureKeyExport::decode(input);
    let _ = read_header(input);
    let _ = export_keys(input).count();
    let _ = export_revised_keys(input).count();
    let _ = TekSignatureList::decode(input);
    let _ = read_zip(input);
}

#[test]
fn every_truncation_of_every_vector_is_handled() {
    for (name, bytes) in vector_files() {
        let (bin, _) = parts(&name, &bytes);
        let full = TemporaryExposureKeyExport::decode(&bin).unwrap();
        for cut in 0..bin.len() {
            let prefix = &bin[..cut];
            match TemporaryExposureKeyExport::decode(prefix) {
                // Protobuf has no end marker: a cut on a field boundary is a
                // shorter valid message, whose keys are a prefix of the full list.
                Ok(e) => assert_eq!(e.keys[..], full.keys[..e.keys.len()], "{name} cut {cut}"),
                Err(DecodeError::BadHeader) => assert!(cut < 16, "{name} cut {cut}"),
                Err(DecodeError::Truncated { .. } | DecodeError::LengthPastEnd { .. }) => {}
                Err(e) => panic!("{name} cut {cut}: unexpected {e}"),
            }
            // The streaming reader agrees with the full decoder.
            let streamed: Result<Vec<_>, _> = export_keys(prefix).collect();
            assert_eq!(
                streamed.is_ok(),
                TemporaryExposureKeyExport::decode(prefix).is_ok(),
                "{name} cut {cut}"
            );
        }
        // Cutting the last byte always cuts the last key.
        assert!(matches!(
            TemporaryExposureKeyExport::decode(&bin[..bin.len() - 1]),
            Err(DecodeError::Truncated { .. } | DecodeError::LengthPastEnd { .. })
        ));
        // Cut zips.
        for cut in (0..bytes.len()).step_by(7) {
            all_decoders(&bytes[..cut]);
        }
    }
}

#[test]
fn wrong_header_oversize_and_garbage_are_errors() {
    let bin = std::fs::read(vector_dir().join("immuni-it-222-export.bin")).unwrap();
    for at in 0..16 {
        let mut bad = bin.clone();
        bad[at] ^= 0x20;
        assert_eq!(
            TemporaryExposureKeyExport::decode(&bad),
            Err(DecodeError::BadHeader)
        );
        assert_eq!(read_header(&bad), Err(DecodeError::BadHeader));
        assert_eq!(
            export_keys(&bad).collect::<Vec<_>>(),
            [Err(DecodeError::BadHeader)]
        );
    }
    assert_eq!(
        TemporaryExposureKeyExport::decode(b""),
        Err(DecodeError::BadHeader)
    );
    assert_eq!(
        TemporaryExposureKeyExport::decode(b"EK Export v1"),
        Err(DecodeError::BadHeader)
    );
    assert_eq!(
        TemporaryExposureKeyExport::decode(b"EK Export v1    "),
        Ok(TemporaryExposureKeyExport::default()),
        "a header alone is an empty export"
    );

    assert_eq!(
        TemporaryExposureKeyExport::decode_with_limit(&bin, bin.len() - 1),
        Err(DecodeError::TooLarge {
            len: bin.len() as u64,
            limit: bin.len() as u64 - 1
        })
    );
    let mut huge = EXPORT_BIN_HEADER.to_vec();
    huge.resize(MAX_EXPORT_BIN_LEN + 1, 0);
    assert!(matches!(
        TemporaryExposureKeyExport::decode(&huge),
        Err(DecodeError::TooLarge { .. })
    ));
    assert!(matches!(
        export_keys(&huge).next(),
        Some(Err(DecodeError::TooLarge { .. }))
    ));
    assert!(matches!(
        TekSignatureList::decode(&[0u8; 100_000]),
        Err(DecodeError::TooLarge { .. })
    ));

    // A zip whose export.bin is over the limit.
    let zip = write_zip(&huge, b"").unwrap();
    assert!(matches!(
        read_zip(&zip),
        Err(DecodeError::EntryTooLarge { .. })
    ));

    // Garbage.
    assert!(read_zip(b"this is not a zip file at all").is_err());
    assert!(TemporaryExposureKeyExport::decode(b"EK Export v1    \xff\xff\xff").is_err());
}

/// `export.bin` with one key whose body is `key_body`.
fn with_key_body(key_body: &[u8]) -> Vec<u8> {
    let mut bin = EXPORT_BIN_HEADER.to_vec();
    bin.push(0x3a);
    bin.push(key_body.len() as u8);
    bin.extend_from_slice(key_body);
    bin
}

fn key_body(extra: &[u8]) -> Vec<u8> {
    let mut body = vec![0x0a, 0x10];
    body.extend_from_slice(&[0xab; 16]);
    body.extend_from_slice(&[0x18, 0x90, 0xdf, 0xa1, 0x01]); // rsin 2_650_000
    body.extend_from_slice(extra);
    body
}

#[test]
fn each_invalid_field_gives_its_error() {
    let ok = TemporaryExposureKeyExport::decode(&with_key_body(&key_body(&[]))).unwrap();
    assert_eq!(ok.keys[0].rolling_start_interval_number.get(), 2_650_000);
    assert_eq!(ok.keys[0].rolling_period, 144);

    let decode = |body: &[u8]| TemporaryExposureKeyExport::decode(&with_key_body(body)).map(drop);

    // key_data of 15 bytes, 17 bytes, absent.
    let mut short = vec![0x0a, 0x0f];
    short.extend_from_slice(&[1; 15]);
    assert_eq!(decode(&short), Err(DecodeError::KeyDataLength { len: 15 }));
    let mut long = vec![0x0a, 0x11];
    long.extend_from_slice(&[1; 17]);
    assert_eq!(decode(&long), Err(DecodeError::KeyDataLength { len: 17 }));
    assert_eq!(
        decode(&[0x10, 0x01]),
        Err(DecodeError::KeyDataLength { len: 0 })
    );

    // rolling_period 0, 145, -1.
    assert_eq!(
        decode(&key_body(&[0x20, 0x00])),
        Err(DecodeError::RollingPeriodOutOfRange { value: 0 })
    );
    assert_eq!(
        decode(&key_body(&[0x20, 0x91, 0x01])),
        Err(DecodeError::RollingPeriodOutOfRange { value: 145 })
    );
    let mut minus_one = vec![0x20];
    minus_one.extend_from_slice(&[0xff; 9]);
    minus_one.push(0x01);
    assert_eq!(
        decode(&key_body(&minus_one)),
        Err(DecodeError::RollingPeriodOutOfRange { value: -1 })
    );
    assert!(decode(&key_body(&[0x20, 0x01])).is_ok());

    // Negative rolling start (the later field wins).
    let mut negative = vec![0x18];
    negative.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(
        decode(&key_body(&negative)),
        Err(DecodeError::RollingStartOutOfRange { value: -2 })
    );

    // A varint that is no int32.
    assert!(matches!(
        decode(&key_body(&[0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])),
        Err(DecodeError::ValueOutOfRange { .. })
    ));

    // Wrong wire types for known fields.
    assert!(matches!(
        decode(&[0x08, 0x01]),
        Err(DecodeError::WrongWireType {
            field: "TemporaryExposureKey.key_data",
            ..
        })
    ));
    assert!(matches!(
        decode(&key_body(&[0x22, 0x01, 0x00])),
        Err(DecodeError::WrongWireType {
            field: "TemporaryExposureKey.rolling_period",
            ..
        })
    ));
    let mut bad_top = EXPORT_BIN_HEADER.to_vec();
    bad_top.extend_from_slice(&[0x08, 0x01]); // start_timestamp as varint
    assert!(matches!(
        TemporaryExposureKeyExport::decode(&bad_top),
        Err(DecodeError::WrongWireType {
            expected: 1,
            found: 0,
            ..
        })
    ));
    let mut keys_as_varint = EXPORT_BIN_HEADER.to_vec();
    keys_as_varint.extend_from_slice(&[0x38, 0x01]);
    assert!(matches!(
        export_keys(&keys_as_varint).next(),
        Some(Err(DecodeError::WrongWireType { .. }))
    ));

    // Length past the end, at the top and inside a key.
    let mut past = EXPORT_BIN_HEADER.to_vec();
    past.extend_from_slice(&[0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00]);
    assert!(matches!(
        TemporaryExposureKeyExport::decode(&past),
        Err(DecodeError::LengthPastEnd {
            offset: 17,
            len: 0xffff_ffff,
            remaining: 1
        })
    ));
    assert!(matches!(
        decode(&[0x0a, 0x20, 0x00]),
        Err(DecodeError::LengthPastEnd { .. })
    ));

    // Truncated varint, invalid UTF-8 region, unknown fields skipped.
    assert!(matches!(
        decode(&key_body(&[0x10, 0x80])),
        Err(DecodeError::Truncated { .. })
    ));
    let mut bad_region = EXPORT_BIN_HEADER.to_vec();
    bad_region.extend_from_slice(&[0x1a, 0x02, 0xc3, 0x28]);
    assert!(matches!(
        TemporaryExposureKeyExport::decode(&bad_region),
        Err(DecodeError::InvalidUtf8 { .. })
    ));
    let unknown = key_body(&[
        0x38, 0x05, 0x4a, 0x01, 0x00, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5d, 1, 2, 3, 4,
    ]);
    assert!(decode(&unknown).is_ok());

    // Report types outside the enum are kept, dsos is zig-zag.
    let e = TemporaryExposureKeyExport::decode(&with_key_body(&key_body(&[
        0x28, 0x07, 0x30, 0x1b, 0x40, 0x02,
    ])))
    .unwrap();
    assert_eq!(e.keys[0].report_type, Some(ReportType(7)));
    assert_eq!(e.keys[0].days_since_onset_of_symptoms, Some(-14));
    assert_eq!(e.keys[0].variant_of_concern, Some(2));
}

#[test]
fn a_zip_lying_about_its_entry_size_is_refused() {
    let bin = std::fs::read(vector_dir().join("immuni-it-222-export.bin")).unwrap();
    for method in [
        zip::CompressionMethod::Stored,
        zip::CompressionMethod::Deflated,
    ] {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        w.start_file("export.bin", options).unwrap();
        w.write_all(&bin).unwrap();
        w.start_file("export.sig", options).unwrap();
        let mut zip = w.finish().unwrap().into_inner();
        assert_eq!(read_zip(&zip).unwrap().export_bin, bin);
        // Patch the uncompressed size of export.bin (local header at offset 22,
        // central directory entry at +24) to something smaller.
        let real = (bin.len() as u32).to_le_bytes();
        let fake = 10u32.to_le_bytes();
        let mut patched = 0;
        for i in 0..zip.len() - 4 {
            if zip[i..i + 4] == real {
                zip[i..i + 4].copy_from_slice(&fake);
                patched += 1;
            }
        }
        assert!(patched >= 2, "{method:?}");
        assert!(read_zip(&zip).is_err(), "{method:?}");
    }
}

fn mutate(seed_bytes: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let mut out = seed_bytes.to_vec();
    for &(at, op, value) in edits {
        if out.is_empty() {
            out.push(value);
            continue;
        }
        let at = at % out.len();
        match op % 4 {
            0 => out[at] ^= value | 1,
            1 => out.insert(at, value),
            2 => {
                out.remove(at);
            }
            _ => out[at] = value,
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300), with_header in any::<bool>()) {
        let mut input = if with_header { EXPORT_BIN_HEADER.to_vec() } else { Vec::new() };
        input.extend_from_slice(&body);
        all_decoders(&input);
        let (low, high) = export_keys(&input).size_hint();
        let count = export_keys(&input).count();
        prop_assert!(low <= count && high.is_none_or(|h| count <= h), "{low} {count} {high:?}");
        // The streaming reader and the full decoder agree on success.
        let full = TemporaryExposureKeyExport::decode(&input);
        let streamed: Result<Vec<_>, _> = export_keys(&input).collect();
        if let (Ok(full), Ok(streamed)) = (&full, &streamed) {
            prop_assert_eq!(&full.keys, streamed);
        }
    }

    #[test]
    fn mutated_vectors_never_panic(
        which in 0usize..7,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let files = vector_files();
        let (name, bytes) = &files[which % files.len()];
        let (bin, sig) = parts(name, bytes);
        all_decoders(&mutate(&bin, &edits));
        all_decoders(&mutate(bytes, &edits));
        if let Some(sig) = sig {
            all_decoders(&mutate(&sig, &edits));
        }
    }
}

// ---------------------------------------------------------------------------
// Writing.

fn arb_key() -> impl Strategy<Value = ExposureKey> {
    (
        any::<[u8; 16]>(),
        proptest::option::of(any::<i32>()),
        0..=i32::MAX as u32,
        1..=144u32,
        proptest::option::of(any::<i32>()),
        proptest::option::of(any::<i32>()),
        proptest::option::of(any::<i32>()),
    )
        .prop_map(|(key, trl, rsin, rp, rt, dsos, voc)| ExposureKey {
            key_data: Tek::from_bytes(key),
            transmission_risk_level: trl,
            rolling_start_interval_number: EnIntervalNumber::new(rsin),
            rolling_period: rp,
            report_type: rt.map(ReportType),
            days_since_onset_of_symptoms: dsos,
            variant_of_concern: voc,
        })
}

fn arb_info() -> impl Strategy<Value = SignatureInfo> {
    ("[a-z0-9]{0,8}", "[a-z0-9]{0,8}", "[0-9.]{0,20}").prop_map(|(v, i, a)| SignatureInfo {
        verification_key_version: v,
        verification_key_id: i,
        signature_algorithm: a,
    })
}

fn arb_export() -> impl Strategy<Value = TemporaryExposureKeyExport> {
    (
        any::<u64>(),
        any::<u64>(),
        "\\PC{0,6}",
        any::<i32>(),
        any::<i32>(),
        proptest::collection::vec(arb_info(), 0..3),
        proptest::collection::vec(arb_key(), 0..40),
        proptest::collection::vec(arb_key(), 0..5),
    )
        .prop_map(|(start, end, region, bn, bs, infos, keys, revised)| {
            TemporaryExposureKeyExport {
                start_timestamp: start,
                end_timestamp: end,
                region,
                batch_num: bn,
                batch_size: bs,
                signature_infos: infos,
                keys,
                revised_keys: revised,
            }
        })
}

fn is_sorted_by_key_bytes(keys: &[ExposureKey]) -> bool {
    keys.windows(2)
        .all(|w| w[0].key_data.as_bytes() <= w[1].key_data.as_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn encode_decode_round_trip(mut export in arb_export()) {
        let bin = export.encode().unwrap();
        let back = TemporaryExposureKeyExport::decode(&bin).unwrap();
        prop_assert!(is_sorted_by_key_bytes(&back.keys));
        prop_assert!(is_sorted_by_key_bytes(&back.revised_keys));
        // The same set in any order gives the same bytes.
        let mut reversed = export.clone();
        reversed.keys.reverse();
        prop_assert_eq!(&reversed.encode().unwrap(), &bin);
        export.sort_keys();
        prop_assert_eq!(&back, &export);
        let streamed: Vec<_> = export_keys(&bin).collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(&streamed, &export.keys);
        // Re-encoding what was decoded is stable.
        prop_assert_eq!(back.encode().unwrap(), bin);
    }
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn typical_keys(n: usize, seed: u64) -> Vec<ExposureKey> {
    let mut r = rng(seed);
    (0..n)
        .map(|i| {
            let mut k = ExposureKey::new(
                Tek::generate(&mut r),
                EnIntervalNumber::new(2_690_000 - 144 * (i as u32 % 14)),
            );
            k.transmission_risk_level = Some((i % 8) as i32);
            k.report_type = Some(ReportType::CONFIRMED_TEST);
            k
        })
        .collect()
}

fn meta() -> ExportMeta {
    ExportMeta {
        start_timestamp: 1_614_000_000,
        end_timestamp: 1_614_086_400,
        region: "440".into(),
    }
}

#[test]
fn rolling_period_144_is_left_out_and_fields_are_in_order() {
    let mut k = ExposureKey::new(
        Tek::from_bytes([0x11; 16]),
        EnIntervalNumber::new(2_650_000),
    );
    k.transmission_risk_level = Some(4);
    k.report_type = Some(ReportType::CONFIRMED_TEST);
    let bin = TemporaryExposureKeyExport {
        keys: vec![k.clone()],
        ..TemporaryExposureKeyExport::default()
    }
    .encode()
    .unwrap();
    let mut want = vec![0x3a, 27, 0x0a, 0x10];
    want.extend_from_slice(&[0x11; 16]);
    want.extend_from_slice(&[0x10, 4, 0x18, 0x90, 0xdf, 0xa1, 0x01, 0x28, 1]);
    assert!(bin.ends_with(&want), "{}", hex::encode(&bin));
    assert_eq!(want.len(), 29);

    k.rolling_period = 143;
    let bin = TemporaryExposureKeyExport {
        keys: vec![k],
        ..TemporaryExposureKeyExport::default()
    }
    .encode()
    .unwrap();
    let tail = [0x18, 0x90, 0xdf, 0xa1, 0x01, 0x20, 0x8f, 0x01, 0x28, 1];
    assert!(bin.ends_with(&tail), "{}", hex::encode(&bin));
}

#[test]
fn typical_keys_take_at_most_30_bytes() {
    let n = 10_000;
    let signer = SoftwareSigner::generate(&mut rng(1), SignatureInfo::new("440", "v1"));
    let empty = sign_export(
        TemporaryExposureKeyExport {
            start_timestamp: 1,
            end_timestamp: 2,
            region: "440".into(),
            batch_num: 1,
            batch_size: 1,
            ..TemporaryExposureKeyExport::default()
        },
        &[&signer],
    )
    .unwrap();
    let full = sign_export(
        TemporaryExposureKeyExport {
            start_timestamp: 1,
            end_timestamp: 2,
            region: "440".into(),
            batch_num: 1,
            batch_size: 1,
            keys: typical_keys(n, 2),
            ..TemporaryExposureKeyExport::default()
        },
        &[&signer],
    )
    .unwrap();
    let per_key = (full.export_bin.len() - empty.export_bin.len()) as f64 / n as f64;
    let overall = full.export_bin.len() as f64 / n as f64;
    eprintln!("bytes per key: {per_key} (with header and metadata: {overall:.3})");
    assert!(per_key <= 30.0, "{per_key}");
    assert!(overall <= 30.0, "{overall}");
}

#[test]
fn three_signers_each_verify() {
    let signers: Vec<SoftwareSigner> = (0..3)
        .map(|i| {
            SoftwareSigner::generate(&mut rng(10 + i), SignatureInfo::new("440", format!("v{i}")))
        })
        .collect();
    let refs: Vec<&dyn ExportSigner> = signers.iter().map(|s| s as &dyn ExportSigner).collect();
    let keys = typical_keys(1000, 3);
    let zip = build_export(&meta(), keys.clone(), &refs).unwrap();
    let archive = read_zip(&zip).unwrap();
    let e = TemporaryExposureKeyExport::decode(&archive.export_bin).unwrap();
    let list = TekSignatureList::decode(&archive.export_sig).unwrap();

    assert_eq!(e.signature_infos.len(), 3);
    assert_eq!(list.signatures.len(), 3);
    for (i, s) in signers.iter().enumerate() {
        assert_eq!(e.signature_infos[i], s.signature_info());
        assert_eq!(list.signatures[i].signature_info, s.signature_info());
        assert_eq!(
            e.signature_infos[i].signature_algorithm,
            ECDSA_P256_SHA256_OID
        );
        assert_eq!(
            (list.signatures[i].batch_num, list.signatures[i].batch_size),
            (1, 1)
        );
        let public = VerificationKey::from_public_key_pem(&s.public_key_pem().unwrap()).unwrap();
        assert_eq!(
            verify(&archive.export_bin, &list, &[public]),
            Some(SignatureMatch {
                signature_index: i,
                key_index: 0
            })
        );
    }
    let stranger = SoftwareSigner::generate(&mut rng(99), SignatureInfo::new("440", "x"));
    assert_eq!(
        verify(&archive.export_bin, &list, &[stranger.public_key()]),
        None
    );

    assert_eq!(
        (e.start_timestamp, e.end_timestamp, e.region.as_str()),
        (1_614_000_000, 1_614_086_400, "440")
    );
    assert_eq!((e.batch_num, e.batch_size), (1, 1));
    assert!(is_sorted_by_key_bytes(&e.keys));
    let mut sorted = keys;
    sorted.sort_by(|a, b| a.key_data.as_bytes().cmp(b.key_data.as_bytes()));
    assert_eq!(e.keys, sorted);

    // Deterministic: the same keys in another order give the same zip.
    let mut shuffled = sorted.clone();
    shuffled.reverse();
    assert_eq!(build_export(&meta(), shuffled, &refs).unwrap(), zip);
}

/// A signer standing in for a KMS, possibly misbehaving.
struct FakeKms {
    inner: SoftwareSigner,
    algorithm: &'static str,
    raw_signature: bool,
    fail: bool,
}

impl ExportSigner for FakeKms {
    fn signature_info(&self) -> SignatureInfo {
        SignatureInfo {
            signature_algorithm: self.algorithm.into(),
            ..self.inner.signature_info()
        }
    }

    fn sign(&self, export_bin: &[u8]) -> Result<Vec<u8>, SignError> {
        if self.fail {
            return Err("KMS unavailable".into());
        }
        let der = self.inner.sign(export_bin)?;
        if self.raw_signature {
            // r || s as a KMS might return it: 64 bytes, not DER.
            return Ok(der.iter().copied().cycle().take(64).collect());
        }
        Ok(der)
    }
}

#[test]
fn build_refuses_what_phones_would_refuse() {
    let kms = |algorithm, raw_signature, fail| FakeKms {
        inner: SoftwareSigner::generate(&mut rng(5), SignatureInfo::new("440", "v1")),
        algorithm,
        raw_signature,
        fail,
    };
    let keys = || typical_keys(3, 4);

    let good = kms(ECDSA_P256_SHA256_OID, false, false);
    let zip = build_export(&meta(), keys(), &[&good]).unwrap();
    let a = read_zip(&zip).unwrap();
    assert!(
        verify(
            &a.export_bin,
            &TekSignatureList::decode(&a.export_sig).unwrap(),
            &[good.inner.public_key()]
        )
        .is_some()
    );

    assert!(matches!(
        build_export(&meta(), keys(), &[]),
        Err(BuildError::NoSigners)
    ));
    assert!(matches!(
        build_export(
            &meta(),
            keys(),
            &[&kms("ECDSA p-256 SHA-256", false, false)]
        ),
        Err(BuildError::UnsupportedAlgorithm { .. })
    ));
    assert!(matches!(
        build_export(&meta(), keys(), &[&kms(ECDSA_P256_SHA256_OID, true, false)]),
        Err(BuildError::NotDer { .. })
    ));
    let failed =
        build_export(&meta(), keys(), &[&kms(ECDSA_P256_SHA256_OID, false, true)]).unwrap_err();
    assert!(failed.to_string().contains("KMS unavailable"), "{failed}");

    let backwards = ExportMeta {
        start_timestamp: 10,
        end_timestamp: 9,
        region: "440".into(),
    };
    assert!(matches!(
        build_export(&backwards, keys(), &[&good]),
        Err(BuildError::StartAfterEnd { .. })
    ));

    let mut bad = keys();
    bad[1].rolling_period = 145;
    assert!(matches!(
        build_export(&meta(), bad, &[&good]),
        Err(BuildError::InvalidKey { list: "keys", problem, .. }) if problem.contains("rolling_period")
    ));
    let mut bad = keys();
    bad[0].rolling_start_interval_number = EnIntervalNumber::new(u32::MAX);
    assert!(matches!(
        build_export(&meta(), bad, &[&good]),
        Err(BuildError::InvalidKey { .. })
    ));

    let two_of_three = TemporaryExposureKeyExport {
        batch_num: 2,
        batch_size: 3,
        ..TemporaryExposureKeyExport::default()
    };
    assert!(matches!(
        sign_export(two_of_three, &[&good]),
        Err(BuildError::NotOneOfOne { .. })
    ));
}

#[test]
fn written_zip_has_both_entries_in_order_and_reads_back() {
    let signer = SoftwareSigner::generate(&mut rng(6), SignatureInfo::new("440", "v1"));
    let zip = build_export(&meta(), typical_keys(10, 7), &[&signer]).unwrap();
    let archive = zip::ZipArchive::new(Cursor::new(&zip[..])).unwrap();
    let names: Vec<_> = archive.file_names().collect();
    assert_eq!(names, ["export.bin", "export.sig"]);
    let a = read_zip(&zip).unwrap();
    assert!(a.export_bin.starts_with(EXPORT_BIN_HEADER));
    assert_eq!(
        TemporaryExposureKeyExport::decode(&a.export_bin)
            .unwrap()
            .keys
            .len(),
        10
    );
}
