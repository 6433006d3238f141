//! Encounters: two people at a distance for a while. The ground truth of the
//! whole simulation; Bluetooth sightings are derived from it, and so is who
//! should be warned.

use serde::Serialize;

use crate::time::SimTime;

/// Where an encounter happens. The place sets the radio environment (a
/// train's metal car reflects, walls at night absorb) and is reported with
/// the contacts that were missed or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Place {
    /// At home, awake.
    Home,
    /// At home at night, often in different rooms.
    HomeNight,
    /// In class.
    School,
    /// At the desk or in the break room.
    Work,
    /// In a meeting room.
    Meeting,
    /// At a lunch table.
    Lunch,
    /// On a train.
    Train,
    /// In a shop.
    Shop,
    /// At a restaurant or a party.
    Social,
}

impl Place {
    /// Every place, in report order.
    pub const ALL: [Place; 9] = [
        Place::Home,
        Place::HomeNight,
        Place::School,
        Place::Work,
        Place::Meeting,
        Place::Lunch,
        Place::Train,
        Place::Shop,
        Place::Social,
    ];

    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Place::Home => "home",
            Place::HomeNight => "home_night",
            Place::School => "school",
            Place::Work => "work",
            Place::Meeting => "meeting",
            Place::Lunch => "lunch",
            Place::Train => "train",
            Place::Shop => "shop",
            Place::Social => "social",
        }
    }
}

/// Two people within Bluetooth range of each other from `start` for
/// `seconds`, at a constant distance. 16 bytes: a city's two weeks are
/// about ten million of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encounter {
    /// One person.
    pub a: u32,
    /// The other.
    pub b: u32,
    /// Start, simulated seconds (never negative).
    pub start: u32,
    /// Duration, seconds (at most about 18 hours).
    pub seconds: u16,
    /// Distance in decimetres (0.1 to 25.5 m).
    pub distance_dm: u8,
    /// Where.
    pub place: Place,
}

impl Encounter {
    /// An encounter; times and distance are clamped to what the record
    /// holds. `None` when it lasts no time or starts before day 0.
    pub fn new(
        a: u32,
        b: u32,
        start: SimTime,
        seconds: i64,
        distance_m: f64,
        place: Place,
    ) -> Option<Self> {
        if a == b || seconds <= 0 || start < 0 || start > i64::from(u32::MAX) {
            return None;
        }
        Some(Self {
            a,
            b,
            start: start as u32,
            seconds: seconds.min(i64::from(u16::MAX)) as u16,
            distance_dm: (distance_m * 10.0).round().clamp(1.0, 255.0) as u8,
            place,
        })
    }

    /// Start, simulated seconds.
    pub fn start(&self) -> SimTime {
        i64::from(self.start)
    }

    /// End (exclusive), simulated seconds.
    pub fn end(&self) -> SimTime {
        i64::from(self.start) + i64::from(self.seconds)
    }

    /// Distance, metres.
    pub fn distance_m(&self) -> f64 {
        f64::from(self.distance_dm) / 10.0
    }

    /// The other person.
    pub fn partner(&self, p: u32) -> u32 {
        if self.a == p { self.b } else { self.a }
    }

    /// Seconds of overlap with `[from, to)`.
    pub fn overlap(&self, from: SimTime, to: SimTime) -> i64 {
        (self.end().min(to) - self.start().max(from)).max(0)
    }
}

/// Longest encounter, seconds: bounds the search for encounters that
/// overlap a moment.
pub const MAX_ENCOUNTER_SECONDS: i64 = u16::MAX as i64;

/// Every encounter of a run, with each person's encounters in time order.
#[derive(Debug, Clone, Default)]
pub struct EncounterLog {
    encounters: Vec<Encounter>,
    offsets: Vec<u32>,
    by_person: Vec<u32>,
}

impl EncounterLog {
    /// Indexes `encounters` for `people` people.
    pub fn new(encounters: Vec<Encounter>, people: usize) -> Self {
        let mut counts = vec![0u32; people + 1];
        for e in &encounters {
            counts[e.a as usize + 1] += 1;
            counts[e.b as usize + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let offsets = counts.clone();
        let mut fill = counts;
        let mut by_person = vec![0u32; encounters.len() * 2];
        for (id, e) in encounters.iter().enumerate() {
            for p in [e.a, e.b] {
                by_person[fill[p as usize] as usize] = id as u32;
                fill[p as usize] += 1;
            }
        }
        for p in 0..people {
            let list = &mut by_person[offsets[p] as usize..offsets[p + 1] as usize];
            list.sort_unstable_by_key(|&id| (encounters[id as usize].start, id));
        }
        Self {
            encounters,
            offsets,
            by_person,
        }
    }

    /// Every encounter; an encounter's id is its index.
    pub fn all(&self) -> &[Encounter] {
        &self.encounters
    }

    /// Encounter `id`.
    pub fn get(&self, id: u32) -> &Encounter {
        &self.encounters[id as usize]
    }

    /// Number of encounters.
    pub fn len(&self) -> usize {
        self.encounters.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.encounters.is_empty()
    }

    /// Ids of the encounters of `p`, in time order.
    pub fn of(&self, p: u32) -> &[u32] {
        let p = p as usize;
        if p + 1 >= self.offsets.len() {
            return &[];
        }
        &self.by_person[self.offsets[p] as usize..self.offsets[p + 1] as usize]
    }

    /// Ids of the encounters of `p` that overlap `[from, to)`.
    pub fn of_between(&self, p: u32, from: SimTime, to: SimTime) -> impl Iterator<Item = u32> + '_ {
        let list = self.of(p);
        let first = list.partition_point(|&id| self.get(id).start() < from - MAX_ENCOUNTER_SECONDS);
        list[first..]
            .iter()
            .copied()
            .take_while(move |&id| self.get(id).start() < to)
            .filter(move |&id| self.get(id).end() > from)
    }

    /// Bytes held.
    pub fn memory_bytes(&self) -> usize {
        self.encounters.capacity() * size_of::<Encounter>()
            + (self.offsets.capacity() + self.by_person.capacity()) * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encounters_are_small_and_clamped() {
        assert_eq!(size_of::<Encounter>(), 16);
        let e = Encounter::new(1, 2, 100, 100_000, 40.0, Place::Train).unwrap();
        assert_eq!(e.seconds, u16::MAX);
        assert_eq!(e.distance_m(), 25.5);
        assert!(Encounter::new(1, 1, 0, 10, 1.0, Place::Home).is_none());
        assert!(Encounter::new(1, 2, 0, 0, 1.0, Place::Home).is_none());
        assert_eq!(e.partner(1), 2);
        assert_eq!(e.overlap(0, 150), 50);
    }

    #[test]
    fn each_persons_encounters_are_in_time_order_and_searchable() {
        let es = vec![
            Encounter::new(0, 1, 500, 100, 1.0, Place::Home).unwrap(),
            Encounter::new(1, 2, 100, 100, 1.0, Place::Shop).unwrap(),
            Encounter::new(0, 2, 50, 1000, 2.0, Place::Work).unwrap(),
        ];
        let log = EncounterLog::new(es, 4);
        assert_eq!(log.of(0), [2, 0]);
        assert_eq!(log.of(1), [1, 0]);
        assert_eq!(log.of(2), [2, 1]);
        assert!(log.of(3).is_empty());
        assert_eq!(log.of_between(0, 1000, 2000).collect::<Vec<_>>(), [2]);
        assert_eq!(log.of_between(1, 0, 200).collect::<Vec<_>>(), [1]);
        assert_eq!(log.of_between(1, 200, 500).count(), 0);
    }
}
