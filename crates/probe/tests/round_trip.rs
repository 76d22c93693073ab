//! What is written reads back as the same value: requests through a batch,
//! results through their lines.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use netmatrix_probe::{Outcome, ProbeRequest, ProbeResult, Protocol, Target, batch_to_json, format_duration, parse_batch, parse_duration, parse_results};
use proptest::prelude::*;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(7);

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp), Just(Protocol::Sctp)]
}

fn target() -> impl Strategy<Value = Target> {
    // Names start with a letter so that none reads as an IP literal.
    prop_oneof![any::<IpAddr>().prop_map(Target::Ip), "[a-z][a-z0-9_-]{0,8}(\\.[a-z0-9-]{1,8}){0,3}\\.?".prop_map(Target::Name)]
}

/// Durations `parse_duration` accepts: whole milliseconds up to a day.
fn timeout() -> impl Strategy<Value = Duration> {
    (1u64..=86_400_000).prop_map(Duration::from_millis)
}

fn request() -> impl Strategy<Value = ProbeRequest> {
    (
        proptest::option::of(any::<String>()),
        target(),
        1u16..,
        protocol(),
        proptest::option::of(timeout()),
        1u32..=netmatrix_probe::MAX_TRIES,
        proptest::option::of(1u16..),
        any::<bool>(),
    )
        .prop_map(|(id, target, port, protocol, timeout, tries, source_port, identify)| ProbeRequest {
            id,
            target,
            port,
            protocol,
            timeout,
            tries,
            source_port,
            identify,
        })
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::Connected),
        Just(Outcome::Refused),
        Just(Outcome::Timeout),
        Just(Outcome::Dns),
        Just(Outcome::Unreachable),
        Just(Outcome::Other),
        Just(Outcome::Error),
    ]
}

fn result() -> impl Strategy<Value = ProbeResult> {
    (
        (proptest::option::of(any::<String>()), any::<String>(), 1u16.., protocol(), outcome()),
        (proptest::option::of((any::<IpAddr>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))), any::<u64>(), 1u32..),
        (proptest::option::of(any::<String>()), proptest::option::of(any::<IpAddr>()), proptest::option::of(1u16..), proptest::option::of(any::<String>())),
    )
        .prop_map(|((id, target, port, protocol, outcome), (address, latency_us, attempts), (answered_by, client_ip, client_port, detail))| ProbeResult {
            index: 0,
            id,
            target,
            port,
            protocol,
            outcome,
            address,
            latency: Duration::from_micros(latency_us),
            attempts,
            answered_by,
            client_ip,
            client_port,
            detail,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn batches_read_back_as_written(requests in proptest::collection::vec(request(), 0..8)) {
        // An absent timeout is the agent's default, which parsing fills in.
        let expected: Vec<ProbeRequest> =
            requests.iter().map(|r| ProbeRequest { timeout: r.timeout.or(Some(DEFAULT_TIMEOUT)), ..r.clone() }).collect();
        prop_assert_eq!(parse_batch(&batch_to_json(&requests), DEFAULT_TIMEOUT), Ok(expected));
    }

    #[test]
    fn result_lines_read_back_as_written(results in proptest::collection::vec(result(), 0..8)) {
        let results: Vec<ProbeResult> = results.into_iter().enumerate().map(|(index, r)| ProbeResult { index, ..r }).collect();
        for r in &results {
            prop_assert_eq!(ProbeResult::parse_line(&r.to_line()), Ok(r.clone()));
        }
        let text: String = results.iter().map(|r| r.to_line() + "\n").collect();
        prop_assert_eq!(parse_results(&text, results.len()), Ok(results));
    }

    #[test]
    fn durations_read_back_as_written(duration in timeout()) {
        prop_assert_eq!(parse_duration(&format_duration(duration)), Ok(duration));
    }
}
