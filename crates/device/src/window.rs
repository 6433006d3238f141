//! Which keys a positive registration sends: the rule of COCOA ver. 1.2.1
//! (the seed's 参考資料), as one function, [`registration_keys`].

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use en_protocol::time::{EN_INTERVAL_SECONDS, EnIntervalNumber, TEK_ROLLING_PERIOD};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::keys::DailyKey;

/// Days before registration from which keys may still be sent.
pub const LOOKBACK_DAYS: i64 = 14;
/// Days before the onset (or test) date from which contacts are notified.
pub const DAYS_BEFORE_DATE: i64 = 2;

pub use en_protocol::time::jst;

/// Today's date in Japan at `now`.
pub fn today_in_japan(now: DateTime<Utc>) -> NaiveDate {
    en_protocol::time::japan_date(now)
}

/// 00:00 Japan time on `date`, as a UTC instant.
pub fn jst_midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN)
        .and_local_timezone(jst())
        .single()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The period a registration covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyWindow {
    /// The onset date, or the test date when there are no symptoms.
    pub date: NaiveDate,
    /// 00:00 Japan time two days before `date`: contacts from then on are notified.
    pub contacts_from: DateTime<Utc>,
    /// UTC midnight 14 days before registration: no key starting earlier is sent.
    pub oldest_key_start: EnIntervalNumber,
    /// The moment of registration.
    pub until: DateTime<Utc>,
}

impl KeyWindow {
    /// Whether a key valid on intervals `[start, start + period)` is sent.
    pub fn includes(&self, start: EnIntervalNumber, period: u32) -> bool {
        let (from, to) = validity(start, period);
        start >= self.oldest_key_start
            && to > self.contacts_from.timestamp()
            && from <= self.until.timestamp()
    }
}

/// The keys picked for a registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySelection {
    /// The window they were picked for.
    pub window: KeyWindow,
    /// The keys, oldest first.
    pub keys: Vec<DailyKey>,
    /// Whether the phone holds a key from the days up to and including the
    /// date (or, when the date lies beyond the 14-day limit, the oldest key
    /// the limit allows). When it does not, the app was installed after the
    /// date: registering cannot notify anyone (the seed's FAQ 問4).
    pub covers_date: bool,
}

/// Unix seconds `[from, to)` of a key's validity.
fn validity(start: EnIntervalNumber, period: u32) -> (i64, i64) {
    let from = start.to_unix_seconds();
    (from, from + i64::from(period) * EN_INTERVAL_SECONDS)
}

