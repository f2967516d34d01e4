//! The verdicts of `evidence`, their borders and the confusions that
//! matter: a limiter is not path loss, path loss is not a limiter, a dead
//! server is neither.

use super::*;

/// What happened to one sample.
#[derive(Clone, Copy)]
enum O {
    /// Answered, with this rtt (µs).
    A(u32),
    /// No reply.
    Lost,
    /// A KoD with this code.
    Kod(&'static str),
}

fn check(outcomes: &[O]) -> Vec<Sample> {
    outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let mut s = Sample {
                position: i as u8,
                send_ms: 2000 * i as u16,
                ..Sample::default()
            };
            match *o {
                O::A(rtt) => {
                    s.answered = true;
                    s.rtt_us = Some(rtt);
                    s.offset = Some(0.001);
                    s.stratum = Some(2);
                }
                O::Lost => s.error = Some("i/o timeout".into()),
                O::Kod(code) => {
                    s.answered = true;
                    s.rtt_us = Some(900);
                    s.stratum = Some(0);
                    s.error = Some(code.into());
                }
            }
            s
        })
        .collect()
}

/// `n` checks of monitor `id`, each from `f(check index)`.
fn monitor(id: i64, n: usize, f: impl Fn(usize) -> Vec<O>) -> Vec<(i64, Vec<Sample>)> {
    (0..n).map(|i| (id, check(&f(i)))).collect()
}

fn judge(checks: &[(i64, Vec<Sample>)]) -> Evidence {
    Evidence::from_checks(checks.iter().map(|(m, s)| (*m, s.as_slice())))
}

const OK: O = O::A(20_000);
const ALL_OK: [O; 4] = [OK; 4];

/// A deterministic coin (xorshift), so "random" loss is the same each run.
struct Coin(u64);
impl Coin {
    fn lost(&mut self, p: f64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 10_000) as f64 / 10_000.0 < p
    }
}

/// `n` checks at monitor `id` losing each sample with probability `p`.
fn lossy(id: i64, n: usize, p: f64, coin: &mut Coin) -> Vec<(i64, Vec<Sample>)> {
    (0..n)
        .map(|_| {
            let o: Vec<O> = (0..4)
                .map(|_| if coin.lost(p) { O::Lost } else { OK })
                .collect();
            (id, check(&o))
        })
        .collect()
}

fn clean(id: i64, n: usize) -> Vec<(i64, Vec<Sample>)> {
    monitor(id, n, |_| ALL_OK.to_vec())
}

/// The lab's limiter: ntpd `discard average 3 minimum 2` answers the first
/// sample of a 4-sample check 2 s apart and refuses the rest, with `later`.
fn limiter(id: i64, n: usize, later: O) -> Vec<(i64, Vec<Sample>)> {
    monitor(id, n, |_| vec![OK, later, later, later])
}

#[test]
fn too_few_checks_say_nothing_even_with_rate() {
    let mut c = limiter(1, (MIN_CHECKS - 1) as usize, O::Kod("RATE"));
    c.extend(limiter(2, (MIN_CHECKS - 1) as usize, O::Lost));
    let e = judge(&c);
    assert_eq!(e.verdict, Verdict::NotEnoughData);
    assert_eq!(e.overall.checks, 2 * (MIN_CHECKS - 1));
    assert!(
        e.monitors
            .iter()
            .all(|m| m.verdict == Verdict::NotEnoughData)
    );
    // One more check makes monitor 1 judged, and its RATE counts.
    c.extend(limiter(1, 1, O::Kod("RATE")));
    assert_eq!(judge(&c).verdict, Verdict::RateLimited);
    assert_eq!(judge(&[]).verdict, Verdict::NotEnoughData);
}

