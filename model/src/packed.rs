//! A compact encoding of [`State`]: a few 64-bit words holding only the slots in use.
//!
//! The checker keeps its breadth-first frontier in this form and fingerprints it: a state of the
//! default bounds is 5 words (40 bytes) instead of the 291 bytes of [`State`], so the frontier
//! takes a seventh of the memory and hashing touches a few words. [`pack`] and [`unpack`] are
//! inverse for every state whose unused slots hold their defaults (every reachable state: a
//! structural fact the property tests check, together with the round trip).
//!
//! Layout: word 0 holds the shape, the connectors and the budgets spent; word 1 the sessions and
//! the authorization contexts; word 2 the event, the deploys and a mutant's memory; then one word per link, session-major. Every field has a fixed width, wide
//! enough for [`crate::system::BUDGET_MAX`] (budgets take 3 bits; versions take 4, one to spare).

use crate::state::*;

/// Words in the packed form of a state of this shape.
pub fn words(shape: Shape) -> usize {
    3 + usize::from(shape.sessions) * usize::from(shape.connectors)
}

struct Writer<'a> {
    out: &'a mut Vec<u64>,
    word: u64,
    used: u32,
}

impl Writer<'_> {
    fn put(&mut self, value: u64, bits: u32) {
        debug_assert!(value < (1 << bits), "{value} does not fit in {bits} bits");
        debug_assert!(self.used + bits <= 64, "a packed word overflows");
        self.word |= value << self.used;
        self.used += bits;
    }
    fn flag(&mut self, value: bool) {
        self.put(u64::from(value), 1);
    }
    fn end_word(&mut self) {
        self.out.push(self.word);
        self.word = 0;
        self.used = 0;
    }
}

struct Reader<'a> {
    words: &'a [u64],
    at: usize,
    used: u32,
}

impl Reader<'_> {
    fn take(&mut self, bits: u32) -> u64 {
        let value = (self.words[self.at] >> self.used) & ((1 << bits) - 1);
        self.used += bits;
        value
    }
    fn flag(&mut self) -> bool {
        self.take(1) == 1
    }
    fn end_word(&mut self) {
        self.at += 1;
        self.used = 0;
    }
}

fn auth_code(a: Auth) -> u64 {
    match a {
        Auth::Unauthenticated => 0,
        Auth::Authenticated => 1,
        Auth::Expired => 2,
        Auth::Revoked => 3,
    }
}
fn auth_of(v: u64) -> Auth {
    [Auth::Unauthenticated, Auth::Authenticated, Auth::Expired, Auth::Revoked][v as usize]
}
fn notify_code(n: Notify) -> u64 {
    match n {
        Notify::Advertised => 0,
        Notify::Unadvertised => 1,
        Notify::Silent => 2,
    }
}
fn notify_of(v: u64) -> Notify {
    [Notify::Advertised, Notify::Unadvertised, Notify::Silent][v as usize]
}
/// A connector's revision and TTL in 2 bits (a handshake server has no TTL).
fn era_code(revision: Revision, ttl: Ttl) -> u64 {
    match (revision, ttl) {
        (Revision::Handshake, _) => 0,
        (Revision::Stateless, Ttl::Zero) => 1,
        (Revision::Stateless, Ttl::Long) => 2,
    }
}
fn era_of(v: u64) -> (Revision, Ttl) {
    [(Revision::Handshake, Ttl::Zero), (Revision::Stateless, Ttl::Zero), (Revision::Stateless, Ttl::Long)][v as usize]
}
/// Bits of a tool-list version: it grows at every auth change (a silent token refresh is one), so
/// up to [`crate::system::BUDGET_MAX`]; one bit to spare.
const VERSION_BITS: u32 = 4;

/// Bits of a listing.
const LISTING_BITS: u32 = 2;

