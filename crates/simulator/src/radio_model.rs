//! The radio model's parameters, from a file an authority can replace with its
//! own measurements (`cocoa simulate --radio-model <file>`; the default is
//! `crates/simulator/data/radio_model.toml`).
//!
//! Source (docs/simulator.md): Lovett et al. 2020, arXiv:2007.05057, fit to the
//! MIT PACT measurements: the attenuation of one sample is log-normal,
//! `ln(A) ~ N(μ(d), σ²)` with `μ(d) = 0.21·ln d + 3.92` and `σ² = 0.33`
//! (A in dB, d in metres). Scan cadence, samples per scan, placements, places
//! and the phone models' residuals are assumptions, marked so in the file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::phones::PhoneModel;

/// The file shipped with the simulator.
pub const DEFAULT_RADIO_MODEL_TOML: &str = include_str!("../data/radio_model.toml");

/// `[attenuation]`: the log-normal fit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttenuationFit {
    /// Slope of `μ(d)` in `ln d` (Lovett et al.: 0.21).
    pub slope: f64,
    /// `μ(1 m)` (Lovett et al.: 3.92, i.e. a median of 50.4 dB at 1 m).
    pub intercept: f64,
    /// `σ²` of `ln A` per sample (Lovett et al.: 0.33).
    pub variance: f64,
}

/// `[scan]`: the cadence of scan instances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanParams {
    /// Shortest time between two scans of a phone, seconds.
    pub interval_seconds: u32,
    /// Up to this many seconds more, uniformly, per scan.
    pub jitter_seconds: u32,
    /// Samples (advertisements heard) per scan.
    pub samples_per_scan: u32,
}

/// `[placement]`: where a phone is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementParams {
    /// Extra attenuation of a phone held at the face, dB.
    pub face_db: f64,
    /// ...flat on a desk.
    pub desk_db: f64,
    /// ...in a bag or a pocket.
    pub bag_db: f64,
    /// Share of phones at the face in the population simulation.
    pub face_share: f64,
    /// ...on a desk.
    pub desk_share: f64,
    /// ...in a bag.
    pub bag_share: f64,
}

/// `[place]`: the surroundings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaceParams {
    /// In a train car, dB.
    pub train_db: f64,
    /// At home at night.
    pub home_night_db: f64,
    /// In a shop.
    pub shop_db: f64,
}

/// `[identifier]`: identifier rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentifierParams {
    /// Shortest time between two rotations, seconds.
    pub rotation_min_seconds: u32,
    /// Longest, seconds.
    pub rotation_max_seconds: u32,
}

/// The radio channel between two phones (see [`crate::radio`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadioParams {
    /// Where the numbers come from.
    pub source: String,
    /// The log-normal fit.
    pub attenuation: AttenuationFit,
    /// Scan cadence.
    pub scan: ScanParams,
    /// Placements.
    pub placement: PlacementParams,
    /// Places.
    pub place: PlaceParams,
    /// Identifier rotation.
    pub identifier: IdentifierParams,
}

/// The whole file: the channel and the phone models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadioModelFile {
    /// Where the numbers come from.
    pub source: String,
    /// The log-normal fit.
    pub attenuation: AttenuationFit,
    /// Scan cadence.
    pub scan: ScanParams,
    /// Placements.
    pub placement: PlacementParams,
    /// Places.
    pub place: PlaceParams,
    /// Identifier rotation.
    pub identifier: IdentifierParams,
    /// Phone models with their calibration residuals and market shares.
    pub models: Vec<PhoneModel>,
}

/// Why a radio model file was refused: a stable code and the Japanese and
/// English messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {en}")]
pub struct RadioModelError {
    /// `RADIO_MODEL_UNREADABLE`, `RADIO_MODEL_PARSE` or `RADIO_MODEL_VALUE`.
    pub code: &'static str,
    /// Japanese message.
    pub ja: String,
    /// English message.
    pub en: String,
}

