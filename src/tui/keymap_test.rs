use super::*;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

#[test]
fn pane_bindings_win_over_global_ones() {
    assert!(matches!(
        resolve(&key(Char('d')), Pane::Peers),
        Some(Action::StartDial)
    ));
    assert!(matches!(
        resolve(&key(Char('d')), Pane::Routes),
        Some(Action::DeleteRoute)
    ));
    assert!(matches!(
        resolve(&key(Char('j')), Pane::Calls),
        Some(Action::Down)
    ));
    assert!(resolve(&key(Char('#')), Pane::Calls).is_none());
}

#[test]
fn every_key_is_bound_once_per_scope() {
    for a in BINDINGS {
        for b in BINDINGS {
            if std::ptr::eq(a, b) || a.scope != b.scope {
                continue;
            }
            for k in a.keys {
                assert!(!b.keys.contains(k), "{k:?} bound twice in {:?}", a.scope);
            }
        }
    }
}