fn listing_code(l: Listing) -> u64 {
    match l {
        Listing::Stubs => 0,
        Listing::Actions => 1,
        Listing::SomeActions => 2,
        Listing::Withdrawn => 3,
    }
}
fn listing_of(v: u64) -> Listing {
    [Listing::Stubs, Listing::Actions, Listing::SomeActions, Listing::Withdrawn][v as usize]
}
/// Bits of an optional listing: none, or one of the four.
const OPTIONAL_LISTING_BITS: u32 = 3;
fn failure_code(f: ListFailure) -> u64 {
    match f {
        ListFailure::Unauthorized => 0,
        ListFailure::Transport => 1,
        ListFailure::SessionNotFound => 2,
    }
}
fn failure_of(v: u64) -> ListFailure {
    [ListFailure::Unauthorized, ListFailure::Transport, ListFailure::SessionNotFound][v as usize]
}
fn recovery_code(r: Recovery) -> u64 {
    match r {
        Recovery::Restart => 0,
        Recovery::Refresh => 1,
        Recovery::Authenticate => 2,
    }
}
fn recovery_of(v: u64) -> Recovery {
    [Recovery::Restart, Recovery::Refresh, Recovery::Authenticate][v as usize]
}
fn reason_code(r: NoticeReason) -> u64 {
    match r {
        NoticeReason::NeedsAuthentication => 0,
        NoticeReason::ChangedElsewhere => 1,
        NoticeReason::RefreshFailed => 2,
    }
}
fn reason_of(v: u64) -> NoticeReason {
    [NoticeReason::NeedsAuthentication, NoticeReason::ChangedElsewhere, NoticeReason::RefreshFailed][v as usize]
}
fn availability_code(a: Availability) -> u64 {
    match a {
        Availability::Available => 0,
        Availability::Absent => 1,
        Availability::Changed => 2,
    }
}
fn availability_of(v: u64) -> Availability {
    [Availability::Available, Availability::Absent, Availability::Changed][v as usize]
}
fn call_code(c: Call) -> u64 {
    match c {
        Call::Tool => 0,
        Call::Stub => 1,
        Call::Unlisted => 2,
        Call::Nothing => 3,
    }
}
fn call_of(v: u64) -> Call {
    [Call::Tool, Call::Stub, Call::Unlisted, Call::Nothing][v as usize]
}

/// An optional recovery in 2 bits: 0 none, 1 + code.
fn opt_recovery_code(r: Option<Recovery>) -> u64 {
    r.map_or(0, |r| 1 + recovery_code(r))
}
fn opt_recovery_of(v: u64) -> Option<Recovery> {
    (v > 0).then(|| recovery_of(v - 1))
}

/// An answer in 5 bits; an abort names a connector, renamed with the rest.
fn answer_code(a: Answer, rn: &Renaming) -> u64 {
    match a {
        Answer::UsedTool => 0,
        Answer::ToolFailed(r) => 1 + opt_recovery_code(r),
        Answer::StubReplied(StubReply::AuthPrompt) => 5,
        Answer::StubReplied(StubReply::Opaque) => 6,
        Answer::StubReplied(StubReply::Guidance(r)) => 7 + recovery_code(r),
        Answer::NoSuchTool => 10,
        Answer::Misrouted => 11,
        Answer::NotAvailable => 12,
        Answer::RelayedNotice => 13,
        Answer::Aborted(c) => 14 + u64::from(rn.connector(c).0),
    }
}
fn answer_of(v: u64) -> Answer {
    match v {
        0 => Answer::UsedTool,
        1..=4 => Answer::ToolFailed(opt_recovery_of(v - 1)),
        5 => Answer::StubReplied(StubReply::AuthPrompt),
        6 => Answer::StubReplied(StubReply::Opaque),
        7..=9 => Answer::StubReplied(StubReply::Guidance(recovery_of(v - 7))),
        10 => Answer::NoSuchTool,
        11 => Answer::Misrouted,
        12 => Answer::NotAvailable,
        13 => Answer::RelayedNotice,
        _ => Answer::Aborted(ConnectorId((v - 14) as u8)),
    }
}

/// An optional entry in 7 bits.
fn put_entry(w: &mut Writer, e: Option<Entry>) {
    w.flag(e.is_some());
    let e = e.unwrap_or(Entry { listing: Listing::Stubs, version: 0 });
    w.put(listing_code(e.listing), LISTING_BITS);
    w.put(u64::from(e.version), VERSION_BITS);
}
fn take_entry(r: &mut Reader) -> Option<Entry> {
    let some = r.flag();
    let listing = listing_of(r.take(LISTING_BITS));
    let version = r.take(VERSION_BITS) as u8;
    some.then_some(Entry { listing, version })
}

