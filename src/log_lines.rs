//! Log lines as an operator reads them (`message key=value`, prefixed
//! with the node's name when a process runs several), for the console's
//! Log pane and for attached consoles: a node publishes its lines on a
//! bounded tap that control clients subscribe to.

use std::sync::OnceLock;

use tokio::sync::broadcast;
use tracing_subscriber::Layer;

/// Lines kept for a slow subscriber of the tap; it then misses the oldest.
pub const TAP_CAPACITY: usize = 1024;

/// A level as it crosses to a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl From<tracing::Level> for LogLevel {
    fn from(l: tracing::Level) -> Self {
        match l {
            tracing::Level::ERROR => LogLevel::Error,
            tracing::Level::WARN => LogLevel::Warn,
            tracing::Level::INFO => LogLevel::Info,
            tracing::Level::DEBUG => LogLevel::Debug,
            tracing::Level::TRACE => LogLevel::Trace,
        }
    }
}

impl From<LogLevel> for tracing::Level {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Error => tracing::Level::ERROR,
            LogLevel::Warn => tracing::Level::WARN,
            LogLevel::Info => tracing::Level::INFO,
            LogLevel::Debug => tracing::Level::DEBUG,
            LogLevel::Trace => tracing::Level::TRACE,
        }
    }
}

/// Formats each event as one line and gives it to `sink`.
pub struct LineLayer<F> {
    sink: F,
}

impl<F> LineLayer<F> {
    pub fn new(sink: F) -> Self {
        Self { sink }
    }
}

/// The `name` of a `node` span: which node of a process wrote a line.
struct NodeName(String);

impl<S, F> Layer<S> for LineLayer<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    F: Fn(tracing::Level, String) + Send + Sync + 'static,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if attrs.metadata().name() != "node" {
            return;
        }
        struct Name(Option<String>);
        impl tracing::field::Visit for Name {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "name" {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        let mut name = Name(None);
        attrs.record(&mut name);
        if let (Some(span), Some(name)) = (ctx.span(id), name.0) {
            span.extensions_mut().insert(NodeName(name));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        struct Visit(String);
        impl tracing::field::Visit for Visit {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0.insert_str(0, &format!("{value:?} "));
                } else {
                    self.0.push_str(&format!("{}={value:?} ", field.name()));
                }
            }
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "message" {
                    self.0.insert_str(0, &format!("{value} "));
                } else {
                    self.0.push_str(&format!("{}={value} ", field.name()));
                }
            }
        }
        let mut v = Visit(String::new());
        event.record(&mut v);
        let node = ctx.event_scope(event).and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<NodeName>().map(|n| n.0.clone()))
        });
        if let Some(node) = node {
            v.0.insert_str(0, &format!("[{node}] "));
        }
        (self.sink)(*event.metadata().level(), v.0.trim_end().to_string());
    }
}

static TAP: OnceLock<broadcast::Sender<(LogLevel, String)>> = OnceLock::new();

/// A layer that publishes this process's log lines on the tap that
/// control clients read (a headless node installs it).
pub fn tap_layer() -> LineLayer<impl Fn(tracing::Level, String) + Send + Sync + 'static> {
    let tx = TAP
        .get_or_init(|| broadcast::channel(TAP_CAPACITY).0)
        .clone();
    LineLayer::new(move |level: tracing::Level, line: String| {
        let _ = tx.send((level.into(), line));
    })
}

/// This process's log lines from now on, when it publishes them.
pub fn tap() -> Option<broadcast::Receiver<(LogLevel, String)>> {
    TAP.get().map(|tx| tx.subscribe())
}
