//! Symmetry reduction: connectors are interchangeable, and so are sessions (SPEC.md §4.2).
//!
//! Every policy treats connectors alike and sessions alike, the initial states are closed under
//! renaming either, and every invariant quantifies over all of them; so a state and any renaming
//! of it satisfy the same properties and have renamed successors. The representative of a state
//! is the least renaming of it in the derived order of [`State`]: a canonical form, so the same
//! orbit always maps to the same representative, whatever order the states are met in.
//!
//! With two authorization contexts (SPEC.md §2.6), `cli` is the first context's only session, so
//! only renamings that keep it are used: the other sessions are interchangeable among themselves.

use crate::state::*;
use stateright::Representative;

/// The permutations of `0..n`, in lexicographic order.
fn permutations(n: usize) -> Vec<Vec<u8>> {
    fn extend(prefix: &mut Vec<u8>, n: usize, out: &mut Vec<Vec<u8>>) {
        if prefix.len() == n {
            out.push(prefix.clone());
            return;
        }
        for i in 0..n as u8 {
            if !prefix.contains(&i) {
                prefix.push(i);
                extend(prefix, n, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    extend(&mut Vec::new(), n, &mut out);
    out
}

#[cfg(test)]
/// `state` with connector `c` renamed to `to_connector[c]` and session `s` to `to_session[s]`.
fn renamed(state: &State, to_connector: &[u8], to_session: &[u8]) -> State {
    let c_new = |c: ConnectorId| ConnectorId(to_connector[c.index()]);
    let s_new = |s: SessionId| SessionId(to_session[s.index()]);
    let mut next = *state;
    for (c, &nc) in to_connector.iter().enumerate() {
        next.connectors[usize::from(nc)] = state.connectors[c];
    }
    for (s, &ns) in to_session.iter().enumerate() {
        let mut session = state.sessions[s];
        if let Some(turn) = &mut session.turn {
            turn.connector = c_new(turn.connector);
        }
        session.read = session.read.map(|read| read.renamed(to_connector));
        next.sessions[usize::from(ns)] = session;
        for (c, &nc) in to_connector.iter().enumerate() {
            next.links[usize::from(ns)][usize::from(nc)] = state.links[s][c];
        }
    }
    next.event = state.event.map(|event| match event {
        Event::Answered(m) => {
            let answer = match m.answer {
                Answer::Aborted(named) => Answer::Aborted(c_new(named)),
                answer => answer,
            };
            Event::Answered(Moment { session: s_new(m.session), connector: c_new(m.connector), answer, ..m })
        }
        Event::Applied(a) => Event::Applied(Applied { session: s_new(a.session), connector: c_new(a.connector), ..a }),
        Event::StubRefreshed { session, connector, availability } => {
            Event::StubRefreshed { session: s_new(session), connector: c_new(connector), availability }
        }
    });
    next.memo.late = Memo::links(state.memo.late).fold(0, |late, (s, c)| late | Memo::bit(s_new(s), c_new(c)));
    next
}

/// The permutations of `0..n` for every n a shape can have.
fn all_permutations() -> &'static [Vec<Vec<u8>>] {
    static PERMUTATIONS: std::sync::OnceLock<Vec<Vec<Vec<u8>>>> = std::sync::OnceLock::new();
    PERMUTATIONS.get_or_init(|| (0..=CONNECTORS_MAX.max(SESSIONS_MAX)).map(permutations).collect())
}

/// Appends to `out` the packed form ([`crate::packed`]) of the canonical member of `state`'s orbit
/// under renaming connectors and sessions: the renaming whose packed words are least. Each
/// renaming is packed directly; no renamed state is built, and a renaming whose first word
/// already exceeds the least so far is not packed further.
pub fn canonical_packed(state: &State, out: &mut Vec<u64>) {
    let n = usize::from(state.shape.connectors);
    let m = usize::from(state.shape.sessions);
    let perms = all_permutations();
    let start = out.len();
    crate::packed::pack(state, out);
    let width = out.len() - start;
    let mut candidate = Vec::with_capacity(width);
    // The first permutations are the identity; `out` holds it already.
    for (i, cp) in perms[n].iter().enumerate() {
        if crate::packed::head_renamed(state, cp) > out[start] {
            continue;
        }
        for (j, sp) in perms[m].iter().enumerate() {
            // With two authorization contexts, `cli` is the only session of the first: renaming
            // it would change whose account a session uses.
            if (i == 0 && j == 0) || (state.shape.contexts == Contexts::Two && sp[0] != 0) {
                continue;
            }
            candidate.clear();
            crate::packed::pack_renamed(state, cp, sp, &mut candidate);
            if candidate[..] < out[start..] {
                out[start..].copy_from_slice(&candidate);
            }
        }
    }
}

/// The canonical member of `state`'s orbit under renaming connectors and sessions.
pub fn canonical(state: &State) -> State {
    let mut words = Vec::new();
    canonical_packed(state, &mut words);
    crate::packed::unpack(&words)
}

impl Representative for State {
    fn representative(&self) -> Self {
        canonical(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_complete_and_ordered() {
        assert_eq!(
            permutations(3),
            vec![vec![0, 1, 2], vec![0, 2, 1], vec![1, 0, 2], vec![1, 2, 0], vec![2, 0, 1], vec![2, 1, 0]]
        );
    }

    #[test]
    fn canonical_is_the_same_for_every_renaming() {
        let mut state =
            State { shape: Shape { connectors: 3, sessions: 2, contexts: Contexts::One }, ..State::default() };
        state.connectors[0].auth = Auth::Authenticated;
        state.connectors[2].notify = Notify::Silent;
        state.links[1][2].notifications = 1;
        state.sessions[1].turn = Some(Turn {
            connector: ConnectorId(2),
            held: false,
            retried: false,
            availability: Availability::Absent,
            unsignalled: false,
        });
        let expected = canonical(&state);
        for cp in permutations(3) {
            for sp in permutations(2) {
                assert_eq!(canonical(&renamed(&state, &cp, &sp)), expected);
            }
        }
    }
}

#[cfg(test)]
mod packed_tests {
    use super::*;
    use crate::{BROKEN_POLICIES, Bounds, CoherenceModel, POLICIES};

    /// Packing a renaming directly is packing the renamed state, for states of every policy (an
    /// abort names a connector, which only some policies reach), with and without deploys, and of
    /// the host mutants with memory (the re-lists a late one has yet to send name links).
    #[test]
    fn packing_a_renaming_is_renaming_then_packing() {
        use crate::Mutant;
        use crate::system::Fault;
        let base = Bounds { connectors: 3, sessions: 2, ..Bounds::DEFAULT };
        let both = Bounds { revisions: crate::system::Revisions::Stateless, ..base };
        let deploys = Bounds { faults: 3, ..base };
        let cases = |p| [(p, base, false, None), (p, both, false, None), (p, deploys, true, None)];
        let remembering = Mutant::all().into_iter().filter(|m| m.operator.remembers());
        let mutants = remembering.map(|m| (&crate::RECOMMENDED, base, false, Some(m)));
        let (mut late, mut capped) = (0, 0);
        for (policy, bounds, deploy, mutant) in POLICIES.iter().chain(BROKEN_POLICIES).flat_map(cases).chain(mutants) {
            let mut model = CoherenceModel { mutant, ..CoherenceModel::new(*policy, bounds) };
            if deploy {
                model.faults = model.faults.with(Fault::DeployTools);
            }
            let mut state = model.initial_states()[5];
            let mut actions = Vec::new();
            let mut seed = 12345u64;
            for _ in 0..1000 {
                actions.clear();
                model.enabled_actions(&state, &mut actions);
                if actions.is_empty() {
                    state = model.initial_states()[(seed % 7) as usize];
                    continue;
                }
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                state = model.step(&state, actions[(seed >> 33) as usize % actions.len()]).unwrap();
                late += usize::from(state.memo.late != 0);
                capped += usize::from(state.memo.taken != 0);
                for cp in permutations(3) {
                    for sp in permutations(2) {
                        let mut a = Vec::new();
                        crate::packed::pack_renamed(&state, &cp, &sp, &mut a);
                        let mut b = Vec::new();
                        crate::packed::pack(&renamed(&state, &cp, &sp), &mut b);
                        assert_eq!(a, b, "{}: {state:?} {cp:?} {sp:?}", policy.name);
                        assert_eq!(crate::packed::unpack(&b), renamed(&state, &cp, &sp));
                    }
                }
            }
        }
        assert!(late > 0 && capped > 0, "the walks reach a mutant's memory: {late} late, {capped} capped");
    }
}

#[cfg(test)]
mod commutation_tests {
    use super::*;
    use crate::system::{Revisions, Servers};
    use crate::{Action, BROKEN_POLICIES, Bounds, CoherenceModel, POLICIES};
    use std::collections::BTreeSet;

    /// `action` with its session and connector renamed through their names in its JSON form:
    /// written apart from [`renamed`], which it checks.
    fn renamed_action(action: Action, to_connector: &[u8], to_session: &[u8]) -> Action {
        let mut json = serde_json::to_value(action).expect("serialisable");
        let fields = json.as_object_mut().expect("an action is an object");
        if let Some(name) = fields.get_mut("connector") {
            let c = ConnectorId::named(name.as_str().expect("a name")).expect("a connector");
            *name = ConnectorId(to_connector[c.index()]).name().into();
        }
        if let Some(name) = fields.get_mut("session") {
            let s = SessionId::named(name.as_str().expect("a name")).expect("a session");
            *name = SessionId(to_session[s.index()]).name().into();
        }
        serde_json::from_value(json).expect("a renamed action is an action")
    }

    /// Renaming connectors and sessions is a symmetry of the model, which is what the reduction
    /// assumes: the renamed state enables exactly the renamed actions, and each renamed action
    /// leads to the renamed successor. Checked along seeded random walks of every policy.
    #[test]
    fn renaming_commutes_with_every_step() {
        let (cps, sps) = (permutations(3), permutations(2));
        let base = Bounds { connectors: 3, sessions: 2, ..Bounds::DEFAULT };
        let both = Bounds { revisions: Revisions::Stateless, ..base };
        let reliable = Bounds { servers: Servers::Reliable, ..both };
        for (policy, bounds) in
            POLICIES.iter().chain(BROKEN_POLICIES).flat_map(|p| [(p, base), (p, both), (p, reliable)])
        {
            commutes(policy, bounds, &cps, &sps);
        }
        // Two authorization contexts: `cli` stays; the second user's two sessions swap.
        let contexts = Bounds { connectors: 2, sessions: 3, contexts: Contexts::Two, ..both };
        let keep_cli: Vec<Vec<u8>> = permutations(3).into_iter().filter(|p| p[0] == 0).collect();
        for policy in POLICIES.iter().chain(BROKEN_POLICIES) {
            commutes(policy, contexts, &permutations(2), &keep_cli);
        }
    }

    /// Renaming by every `cps` × `sps` commutes with every step of a walk of `policy`.
    fn commutes(policy: &crate::HostPolicy, bounds: Bounds, cps: &[Vec<u8>], sps: &[Vec<u8>]) {
        {
            let model = CoherenceModel::new(*policy, bounds);
            let inits = model.initial_states();
            let mut state = inits[0];
            let mut seed = 0x5eed_u64;
            let (mut actions, mut theirs) = (Vec::new(), Vec::new());
            for _ in 0..400 {
                actions.clear();
                model.enabled_actions(&state, &mut actions);
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if actions.is_empty() {
                    state = inits[(seed >> 33) as usize % inits.len()];
                    continue;
                }
                for cp in cps {
                    for sp in sps {
                        let image = renamed(&state, cp, sp);
                        theirs.clear();
                        model.enabled_actions(&image, &mut theirs);
                        let ours: BTreeSet<Action> = actions.iter().map(|&a| renamed_action(a, cp, sp)).collect();
                        assert_eq!(ours, theirs.iter().copied().collect(), "{}: {state:?} {cp:?} {sp:?}", policy.name);
                        for &a in &actions {
                            assert_eq!(
                                model.step(&image, renamed_action(a, cp, sp)),
                                model.step(&state, a).map(|s| renamed(&s, cp, sp)),
                                "{}: {a:?} from {state:?} under {cp:?} {sp:?}",
                                policy.name
                            );
                        }
                    }
                }
                state = model.step(&state, actions[(seed >> 33) as usize % actions.len()]).expect("enabled");
            }
        }
    }
}
