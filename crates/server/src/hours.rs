//! Opening hours: weekly windows in an IANA time zone (or at a fixed UTC offset), with
//! closed exceptions (holidays, part days), evaluated purely from a clock reading, so
//! "closed until Monday 08:00" (across a DST change, too) is unit-tested without waiting.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::{Offset, TimeZone};

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

/// A closed exception: a whole local day (`from` 0, `to` 1440) or part of one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Closure {
    /// The local date.
    pub date: Date,
    /// Minutes after local midnight the closure starts.
    pub from: u16,
    /// Minutes after local midnight it ends (exclusive).
    pub to: u16,
}

/// A weekly schedule with exceptions. No windows means open every day, all day (closures
/// still apply).
#[derive(Clone, Debug, PartialEq)]
pub struct Hours {
    /// The zone the windows are in.
    pub zone: TimeZone,
    /// The opening windows.
    pub windows: Vec<Window>,
    /// Closed dates and part days.
    pub closed: Vec<Closure>,
}

impl Default for Hours {
    fn default() -> Self {
        Self {
            zone: TimeZone::UTC,
            windows: vec![],
            closed: vec![],
        }
    }
}

/// What the schedule says at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opening {
    /// Inside a window (or no windows at all).
    Open,
    /// Outside every window; the next opening as Unix milliseconds, if any within a year.
    Closed {
        /// Start of the next window.
        next_open_ms: Option<i64>,
    },
}

const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MIN_PER_DAY: u16 = 1440;
/// How far ahead the next opening is looked for (a long holiday season included).
const LOOKAHEAD_DAYS: usize = 400;

impl Hours {
    /// Evaluates the schedule at `now_ms` (Unix milliseconds).
    pub fn at(&self, now_ms: i64) -> Opening {
        if self.windows.is_empty() && self.closed.is_empty() {
            return Opening::Open;
        }
        let Ok(now) = Timestamp::from_millisecond(now_ms) else {
            return Opening::Open;
        };
        // From yesterday: a window of yesterday's may still run past midnight (24:00).
        let today = now.to_zoned(self.zone.clone()).date();
        let mut day = today.yesterday().unwrap_or(today);
        for _ in 0..LOOKAHEAD_DAYS {
            let mut next = None;
            for (from, to) in self.ranges(day) {
                let (Some(start), Some(end)) = (self.instant(day, from), self.instant(day, to))
                else {
                    continue;
                };
                if (start..end).contains(&now_ms) {
                    return Opening::Open;
                }
                if start > now_ms {
                    next = Some(next.map_or(start, |n: i64| n.min(start)));
                }
            }
            if next.is_some() {
                return Opening::Closed { next_open_ms: next };
            }
            match day.tomorrow() {
                Ok(d) => day = d,
                Err(_) => break,
            }
        }
        Opening::Closed { next_open_ms: None }
    }

    /// The minute ranges open on a local date: its windows, minus its closures.
    fn ranges(&self, date: Date) -> Vec<(u16, u16)> {
        let weekday = date.weekday().to_sunday_zero_offset() as usize;
        let mut open: Vec<(u16, u16)> = if self.windows.is_empty() {
            vec![(0, MIN_PER_DAY)]
        } else {
            self.windows
                .iter()
                .filter(|w| w.days[weekday])
                .map(|w| (w.open, w.close))
                .collect()
        };
        for c in self.closed.iter().filter(|c| c.date == date) {
            open = open
                .into_iter()
                .flat_map(|(a, b)| {
                    let before = (a, b.min(c.from));
                    let after = (a.max(c.to), b);
                    [before, after].into_iter().filter(|(x, y)| x < y)
                })
                .collect();
        }
        open
    }

