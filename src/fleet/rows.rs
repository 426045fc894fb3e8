//! Which rows show and in what order, as the Peers pane does it: words
//! match names, labels, peer ids and reasons; `key=value` matches a label
//! or a column; comparisons such as `errors>1%`, `p99>500ms`, `peers<3`
//! or `uptime<10m` compare a node's figures (a node that is down has none,
//! so it matches no comparison).

use std::time::Duration;

use super::{Fleet, Reach, Row};

#[derive(Clone, Debug, PartialEq)]
enum Term {
    Word(String),
    Equals(String, String),
    More(String, f64),
    Less(String, f64),
}

/// A parsed filter: every term must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FleetFilter {
    terms: Vec<Term>,
    text: String,
}

/// Columns that compare as numbers, and the unit a bare number is in.
const NUMERIC: &[(&str, &str)] = &[
    ("errors", "%"),
    ("p50", "ms"),
    ("p99", "ms"),
    ("ttfb", "ms"),
    ("rate", "/s"),
    ("peers", ""),
    ("roster", ""),
    ("routes", ""),
    ("uptime", "s"),
    ("evictions", ""),
];

fn number(key: &str, text: &str) -> Result<f64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: f64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a number for {key}"))?;
    let scale = match (key, unit) {
        (_, "") | ("errors", "%") | ("rate", "/s") => 1.0,
        ("p50" | "p99" | "ttfb", "ms") => 1.0,
        ("p50" | "p99" | "ttfb", "s") => 1e3,
        ("p50" | "p99" | "ttfb", "us" | "µs") => 1e-3,
        ("uptime", "s") => 1.0,
        ("uptime", "m") => 60.0,
        ("uptime", "h") => 3600.0,
        ("uptime", "d") => 86400.0,
        _ => return Err(format!("{unit:?} is not a unit for {key}")),
    };
    Ok(n * scale)
}

impl FleetFilter {
    /// `""` shows every row.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for word in text.split_whitespace() {
            let op = word.find(['=', '>', '<']);
            let term = match op {
                None => Term::Word(word.to_lowercase()),
                Some(at) => {
                    let (key, rest) = word.split_at(at);
                    let key = key.to_lowercase();
                    let value = &rest[1..];
                    if key.is_empty() || value.is_empty() {
                        return Err(format!(
                            "{word:?}: write key=value, key>number or key<number"
                        ));
                    }
                    match &rest[..1] {
                        "=" => Term::Equals(key, value.to_string()),
                        cmp => {
                            if !NUMERIC.iter().any(|(k, _)| *k == key) {
                                let known: Vec<&str> = NUMERIC.iter().map(|(k, _)| *k).collect();
                                return Err(format!(
                                    "{key:?} does not compare: use one of {}",
                                    known.join(", ")
                                ));
                            }
                            let n = number(&key, value)?;
                            if cmp == ">" {
                                Term::More(key, n)
                            } else {
                                Term::Less(key, n)
                            }
                        }
                    }
                }
            };
            terms.push(term);
        }
        Ok(Self {
            terms,
            text: text.trim().to_string(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn matches(&self, row: &Row) -> bool {
        self.terms.iter().all(|t| term_matches(t, row))
    }
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1e3)
}

/// A row's figure for a numeric column (None: it has none now).
fn figure(row: &Row, key: &str) -> Option<f64> {
    if row.reach != Reach::Up {
        return None;
    }
    let s = row.stats.as_ref()?;
    match key {
        "errors" => Some(s.served.error_share() * 100.0),
        "p50" => ms(s.served.p50),
        "p99" => ms(s.served.p99),
        "ttfb" => ms(s.served.backend_first_byte_p50),
        "rate" => Some(s.served.per_sec()),
        "peers" => Some(s.connected_peers as f64),
        "roster" => Some(s.roster_size as f64),
        "routes" => Some(s.routes as f64),
        "uptime" => Some(s.uptime.as_secs_f64()),
        "evictions" => Some(s.evictions as f64),
        _ => None,
    }
}

fn reach_word(row: &Row) -> &'static str {
    match row.reach {
        Reach::Up => "up",
        Reach::Down(_) => "down",
        Reach::Trying => "trying",
    }
}

fn term_matches(term: &Term, row: &Row) -> bool {
    match term {
        Term::Word(w) => {
            let c = &row.context;
            c.name.to_lowercase().contains(w)
                || c.labels
                    .iter()
                    .any(|(k, v)| k.to_lowercase().contains(w) || v.to_lowercase().contains(w))
                || row
                    .info
                    .as_ref()
                    .is_some_and(|i| i.peer_id.to_string().to_lowercase().contains(w))
                || matches!(&row.reach, Reach::Down(why) if why.to_lowercase().contains(w))
                || reach_word(row) == w
        }
        Term::Equals(key, value) => {
            let value_lc = value.to_lowercase();
            let column = match key.as_str() {
                "state" | "reach" => Some(reach_word(row).to_string()),
                "subnet" => row
                    .stats
                    .as_ref()
                    .and_then(|s| s.subnet_id)
                    .map(|id| id.to_string()),
                "own" => row.stats.as_ref().and_then(|s| s.own_state.clone()),
                "role" => row.role.map(|r| format!("{r:?}")),
                _ => None,
            };
            column.is_some_and(|c| c.to_lowercase() == value_lc)
                || row.context.has_label(key, value)
        }
        Term::More(key, n) => figure(row, key).is_some_and(|f| f > *n),
        Term::Less(key, n) => figure(row, key).is_some_and(|f| f < *n),
    }
}