fn value(ja: &str, en: &str) -> RadioModelError {
    RadioModelError {
        code: "RADIO_MODEL_VALUE",
        ja: format!("電波モデルの値が不正です: {ja}"),
        en: format!("bad radio model value: {en}"),
    }
}

impl RadioModelFile {
    /// Parses and checks a file's text; nothing is returned on any fault.
    pub fn from_toml(text: &str) -> Result<Self, RadioModelError> {
        let f: Self = toml::from_str(text).map_err(|e| RadioModelError {
            code: "RADIO_MODEL_PARSE",
            ja: "電波モデルのファイルを読めません（TOML の形式・項目名を確認してください）".into(),
            en: format!("cannot parse the radio model: {}", e.message()),
        })?;
        f.validate()?;
        Ok(f)
    }

    /// Reads and checks a file.
    pub fn from_path(path: &Path) -> Result<Self, RadioModelError> {
        let text = std::fs::read_to_string(path).map_err(|e| RadioModelError {
            code: "RADIO_MODEL_UNREADABLE",
            ja: format!("電波モデルのファイル {} を読めません", path.display()),
            en: format!("cannot read {}: {e}", path.display()),
        })?;
        Self::from_toml(&text).map_err(|e| RadioModelError {
            ja: format!("{}: {}", path.display(), e.ja),
            en: format!("{}: {}", path.display(), e.en),
            ..e
        })
    }

    /// The file shipped with the simulator.
    pub fn shipped() -> Self {
        Self::from_toml(DEFAULT_RADIO_MODEL_TOML)
            .expect("the shipped radio model is valid (tested)")
    }

