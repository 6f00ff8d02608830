//! What the logs say about a request: who sent it (the client address, through trusted proxies
//! only), which request it was (`X-Request-Id`, taken or made), and how often a refusal is worth
//! a log line, so that a flood of bad requests cannot flood the logs too.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::http::header::HeaderName;
use actix_web::HttpRequest;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

/// The header a request id is taken from, and returned in.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Refusal lines logged per second at most, after a burst of [`REFUSAL_LOG_BURST`]. Every
/// refusal is counted in the metrics whatever is logged.
pub const REFUSAL_LOGS_PER_SECOND: u32 = 20;
pub const REFUSAL_LOG_BURST: u32 = 100;
/// The longest request id taken from a client; a longer or stranger one is replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// How requests are logged: shared by the public server's workers.
pub struct RequestLogging {
    trusted_proxies: Vec<IpNet>,
    access_log: bool,
    refusals: LogSampler,
}

impl RequestLogging {
    pub fn new(trusted_proxies: Vec<IpNet>, access_log: bool) -> Self {
        RequestLogging {
            trusted_proxies,
            access_log,
            refusals: LogSampler::per_second(REFUSAL_LOGS_PER_SECOND, REFUSAL_LOG_BURST),
        }
    }

    pub fn access_log(&self) -> bool {
        self.access_log
    }

    /// Whether to log this refusal, and how many went unlogged before it.
    pub fn refusal_log(&self) -> Option<u64> {
        self.refusals.admit()
    }

    /// Who sent the request, and its id.
    pub fn origin(&self, request: &HttpRequest) -> RequestOrigin {
        let forwarded: Vec<&str> = request
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|value| value.to_str().ok())
            .collect();
        RequestOrigin {
            request_id: request_id(
                request
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|value| value.to_str().ok()),
            ),
            client: client_address(
                request.peer_addr().map(|peer| peer.ip()),
                &forwarded,
                &self.trusted_proxies,
            ),
        }
    }
}

/// Who sent a request and which one it was, for every line logged about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin {
    pub request_id: String,
    /// `None` only where the connection has no IP peer (a test harness).
    pub client: Option<IpAddr>,
}

/// The client's id when it is a sane token (a proxy's or a load balancer's), else a new one.
pub fn request_id(given: Option<&str>) -> String {
    match given {
        Some(id)
            if !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && id
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:/+=".contains(&byte)) =>
        {
            id.to_owned()
        }
        _ => new_request_id(),
    }
}

/// A random (version 4) UUID from the thread's generator, seeded once from the OS:
/// `Uuid::new_v4` asks the kernel for every id, a system call per request (docs/BENCHMARKS.md).
/// A request id has to be unique, not secret.
fn new_request_id() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// The address of the client: the peer, unless the peer is a trusted proxy, in which case the
/// nearest address in `X-Forwarded-For` (read from the right) that is not a trusted proxy. Only
/// trusted proxies are believed: anyone can write the header, so without a trusted peer it is
/// ignored, and an entry that does not parse stops the walk.
pub fn client_address(
    peer: Option<IpAddr>,
    forwarded_for: &[&str],
    trusted_proxies: &[IpNet],
) -> Option<IpAddr> {
    let trusted = |address: &IpAddr| trusted_proxies.iter().any(|net| net.contains(address));
    let mut client = peer?;
    if !trusted(&client) {
        return Some(client);
    }
    let hops = forwarded_for
        .iter()
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Some(address) = parse_hop(hop) else {
            break;
        };
        client = address;
        if !trusted(&client) {
            break;
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

/// Parses `ZEGO_BRIDGE_HTTP_TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges.
pub fn parse_trusted_proxies(value: &str) -> Result<Vec<IpNet>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!(
                        "{entry:?} is neither an IP address nor a CIDR range such as 10.0.0.0/8"
                    )
                })
        })
        .collect()
}

/// Lets through a bounded rate of log lines and counts those held back.
pub struct LogSampler {
    limiter: DefaultDirectRateLimiter,
    held_back: AtomicU64,
}

impl LogSampler {
    pub fn per_second(rate: u32, burst: u32) -> Self {
        let rate = NonZeroU32::new(rate).expect("a positive rate");
        let burst = NonZeroU32::new(burst).expect("a positive burst");
        LogSampler {
            limiter: RateLimiter::direct(Quota::per_second(rate).allow_burst(burst)),
            held_back: AtomicU64::new(0),
        }
    }

    /// `Some(n)`: log this line, and say that `n` were held back since the last one; `None`:
    /// hold it back.
    pub fn admit(&self) -> Option<u64> {
        if self.limiter.check().is_ok() {
            Some(self.held_back.swap(0, Ordering::Relaxed))
        } else {
            self.held_back.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let trusted = parse_trusted_proxies("10.0.0.0/8, 192.168.1.1").unwrap();
        let peer_proxy = Some(ip("10.1.2.3"));
        // No trusted proxy configured, or a peer that is none: the header is anyone's to forge.
        assert_eq!(
            client_address(Some(ip("203.0.113.9")), &["1.1.1.1"], &trusted),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(client_address(peer_proxy, &["1.1.1.1"], &[]), peer_proxy);
        // Through two trusted proxies, the client is the first untrusted hop from the right,
        // whatever the client itself wrote further left.
        assert_eq!(
            client_address(
                peer_proxy,
                &["6.6.6.6, 198.51.100.7", "192.168.1.1"],
                &trusted
            ),
            Some(ip("198.51.100.7"))
        );
        // Ports, IPv6.
        assert_eq!(
            client_address(peer_proxy, &["[2001:db8::1]:443"], &trusted),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            client_address(peer_proxy, &["198.51.100.7:5555"], &trusted),
            Some(ip("198.51.100.7"))
        );
        // Garbage stops the walk at the last address known.
        assert_eq!(
            client_address(peer_proxy, &["198.51.100.7, not-an-ip"], &trusted),
            peer_proxy
        );
        // All hops trusted: the leftmost.
        assert_eq!(
            client_address(peer_proxy, &["10.9.9.9"], &trusted),
            Some(ip("10.9.9.9"))
        );
        assert_eq!(client_address(peer_proxy, &[], &trusted), peer_proxy);
        assert!(parse_trusted_proxies("10.0.0.0/33").is_err());
        assert!(parse_trusted_proxies("proxy.local").is_err());
    }

    #[test]
    fn a_request_id_is_taken_when_sane_and_made_otherwise() {
        assert_eq!(request_id(Some("abc-123_x.y:z")), "abc-123_x.y:z");
        for strange in ["", "two words", "new\nline", &"x".repeat(129), "ünïcode"] {
            let made = request_id(Some(strange));
            assert_ne!(made, strange);
            let made = uuid::Uuid::parse_str(&made).expect("a UUID");
            assert_eq!(made.get_version_num(), 4, "{made}");
        }
        let made: std::collections::HashSet<String> =
            (0..10_000).map(|_| request_id(None)).collect();
        assert_eq!(made.len(), 10_000, "every made id is new");
    }

    #[test]
    fn the_sampler_lets_a_burst_through_then_counts_what_it_holds_back() {
        let sampler = LogSampler::per_second(1, 5);
        let admitted = (0..1000).filter(|_| sampler.admit().is_some()).count();
        // The burst, and perhaps one more if a second passed.
        assert!((5..=6).contains(&admitted), "{admitted}");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let held_back = sampler.admit().expect("a new token after a second");
        assert!(held_back >= 994, "{held_back}");
        assert_eq!(sampler.admit(), None);
    }
}
