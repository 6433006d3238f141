//! The export file decoder, as a phone meets it: whatever a server or an
//! attacker puts in a zip goes through `read_zip`, the header walk, the
//! streaming key iterator, the full decode, `export.sig` and signature
//! verification. Inputs: real export files of other servers mutated, files
//! built by us mutated, and `export.bin`s generated field by field with
//! wrong wire types, huge length prefixes, truncations and unknown fields.
//! No panic, no input over 2 s, no allocation beyond the cap.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use en_protocol::export::{
    ExportMeta, ExposureKey, SignatureInfo, SoftwareSigner, TekSignatureList,
    TemporaryExposureKeyExport, VerificationKey, build_export, export_keys, export_revised_keys,
    read_header, read_zip, verify,
};
use en_protocol::time::EnIntervalNumber;
use proptest::prelude::*;
use rand::SeedableRng as _;

use common::{assert_peak_below, bounded, config};

const HEADER: &[u8; 16] = b"EK Export v1    ";

struct Corpus {
    zips: Vec<Vec<u8>>,
    keys: Vec<VerificationKey>,
}

/// Real files from `en-protocol/tests/vectors/exports` and one of ours.
fn corpus() -> &'static Corpus {
    static C: OnceLock<Corpus> = OnceLock::new();
    C.get_or_init(|| {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../en-protocol/tests/vectors/exports");
        let mut zips = Vec::new();
        let mut keys = Vec::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            match p.extension().and_then(|x| x.to_str()) {
                Some("zip") => zips.push(std::fs::read(&p).unwrap()),
                Some("pem") => {
                    let pem = std::fs::read_to_string(&p).unwrap();
                    if let Ok(k) = VerificationKey::from_public_key_pem(&pem) {
                        keys.push(k);
                    }
                }
                _ => {}
            }
        }
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let signer = SoftwareSigner::generate(&mut rng, SignatureInfo::new("440", "v1"));
        let batch: Vec<ExposureKey> = (0..50u8)
            .map(|i| {
                ExposureKey::new(
                    en_protocol::Tek::from_bytes([i; 16]),
                    EnIntervalNumber::new(2_700_000 + u32::from(i) * 144),
                )
            })
            .collect();
        let meta = ExportMeta {
            start_timestamp: 1_600_000_000,
            end_timestamp: 1_600_003_600,
            region: "440".into(),
        };
        zips.push(build_export(&meta, batch, &[&signer]).unwrap());
        keys.push(signer.public_key());
        assert!(
            zips.len() >= 2,
            "the test vectors (crates/en-protocol/tests/vectors/exports) are missing"
        );
        Corpus { zips, keys }
    })
}

/// Every decoding path a phone or a tool may take over `bytes`.
fn decode_everything(bytes: &[u8], keys: &[VerificationKey]) {
    if let Ok(archive) = read_zip(bytes) {
        decode_bin(&archive.export_bin);
        if let Ok(sigs) = TekSignatureList::decode(&archive.export_sig) {
            let _ = verify(&archive.export_bin, &sigs, keys);
        }
    }
    decode_bin(bytes);
    let _ = TekSignatureList::decode(bytes);
}