/// The keys a positive registration at `now` sends, for the onset date (or
/// the test date when there are no symptoms) `date`, from the keys the
/// phone holds.
///
/// The seed (【参考資料】 ver. 1.2.1): 「陽性となった利用者が入力した発症日又は検査日の
/// 約2日前以降に接触の可能性のある利用者へ通知するようになります」 and 「入力された発症日
/// 又は検査日の日付にかかわらず、陽性登録から遡って14日間より前の接触について通知されること
/// はありません」. So a key is sent when
///
/// 1. its validity overlaps the period from **00:00 Japan time two days
///    before `date`** up to **now**, and
/// 2. it started **no earlier than UTC midnight 14 days before `now`**.
///
/// Rule 1 is the seed's screen word for word: 「症状が始まった日または検査を受けた日の
/// 2日前以降にあなたと接触した人に通知が行きます」. A key is sent when it was valid
/// at some moment at or after 00:00 JST on D−2; a key whose validity *ends*
/// exactly at 00:00 JST on D−2 holds only contacts before the window and is
/// not sent.
///
/// Keys start at UTC midnight (09:00 JST), so for a date D this sends the
/// keys of the UTC days D−3 to today: the key of UTC day D−3 runs from
/// 09:00 JST on D−3 until 09:00 JST on D−2, the first morning of the window.
/// For such keys this is what COCOA's code did (it kept keys starting at or
/// after local midnight of D−3, PROTOCOLS.md). It differs from COCOA at one
/// edge only: a key starting **exactly at 00:00 JST on D−3** with a full
/// day's validity (a phone that starts its keys at local midnight) ends
/// exactly where the window starts, 00:00 JST on D−2 — COCOA would have
/// sent it, this rule does not (the seed promises 「2日前以降」, and every
/// contact that key could match was on D−3). One interval longer, or
/// starting one interval later, and it is sent.
///
/// A date after today in Japan is refused ([`Error::DateInFuture`]); a date
/// more than 14 days back is not refused here, the 14-day limit cuts the
/// window instead (input screens refuse such dates earlier, see
/// [`check_registration_date`]).
pub fn registration_keys(
    keys: &[DailyKey],
    date: NaiveDate,
    now: DateTime<Utc>,
) -> Result<KeySelection> {
    if date > today_in_japan(now) {
        return Err(Error::DateInFuture { date });
    }
    let contacts_from = jst_midnight(date - Duration::days(DAYS_BEFORE_DATE));
    let now_interval = EnIntervalNumber::from_datetime(now).map_err(|_| Error::TimeOutOfRange {
        at: now.to_rfc3339(),
        reason: "out of range",
    })?;
    let oldest_key_start = now_interval
        .day_start()
        .saturating_sub(LOOKBACK_DAYS as u32 * TEK_ROLLING_PERIOD);
    let window = KeyWindow {
        date,
        contacts_from,
        oldest_key_start,
        until: now,
    };
    let mut picked: Vec<DailyKey> = keys
        .iter()
        .filter(|k| window.includes(k.rolling_start, k.rolling_period))
        .cloned()
        .collect();
    picked.sort_by_key(|k| k.rolling_start);
    let end_of_date = jst_midnight(date + Duration::days(1)).timestamp();
    let covers_date = picked.iter().any(|k| {
        k.rolling_start.to_unix_seconds() < end_of_date || k.rolling_start == oldest_key_start
    });
    Ok(KeySelection {
        window,
        keys: picked,
        covers_date,
    })
}