    /// The instant of a local date and minute (24:00 is the next midnight). A time that a
    /// DST change skips moves forward by the gap (02:30 becomes 03:30), as calendars do.
    fn instant(&self, date: Date, minute: u16) -> Option<i64> {
        let (date, minute) = match minute {
            MIN_PER_DAY => (date.tomorrow().ok()?, 0),
            m => (date, m),
        };
        let time = Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).ok()?;
        let zoned = date.to_datetime(time).to_zoned(self.zone.clone()).ok()?;
        Some(zoned.timestamp().as_millisecond())
    }

    /// Formats Unix milliseconds as RFC 3339 in the schedule's zone (with the offset in force
    /// then), e.g. `2026-11-23T08:00:00+01:00`.
    pub fn format_local(&self, ms: i64) -> String {
        Timestamp::from_millisecond(ms)
            .map(|t| {
                t.to_zoned(self.zone.clone())
                    .strftime("%Y-%m-%dT%H:%M:%S%:z")
                    .to_string()
            })
            .unwrap_or_default()
    }
}

/// An IANA time zone such as `Europe/Berlin` (or `UTC`).
pub fn parse_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name.trim()).map_err(|_| {
        format!("`{name}` is not an IANA time zone (like `Europe/Berlin` or `America/New_York`)")
    })
}

/// A fixed offset such as `+01:00`, as a zone.
pub fn fixed_zone(s: &str) -> Result<TimeZone, String> {
    let minutes = parse_offset(s)?;
    Offset::from_seconds(minutes * 60)
        .map(TimeZone::fixed)
        .map_err(|e| format!("`{s}`: {e}"))
}

