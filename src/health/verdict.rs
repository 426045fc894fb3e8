//! What one probe saw of a node, and the verdict it gives: online,
//! joining, degraded (why), unreachable (the dial's error), offline (the
//! node says so), or stale (its peer state is old). Pure: the prober
//! gathers, this judges, the tests feed it by hand.

use std::time::Duration;

/// The verdict of one probe, worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Online,
    Joining,
    Degraded,
    Stale,
    Offline,
    Unreachable,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::Online,
        Verdict::Joining,
        Verdict::Degraded,
        Verdict::Stale,
        Verdict::Offline,
        Verdict::Unreachable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Verdict::Online => "online",
            Verdict::Joining => "joining",
            Verdict::Degraded => "degraded",
            Verdict::Stale => "stale",
            Verdict::Offline => "offline",
            Verdict::Unreachable => "unreachable",
        }
    }

    pub fn parse(name: &str) -> Option<Verdict> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Whether the node answered: what availability counts.
    pub fn reachable(self) -> bool {
        !matches!(self, Verdict::Unreachable | Verdict::Offline)
    }

    /// The number Prometheus shows (0 online … 5 unreachable).
    pub fn level(self) -> u8 {
        self as u8
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a probe found out about one node.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// Its state in the roster (ONLINE, JOINING, OFFLINE), if it is in it.
    pub roster_state: Option<String>,
    /// How old its newest peer state is.
    pub state_age: Option<Duration>,
    /// Connected (how long the dial took, zero when already connected),
    /// or the dial's error.
    pub dial: Option<Result<Duration, String>>,
    /// Identify's agent, once known.
    pub agent: Option<String>,
    /// The last ping round trip.
    pub rtt: Option<Duration>,
    /// The configured health route: its status and time, or why it failed.
    pub health_route: Option<Result<(u16, Duration), String>>,
    /// Connected, but not where it advertises, and a dial there failed:
    /// others cannot reach it (the dial's error, and where it listens).
    pub advertised_elsewhere: Option<String>,
    /// Its DAG heads against ours, or why they could not be asked for
    /// (None: it does not serve DAG sync). Shown, alerted on when apart
    /// for long; not part of the verdict, as gossip keeps heads apart for
    /// moments all the time.
    pub dag: Option<Result<super::dag::DagSync, String>>,
    /// Bytes the probe's own exchanges carried (the DAG inventory).
    pub bytes: u64,
}

/// When a verdict turns from fine to degraded or stale.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// A peer state older than this is stale.
    pub stale_after: Duration,
    /// A ping round trip over this is degraded.
    pub slow_rtt: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            stale_after: super::DEFAULT_STALE_AFTER,
            slow_rtt: super::DEFAULT_SLOW_RTT,
        }
    }
}

/// The verdict and its reason (empty when online with nothing to say).
pub fn judge(o: &Observation, t: &Thresholds) -> (Verdict, String) {
    let announces_offline = o.roster_state.as_deref() == Some("OFFLINE");
    match &o.dial {
        Some(Err(e)) if announces_offline => {
            return (Verdict::Offline, format!("announces OFFLINE; dial: {e}"))
        }
        Some(Err(e)) => return (Verdict::Unreachable, e.clone()),
        None => return (Verdict::Unreachable, "no address to dial".into()),
        Some(Ok(_)) => {}
    }
    if announces_offline {
        return (Verdict::Offline, "answers, but announces OFFLINE".into());
    }
    match &o.health_route {
        Some(Err(e)) => return (Verdict::Degraded, format!("health route: {e}")),
        Some(Ok((status, _))) if *status >= 400 => {
            return (Verdict::Degraded, format!("health route: status {status}"))
        }
        _ => {}
    }
    if let Some(why) = &o.advertised_elsewhere {
        return (Verdict::Unreachable, why.clone());
    }
    if let Some(age) = o.state_age.filter(|a| *a > t.stale_after) {
        return (Verdict::Stale, format!("peer state {} old", fmt_age(age)));
    }
    if let Some(rtt) = o.rtt.filter(|r| *r > t.slow_rtt) {
        return (Verdict::Degraded, format!("ping {} ms", rtt.as_millis()));
    }
    if o.roster_state.as_deref() == Some("JOINING") {
        return (Verdict::Joining, "announces JOINING".into());
    }
    let reason = if o.roster_state.is_none() {
        "not in the roster".into()
    } else {
        String::new()
    };
    (Verdict::Online, reason)
}

