//! Opening hours: a weekly schedule at a fixed UTC offset, evaluated purely from a clock
//! reading, so "closed until Monday 08:00" is unit-tested without waiting for Monday.

use crate::time::civil_from_days;

/// One opening window, repeated on the chosen days of the week.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// Index 0 is Sunday, 6 is Saturday.
    pub days: [bool; 7],
    /// Minutes after local midnight when the window opens.
    pub open: u16,
    /// Minutes after local midnight when it closes (exclusive); greater than `open`.
    pub close: u16,
}

/// A weekly schedule. No windows means always open.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Offset of the schedule's local time from UTC, in minutes (e.g. +60 for CET).
    pub utc_offset_minutes: i32,
    /// The opening windows.
    pub windows: Vec<Window>,
}

/// What the schedule says at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    /// Inside a window (or no windows at all).
    Open,
    /// Outside every window; the next opening as Unix milliseconds, if any exists.
    Closed {
        /// Start of the next window.
        next_open_ms: Option<i64>,
    },
}

const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MS_PER_MIN: i64 = 60_000;
const MIN_PER_DAY: i64 = 1440;

impl Schedule {
    /// Evaluates the schedule at `now_ms` (Unix milliseconds).
    pub fn at(&self, now_ms: i64) -> Opening {
        if self.windows.is_empty() {
            return Opening::Open;
        }
        let local_min = now_ms.div_euclid(MS_PER_MIN) + i64::from(self.utc_offset_minutes);
        let day = local_min.div_euclid(MIN_PER_DAY);
        let minute = local_min.rem_euclid(MIN_PER_DAY);
        let open_now = self.windows.iter().any(|w| {
            w.days[weekday(day)] && (i64::from(w.open)..i64::from(w.close)).contains(&minute)
        });
        if open_now {
            return Opening::Open;
        }
        // The next opening is within the coming eight days if any window has any day.
        let next = (0..=7)
            .flat_map(|offset| {
                let d = day + offset;
                self.windows
                    .iter()
                    .filter(move |w| w.days[weekday(d)])
                    .map(move |w| d * MIN_PER_DAY + i64::from(w.open))
            })
            .filter(|&start| start > local_min)
            .min();
        Opening::Closed {
            next_open_ms: next.map(|m| (m - i64::from(self.utc_offset_minutes)) * MS_PER_MIN),
        }
    }

    /// Formats Unix milliseconds as RFC 3339 in the schedule's offset, e.g.
    /// `2026-11-23T08:00:00+01:00`.
    pub fn format_local(&self, ms: i64) -> String {
        let local_min = ms.div_euclid(MS_PER_MIN) + i64::from(self.utc_offset_minutes);
        let (y, m, d) = civil_from_days(local_min.div_euclid(MIN_PER_DAY));
        let minute = local_min.rem_euclid(MIN_PER_DAY);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:00{}",
            minute / 60,
            minute % 60,
            format_offset(self.utc_offset_minutes)
        )
    }
}

fn weekday(days_since_epoch: i64) -> usize {
    // 1970-01-01 was a Thursday (index 4).
    (days_since_epoch + 4).rem_euclid(7) as usize
}

/// Formats an offset in minutes as `+HH:MM`/`-HH:MM`.
pub fn format_offset(minutes: i32) -> String {
    let sign = if minutes < 0 { '-' } else { '+' };
    let m = minutes.unsigned_abs();
    format!("{sign}{:02}:{:02}", m / 60, m % 60)
}

/// Parses `+HH:MM`, `-HH:MM` or `Z` into minutes.
pub fn parse_offset(s: &str) -> Result<i32, String> {
    if s == "Z" || s == "+00:00" || s == "-00:00" {
        return Ok(0);
    }
    let bad = || format!("`{s}` is not a UTC offset like `+01:00` or `-05:30`");
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let minutes = parse_hhmm(rest).map_err(|_| bad())?;
    if minutes > 14 * 60 {
        return Err(format!("`{s}` is beyond ±14:00"));
    }
    Ok(sign * i32::from(minutes))
}

