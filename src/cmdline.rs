//! Calls as shell command lines, both ways: a request as the `peerapi call`
//! or `peerapi stream` line that repeats it, and a `curl` line (as browsers
//! and API docs give them) read into a method, headers and a body.

use crate::node::CallRequest;

/// A request as a `peerapi` command line, shell-quoted: `target` and
/// `req.route` as positionals, `-X` when the method is not the one
/// peerapi would pick, `-H` per header (sorted, so the line is stable),
/// the body as `-d` (or piped in when it starts with `@`, which `-d`
/// reads as a file name).
pub fn to_command(target: &str, req: &CallRequest, stream: bool) -> Result<String, String> {
    let body = std::str::from_utf8(&req.body).map_err(|_| {
        "the body is not text: save it to a file and send it with -d @FILE".to_string()
    })?;
    let quote = |s: &str| {
        shlex::try_quote(s)
            .map(|q| q.into_owned())
            .map_err(|_| "a field holds a NUL byte, which no shell argument can carry".to_string())
    };
    let mut words = vec![
        "peerapi".to_string(),
        if stream { "stream" } else { "call" }.to_string(),
        quote(target)?,
        quote(&req.route)?,
    ];
    let default_method = if body.is_empty() { "GET" } else { "POST" };
    let method = if req.method.is_empty() {
        "GET"
    } else {
        &req.method
    };
    if !method.eq_ignore_ascii_case(default_method) {
        words.push("-X".into());
        words.push(quote(method)?);
    }
    let mut headers: Vec<_> = req.headers.iter().collect();
    headers.sort();
    for (name, value) in headers {
        words.push("-H".into());
        words.push(quote(&format!("{name}: {value}"))?);
    }
    if body.starts_with('@') {
        words.push("-d".into());
        words.push("@-".into());
        return Ok(format!("printf %s {} | {}", quote(body)?, words.join(" ")));
    }
    if !body.is_empty() {
        words.push("-d".into());
        words.push(quote(body)?);
    }
    Ok(words.join(" "))
}

/// What a `curl` line asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Curl {
    pub method: String,
    pub url: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The line asks for a stream (`-N`, `Accept: text/event-stream`, or a
    /// JSON body with `"stream": true`).
    pub stream: bool,
    /// Options read past without effect here (TLS, output, retries).
    pub ignored: Vec<String>,
}

/// curl options without a value that change nothing a peer would see.
const QUIET_FLAGS: &[&str] = &[
    "-s",
    "--silent",
    "-S",
    "--show-error",
    "-L",
    "--location",
    "-k",
    "--insecure",
    "--compressed",
    "-v",
    "--verbose",
    "-i",
    "--include",
    "-f",
    "--fail",
    "-g",
    "--globoff",
    "--http1.1",
    "--http2",
    "-#",
    "--progress-bar",
    "-N",
    "--no-buffer",
];

/// curl options whose value changes nothing a peer would see.
const QUIET_WITH_VALUE: &[&str] = &[
    "-o",
    "--output",
    "-m",
    "--max-time",
    "--connect-timeout",
    "-w",
    "--write-out",
    "--retry",
    "-x",
    "--proxy",
    "--cacert",
    "--cert",
    "--key",
    "-c",
    "--cookie-jar",
    "--resolve",
    "--limit-rate",
];

/// Reads a `curl ...` line (continuation backslashes and all).
pub fn from_curl(text: &str) -> Result<Curl, String> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let words = shlex::split(&joined).ok_or("the curl line has an unclosed quote")?;
    let mut words = words.into_iter().peekable();
    match words.next().as_deref() {
        Some("curl") => {}
        _ => return Err("not a curl command line (it must start with `curl`)".into()),
    }
    let mut c = Curl::default();
    let mut method = None;
    let mut data: Vec<String> = Vec::new();
    while let Some(w) = words.next() {
        let mut value = |name: &str| {
            words
                .next()
                .ok_or_else(|| format!("curl option {name} needs a value"))
        };
        match w.as_str() {
            "-X" | "--request" => method = Some(value(&w)?),
            "-H" | "--header" => {
                let line = value(&w)?;
                let (name, v) = crate::node::parse_header_line(&line)
                    .map_err(|e| format!("curl header {line:?}: {e}"))?;
                c.headers.push((name.to_string(), v.to_string()));
            }
            "-d" | "--data" | "--data-raw" | "--data-binary" | "--data-ascii"
            | "--data-urlencode" => {
                let d = value(&w)?;
                if d.starts_with('@') && w != "--data-raw" {
                    return Err(format!(
                        "{w} {d}: the body is in a file; paste the file's content instead"
                    ));
                }
                data.push(d);
            }
            "--json" => {
                data.push(value(&w)?);
                c.headers
                    .push(("Content-Type".into(), "application/json".into()));
                c.headers.push(("Accept".into(), "application/json".into()));
            }
            "-A" | "--user-agent" => c.headers.push(("User-Agent".into(), value(&w)?)),
            "-e" | "--referer" => c.headers.push(("Referer".into(), value(&w)?)),
            "-b" | "--cookie" => c.headers.push(("Cookie".into(), value(&w)?)),
            "--url" => c.url = Some(value(&w)?),
            "-F" | "--form" | "-T" | "--upload-file" | "-G" | "--get" | "-u" | "--user" => {
                return Err(format!(
                    "curl {w} is not supported here: send the body with -d, or set the header yourself"
                ))
            }
            flag if QUIET_WITH_VALUE.contains(&flag) => {
                let v = value(flag)?;
                c.ignored.push(format!("{flag} {v}"));
            }
            flag if QUIET_FLAGS.contains(&flag) || is_quiet_bundle(flag) => {
                if matches!(flag, "-N" | "--no-buffer") {
                    c.stream = true;
                }
                c.ignored.push(flag.to_string());
            }
            flag if flag.starts_with('-') && flag.len() > 1 => c.ignored.push(flag.to_string()),
            url => c.url = Some(url.to_string()),
        }
    }
    c.body = data.join("&");
    c.method = method.unwrap_or_else(|| if c.body.is_empty() { "GET" } else { "POST" }.into());
    c.stream |= c
        .headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("accept") && v.contains("text/event-stream"))
        || serde_json::from_str::<serde_json::Value>(&c.body)
            .is_ok_and(|v| v.get("stream") == Some(&serde_json::Value::Bool(true)));
    Ok(c)
}

