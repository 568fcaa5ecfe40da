//! The ITF export reads back, through the `itf` crate, as the model states it was written from.

use std::collections::BTreeMap;

#[derive(serde::Deserialize, Debug, PartialEq)]
struct ItfState {
    action: String,
    auth: BTreeMap<String, String>,
    version: BTreeMap<String, i64>,
    offered: BTreeMap<String, BTreeMap<String, String>>,
    notice: BTreeMap<String, BTreeMap<String, String>>,
    in_flight: BTreeMap<String, BTreeMap<String, i64>>,
    turn: BTreeMap<String, String>,
    step: i64,
}

#[test]
fn itf_traces_read_back_as_the_model_states() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let fixtures = coherence::conform::read_fixtures(&dir).unwrap();
    let mut checked = 0;
    for fixture in fixtures.iter().filter(|f| f.provenance.strategy != "coverage" || f.id.ends_with('0')) {
        let value = coherence_sim::itf::to_itf(fixture).unwrap();
        let trace: itf::Trace<ItfState> =
            itf::trace_from_value(value).unwrap_or_else(|e| panic!("{}: {e}", fixture.id));
        let states = coherence_sim::itf::states(fixture).unwrap();
        assert_eq!(trace.vars, coherence_sim::itf::VARS.map(str::to_owned).to_vec());
        assert_eq!(trace.states.len(), fixture.steps.len() + 1);
        for (i, (itf_state, (action, state))) in trace.states.iter().zip(&states).enumerate() {
            let v = &itf_state.value;
            assert_eq!(v.step, i as i64);
            assert_eq!(&v.action, action);
            for c in fixture.bounds.connector_ids() {
                assert_eq!(v.version[c.name()], i64::from(state.connector(c).version));
                assert_eq!(v.auth[c.name()], serde_json::to_value(state.connector(c).auth).unwrap().as_str().unwrap());
                for s in fixture.bounds.session_ids() {
                    assert_eq!(v.in_flight[s.name()][c.name()], state.link(s, c).fetch_count() as i64);
                    let offered = state
                        .link(s, c)
                        .offered()
                        .map_or("none".to_owned(), |l| serde_json::to_value(l).unwrap().as_str().unwrap().to_owned());
                    assert_eq!(v.offered[s.name()][c.name()], offered);
                    assert_eq!(v.notice[s.name()][c.name()] == "none", state.link(s, c).notice.is_none());
                }
            }
            for s in fixture.bounds.session_ids() {
                assert_eq!(v.turn[s.name()] == "none", state.session(s).turn.is_none());
            }
        }
        checked += 1;
    }
    assert!(checked > 100);
    assert_eq!(
        coherence_sim::itf::action_words(&coherence_model::Action::UserAsk {
            session: coherence_model::state::SessionId(0),
            connector: coherence_model::state::ConnectorId(1),
        }),
        "UserAsk(cli, calendar)"
    );
}