#[test]
fn counts_by_position_kods_and_rtt_spread() {
    let mut c = monitor(7, 2, |_| {
        vec![O::A(1_000), O::Kod("RATE"), O::Lost, O::A(4_000)]
    });
    c.extend(monitor(9, 1, |_| {
        vec![O::A(3_000), O::A(2_000), O::Kod("DENY")]
    }));
    let e = judge(&c);
    assert_eq!(e.overall.checks, 3);
    let p = &e.overall.positions;
    assert_eq!(p.len(), 4);
    assert_eq!((p[0].sent, p[0].answered), (3, 3));
    assert_eq!((p[1].sent, p[1].answered), (3, 1));
    assert_eq!(p[1].kod, BTreeMap::from([("RATE".to_string(), 2)]));
    assert_eq!(p[2].kod, BTreeMap::from([("DENY".to_string(), 1)]));
    // The check stopped by DENY sent no fourth sample.
    assert_eq!((p[3].sent, p[3].answered), (2, 2));
    assert_eq!(p[2].answer_rate(), Some(0.0));
    assert_eq!(p[1].answer_rate(), Some(1.0 / 3.0));
    // Answered rtts 1000, 1000, 3000, 2000, 4000, 4000 (KoD rtts excluded).
    assert_eq!(
        e.overall.rtt,
        Some(RttSpread {
            count: 6,
            min_us: 1_000,
            median_us: 2_000,
            p90_us: 4_000,
            max_us: 4_000
        })
    );
    assert_eq!(e.overall.rate_kods(), 2);
    let m9 = &e.monitors[1];
    assert_eq!((m9.monitor_id, m9.stats.checks), (9, 1));
    assert_eq!(m9.stats.positions.len(), 3);
    assert_eq!(m9.stats.rtt.map(|r| r.median_us), Some(2_000));
    assert_eq!(PositionStats::default().answer_rate(), None);
}

#[test]
fn rtt_spread_ranks() {
    assert_eq!(RttSpread::of(vec![]), None);
    let one = RttSpread::of(vec![5]).unwrap();
    assert_eq!(
        (one.min_us, one.median_us, one.p90_us, one.max_us),
        (5, 5, 5, 5)
    );
    let ten = RttSpread::of((1..=10).rev().collect()).unwrap();
    assert_eq!((ten.median_us, ten.p90_us), (5, 9));
    let eleven = RttSpread::of((1..=11).collect()).unwrap();
    assert_eq!((eleven.median_us, eleven.p90_us), (6, 10));
}

#[test]
fn clean_server_and_the_stray_lost_packet() {
    let mut c = clean(1, 20);
    c.extend(clean(2, 20));
    c.extend(clean(3, 20));
    assert_eq!(judge(&c).verdict, Verdict::Clean);
    // 10 checks, 4 of 40 samples lost (exactly CLEAN_LOSS): still clean.
    let border = |lost: usize| {
        monitor(4, 10, move |i| {
            if i < lost {
                vec![OK, OK, O::Lost, OK]
            } else {
                ALL_OK.to_vec()
            }
        })
    };
    assert_eq!(judge(&border(4)).monitors[0].verdict, Verdict::Clean);
    // 5 of 40: losing; alone it cannot be path loss.
    assert_eq!(judge(&border(5)).verdict, Verdict::RandomLoss);
}

#[test]
fn a_limiter_reads_rate_limited_at_lab_counts() {
    for n in [MIN_CHECKS as usize, 10, 20, 30] {
        for later in [O::Lost, O::Kod("RATE")] {
            let mut c = Vec::new();
            for id in 1..=3 {
                c.extend(limiter(id, n, later));
            }
            let e = judge(&c);
            assert_eq!(e.verdict, Verdict::RateLimited, "{n} checks");
            assert!(e.monitors.iter().all(|m| m.verdict == Verdict::RateLimited));
            let p = &e.overall.positions;
            assert_eq!(p[0].answer_rate(), Some(1.0));
            assert!(p[1..].iter().all(|p| p.answer_rate() == Some(0.0)));
        }
    }
}