    /// Finite numbers in range, ordered intervals, at least one model with a share.
    pub fn validate(&self) -> Result<(), RadioModelError> {
        let a = &self.attenuation;
        if !(a.slope.is_finite() && a.intercept.is_finite() && a.intercept > 0.0) {
            return Err(value(
                "attenuation の slope と intercept は有限の数（intercept は正）にしてください",
                "attenuation slope and intercept must be finite (intercept > 0)",
            ));
        }
        if !(a.variance.is_finite() && (0.0..=4.0).contains(&a.variance)) {
            return Err(value(
                "attenuation.variance は 0 以上 4 以下にしてください",
                "attenuation.variance must be between 0 and 4",
            ));
        }
        let s = &self.scan;
        if !(1..=3600).contains(&s.interval_seconds) || s.jitter_seconds > 3600 {
            return Err(value(
                "scan.interval_seconds は 1〜3600、jitter_seconds は 3600 以下にしてください",
                "scan.interval_seconds must be 1 to 3600 and jitter_seconds at most 3600",
            ));
        }
        if !(1..=100).contains(&s.samples_per_scan) {
            return Err(value(
                "scan.samples_per_scan は 1〜100 にしてください",
                "scan.samples_per_scan must be 1 to 100",
            ));
        }
        let p = &self.placement;
        let offsets = [
            p.face_db,
            p.desk_db,
            p.bag_db,
            self.place.train_db,
            self.place.home_night_db,
            self.place.shop_db,
        ];
        if offsets.iter().any(|x| !x.is_finite() || x.abs() > 40.0) {
            return Err(value(
                "placement と place の dB は -40〜40 にしてください",
                "placement and place offsets must be -40 to 40 dB",
            ));
        }
        let shares = [p.face_share, p.desk_share, p.bag_share];
        if shares.iter().any(|x| !x.is_finite() || *x < 0.0) || shares.iter().sum::<f64>() <= 0.0 {
            return Err(value(
                "placement の share は 0 以上で、合計は正にしてください",
                "placement shares must be >= 0 with a positive sum",
            ));
        }
        let r = &self.identifier;
        if r.rotation_min_seconds == 0 || r.rotation_min_seconds > r.rotation_max_seconds {
            return Err(value(
                "identifier の rotation は正で、min ≤ max にしてください",
                "identifier rotation must be positive and ordered",
            ));
        }
        if self.models.is_empty() || self.models.len() > 200 {
            return Err(value(
                "models は 1〜200 機種にしてください",
                "models: 1 to 200 phone models",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for m in &self.models {
            let ok = !m.name.is_empty()
                && !m.name.contains(':')
                && m.share.is_finite()
                && m.share >= 0.0
                && [m.tx_error_db, m.rx_error_db, m.sensitivity_dbm]
                    .iter()
                    .all(|x| x.is_finite())
                && (0.0..1.0).contains(&m.scan_miss);
            if !ok || !names.insert(m.name.as_str()) {
                return Err(value(
                    &format!(
                        "機種 {:?}: 名前（重複・「:」不可）、share ≥ 0、scan_miss は 0 以上 1 未満",
                        m.name
                    ),
                    &format!(
                        "model {:?}: a unique name without ':', share >= 0, scan_miss in [0, 1)",
                        m.name
                    ),
                ));
            }
        }
        if self.models.iter().all(|m| m.share <= 0.0) {
            return Err(value(
                "少なくとも 1 機種の share を正にしてください",
                "at least one model needs a positive share",
            ));
        }
        Ok(())
    }

    /// The channel's parameters.
    pub fn radio(&self) -> RadioParams {
        RadioParams {
            source: self.source.clone(),
            attenuation: self.attenuation.clone(),
            scan: self.scan.clone(),
            placement: self.placement.clone(),
            place: self.place.clone(),
            identifier: self.identifier.clone(),
        }
    }
}

impl Default for RadioParams {
    fn default() -> Self {
        RadioModelFile::shipped().radio()
    }
}

impl RadioParams {
    /// `μ(d)`: the mean of `ln A` at `distance_m`.
    pub fn mu(&self, distance_m: f64) -> f64 {
        self.attenuation.slope * distance_m.max(0.01).ln() + self.attenuation.intercept
    }

    /// The median attenuation of one sample at `distance_m`, dB.
    pub fn median_db(&self, distance_m: f64) -> f64 {
        self.mu(distance_m).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_is_lovetts_fit_and_valid() {
        let f = RadioModelFile::shipped();
        assert_eq!(
            (
                f.attenuation.slope,
                f.attenuation.intercept,
                f.attenuation.variance
            ),
            (0.21, 3.92, 0.33)
        );
        assert_eq!(f.models, crate::phones::default_models());
        let r = f.radio();
        assert!((r.median_db(1.0) - 50.4).abs() < 0.1);
        assert!((r.median_db(4.0) - 67.4).abs() < 0.1);
    }

    #[test]
    fn bad_files_are_refused_with_a_stable_code() {
        let e = RadioModelFile::from_toml("source = 1").unwrap_err();
        assert_eq!(e.code, "RADIO_MODEL_PARSE");
        assert!(e.ja.contains("読めません"));
        let bad = DEFAULT_RADIO_MODEL_TOML.replace("variance = 0.33", "variance = -1");
        assert_eq!(
            RadioModelFile::from_toml(&bad).unwrap_err().code,
            "RADIO_MODEL_VALUE"
        );
        let bad = DEFAULT_RADIO_MODEL_TOML.replace("samples_per_scan = 4", "samples_per_scan = 0");
        assert_eq!(
            RadioModelFile::from_toml(&bad).unwrap_err().code,
            "RADIO_MODEL_VALUE"
        );
        let bad = DEFAULT_RADIO_MODEL_TOML.replace("name = \"pixel\"", "name = \"iphone\"");
        assert_eq!(
            RadioModelFile::from_toml(&bad).unwrap_err().code,
            "RADIO_MODEL_VALUE"
        );
        let bad = DEFAULT_RADIO_MODEL_TOML.replace("[scan]", "[scans]");
        assert_eq!(
            RadioModelFile::from_toml(&bad).unwrap_err().code,
            "RADIO_MODEL_PARSE"
        );
        let e = RadioModelFile::from_path(Path::new("/nonexistent/radio.toml")).unwrap_err();
        assert_eq!(e.code, "RADIO_MODEL_UNREADABLE");
    }
}