/// `-sSL` and the like: single-letter quiet flags run together.
fn is_quiet_bundle(flag: &str) -> bool {
    let Some(letters) = flag.strip_prefix('-').filter(|l| !l.starts_with('-')) else {
        return false;
    };
    letters.len() > 1
        && letters
            .chars()
            .all(|ch| QUIET_FLAGS.contains(&format!("-{ch}").as_str()))
}

impl Curl {
    /// The URL's path and query (what a route's backend URL ends with).
    pub fn path(&self) -> Option<&str> {
        let url = self.url.as_deref()?;
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        Some(rest.find('/').map_or("/", |i| &rest[i..]))
    }

    /// The headers as the composer and `-H` write them, one per line.
    pub fn header_lines(&self) -> String {
        self.headers
            .iter()
            .map(|(n, v)| format!("{n}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, headers: &[(&str, &str)], body: &str) -> CallRequest {
        let mut r = CallRequest::new("chat")
            .method(method)
            .body(body.to_string());
        for (n, v) in headers {
            r = r.header(*n, *v);
        }
        r
    }

    #[test]
    fn a_request_becomes_the_command_that_repeats_it() {
        let addr = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooW";
        let body = r#"{"messages": [{"role": "user", "content": "it's here"}]}"#;
        let r = request(
            "POST",
            &[("content-type", "application/json"), ("accept", "*/*")],
            body,
        );
        let line = to_command(addr, &r, true).unwrap();
        assert_eq!(
            shlex::split(&line).unwrap(),
            [
                "peerapi",
                "stream",
                addr,
                "chat",
                "-H",
                "accept: */*",
                "-H",
                "content-type: application/json",
                "-d",
                body
            ],
            "{line}"
        );
        // GET without a body and POST with one need no -X; others do.
        assert_eq!(
            to_command(addr, &request("", &[], ""), false).unwrap(),
            format!("peerapi call {addr} chat")
        );
        assert!(to_command(addr, &request("PUT", &[], "x"), false)
            .unwrap()
            .contains(" -X PUT -d x"));
        // A body `-d` would read as a file name goes through standard input.
        assert_eq!(
            to_command(addr, &request("POST", &[], "@home"), false).unwrap(),
            format!("printf %s @home | peerapi call {addr} chat -d @-")
        );
        assert!(to_command(addr, &CallRequest::new("x").body(vec![0xff, 0]), false).is_err());
    }

    /// The line a request becomes reads back, through a shell's words, as
    /// the same method, headers and body.
    #[test]
    fn command_lines_round_trip_through_curl_reading() {
        let body = "line one\nline 'two' $HOME `x` \\ end";
        let r = request(
            "PATCH",
            &[("x-key", "a b"), ("accept", "text/event-stream")],
            body,
        );
        let line = to_command("/ip4/1.2.3.4/tcp/1/p2p/X", &r, true).unwrap();
        let words = shlex::split(&line).unwrap();
        let curl = format!(
            "curl http://h/v1 {}",
            shlex::try_join(words[4..].iter().map(String::as_str)).unwrap()
        );
        let c = from_curl(&curl).unwrap();
        assert_eq!(c.method, "PATCH");
        assert_eq!(c.body, body);
        assert_eq!(
            c.headers,
            [
                ("accept".to_string(), "text/event-stream".to_string()),
                ("x-key".into(), "a b".into())
            ]
        );
        assert!(c.stream);
    }

    #[test]
    fn a_browser_curl_line_fills_method_headers_and_body() {
        let line = "curl 'https://api.example.com/v1/chat/completions?x=1' \\\n  -H 'Authorization: Bearer sk-1' \\\n  -H 'Content-Type: application/json' \\\n  --compressed -sS \\\n  -d '{\"model\": \"m\", \"stream\": true}'";
        let c = from_curl(line).unwrap();
        assert_eq!(
            c.method, "POST",
            "a body without -X is a POST, as curl does"
        );
        assert_eq!(c.path(), Some("/v1/chat/completions?x=1"));
        assert_eq!(
            c.header_lines(),
            "Authorization: Bearer sk-1\nContent-Type: application/json"
        );
        assert!(c.stream, "the body asks for a stream");
        assert_eq!(c.ignored, ["--compressed", "-sS"]);
        let j = from_curl(r#"curl --json '{"a":1}' http://h/x -X PUT"#).unwrap();
        assert_eq!((j.method.as_str(), j.body.as_str()), ("PUT", r#"{"a":1}"#));
        assert_eq!(j.headers.len(), 2);
        assert_eq!(from_curl("curl http://h/").unwrap().method, "GET");
    }

    #[test]
    fn what_a_curl_line_cannot_say_here_is_an_error_that_says_why() {
        for (line, says) in [
            ("wget http://h", "start with `curl`"),
            ("curl 'http://h", "unclosed quote"),
            ("curl -H", "needs a value"),
            ("curl -H nocolon http://h", "nocolon"),
            ("curl -d @body.json http://h", "paste the file"),
            ("curl -F a=@f http://h", "not supported"),
        ] {
            let e = from_curl(line).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
    }
}
