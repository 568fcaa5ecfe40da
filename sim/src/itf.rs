//! Export of fixtures to the Informal Trace Format (ITF) read by Quint and Apalache tooling.
//!
//! Each fixture becomes one ITF trace of the model's states along it, under the policy that
//! generated it. Variables: `action` (what led to the state; `init` first), `auth` and `version`
//! (per connector), and per session and connector `offered`, `notice` and `in_flight`, and per
//! session `turn`. Integers are `{"#bigint": "n"}` and maps `{"#map": [[key, value], ...]}`, as ITF
//! requires.

use crate::fixture::Fixture;
use coherence_model::state::{Listing, State};
use coherence_model::{Action, CoherenceModel};
use serde_json::{Value, json};

/// The ITF variables, in order.
pub const VARS: [&str; 8] = ["action", "auth", "version", "offered", "notice", "in_flight", "turn", "step"];

fn bigint(n: impl Into<i64>) -> Value {
    json!({ "#bigint": n.into().to_string() })
}

fn map(entries: impl IntoIterator<Item = (Value, Value)>) -> Value {
    json!({ "#map": entries.into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>() })
}

/// An action in one word: its name and arguments, `UserAsk(cli, gmail)`.
pub fn action_words(action: &Action) -> String {
    let args = crate::scenario::action_arguments(action);
    format!("{}({})", action.name(), args.join(", "))
}

fn state_value(model: &CoherenceModel, state: &State, action: &str, step: usize) -> Value {
    let b = &model.bounds;
    let per_link =
        |f: &dyn Fn(&State, coherence_model::state::SessionId, coherence_model::state::ConnectorId) -> Value| {
            map(b
                .session_ids()
                .map(|s| (json!(s.name()), map(b.connector_ids().map(|c| (json!(c.name()), f(state, s, c)))))))
        };
    let listing = |l: Option<Listing>| match l {
        None => "none",
        Some(Listing::Stubs) => "stubs",
        Some(Listing::Actions) => "actions",
        Some(Listing::SomeActions) => "some_actions",
        Some(Listing::Withdrawn) => "withdrawn",
    };
    let mut value = serde_json::Map::new();
    value.insert("#meta".to_owned(), json!({ "index": step }));
    value.insert("action".to_owned(), json!(action));
    value.insert(
        "auth".to_owned(),
        map(b
            .connector_ids()
            .map(|c| (json!(c.name()), serde_json::to_value(state.connector(c).auth).expect("serialises")))),
    );
    value.insert(
        "version".to_owned(),
        map(b.connector_ids().map(|c| (json!(c.name()), bigint(state.connector(c).version)))),
    );
    value.insert("offered".to_owned(), per_link(&|st, s, c| json!(listing(st.link(s, c).offered()))));
    value.insert(
        "notice".to_owned(),
        per_link(&|st, s, c| {
            json!(st.link(s, c).notice.map_or("none".to_owned(), |n| {
                let v = serde_json::to_value(n).expect("serialises");
                format!("{}/{}", v["reason"].as_str().unwrap_or(""), v["recovery"].as_str().unwrap_or(""))
            }))
        }),
    );
    value.insert("in_flight".to_owned(), per_link(&|st, s, c| bigint(st.link(s, c).fetch_count() as i64)));
    value.insert(
        "turn".to_owned(),
        map(b.session_ids().map(|s| {
            let t = match state.session(s).turn {
                None => "none",
                Some(t) if t.held => "held",
                Some(_) => "open",
            };
            (json!(s.name()), json!(t))
        })),
    );
    value.insert("step".to_owned(), bigint(step as i64));
    Value::Object(value)
}

/// The model states along `fixture`, under the policy that generated it.
pub fn states(fixture: &Fixture) -> Result<Vec<(String, State)>, String> {
    let model = fixture.model()?;
    let mut state = fixture.initial_state(&model).ok_or("the fixture does not start in an initial state")?;
    let mut out = vec![("init".to_owned(), state)];
    for step in &fixture.steps {
        state = model.step(&state, step.action).ok_or("a step is not a transition")?;
        out.push((action_words(&step.action), state));
    }
    Ok(out)
}

/// The fixture as an ITF trace.
pub fn to_itf(fixture: &Fixture) -> Result<Value, String> {
    let model = fixture.model()?;
    let states: Vec<Value> =
        states(fixture)?.iter().enumerate().map(|(i, (action, state))| state_value(&model, state, action, i)).collect();
    Ok(json!({
        "#meta": {
            "format": "ITF",
            "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
            "source": format!("mcp-coherence fixture {}", fixture.id),
            "description": fixture.description,
        },
        "vars": VARS,
        "states": states,
    }))
}