/// An optional notice in 5 bits.
fn put_notice(w: &mut Writer, n: Option<Notice>) {
    w.flag(n.is_some());
    let n = n.unwrap_or(Notice { reason: NoticeReason::NeedsAuthentication, recovery: Recovery::Restart });
    w.put(reason_code(n.reason), 2);
    w.put(recovery_code(n.recovery), 2);
}
fn take_notice(r: &mut Reader) -> Option<Notice> {
    let some = r.flag();
    let reason = reason_of(r.take(2));
    let recovery = recovery_of(r.take(2));
    some.then_some(Notice { reason, recovery })
}

/// An optional fetch in 10 bits: presence, superseded, kind (listed, failed, hung, lost), then
/// the listing and version, or the failure.
fn put_fetch(w: &mut Writer, f: Option<Fetch>) {
    w.flag(f.is_some());
    let Some(f) = f else {
        w.put(0, 3 + LISTING_BITS + VERSION_BITS);
        return;
    };
    w.flag(f.superseded);
    match f.reply {
        Reply::Listed { listing, version } => {
            w.put(0, 2);
            w.put(listing_code(listing), LISTING_BITS);
            w.put(u64::from(version), VERSION_BITS);
        }
        Reply::Failed(failure) => {
            w.put(1, 2);
            w.put(failure_code(failure), LISTING_BITS + VERSION_BITS);
        }
        Reply::Hung => {
            w.put(2, 2);
            w.put(0, LISTING_BITS + VERSION_BITS);
        }
        Reply::Lost => {
            w.put(3, 2);
            w.put(0, LISTING_BITS + VERSION_BITS);
        }
    }
}
fn take_fetch(r: &mut Reader) -> Option<Fetch> {
    let some = r.flag();
    let superseded = r.flag();
    let kind = r.take(2);
    let rest = r.take(LISTING_BITS + VERSION_BITS);
    if !some {
        return None;
    }
    let reply = match kind {
        0 => Reply::Listed { listing: listing_of(rest & 0b11), version: (rest >> LISTING_BITS) as u8 },
        1 => Reply::Failed(failure_of(rest)),
        2 => Reply::Hung,
        _ => Reply::Lost,
    };
    Some(Fetch { reply, superseded })
}

fn put_link(w: &mut Writer, l: &Link) {
    put_entry(w, l.entry);
    put_notice(w, l.notice);
    for f in l.fetches {
        put_fetch(w, f);
    }
    w.flag(l.refetch_queued);
    w.put(u64::from(l.notifications), 2);
    w.flag(l.transport_lost);
    w.flag(l.triggered);
    w.flag(l.following);
    w.flag(l.due);
    w.flag(l.evidence);
    w.flag(l.failed);
    put_entry(w, l.newest);
    w.flag(l.lazy);
    w.flag(l.listening);
    w.flag(l.fresh);
    w.flag(l.shared);
    w.flag(l.foreign);
}
fn take_link(r: &mut Reader) -> Link {
    let entry = take_entry(r);
    let notice = take_notice(r);
    let mut fetches = [None; FETCHES_IN_FLIGHT_MAX];
    for f in &mut fetches {
        *f = take_fetch(r);
    }
    Link {
        entry,
        notice,
        fetches,
        refetch_queued: r.flag(),
        notifications: r.take(2) as u8,
        transport_lost: r.flag(),
        triggered: r.flag(),
        following: r.flag(),
        due: r.flag(),
        evidence: r.flag(),
        failed: r.flag(),
        newest: take_entry(r),
        lazy: r.flag(),
        listening: r.flag(),
        fresh: r.flag(),
        shared: r.flag(),
        foreign: r.flag(),
    }
}

/// A renaming: `c[old]` is the new index of connector `old`, `s[old]` of session `old`; `ci` and
/// `si` are the inverses.
struct Renaming {
    c: [u8; CONNECTORS_MAX],
    ci: [u8; CONNECTORS_MAX],
    s: [u8; SESSIONS_MAX],
    si: [u8; SESSIONS_MAX],
}