/// Checks the date typed on the registration screen: not after today and
/// not more than 14 days before today (Japan time). The seed's screen asks
/// for 「覚えている範囲で一番古い日付」; a person whose symptoms began earlier
/// is told to pick the oldest date allowed, which sends the same keys.
pub fn check_registration_date(date: NaiveDate, now: DateTime<Utc>) -> Result<()> {
    let today = today_in_japan(now);
    let earliest = today - Duration::days(LOOKBACK_DAYS);
    if date > today {
        Err(Error::DateInFuture { date })
    } else if date < earliest {
        Err(Error::DateTooOld { date, earliest })
    } else {
        Ok(())
    }
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(input: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(input.trim(), "%Y-%m-%d").map_err(|_| Error::DateMalformed {
        input: input.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use en_protocol::Tek;

    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn jst_at(y: i32, m: u32, day: u32, h: u32, min: u32) -> DateTime<Utc> {
        jst()
            .with_ymd_and_hms(y, m, day, h, min, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn utc_day_start(date: NaiveDate) -> EnIntervalNumber {
        let t = date.and_time(NaiveTime::MIN).and_utc();
        EnIntervalNumber::from_datetime(t).unwrap()
    }

    /// One key per UTC day from `first` to `last` inclusive.
    fn daily(first: NaiveDate, last: NaiveDate) -> Vec<DailyKey> {
        first
            .iter_days()
            .take_while(|x| *x <= last)
            .enumerate()
            .map(|(i, day)| DailyKey {
                tek: Tek::from_bytes([i as u8; 16]),
                rolling_start: utc_day_start(day),
                rolling_period: TEK_ROLLING_PERIOD,
            })
            .collect()
    }

    fn days(sel: &KeySelection) -> Vec<NaiveDate> {
        sel.keys
            .iter()
            .map(|k| k.rolling_start.to_datetime().date_naive())
            .collect()
    }

    #[test]
    fn sends_utc_days_from_d_minus_3_to_today() {
        let now = jst_at(2020, 12, 16, 12, 0);
        let keys = daily(d(2020, 11, 20), d(2020, 12, 16));
        let sel = registration_keys(&keys, d(2020, 12, 14), now).unwrap();
        assert_eq!(sel.window.contacts_from, jst_at(2020, 12, 12, 0, 0));
        assert_eq!(
            days(&sel),
            d(2020, 12, 11).iter_days().take(6).collect::<Vec<_>>()
        );
        assert!(sel.covers_date);
    }

    #[test]
    fn window_start_is_jst_midnight_to_the_interval() {
        // 00:00 JST on 12-12 is 15:00 UTC on 12-11, interval boundary 90 of that day.
        let now = jst_at(2020, 12, 16, 12, 0);
        let day = utc_day_start(d(2020, 12, 11));
        let ends_at_window_start = DailyKey {
            tek: Tek::from_bytes([1; 16]),
            rolling_start: day,
            rolling_period: 90,
        };
        let ends_one_interval_later = DailyKey {
            tek: Tek::from_bytes([2; 16]),
            rolling_start: day,
            rolling_period: 91,
        };
        let sel = registration_keys(
            &[ends_at_window_start, ends_one_interval_later.clone()],
            d(2020, 12, 14),
            now,
        )
        .unwrap();
        assert_eq!(sel.keys, vec![ends_one_interval_later]);
    }

    #[test]
    fn a_key_starting_exactly_at_midnight_jst_three_days_before_is_not_sent() {
        // D = 12-14: the window starts 00:00 JST on 12-12 (15:00 UTC 12-11);
        // 00:00 JST on D−3 = 12-11 is 15:00 UTC on 12-10.
        let now = jst_at(2020, 12, 16, 12, 0);
        let d_minus_3_midnight_jst =
            EnIntervalNumber::from_datetime(jst_at(2020, 12, 11, 0, 0)).unwrap();
        let key = |byte: u8, start: EnIntervalNumber, period: u32| DailyKey {
            tek: Tek::from_bytes([byte; 16]),
            rolling_start: start,
            rolling_period: period,
        };
        // Valid [00:00 JST 12-11, 00:00 JST 12-12): ends where the window starts.
        let ends_at_window = key(1, d_minus_3_midnight_jst, TEK_ROLLING_PERIOD);
        // One interval longer: valid at 00:00 JST on 12-12.
        let one_longer = key(2, d_minus_3_midnight_jst, TEK_ROLLING_PERIOD + 1);
        // One interval later: valid until 00:10 JST on 12-12.
        let one_later = key(
            3,
            EnIntervalNumber::new(d_minus_3_midnight_jst.get() + 1),
            TEK_ROLLING_PERIOD,
        );
        // The UTC keys around it: UTC day D−3 (09:00 JST 12-11 to 09:00 JST
        // 12-12) is sent, UTC day D−4 (ends 09:00 JST on 12-11) is not — as
        // COCOA's start-time rule.
        let utc_d_minus_3 = key(4, utc_day_start(d(2020, 12, 11)), TEK_ROLLING_PERIOD);
        let utc_d_minus_4 = key(5, utc_day_start(d(2020, 12, 10)), TEK_ROLLING_PERIOD);
        let sel = registration_keys(
            &[
                ends_at_window.clone(),
                one_longer.clone(),
                one_later.clone(),
                utc_d_minus_3.clone(),
                utc_d_minus_4.clone(),
            ],
            d(2020, 12, 14),
            now,
        )
        .unwrap();
        assert_eq!(sel.window.contacts_from, jst_at(2020, 12, 12, 0, 0));
        assert!(!sel.keys.contains(&ends_at_window), "ends at 00:00 JST D−2");
        assert!(!sel.keys.contains(&utc_d_minus_4));
        assert!(sel.keys.contains(&one_longer));
        assert!(sel.keys.contains(&one_later));
        assert!(sel.keys.contains(&utc_d_minus_3));
        assert_eq!(sel.keys.len(), 3);
    }

    #[test]
    fn today_means_today_in_japan() {
        // 00:30 JST on 12-16 is still 12-15 in UTC: 12-16 is today, 12-17 the future.
        let now = jst_at(2020, 12, 16, 0, 30);
        let mut keys = daily(d(2020, 12, 1), d(2020, 12, 15));
        // A key that would start after now (09:00 JST) is not sent.
        keys.extend(daily(d(2020, 12, 16), d(2020, 12, 16)));
        let sel = registration_keys(&keys, d(2020, 12, 16), now).unwrap();
        assert_eq!(
            days(&sel),
            d(2020, 12, 13).iter_days().take(3).collect::<Vec<_>>()
        );
        assert!(matches!(
            registration_keys(&keys, d(2020, 12, 17), now),
            Err(Error::DateInFuture { .. })
        ));
        assert!(check_registration_date(d(2020, 12, 16), now).is_ok());
        assert!(matches!(
            check_registration_date(d(2020, 12, 17), now),
            Err(Error::DateInFuture { .. })
        ));
    }

    #[test]
    fn a_future_date_is_refused_with_a_japanese_message() {
        let now = jst_at(2020, 12, 16, 12, 0);
        let e = registration_keys(&[], d(2021, 1, 1), now).unwrap_err();
        assert!(e.text().ja.contains("未来の日付"), "{e}");
        assert!(e.is_input());
    }

    #[test]
    fn never_more_than_14_days_back() {
        // 12:00 JST on 12-16 = 03:00 UTC: the oldest key allowed starts 12-02 00:00 UTC.
        let now = jst_at(2020, 12, 16, 12, 0);
        let keys = daily(d(2020, 11, 1), d(2020, 12, 16));
        let sel = registration_keys(&keys, d(2020, 11, 20), now).unwrap();
        assert_eq!(sel.window.oldest_key_start, utc_day_start(d(2020, 12, 2)));
        assert_eq!(
            days(&sel),
            d(2020, 12, 2).iter_days().take(15).collect::<Vec<_>>()
        );
        assert!(sel.covers_date, "the phone ran all 14 days");
        // The date screen refuses such a date and says what to pick instead.
        let e = check_registration_date(d(2020, 11, 20), now).unwrap_err();
        match &e {
            Error::DateTooOld { earliest, .. } => assert_eq!(*earliest, d(2020, 12, 2)),
            other => panic!("{other:?}"),
        }
        assert!(e.text().ja.contains("14日より前"), "{e}");
        assert!(check_registration_date(d(2020, 12, 2), now).is_ok());
    }

    #[test]
    fn installed_after_the_date_covers_nothing_before_it() {
        // FAQ 問4: installed on 12-15, symptoms from 12-10.
        let now = jst_at(2020, 12, 16, 12, 0);
        let keys = daily(d(2020, 12, 15), d(2020, 12, 16));
        let sel = registration_keys(&keys, d(2020, 12, 10), now).unwrap();
        assert_eq!(sel.keys.len(), 2, "today's keys are in the window...");
        assert!(!sel.covers_date, "...but none from before the date");
        // Installed on the date itself (UTC key of the date starts 09:00 JST).
        let keys = daily(d(2020, 12, 10), d(2020, 12, 16));
        assert!(
            registration_keys(&keys, d(2020, 12, 10), now)
                .unwrap()
                .covers_date
        );
    }

    #[test]
    fn dates_parse_strictly() {
        assert_eq!(parse_date("2020-12-14").unwrap(), d(2020, 12, 14));
        assert!(matches!(
            parse_date("2020/12/14"),
            Err(Error::DateMalformed { .. })
        ));
        assert!(parse_date("2020-02-30").is_err());
    }
}
