//! The whole console over ratatui's `TestBackend`: the same `Console` the
//! terminal runs, fed keys and the real actions of a real call to a real
//! node, and read back from the drawn buffer.

use peerapi::control::{NodeLink, Role};
use peerapi::tui::history::Entry;
use peerapi::tui::state::CallState;
use peerapi::tui::Console;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::Terminal;
use tokio::sync::mpsc;

use crate::common::{config, demo_backend, serving_node, start, within};

pub(crate) fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub(crate) fn typed(console: &mut Console<TestBackend>, text: &str) {
    for c in text.chars() {
        console.on_event(key(KeyCode::Char(c)));
    }
}

pub(crate) fn screen(console: &mut Console<TestBackend>) -> String {
    console.draw().unwrap_or_else(|never| match never {});
    console.terminal.backend().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_streams_tokens_edits_a_route_and_quits_on_a_test_backend() {
    let demo = demo_backend().await;
    let (_serving, addr) = serving_node(demo.routes()).await;
    let dir = tempfile::tempdir().unwrap();
    let route_file = dir.path().join("routes.json");
    std::fs::write(&route_file, "{}").unwrap();
    let mut cfg = config();
    cfg.route_file = Some(route_file.clone());
    let (node, _) = start(cfg).await;
    let (tx, mut actions) = mpsc::channel(4096);
    let terminal = Terminal::new(TestBackend::new(100, 30)).unwrap();
    let prefill = Entry {
        target: addr.to_string(),
        route: "inference".into(),
        method: "POST".into(),
        headers: "content-type: application/json".into(),
        body: r#"{"stream": true, "messages": [{"role": "user", "content": "hi"}]}"#.into(),
        stream: true,
    };
    let (link, updates) = within(NodeLink::in_process(&node.handle(), Role::Full))
        .await
        .expect("the console reaches its node");
    let mut console = Console::new(terminal, link, updates, tx, dir.path(), Some(prefill));
    assert!(screen(&mut console).contains("Composer [STREAM]"));

    // `s` sends the pre-filled call; its task's actions come back here.
    console.on_event(key(KeyCode::Char('s')));
    assert_eq!(console.state.calls().list.len(), 1, "one call started");
    within(async {
        while console.state.calls().list[0].state.in_flight() {
            let action = actions.recv().await.expect("the call task reports");
            console.on_action(action);
        }
    })
    .await;
    let shown = screen(&mut console);
    assert_eq!(
        console.state.calls().list[0].state,
        CallState::Done,
        "{shown}"
    );
    assert!(shown.contains("done") && shown.contains("tok/s"), "{shown}");
    assert!(
        shown.contains("subnet"),
        "the demo's tokens are on screen:\n{shown}"
    );
    let history = std::fs::read_to_string(dir.path().join("history.jsonl")).unwrap();
    assert!(
        history.contains("\"inference\""),
        "the call is in the history"
    );

    // Routes pane, `a`, a route line, Enter: the node writes its file and
    // its reload puts the route in the table on screen.
    console.on_event(key(KeyCode::Char('2')));
    console.on_event(key(KeyCode::Char('a')));
    assert!(screen(&mut console).contains("Add route"));
    typed(&mut console, "chat http://127.0.0.1:9/v1 stream");
    console.on_event(key(KeyCode::Enter));
    within(async {
        while console.state.routes().len() != 1 {
            let action = actions.recv().await.expect("the node's updates");
            console.on_action(action);
        }
    })
    .await;
    let file = std::fs::read_to_string(&route_file).unwrap();
    assert!(file.contains("\"chat\"") && file.contains("http://127.0.0.1:9/v1"));
    let shown = screen(&mut console);
    assert!(
        shown.contains("Routes (1)") && shown.contains("chat"),
        "{shown}"
    );

    // Quit with nothing in flight: no question, the loop would end.
    console.on_event(key(KeyCode::Char('q')));
    assert!(console.state.quitting());
    node.abort();
}