impl Renaming {
    fn new(to_connector: &[u8], to_session: &[u8]) -> Renaming {
        let mut r = Renaming { c: [0, 1, 2, 3], ci: [0, 1, 2, 3], s: [0, 1, 2], si: [0, 1, 2] };
        for (old, &new) in to_connector.iter().enumerate() {
            r.c[old] = new;
            r.ci[usize::from(new)] = old as u8;
        }
        for (old, &new) in to_session.iter().enumerate() {
            r.s[old] = new;
            r.si[usize::from(new)] = old as u8;
        }
        r
    }
    fn connector(&self, c: ConnectorId) -> ConnectorId {
        ConnectorId(self.c[c.index()])
    }
    fn session(&self, s: SessionId) -> SessionId {
        SessionId(self.s[s.index()])
    }
}

fn put_session(w: &mut Writer, s: &Session, rn: &Renaming) {
    w.flag(s.turn.is_some());
    let t = s.turn.unwrap_or(Turn {
        connector: ConnectorId(0),
        held: false,
        retried: false,
        availability: Availability::Available,
        unsignalled: false,
    });
    w.put(if s.turn.is_some() { u64::from(rn.connector(t.connector).0) } else { 0 }, 2);
    w.flag(t.held);
    w.flag(t.retried);
    w.put(availability_code(t.availability), 2);
    w.flag(t.unsignalled);
    match s.read {
        None => w.put(0, 2),
        Some(AccountRead::Failed) => w.put(1, 2),
        Some(AccountRead::Served(_)) => w.put(2, 2),
    }
    let mask = match s.read {
        Some(AccountRead::Served(old)) => {
            (0..CONNECTORS_MAX).filter(|&c| old & (1 << c) != 0).fold(0u8, |m, c| m | 1 << rn.c[c])
        }
        _ => 0,
    };
    w.put(u64::from(mask), CONNECTORS_MAX as u32);
}
fn take_session(r: &mut Reader) -> Session {
    let some = r.flag();
    let turn = Turn {
        connector: ConnectorId(r.take(2) as u8),
        held: r.flag(),
        retried: r.flag(),
        availability: availability_of(r.take(2)),
        unsignalled: r.flag(),
    };
    let kind = r.take(2);
    let mask = r.take(CONNECTORS_MAX as u32) as u8;
    let read = match kind {
        0 => None,
        1 => Some(AccountRead::Failed),
        _ => Some(AccountRead::Served(mask)),
    };
    Session { turn: some.then_some(turn), read }
}

fn put_event(w: &mut Writer, e: Option<Event>, rn: &Renaming) {
    match e {
        None => w.put(0, 2),
        Some(Event::Answered(m)) => {
            w.put(1, 2);
            w.put(u64::from(rn.session(m.session).0), 2);
            w.put(u64::from(rn.connector(m.connector).0), 2);
            w.put(call_code(m.call), 2);
            w.put(availability_code(m.availability), 2);
            w.flag(m.signalled);
            w.flag(m.listed);
            w.flag(m.due);
            w.put(m.offered.map_or(0, |l| 1 + listing_code(l)), OPTIONAL_LISTING_BITS);
            put_notice(w, m.notice);
            w.put(answer_code(m.answer, rn), 5);
        }
        Some(Event::Applied(a)) => {
            w.put(2, 2);
            w.put(u64::from(rn.session(a.session).0), 2);
            w.put(u64::from(rn.connector(a.connector).0), 2);
            w.put(a.before.map_or(0, |l| 1 + listing_code(l)), OPTIONAL_LISTING_BITS);
            put_entry(w, Some(a.reply));
            put_entry(w, a.newest);
            w.put(u64::from(a.server), VERSION_BITS);
        }
        Some(Event::StubRefreshed { session, connector, availability }) => {
            w.put(3, 2);
            w.put(u64::from(rn.session(session).0), 2);
            w.put(u64::from(rn.connector(connector).0), 2);
            w.put(availability_code(availability), 2);
        }
    }
}
fn take_event(r: &mut Reader) -> Option<Event> {
    let opt_listing = |v: u64| (v > 0).then(|| listing_of(v - 1));
    match r.take(2) {
        0 => None,
        1 => Some(Event::Answered(Moment {
            session: SessionId(r.take(2) as u8),
            connector: ConnectorId(r.take(2) as u8),
            call: call_of(r.take(2)),
            availability: availability_of(r.take(2)),
            signalled: r.flag(),
            listed: r.flag(),
            due: r.flag(),
            offered: opt_listing(r.take(OPTIONAL_LISTING_BITS)),
            notice: take_notice(r),
            answer: answer_of(r.take(5)),
        })),
        2 => Some(Event::Applied(Applied {
            session: SessionId(r.take(2) as u8),
            connector: ConnectorId(r.take(2) as u8),
            before: opt_listing(r.take(OPTIONAL_LISTING_BITS)),
            reply: take_entry(r).expect("an applied reply is present"),
            newest: take_entry(r),
            server: r.take(VERSION_BITS) as u8,
        })),
        _ => Some(Event::StubRefreshed {
            session: SessionId(r.take(2) as u8),
            connector: ConnectorId(r.take(2) as u8),
            availability: availability_of(r.take(2)),
        }),
    }
}

