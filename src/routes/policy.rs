//! Who may call what: one peer filter (used node-wide for connections and
//! per route for calls), and a route's policy checked against a request.
//! A new route policy is a field of [`RoutePolicy`], parsed in `file.rs`
//! and checked in [`Route::check`].

use libp2p::PeerId;

use super::Route;
use crate::wire::ApiRequest;

/// An allow list (`None`: everyone not denied) and a deny list of peers.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeerFilter {
    /// Only these peers are admitted; `None` admits everyone not denied.
    pub allow: Option<Vec<PeerId>>,
    /// These peers are never admitted.
    pub deny: Vec<PeerId>,
}

impl PeerFilter {
    pub fn admits(&self, peer: &PeerId) -> bool {
        !self.deny.contains(peer) && self.allow.as_ref().is_none_or(|a| a.contains(peer))
    }

    /// Nothing is filtered.
    pub fn is_open(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }
}

/// Optional limits and access rules of one route. A route file without them
/// means what it meant to the Python nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoutePolicy {
    /// Allowed HTTP methods (upper case); `None` allows all.
    pub methods: Option<Vec<String>>,
    /// Overrides the node's backend timeout for this route.
    pub timeout: Option<std::time::Duration>,
    /// Largest request body accepted for this route.
    pub max_body_bytes: Option<usize>,
    /// Added to every forwarded request (e.g. an API key kept on the node).
    pub headers: Vec<(String, String)>,
    /// Who may call the route.
    pub peers: PeerFilter,
}

impl RoutePolicy {
    /// Whether `peer` may call the route.
    pub fn admits(&self, peer: &PeerId) -> bool {
        self.peers.admits(peer)
    }

    /// Whether `method` is allowed.
    pub fn allows_method(&self, method: &str) -> bool {
        self.methods
            .as_ref()
            .is_none_or(|m| m.iter().any(|x| x.eq_ignore_ascii_case(method)))
    }
}

/// Why a route refuses a request (the serving side turns it into a code
/// and a text for the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The peer is not admitted by the route's allow/deny lists.
    Peer,
    /// The method is not one of these.
    Method { allowed: Vec<String> },
    /// A stream was asked of a unary route.
    NotStreaming,
    /// The body is over the route's limit.
    BodyTooLarge { bytes: usize, limit: usize },
}

impl Route {
    /// Checks `request` from `peer` against the route's policy, in the
    /// order a caller can fix things: who, how, what shape, what size.
    pub fn check(&self, peer: &PeerId, request: &ApiRequest) -> Result<(), Refusal> {
        let policy = &self.policy;
        if !policy.admits(peer) {
            return Err(Refusal::Peer);
        }
        if !policy.allows_method(request.method_or_default()) {
            return Err(Refusal::Method {
                allowed: policy.methods.clone().unwrap_or_default(),
            });
        }
        if request.is_stream() && !self.stream {
            return Err(Refusal::NotStreaming);
        }
        match policy.max_body_bytes {
            Some(limit) if request.body.len() > limit => Err(Refusal::BodyTooLarge {
                bytes: request.body.len(),
                limit,
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn a_filter_denies_first_then_allows_only_its_list() {
        let (a, b) = (peer(), peer());
        assert!(PeerFilter::default().admits(&a));
        let deny = PeerFilter {
            allow: None,
            deny: vec![a],
        };
        assert!(!deny.admits(&a) && deny.admits(&b));
        let allow = PeerFilter {
            allow: Some(vec![a]),
            deny: vec![],
        };
        assert!(allow.admits(&a) && !allow.admits(&b));
        let both = PeerFilter {
            allow: Some(vec![a]),
            deny: vec![a],
        };
        assert!(!both.admits(&a), "deny wins over allow");
    }

    #[test]
    fn check_names_the_first_thing_to_fix() {
        let me = peer();
        let mut route = Route::new("http://127.0.0.1:9/x", false);
        route.policy.methods = Some(vec!["POST".into()]);
        route.policy.max_body_bytes = Some(4);
        let mut req = ApiRequest {
            route: "x".into(),
            method: "post".into(),
            body: b"1234".to_vec().into(),
            ..Default::default()
        };
        assert_eq!(route.check(&me, &req), Ok(()));
        req.body = b"12345".to_vec().into();
        assert_eq!(
            route.check(&me, &req),
            Err(Refusal::BodyTooLarge { bytes: 5, limit: 4 })
        );
        req.method = "GET".into();
        assert_eq!(
            route.check(&me, &req),
            Err(Refusal::Method {
                allowed: vec!["POST".into()]
            })
        );
        route.policy.peers.deny = vec![me];
        assert_eq!(route.check(&me, &req), Err(Refusal::Peer));
    }
}