/// A closed exception: `2026-12-24` (the whole day) or `2026-12-31 12:00-24:00`.
pub fn parse_closure(s: &str) -> Result<Closure, String> {
    let s = s.trim();
    let (date, times) = match s.split_once(' ') {
        Some((d, t)) => (d, Some(t.trim())),
        None => (s, None),
    };
    let date: Date = date.parse().map_err(|_| {
        format!("`{s}` is not a date like `2026-12-24` or `2026-12-31 12:00-24:00`")
    })?;
    let (from, to) = match times {
        None => (0, MIN_PER_DAY),
        Some(t) => {
            let (a, b) = t
                .split_once('-')
                .ok_or_else(|| format!("`{t}` is not a time range like `12:00-24:00`"))?;
            let (a, b) = (parse_hhmm(a)?, parse_hhmm(b)?);
            if b <= a {
                return Err(format!("`{t}` ends before it starts"));
            }
            (a, b)
        }
    };
    Ok(Closure { date, from, to })
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
    const HOUR: i64 = 3_600_000;

    fn hours(zone: TimeZone, windows: &[&str], closed: &[&str]) -> Hours {
        Hours {
            zone,
            windows: windows.iter().map(|w| parse_window(w).unwrap()).collect(),
            closed: closed.iter().map(|c| parse_closure(c).unwrap()).collect(),
        }
    }

    fn next_open(h: &Hours, at: i64) -> String {
        match h.at(at) {
            Opening::Closed {
                next_open_ms: Some(next),
            } => h.format_local(next),
            other => panic!("expected closed with a next opening, got {other:?}"),
        }
    }

    #[test]
    fn open_inside_a_window_and_closed_outside() {
        let office = |zone| hours(zone, &["mon-fri 08:00-18:00"], &[]);
        assert_eq!(office(TimeZone::UTC).at(FRI_1500_UTC), Opening::Open);
        // At +05:00 it is 20:00 local on Friday: closed until Monday 08:00 local.
        let east = office(fixed_zone("+05:00").unwrap());
        assert_eq!(next_open(&east, FRI_1500_UTC), "2026-11-23T08:00:00+05:00");
        // New York, 10:00 local: open.
        let ny = office(parse_zone("America/New_York").unwrap());
        assert_eq!(ny.at(FRI_1500_UTC), Opening::Open);
    }

    #[test]
    fn the_zone_s_daylight_saving_time_moves_the_opening() {
        // Berlin springs forward on Sunday 2026-03-29: Friday 27th 20:00 (+01:00) is closed,
        // and Monday opens at 08:00 summer time (+02:00), one hour earlier in UTC.
        let berlin = hours(
            parse_zone("Europe/Berlin").unwrap(),
            &["mon-fri 08:00-18:00"],
            &[],
        );
        let fri_1900_utc = 1_774_638_000_000; // 2026-03-27T19:00Z
        assert_eq!(
            next_open(&berlin, fri_1900_utc),
            "2026-03-30T08:00:00+02:00"
        );
        let Opening::Closed {
            next_open_ms: Some(next),
        } = berlin.at(fri_1900_utc)
        else {
            unreachable!()
        };
        assert_eq!(next, 1_774_850_400_000, "2026-03-30T06:00Z");
        // A window at a time the change skips (02:30 on the 29th) moves by the gap: 03:30.
        let night = hours(
            parse_zone("Europe/Berlin").unwrap(),
            &["sun 02:30-04:00"],
            &[],
        );
        assert_eq!(next_open(&night, fri_1900_utc), "2026-03-29T03:30:00+02:00");
    }

    #[test]
    fn holidays_and_lunch_breaks_close() {
        let shop = hours(
            TimeZone::UTC,
            &["mon-fri 08:00-12:00", "mon-fri 13:00-18:00"],
            &["2026-11-23", "2026-11-24 14:00-24:00"],
        );
        // Lunch on Friday: closed until 13:00 the same day.
        assert_eq!(
            next_open(&shop, FRI_1500_UTC - 3 * HOUR + HOUR / 2),
            "2026-11-20T13:00:00+00:00"
        );
        // Friday evening: Monday the 23rd is a holiday, so Tuesday 08:00.
        assert_eq!(
            next_open(&shop, FRI_1500_UTC + 4 * HOUR),
            "2026-11-24T08:00:00+00:00"
        );
        // Tuesday closes at 14:00 instead of 18:00; Wednesday 08:00 is next.
        let tue_1500 = FRI_1500_UTC + 4 * 24 * HOUR;
        assert_eq!(next_open(&shop, tue_1500), "2026-11-25T08:00:00+00:00");
        assert_eq!(shop.at(tue_1500 - 2 * HOUR), Opening::Open, "13:00 Tuesday");
        // Always open but for a closed day.
        let always = hours(TimeZone::UTC, &[], &["2026-11-20"]);
        assert_eq!(
            next_open(&always, FRI_1500_UTC),
            "2026-11-21T00:00:00+00:00"
        );
        assert_eq!(always.at(FRI_1500_UTC + 24 * HOUR), Opening::Open);
    }

    #[test]
    fn close_time_is_exclusive_and_no_windows_means_open() {
        let at_close = hours(TimeZone::UTC, &["fri 08:00-15:00"], &[]);
        assert!(matches!(at_close.at(FRI_1500_UTC), Opening::Closed { .. }));
        assert_eq!(Hours::default().at(FRI_1500_UTC), Opening::Open);
        let late = hours(TimeZone::UTC, &["fri 20:00-24:00"], &[]);
        assert_eq!(
            late.at(FRI_1500_UTC + 8 * HOUR + HOUR / 2),
            Opening::Open,
            "23:30"
        );
    }

    #[test]
    fn parses_days_times_zones_offsets_and_closures() {
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
        assert!(parse_zone("Europe/Berln").unwrap_err().contains("IANA"));
        assert!(parse_zone("UTC").is_ok());
        assert_eq!(
            parse_closure("2026-12-31 12:00-24:00").unwrap(),
            Closure {
                date: Date::new(2026, 12, 31).unwrap(),
                from: 720,
                to: 1440
            }
        );
        assert!(
            parse_closure("24.12.2026")
                .unwrap_err()
                .contains("not a date")
        );
        assert!(
            parse_closure("2026-12-31 14:00-12:00")
                .unwrap_err()
                .contains("ends before")
        );
    }
}