#[test]
fn a_limiter_with_some_lost_first_samples_is_still_rate_limited() {
    // ntpd's average is over time: now and then the first sample is lost
    // too, now and then a later one gets through.
    let mut coin = Coin(7);
    let mut c = Vec::new();
    for id in 1..=7 {
        c.extend(monitor(id, 12, |i| {
            let first = if i % 6 == 5 { O::Lost } else { OK };
            let third = if i % 4 == 0 { OK } else { O::Lost };
            vec![first, O::Lost, third, O::Lost]
        }));
    }
    // Plus one monitor losing at random: the majority still decides.
    c.extend(lossy(8, 12, 0.5, &mut coin));
    assert_eq!(judge(&c).verdict, Verdict::RateLimited);
}

#[test]
fn a_limiter_shared_by_monitors_behind_one_address() {
    // In a lab every agent queries from 127.0.0.1: the limiter's budget is
    // theirs together, so most first samples are refused too (6 of 30
    // answered) and no later one gets through.
    let mut c = Vec::new();
    for id in 1..=3 {
        c.extend(monitor(id, 30, |i| {
            let first = if i % 5 == 0 { OK } else { O::Lost };
            vec![first, O::Lost, O::Lost, O::Lost]
        }));
    }
    assert_eq!(judge(&c).verdict, Verdict::RateLimited);
    // With 10 checks (2 first samples answered) that could be chance, and
    // 2 answers in 40 samples is (almost) nothing at every monitor.
    let few: Vec<_> = (1..=3)
        .flat_map(|id| {
            monitor(id, 10, |i| {
                let first = if i % 5 == 0 { OK } else { O::Lost };
                vec![first, O::Lost, O::Lost, O::Lost]
            })
        })
        .collect();
    assert_eq!(judge(&few).verdict, Verdict::NoAnswers);
}

#[test]
fn a_limiter_is_not_path_loss() {
    // Silence only: no RATE to give it away; every monitor alike.
    let mut c = limiter(1, 10, O::Lost);
    c.extend(limiter(2, 10, O::Lost));
    c.extend(limiter(3, 10, O::Lost));
    // A third monitor with too few checks changes nothing.
    c.extend(clean(4, 3));
    assert_eq!(judge(&c).verdict, Verdict::RateLimited);
}

#[test]
fn path_loss_at_one_of_three_monitors_is_not_rate_limited() {
    // The lab's case: one monitor loses about half its samples, the others
    // see the server clean; for many draws of the losses and lab counts.
    for seed in 1..200u64 {
        let mut coin = Coin(seed * 7919);
        let n = 10 + (seed as usize % 21);
        let mut c = clean(1, n);
        c.extend(lossy(2, n, 0.5, &mut coin));
        c.extend(clean(3, n));
        let e = judge(&c);
        assert_eq!(e.verdict, Verdict::PathLoss, "seed {seed}, {n} checks");
        assert_ne!(e.monitors[1].verdict, Verdict::RateLimited, "seed {seed}");
    }
}

#[test]
fn one_monitor_losing_every_sample_is_path_loss() {
    // Position-independent: nothing at any position, so not a limiter.
    let mut c = clean(1, 15);
    c.extend(monitor(2, 15, |_| vec![O::Lost; 4]));
    c.extend(clean(3, 15));
    let e = judge(&c);
    assert_eq!(e.verdict, Verdict::PathLoss);
    assert_eq!(e.monitors[1].verdict, Verdict::NoAnswers);
    // Two monitors, one blind: the server answers, so still the path.
    let two: Vec<_> = c.iter().filter(|(m, _)| *m != 3).cloned().collect();
    assert_eq!(judge(&two).verdict, Verdict::PathLoss);
}

