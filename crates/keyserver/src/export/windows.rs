//! Where batch windows are cut.

/// The windows to cut now, oldest first.
///
/// Windows follow each other without gaps from the end of the last batch
/// (`last_end`), or, before the first batch, from the start of the period
/// holding the earliest key waiting for export (`earliest`). With a period,
/// a window ends on a multiple of it and is cut once its end is at or before
/// `cutoff` (now minus the minimum age); `close_open` also cuts the window
/// still open at `cutoff` there (the minimum age is zero, or `export-now
/// --min-age 0s`). Without a period (0), one window runs to `cutoff`.
/// Windows never start before `floor` (now minus the retention): nothing
/// older is kept anyway, and a long outage does not make thousands of them.
pub fn windows(
    last_end: Option<i64>,
    earliest: Option<i64>,
    cutoff: i64,
    period: i64,
    close_open: bool,
    floor: i64,
) -> Vec<(i64, i64)> {
    let align = |t: i64| {
        if period > 0 {
            t - t.rem_euclid(period)
        } else {
            t
        }
    };
    let Some(mut start) = last_end.or_else(|| earliest.map(align)) else {
        return Vec::new();
    };
    if start < floor {
        start = align(floor).max(start);
    }
    let mut out = Vec::new();
    if period <= 0 {
        if cutoff > start {
            out.push((start, cutoff));
        }
        return out;
    }
    loop {
        let end = align(start) + period;
        if end <= cutoff {
            out.push((start, end));
            start = end;
        } else {
            if close_open && cutoff > start {
                out.push((start, cutoff));
            }
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::windows;

    const H: i64 = 3600;

    #[test]
    fn aligned_windows_close_after_the_minimum_age() {
        // Keys since 10:20; now 14:30 with a 2 h minimum age: cutoff 12:30.
        let w = windows(None, Some(10 * H + 1200), 12 * H + 1800, H, false, 0);
        assert_eq!(w, [(10 * H, 11 * H), (11 * H, 12 * H)]);
        // Then from the last end.
        let w = windows(Some(12 * H), None, 14 * H, H, false, 0);
        assert_eq!(w, [(12 * H, 13 * H), (13 * H, 14 * H)]);
        assert!(windows(Some(12 * H), None, 12 * H + 10, H, false, 0).is_empty());
        assert!(windows(None, None, 99 * H, H, false, 0).is_empty());
    }

    #[test]
    fn a_zero_minimum_age_closes_the_open_window() {
        let w = windows(Some(12 * H), None, 13 * H + 600, H, true, 0);
        assert_eq!(w, [(12 * H, 13 * H), (13 * H, 13 * H + 600)]);
        // The next cycle resumes from the cut, back on the hour.
        let w = windows(Some(13 * H + 600), None, 14 * H + 5, H, true, 0);
        assert_eq!(w, [(13 * H + 600, 14 * H), (14 * H, 14 * H + 5)]);
        // Nothing when no time has passed.
        assert!(windows(Some(13 * H), None, 13 * H, H, true, 0).is_empty());
    }

    #[test]
    fn a_zero_period_gives_one_window_per_cycle() {
        assert_eq!(windows(Some(100), None, 250, 0, false, 0), [(100, 250)]);
        assert_eq!(windows(None, Some(40), 250, 0, true, 0), [(40, 250)]);
        assert!(windows(Some(250), None, 250, 0, true, 0).is_empty());
    }

    #[test]
    fn windows_start_no_earlier_than_the_retention_floor() {
        let w = windows(Some(0), None, 30 * H, H, false, 27 * H + 5);
        assert_eq!(w, [(27 * H, 28 * H), (28 * H, 29 * H), (29 * H, 30 * H)]);
    }
}