/// Where the deploys start in the event's word: past the longest event.
const DEPLOYS_AT: u32 = 32;

/// What deploys withdrew, in the event's word at a fixed place (all zero without deploys): each
/// connector's `withdrawn`, then each session's account read's withdrawn bits.
fn put_deploys(w: &mut Writer, state: &State, rn: &Renaming) {
    w.put(0, DEPLOYS_AT - w.used);
    for &old in &rn.ci {
        w.flag(state.connectors[usize::from(old)].withdrawn);
    }
    for &old in &rn.si {
        let withdrawn = match state.sessions[usize::from(old)].read.map(|read| read.renamed(&rn.c)) {
            Some(AccountRead::Served(mask)) => mask >> CONNECTORS_MAX,
            _ => 0,
        };
        w.put(u64::from(withdrawn), CONNECTORS_MAX as u32);
    }
}
fn take_deploys(r: &mut Reader, state: &mut State) {
    r.used = DEPLOYS_AT;
    for c in &mut state.connectors {
        c.withdrawn = r.flag();
    }
    for s in &mut state.sessions {
        let withdrawn = r.take(CONNECTORS_MAX as u32) as u8;
        if let Some(AccountRead::Served(mask)) = &mut s.read {
            *mask |= withdrawn << CONNECTORS_MAX;
        }
    }
}

/// Where a mutant's memory starts in the event's word: past the deploys (4 bits for the
/// connectors, 4 for each session's read).
const MEMO_AT: u32 = DEPLOYS_AT + (CONNECTORS_MAX * (1 + SESSIONS_MAX)) as u32;
/// Bits of [`Memo::taken`].
const TAKEN_BITS: u32 = 2;
const _: () = assert!(Memo::CAP < 1 << TAKEN_BITS && MEMO_AT + TAKEN_BITS + LATE_BITS <= 64);
const LATE_BITS: u32 = (SESSIONS_MAX * CONNECTORS_MAX) as u32;

/// A host mutant's memory, in the event's word after the deploys (all zero for a policy).
fn put_memo(w: &mut Writer, memo: Memo, rn: &Renaming) {
    w.put(0, MEMO_AT - w.used);
    w.put(u64::from(memo.taken), TAKEN_BITS);
    let late = Memo::links(memo.late).fold(0, |late, (s, c)| late | Memo::bit(rn.session(s), rn.connector(c)));
    w.put(u64::from(late), LATE_BITS);
}
fn take_memo(r: &mut Reader) -> Memo {
    r.used = MEMO_AT;
    Memo { taken: r.take(TAKEN_BITS) as u8, late: r.take(LATE_BITS) as u16 }
}

/// Appends the packed form of `state` to `out`: [`words`] words.
pub fn pack(state: &State, out: &mut Vec<u64>) {
    pack_renamed(state, &[], &[], out);
}

/// Appends the packed form of `state` with connector `c` renamed to `to_connector[c]` and session
/// `s` to `to_session[s]` (slots beyond the slices keep their index): the renaming is packed
/// directly, without building the renamed state.
pub fn pack_renamed(state: &State, to_connector: &[u8], to_session: &[u8], out: &mut Vec<u64>) {
    let rn = Renaming::new(to_connector, to_session);
    let (n, m) = (usize::from(state.shape.connectors), usize::from(state.shape.sessions));
    let mut w = Writer { out, word: 0, used: 0 };
    put_head(&mut w, state, &rn);
    w.end_word();
    for &old in &rn.si {
        put_session(&mut w, &state.sessions[usize::from(old)], &rn);
    }
    put_contexts(&mut w, state, &rn);
    w.end_word();
    put_event(&mut w, state.event, &rn);
    put_deploys(&mut w, state, &rn);
    put_memo(&mut w, state.memo, &rn);
    w.end_word();
    for &s in &rn.si[..m] {
        for &c in &rn.ci[..n] {
            put_link(&mut w, &state.links[usize::from(s)][usize::from(c)]);
            w.end_word();
        }
    }
}