/// Parses `HH:MM` (00:00 to 24:00) into minutes after midnight.
pub fn parse_hhmm(s: &str) -> Result<u16, String> {
    let bad = || format!("`{s}` is not a time like `08:30`");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Parses a day set such as `mon-fri`, `sat,sun`, `mon-wed,fri` or `daily`.
pub fn parse_days(s: &str) -> Result<[bool; 7], String> {
    let index = |name: &str| {
        DAY_NAMES
            .iter()
            .position(|d| d.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                format!(
                    "`{}` is not a day (use mon, tue, wed, thu, fri, sat, sun)",
                    name.trim()
                )
            })
    };
    let mut days = [false; 7];
    if s.trim().eq_ignore_ascii_case("daily") {
        return Ok([true; 7]);
    }
    for part in s.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (index(a)?, index(b)?);
                // Ranges may wrap the week, e.g. `sat-mon`.
                let mut i = a;
                loop {
                    days[i] = true;
                    if i == b {
                        break;
                    }
                    i = (i + 1) % 7;
                }
            }
            None => days[index(part)?] = true,
        }
    }
    Ok(days)
}

/// Parses one window such as `mon-fri 08:00-18:00`.
pub fn parse_window(s: &str) -> Result<Window, String> {
    let (days, times) = s
        .trim()
        .rsplit_once(' ')
        .ok_or_else(|| format!("`{s}` is not a window like `mon-fri 08:00-18:00`"))?;
    let (open, close) = times
        .split_once('-')
        .ok_or_else(|| format!("`{times}` is not a time range like `08:00-18:00`"))?;
    let (open, close) = (parse_hhmm(open)?, parse_hhmm(close)?);
    if close <= open {
        return Err(format!("`{times}` closes before it opens"));
    }
    Ok(Window {
        days: parse_days(days)?,
        open,
        close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-20 is a Friday. 15:00 UTC that day:
    const FRI_1500_UTC: i64 = 1_795_186_800_000;

    fn office(offset: i32) -> Schedule {
        Schedule {
            utc_offset_minutes: offset,
            windows: vec![parse_window("mon-fri 08:00-18:00").unwrap()],
        }
    }

    #[test]
    fn open_inside_a_window_and_closed_outside() {
        assert_eq!(office(0).at(FRI_1500_UTC), Opening::Open);
        // At +05:00 it is 20:00 local on Friday: closed until Monday 08:00 local.
        let s = office(300);
        let Opening::Closed {
            next_open_ms: Some(next),
        } = s.at(FRI_1500_UTC)
        else {
            panic!("expected closed");
        };
        assert_eq!(s.format_local(next), "2026-11-23T08:00:00+05:00");
    }

    #[test]
    fn close_time_is_exclusive_and_no_windows_means_open() {
        let s = office(-180); // 12:00 local
        assert_eq!(s.at(FRI_1500_UTC), Opening::Open);
        let at_close = Schedule {
            utc_offset_minutes: 0,
            windows: vec![parse_window("fri 08:00-15:00").unwrap()],
        };
        assert!(matches!(at_close.at(FRI_1500_UTC), Opening::Closed { .. }));
        assert_eq!(Schedule::default().at(FRI_1500_UTC), Opening::Open);
    }

    #[test]
    fn parses_days_times_and_offsets() {
        assert_eq!(
            parse_days("sat-mon").unwrap(),
            [true, true, false, false, false, false, true]
        );
        assert_eq!(parse_days("daily").unwrap(), [true; 7]);
        assert!(parse_days("funday").unwrap_err().contains("funday"));
        assert_eq!(parse_hhmm("24:00").unwrap(), 1440);
        assert!(parse_hhmm("8:00").is_err());
        assert_eq!(parse_offset("-05:30").unwrap(), -330);
        assert!(parse_offset("0100").is_err());
        assert!(
            parse_window("mon 18:00-08:00")
                .unwrap_err()
                .contains("closes before it opens")
        );
    }
}