#[test]
fn down_for_everyone_is_not_path_loss() {
    let mut c = Vec::new();
    for id in 1..=4 {
        c.extend(monitor(id, 12, |_| vec![O::Lost; 4]));
    }
    let e = judge(&c);
    assert_eq!(e.verdict, Verdict::NoAnswers);
    assert_eq!(e.overall.answer_rate(), Some(0.0));
    // A refusing server (DENY at the first sample) neither.
    let deny: Vec<_> = (1..=3)
        .flat_map(|id| monitor(id, 10, |_| vec![O::Kod("DENY")]))
        .collect();
    assert_eq!(judge(&deny).verdict, Verdict::NoAnswers);
}

#[test]
fn loss_everywhere_independent_of_position_is_random_loss() {
    for seed in 1..100u64 {
        let mut coin = Coin(seed * 104_729);
        let mut c = Vec::new();
        for id in 1..=5 {
            c.extend(lossy(id, 10 + (seed as usize % 21), 0.3, &mut coin));
        }
        assert_eq!(judge(&c).verdict, Verdict::RandomLoss, "seed {seed}");
    }
}

#[test]
fn a_limiter_at_a_minority_of_monitors_is_not_rate_limited() {
    // Position-dependent loss at one of three monitors: its path (a
    // firewall near it), not the server's limiter, which treats all alike.
    let mut c = limiter(1, 10, O::Lost);
    c.extend(clean(2, 10));
    c.extend(clean(3, 10));
    assert_eq!(judge(&c).verdict, Verdict::PathLoss);
    // Two of three: the majority.
    let mut c = limiter(1, 10, O::Lost);
    c.extend(limiter(2, 10, O::Lost));
    c.extend(clean(3, 10));
    assert_eq!(judge(&c).verdict, Verdict::RateLimited);
}

/// One monitor's stats with `first` of `n` first samples answered and
/// `later` of `3n` later ones.
fn stats(n: u32, first: u32, later: u32) -> Stats {
    let mut s = Stats::default();
    let mut rtts = Vec::new();
    let mut left = later;
    for i in 0..n {
        let mut o = vec![if i < first { OK } else { O::Lost }];
        for _ in 0..3 {
            o.push(if left > 0 { OK } else { O::Lost });
            left = left.saturating_sub(1);
        }
        s.add(&check(&o), &mut rtts);
    }
    s
}

#[test]
fn position_dependence_borders() {
    // The share: 30 checks, first always answered; later 46/90 (more than
    // half the first's rate) is not enough, 45/90 (half) is.
    assert!(!stats(30, 30, 46).position_dependent());
    assert!(stats(30, 30, 45).position_dependent());
    // The z score at MIN_CHECKS: 8/8 against 12/24 (half, z 2.5) could
    // be chance; 8/8 against 8/24 (z 3.3) is not.
    assert!(!stats(8, 8, 12).position_dependent());
    assert!(stats(8, 8, 8).position_dependent());
    // Nothing answered, or everything: no dependence.
    assert!(!stats(10, 0, 0).position_dependent());
    assert!(!stats(10, 10, 30).position_dependent());
    assert!(!Stats::default().position_dependent());
}

#[test]
fn one_rate_kod_is_enough() {
    let mut c = clean(1, 10);
    c.extend(clean(2, 10));
    c.push((3, check(&[OK, O::Kod("RATE"), OK, OK])));
    assert_eq!(judge(&c).verdict, Verdict::RateLimited);
}

#[test]
fn every_verdict_has_a_name_and_a_sentence() {
    let all = [
        Verdict::NotEnoughData,
        Verdict::Clean,
        Verdict::RateLimited,
        Verdict::PathLoss,
        Verdict::RandomLoss,
        Verdict::NoAnswers,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for v in all {
        let json = serde_json::to_string(&v).unwrap();
        assert_eq!(json, format!("\"{}\"", v.as_str()));
        assert!(v.explain().ends_with('.'), "{v:?}");
        assert!(seen.insert(v.explain()), "{v:?} repeats a sentence");
    }
}