/// The first packed word of `state` with connector `c` renamed to `to_connector[c]`: the shape,
/// the connectors and the budgets spent (renaming sessions leaves it alone). A renaming whose
/// first word is greater than another's packs greater, whatever follows.
pub fn head_renamed(state: &State, to_connector: &[u8]) -> u64 {
    // The head fills one word and never ends it, so nothing is written to `out` (no allocation).
    let mut out = Vec::new();
    let mut w = Writer { out: &mut out, word: 0, used: 0 };
    put_head(&mut w, state, &Renaming::new(to_connector, &[]));
    w.word
}

fn put_head(w: &mut Writer, state: &State, rn: &Renaming) {
    w.put(u64::from(state.shape.connectors), 3);
    w.put(u64::from(state.shape.sessions), 2);
    for &old in &rn.ci {
        let c = &state.connectors[usize::from(old)];
        w.put(auth_code(c.auth), 2);
        w.put(u64::from(c.version), VERSION_BITS);
        w.put(notify_code(c.notify), 2);
        w.flag(c.announced);
        w.put(era_code(c.revision, c.ttl), 2);
    }
    let spent = state.spent;
    for budget in [spent.turns, spent.auth_changes, spent.faults, spent.commands] {
        w.put(u64::from(budget), 3);
    }
}

/// The authorization contexts, after the sessions: whether there are two, then each connector's
/// second-context authorization and cache scope (2 bits a connector).
fn put_contexts(w: &mut Writer, state: &State, rn: &Renaming) {
    w.flag(state.shape.contexts == Contexts::Two);
    for &old in &rn.ci {
        let c = &state.connectors[usize::from(old)];
        debug_assert!(matches!(c.other, Auth::Unauthenticated | Auth::Authenticated), "a fixed authorization");
        w.flag(c.other == Auth::Authenticated);
        w.flag(c.scope == CacheScope::Public);
    }
}
fn take_contexts(r: &mut Reader, state: &mut State) {
    state.shape.contexts = if r.flag() { Contexts::Two } else { Contexts::One };
    for c in &mut state.connectors {
        c.other = if r.flag() { Auth::Authenticated } else { Auth::Unauthenticated };
        c.scope = if r.flag() { CacheScope::Public } else { CacheScope::Private };
    }
}

/// The state `words` (from [`pack`]) encode.
pub fn unpack(words: &[u64]) -> State {
    let mut r = Reader { words, at: 0, used: 0 };
    let shape = Shape { connectors: r.take(3) as u8, sessions: r.take(2) as u8, contexts: Contexts::One };
    let mut state = State { shape, ..State::default() };
    for c in &mut state.connectors {
        *c = Connector {
            auth: auth_of(r.take(2)),
            version: r.take(VERSION_BITS) as u8,
            notify: notify_of(r.take(2)),
            announced: r.flag(),
            revision: Revision::Handshake,
            ttl: Ttl::Zero,
            ..Connector::default()
        };
        (c.revision, c.ttl) = era_of(r.take(2));
    }
    state.spent = Spent {
        turns: r.take(3) as u8,
        auth_changes: r.take(3) as u8,
        faults: r.take(3) as u8,
        commands: r.take(3) as u8,
    };
    r.end_word();
    for s in &mut state.sessions {
        *s = take_session(&mut r);
    }
    take_contexts(&mut r, &mut state);
    r.end_word();
    state.event = take_event(&mut r);
    take_deploys(&mut r, &mut state);
    state.memo = take_memo(&mut r);
    r.end_word();
    for s in 0..usize::from(shape.sessions) {
        for c in 0..usize::from(shape.connectors) {
            state.links[s][c] = take_link(&mut r);
            r.end_word();
        }
    }
    state
}
