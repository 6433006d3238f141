use simulator::{NoProgress, SimConfig, World};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let beta: f64 = args[1].parse().unwrap();
    let people: u32 = args[2].parse().unwrap();
    let mut c = SimConfig { people, days: 14, ..SimConfig::default() };
    c.epidemic.transmissibility_per_minute = beta;
    let w = World::generate(&c, &NoProgress);
    let courses: Vec<_> = w.courses.iter().flatten().collect();
    let mut by_day = vec![0; 15];
    let mut places = std::collections::BTreeMap::new();
    for c in &courses { if c.source.is_some() { by_day[(c.infected_at / 86400) as usize] += 1; *places.entry(format!("{:?}", c.place.unwrap())).or_insert(0) += 1; } }
    // R of infections that are fully infectious within the window: infector infected before day 3
    let mut offspring = std::collections::HashMap::new();
    for c in &courses { if let Some(s) = c.source { *offspring.entry(s).or_insert(0) += 1; } }
    let early: Vec<u32> = w.courses.iter().enumerate().filter_map(|(p, c)| c.as_ref().filter(|c| c.infected_at >= -3*86400 && c.infected_at < 2*86400).map(|_| p as u32)).collect();
    let r = early.iter().map(|p| *offspring.get(p).unwrap_or(&0) as f64).sum::<f64>() / early.len().max(1) as f64;
    println!("beta {beta}: seeds {} new {} R(early) {:.2} daily {:?} places {:?}", courses.iter().filter(|c| c.source.is_none()).count(), courses.iter().filter(|c| c.source.is_some()).count(), r, by_day, places);
}
