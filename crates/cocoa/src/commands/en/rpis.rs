//! `cocoa en rpis`: RPIK, AEMK, RPIs and AEMs of one TEK.

use en_protocol::{BluetoothMetadata, EnIntervalNumber, Tek};
use serde::Serialize;

use super::RpisArgs;
use crate::commands::{bad_input, print_json};

#[derive(Serialize)]
struct Output {
    rpik: String,
    aemk: String,
    rpis: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aems: Option<Vec<String>>,
}

/// Largest `--count` accepted: a key is valid for at most 144 intervals, but
/// tools may want to look past it; 14 days of intervals is plenty.
const MAX_COUNT: u32 = 14 * 144;

pub fn run(a: RpisArgs) -> anyhow::Result<()> {
    let tek = parse_hex::<16>(&a.tek, "--tek")?;
    let tek = Tek::from_bytes(tek);
    if a.count == 0 || a.count > MAX_COUNT {
        return Err(bad_input(format!(
            "--count must be between 1 and {MAX_COUNT}, got {}",
            a.count
        )));
    }
    if a.interval.checked_add(a.count - 1).is_none() {
        return Err(bad_input(
            "--interval + --count runs past the last ENIntervalNumber",
        ));
    }
    let metadata = a
        .metadata
        .as_deref()
        .map(|m| parse_hex::<4>(m, "--metadata").map(BluetoothMetadata::from_bytes))
        .transpose()?;

    let (rpik, aemk) = tek.rpik_and_aemk();
    let rpis = rpik.rpis(EnIntervalNumber::new(a.interval), a.count);
    let aems = metadata.map(|m| {
        rpis.iter()
            .map(|r| hex::encode(aemk.encrypt(r, m).0))
            .collect()
    });
    print_json(&Output {
        rpik: hex::encode(rpik.as_bytes()),
        aemk: hex::encode(aemk.as_bytes()),
        rpis: rpis.iter().map(|r| hex::encode(r.0)).collect(),
        aems,
    })
}

/// Exactly `N` bytes of hex, or a clear error naming the flag.
pub fn parse_hex<const N: usize>(s: &str, flag: &str) -> anyhow::Result<[u8; N]> {
    let bytes = hex::decode(s.trim()).map_err(|e| bad_input(format!("{flag}: not hex ({e})")))?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| {
        bad_input(format!(
            "{flag} must be {} hex digits, got {}",
            N * 2,
            s.trim().len()
        ))
    })
}
