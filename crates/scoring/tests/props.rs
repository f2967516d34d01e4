//! Properties of the step table and update rule over arbitrary input.

use proptest::prelude::*;
use scoring::{MAX_SCORE, Observation, step, update};

fn offset() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        Just(None),
        (-5.0f64..5.0).prop_map(Some),
        (-0.2f64..0.2).prop_map(Some),
        any::<f64>().prop_map(Some),
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(f64::NEG_INFINITY),
            Just(0.025),
            Just(0.025_000_001),
            Just(0.1),
            Just(3.0),
        ]
        .prop_map(Some),
    ]
}

fn error() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        4 => Just(None),
        1 => prop_oneof![
            Just(""),
            Just("RATE"),
            Just("DENY"),
            Just("RSTR"),
            Just("INIT"),
            Just("i/o timeout"),
            Just("connection refused"),
            Just("bad reply: stratum 0 without kiss code"),
            Just("bad reply: unsynchronized (leap 3)"),
        ]
        .prop_map(|s| Some(s.to_string())),
        1 => "\\PC{0,12}".prop_map(Some),
    ]
}

fn observation() -> impl Strategy<Value = Observation> {
    (
        offset(),
        proptest::option::of(0.0f64..1.0),
        proptest::option::of(any::<u8>()),
        proptest::option::of(0u8..4),
        error(),
        proptest::bool::weighted(0.1),
    )
        .prop_map(
            |(offset, rtt, stratum, leap, error, no_response)| Observation {
                offset,
                rtt,
                stratum,
                leap,
                error,
                no_response,
            },
        )
}

fn start() -> impl Strategy<Value = f64> {
    prop_oneof![
        -1000.0f64..=MAX_SCORE,
        Just(MAX_SCORE),
        Just(f64::NEG_INFINITY)
    ]
}

proptest! {
    #[test]
    fn score_never_exceeds_max(start in start(), obs in proptest::collection::vec(observation(), 1..300)) {
        let mut sc = start;
        for o in &obs {
            let s = step(o);
            prop_assert!(s.step.is_finite() && s.step <= 1.0, "{o:?} -> {s:?}");
            sc = update(sc, s);
            prop_assert!(!sc.is_nan(), "{o:?}");
            prop_assert!(sc <= MAX_SCORE, "{sc} after {o:?}");
        }
    }

    #[test]
    fn non_finite_offsets_score_as_missing(
        o in observation(),
        bad in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(f64::NEG_INFINITY)],
    ) {
        let with_bad = Observation { offset: Some(bad), ..o.clone() };
        let without = Observation { offset: None, ..o };
        prop_assert_eq!(step(&with_bad), step(&without));
    }
}