fn decode_bin(bin: &[u8]) {
    let header = read_header(bin);
    let full = TemporaryExposureKeyExport::decode(bin);
    let mut streamed = 0usize;
    let mut stream_ok = true;
    for k in export_keys(bin) {
        match k {
            Ok(_) => streamed += 1,
            Err(_) => {
                stream_ok = false;
                break;
            }
        }
    }
    for k in export_revised_keys(bin) {
        if k.is_err() {
            break;
        }
    }
    // The three readers agree on what is well formed.
    if let Ok(f) = &full {
        assert!(header.is_ok(), "full decode ok but header walk failed");
        assert!(stream_ok, "full decode ok but the key stream failed");
        assert_eq!(f.keys.len(), streamed, "streamed and decoded key counts");
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One protobuf field: tag, wire type and a payload fitting (or not) the type.
#[derive(Debug, Clone)]
enum Field {
    Varint(u32, u64),
    Fixed64(u32, u64),
    Fixed32(u32, u32),
    Bytes(u32, Vec<u8>),
    /// A length prefix larger than what follows.
    LengthBomb(u32, u64),
    Nested(u32, Vec<Field>),
    /// Raw garbage.
    Raw(Vec<u8>),
}

fn encode(fields: &[Field], out: &mut Vec<u8>) {
    for f in fields {
        match f {
            Field::Varint(t, v) => {
                varint(u64::from(*t) << 3, out);
                varint(*v, out);
            }
            Field::Fixed64(t, v) => {
                varint((u64::from(*t) << 3) | 1, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::Fixed32(t, v) => {
                varint((u64::from(*t) << 3) | 5, out);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Field::Bytes(t, b) => {
                varint((u64::from(*t) << 3) | 2, out);
                varint(b.len() as u64, out);
                out.extend_from_slice(b);
            }
            Field::LengthBomb(t, len) => {
                varint((u64::from(*t) << 3) | 2, out);
                varint(*len, out);
                out.extend_from_slice(&[0xAB; 8]);
            }
            Field::Nested(t, inner) => {
                let mut b = Vec::new();
                encode(inner, &mut b);
                varint((u64::from(*t) << 3) | 2, out);
                varint(b.len() as u64, out);
                out.extend_from_slice(&b);
            }
            Field::Raw(b) => out.extend_from_slice(b),
        }
    }
}

/// Tags of the export and key messages, and a few unknown ones.
fn tag() -> impl Strategy<Value = u32> {
    prop_oneof![1u32..=9, Just(0u32), 10u32..=40, Just(536_870_911u32)]
}

fn leaf() -> impl Strategy<Value = Field> {
    prop_oneof![
        (tag(), any::<u64>()).prop_map(|(t, v)| Field::Varint(t, v)),
        (tag(), 0u64..300).prop_map(|(t, v)| Field::Varint(t, v)),
        (tag(), any::<u64>()).prop_map(|(t, v)| Field::Fixed64(t, v)),
        (tag(), any::<u32>()).prop_map(|(t, v)| Field::Fixed32(t, v)),
        (tag(), proptest::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(t, b)| Field::Bytes(t, b)),
        (
            tag(),
            prop_oneof![Just(16usize), Just(15), Just(17), 0usize..64]
        )
            .prop_map(|(t, n)| Field::Bytes(t, vec![0x5A; n])),
        (
            tag(),
            prop_oneof![Just(u64::MAX), Just(1u64 << 40), 9u64..100_000]
        )
            .prop_map(|(t, n)| Field::LengthBomb(t, n)),
        proptest::collection::vec(any::<u8>(), 1..12).prop_map(Field::Raw),
    ]
}

fn fields() -> impl Strategy<Value = Vec<Field>> {
    let field = leaf().prop_recursive(2, 32, 6, |inner| {
        (tag(), proptest::collection::vec(inner, 0..8)).prop_map(|(t, f)| Field::Nested(t, f))
    });
    proptest::collection::vec(field, 0..16)
}

/// A mutation of a corpus file.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Overwrite(usize, Vec<u8>),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let m = prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<usize>().prop_map(Mutation::Truncate),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (
            any::<usize>(),
            prop_oneof![
                Just(vec![0xFF; 4]),
                Just(vec![0xFF, 0xFF, 0xFF, 0x7F]),
                Just(vec![0; 4]),
                proptest::collection::vec(any::<u8>(), 1..8)
            ]
        )
            .prop_map(|(i, b)| Mutation::Overwrite(i, b)),
    ];
    proptest::collection::vec(m, 1..6)
}

fn mutate(mut b: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        if b.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, x) => {
                let i = i % b.len();
                b[i] ^= x;
            }
            Mutation::Truncate(i) => b.truncate(i % b.len()),
            Mutation::Insert(i, x) => {
                let i = i % b.len();
                b.splice(i..i, x.iter().copied());
            }
            Mutation::Overwrite(i, x) => {
                let i = i % b.len();
                for (j, v) in x.iter().enumerate() {
                    if let Some(slot) = b.get_mut(i + j) {
                        *slot = *v;
                    }
                }
            }
        }
    }
    b
}

/// Peak the decoders may reach while fuzzed: they allocate in proportion to
/// their (small) inputs, never to a length field's claim.
const PEAK: usize = 256 << 20;

proptest! {
    #![proptest_config(config(2_000))]

    #[test]
    fn mutated_export_files_never_panic(which in any::<usize>(), ms in mutations()) {
        let c = corpus();
        let zip = mutate(c.zips[which % c.zips.len()].clone(), &ms);
        bounded("mutated zip", || decode_everything(&zip, &c.keys));
        assert_peak_below(PEAK);
    }
}

proptest! {
    #![proptest_config(config(600))]

    #[test]
    fn generated_export_bins_never_panic(fs in fields(), with_header in prop::bool::weighted(0.9)) {
        let mut bin = if with_header { HEADER.to_vec() } else { Vec::new() };
        encode(&fs, &mut bin);
        bounded("generated export.bin", || decode_everything(&bin, &corpus().keys));
        assert_peak_below(PEAK);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        bounded("arbitrary bytes", || decode_everything(&bytes, &corpus().keys));
        assert_peak_below(PEAK);
    }
}
