//! A failed dial said in one line: where, and the root cause, without the
//! transport stack's nested restatements ("Failed to negotiate transport
//! protocol(s): [(…: Connection refused (os error 111): Connection
//! refused (os error 111): …)]").

use libp2p::multiaddr::Protocol;
use libp2p::swarm::DialError;
use libp2p::Multiaddr;

/// `127.0.0.1:1: connection refused`, one address after another.
pub(crate) fn summary(error: &DialError) -> String {
    match error {
        DialError::Transport(attempts) if !attempts.is_empty() => attempts
            .iter()
            .map(|(addr, e)| format!("{}: {}", short_addr(addr), root_cause(e)))
            .collect::<Vec<_>>()
            .join("; "),
        other => root_cause(other),
    }
}

/// `IP:PORT` for a TCP address, the multiaddr otherwise.
fn short_addr(addr: &Multiaddr) -> String {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(a.to_string()),
            Protocol::Ip6(a) => ip = Some(format!("[{a}]")),
            Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) => ip = Some(h.to_string()),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) => format!("{ip}:{port}"),
        _ => addr.to_string(),
    }
}

/// The innermost error's text, without "(os error N)", lower-cased first.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut deepest = error;
    while let Some(next) = deepest.source() {
        deepest = next;
    }
    let text = deepest.to_string();
    let text = match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "unknown error".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::core::transport::TransportError;

    #[test]
    fn a_refused_tcp_dial_is_one_short_line() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let e = DialError::Transport(vec![(addr, TransportError::Other(io))]);
        assert_eq!(summary(&e), "127.0.0.1:1: connection refused");
    }
}