/// The order of the rows (`s` cycles it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FleetSort {
    /// As the contexts file lists them.
    #[default]
    File,
    Name,
    /// Down first.
    Reach,
    /// Slowest first.
    P99,
    /// Busiest first.
    Rate,
    /// Most errors first.
    Errors,
}

impl FleetSort {
    pub fn next(self) -> Self {
        match self {
            FleetSort::File => FleetSort::Name,
            FleetSort::Name => FleetSort::Reach,
            FleetSort::Reach => FleetSort::P99,
            FleetSort::P99 => FleetSort::Rate,
            FleetSort::Rate => FleetSort::Errors,
            FleetSort::Errors => FleetSort::File,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            FleetSort::File => "file order",
            FleetSort::Name => "name",
            FleetSort::Reach => "down first",
            FleetSort::P99 => "p99, slowest first",
            FleetSort::Rate => "calls/s, busiest first",
            FleetSort::Errors => "errors, most first",
        }
    }
}

impl Fleet {
    /// Indices of the rows `filter` lets through, in `sort`'s order.
    pub fn order(&self, filter: &FleetFilter, sort: FleetSort) -> Vec<usize> {
        let mut shown: Vec<usize> = (0..self.rows.len())
            .filter(|&i| filter.matches(&self.rows[i]))
            .collect();
        match sort {
            FleetSort::File => {}
            FleetSort::Name => {
                shown.sort_by(|&a, &b| self.rows[a].context.name.cmp(&self.rows[b].context.name))
            }
            FleetSort::Reach => shown.sort_by_key(|&i| match self.rows[i].reach {
                Reach::Down(_) => 0,
                Reach::Trying => 1,
                Reach::Up => 2,
            }),
            FleetSort::P99 | FleetSort::Rate | FleetSort::Errors => {
                let key = match sort {
                    FleetSort::P99 => "p99",
                    FleetSort::Rate => "rate",
                    _ => "errors",
                };
                // Largest first; rows without the figure last.
                let of = |i: usize| figure(&self.rows[i], key).unwrap_or(f64::NEG_INFINITY);
                shown.sort_by(|&a, &b| of(b).total_cmp(&of(a)));
            }
        }
        shown
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Instant;

    use super::*;
    use crate::control::NodeStats;
    use crate::fleet::{Context, Probe};

    fn fleet() -> Fleet {
        let ctx = |name: &str, subnet: &str| Context {
            name: name.into(),
            target: format!("unix:/run/{name}.sock"),
            labels: BTreeMap::from([
                ("subnet".into(), subnet.into()),
                ("role".into(), "validator".into()),
            ]),
            read_only: false,
            color: None,
        };
        let now = Instant::now();
        let mut f = Fleet::new(
            vec![ctx("alpha", "3"), ctx("beta", "3"), ctx("gamma", "7")],
            now,
        );
        let up = |p99_ms: u64, calls: u64, errors: u64| {
            let mut stats = NodeStats::default();
            stats.served.window_secs = 60;
            stats.served.calls = calls;
            stats.served.errors = errors;
            stats.served.p99 = Some(Duration::from_millis(p99_ms));
            stats.connected_peers = 4;
            Probe::Up {
                info: Box::new(crate::control::NodeInfo {
                    peer_id: libp2p::PeerId::random(),
                    version: "0.1.0".into(),
                    name: None,
                    listen: vec![],
                    telemetry: None,
                }),
                role: crate::control::Role::Full,
                stats: Box::new(stats),
            }
        };
        f.apply(0, up(40, 600, 0), now);
        f.apply(1, up(900, 120, 12), now);
        f.apply(
            2,
            Probe::Down {
                reason: "ssh: connect to host x port 22: Connection refused".into(),
            },
            now,
        );
        f
    }

    fn names(f: &Fleet, filter: &str, sort: FleetSort) -> Vec<String> {
        let filter = FleetFilter::parse(filter).unwrap();
        f.order(&filter, sort)
            .into_iter()
            .map(|i| f.rows[i].context.name.clone())
            .collect()
    }

    #[test]
    fn comparisons_and_labels_pick_the_rows_they_name() {
        let f = fleet();
        assert_eq!(names(&f, "", FleetSort::File), ["alpha", "beta", "gamma"]);
        assert_eq!(names(&f, "errors>1%", FleetSort::File), ["beta"]);
        assert_eq!(names(&f, "p99>500ms", FleetSort::File), ["beta"]);
        assert_eq!(names(&f, "p99<0.5s", FleetSort::File), ["alpha"]);
        assert_eq!(names(&f, "subnet=3", FleetSort::File), ["alpha", "beta"]);
        assert_eq!(names(&f, "state=down", FleetSort::File), ["gamma"]);
        assert_eq!(names(&f, "refused", FleetSort::File), ["gamma"]);
        assert_eq!(names(&f, "validator rate>5", FleetSort::File), ["alpha"]);
    }

    #[test]
    fn sorts_put_the_slowest_busiest_or_down_first() {
        let f = fleet();
        assert_eq!(names(&f, "", FleetSort::P99), ["beta", "alpha", "gamma"]);
        assert_eq!(names(&f, "", FleetSort::Rate), ["alpha", "beta", "gamma"]);
        assert_eq!(names(&f, "", FleetSort::Reach)[0], "gamma");
        assert_eq!(names(&f, "", FleetSort::Errors)[0], "beta");
    }

    #[test]
    fn a_bad_filter_says_what_to_write() {
        assert!(FleetFilter::parse("colour>3")
            .unwrap_err()
            .contains("does not compare"));
        assert!(FleetFilter::parse("p99>5parsecs")
            .unwrap_err()
            .contains("not a unit"));
        assert!(FleetFilter::parse("p99>")
            .unwrap_err()
            .contains("key>number"));
    }
}
