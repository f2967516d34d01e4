//! The agent submits every sample of a check (issue 15), not only the best.

use ntp::{CheckResult, ErrorCode, Sample};

fn answered(ts: f64, rtt: f64) -> Sample {
    Sample {
        ts,
        offset: Some(0.002),
        rtt: Some(rtt),
        stratum: Some(2),
        leap: Some(0),
        refid: Some("GPS".into()),
        error: None,
        no_response: false,
        packet: None,
    }
}

#[test]
fn every_sample_goes_with_the_best() {
    let rate = Sample {
        stratum: Some(0),
        leap: Some(3),
        offset: None,
        error: Some(ErrorCode::Kiss("RATE".into())),
        ..answered(1000.0 + 2.001, 0.015)
    };
    let r = CheckResult::new(
        "192.0.2.1".into(),
        "192.0.2.1:123".parse().unwrap(),
        vec![
            Sample::failed(1000.0, ErrorCode::Timeout),
            rate,
            answered(1000.0 + 6.25, 0.012),
        ],
    );
    let item = agent::result_item("192.0.2.1".parse().unwrap(), "t", &r);
    // The best sample's fields as ever…
    assert_eq!((item.rtt, item.error.as_deref()), (Some(0.012), None));
    // …and all three, in the order sent, with send times from the first.
    let s = &item.samples;
    assert_eq!(s.len(), 3);
    let pos: Vec<u8> = s.iter().map(|x| x.position).collect();
    assert_eq!(pos, vec![0, 1, 2]);
    let sent: Vec<u32> = s.iter().map(|x| x.send_ms).collect();
    assert_eq!(sent, vec![0, 2001, 6250]);
    assert_eq!(
        (s[0].answered, s[0].rtt, s[0].error.as_deref()),
        (false, None, Some("i/o timeout"))
    );
    assert_eq!(
        (
            s[1].answered,
            s[1].stratum,
            s[1].leap,
            s[1].error.as_deref()
        ),
        (true, Some(0), Some(3), Some("RATE"))
    );
    assert_eq!((s[2].offset, s[2].rtt), (Some(0.002), Some(0.012)));
}

#[test]
fn a_check_without_samples_sends_none() {
    let r = CheckResult::new("192.0.2.1".into(), "192.0.2.1:123".parse().unwrap(), vec![]);
    let item = agent::result_item("192.0.2.1".parse().unwrap(), "t", &r);
    assert!(item.no_response);
    assert!(item.samples.is_empty());
}