/// `90s`, `12m`, `5h`, `3d`; a whole hour or day in its own unit (`1h`,
/// not `60m`), as an operator wrote a window.
pub fn fmt_age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        86_400.. if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        3600.. if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_the_unit_an_operator_would_write() {
        let f = |s| fmt_age(Duration::from_secs(s));
        assert_eq!(
            [
                f(0),
                f(90),
                f(720),
                f(3600),
                f(5400),
                f(18_000),
                f(86_400),
                f(259_200)
            ],
            ["0s", "90s", "12m", "1h", "90m", "5h", "1d", "3d"]
        );
    }

    fn seen() -> Observation {
        Observation {
            roster_state: Some("ONLINE".into()),
            state_age: Some(Duration::from_secs(30)),
            dial: Some(Ok(Duration::ZERO)),
            agent: Some("py-libp2p/0.8.1".into()),
            rtt: Some(Duration::from_millis(40)),
            health_route: None,
            advertised_elsewhere: None,
            dag: None,
            bytes: 0,
        }
    }

    #[test]
    fn each_verdict_and_its_reason() {
        let t = Thresholds::default();
        assert_eq!(judge(&seen(), &t), (Verdict::Online, String::new()));
        let refused = Observation {
            dial: Some(Err("connection refused".into())),
            ..seen()
        };
        assert_eq!(
            judge(&refused, &t),
            (Verdict::Unreachable, "connection refused".into())
        );
        let offline = Observation {
            roster_state: Some("OFFLINE".into()),
            ..refused.clone()
        };
        assert_eq!(judge(&offline, &t).0, Verdict::Offline);
        let joining = Observation {
            roster_state: Some("JOINING".into()),
            ..seen()
        };
        assert_eq!(judge(&joining, &t).0, Verdict::Joining);
        let stale = Observation {
            state_age: Some(Duration::from_secs(3 * 3600)),
            ..seen()
        };
        assert_eq!(
            judge(&stale, &t),
            (Verdict::Stale, "peer state 3h old".into())
        );
        let slow = Observation {
            rtt: Some(Duration::from_millis(2500)),
            ..seen()
        };
        assert_eq!(judge(&slow, &t), (Verdict::Degraded, "ping 2500 ms".into()));
        let sick = Observation {
            health_route: Some(Ok((503, Duration::from_millis(4)))),
            ..seen()
        };
        assert_eq!(
            judge(&sick, &t),
            (Verdict::Degraded, "health route: status 503".into())
        );
        let stranger = Observation {
            roster_state: None,
            state_age: None,
            ..seen()
        };
        assert_eq!(
            judge(&stranger, &t),
            (Verdict::Online, "not in the roster".into())
        );
    }

    #[test]
    fn a_node_we_reach_elsewhere_than_it_advertises_is_unreachable_for_the_others() {
        let o = Observation {
            advertised_elsewhere: Some(
                "dial 127.0.0.1:1 (where it advertises): connection refused".into(),
            ),
            ..seen()
        };
        let (v, why) = judge(&o, &Thresholds::default());
        assert_eq!(v, Verdict::Unreachable);
        assert!(why.starts_with("dial 127.0.0.1:1"), "{why}");
    }

    #[test]
    fn names_read_back() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.name()), Some(v));
        }
        assert!(Verdict::Degraded.reachable() && !Verdict::Unreachable.reachable());
    }
}
