//! Which way each message goes out, and with which DKIM key it is signed: the sending accounts
//! (weights, per-account rate and daily limits, a connection pool each, fall-over) and the
//! stored signing keys, both read from the store by the dispatcher while it runs.
//!
//! - **Choice**: an account is picked by weight with a roll derived from the message id
//!   ([`roll`], [`pick_weighted`]), so the choice is random across messages, the same for every
//!   attempt at one message, and predictable in tests. The other accounts follow, heaviest
//!   first, as fall-overs.
//! - **Rate**: a token bucket per account and per node, refilled by the [`Clock`], holding at
//!   most one second of tokens (at least one). The dispatcher claims no more messages than the
//!   buckets allow, so a throttled message stays queued instead of counting an attempt.
//! - **Daily limit**: messages sent per account since midnight UTC, counted from the send
//!   ledger (`smtp_account_id` on each sent message) when an account is first seen, when the
//!   day changes and every [`LEDGER_RESYNC`], and in memory in between. Other nodes' sends are
//!   seen at the next re-sync, so several nodes together may overshoot by what they send in
//!   that interval.
//! - **Changes**: accounts and keys are read again on every pass of the dispatcher (two small
//!   tables); an account whose settings changed gets a new connection pool and bucket, a key
//!   is parsed again only when its row changed.
//!
//! [`Clock`]: nudge_engine::Clock

use crate::dkim::DkimKey;
use crate::transport::{SmtpRelay, SmtpSettings, TlsMode, Transport};
use jiff::{SignedDuration, Timestamp};
use nudge_core::{Email, SmtpAccountSettings, SmtpTls};
use nudge_store::{DkimKeyRecord, SmtpAccount};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How often the daily counts are read again from the ledger, to see other nodes' sends.
pub const LEDGER_RESYNC: Duration = Duration::from_secs(30);
/// How long an account that could not be reached is tried only after the others.
pub const DOWN_FOR: SignedDuration = SignedDuration::from_secs(30);

/// How connections to sending accounts are made.
#[derive(Debug, Clone)]
pub struct SmtpDefaults {
    /// The name given in EHLO.
    pub helo: String,
    pub timeout: Duration,
    /// Connections kept open per account between messages.
    pub pool_size: usize,
}

impl Default for SmtpDefaults {
    fn default() -> Self {
        Self {
            helo: "localhost".into(),
            timeout: Duration::from_secs(30),
            pool_size: 4,
        }
    }
}

/// The roll that picks a message's account: the random bits of its UUIDv7 (the 62 bits after
/// the variant), so it is spread evenly and the same on every attempt.
pub fn roll(message_id: Uuid) -> u64 {
    let bytes = message_id.as_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..16]);
    u64::from_be_bytes(low) & ((1 << 62) - 1)
}

/// The index of the weight that `roll` lands on when the weights are laid end to end; `None`
/// when they add up to nothing.
pub fn pick_weighted(roll: u64, weights: &[u32]) -> Option<usize> {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let mut point = roll % total;
    for (i, w) in weights.iter().enumerate() {
        let w = u64::from(*w);
        if point < w {
            return Some(i);
        }
        point -= w;
    }
    None
}

/// A token bucket driven by the dispatcher's clock, so tests move it without sleeping.
#[derive(Debug, Clone)]
struct Bucket {
    /// Tokens per second; 0 means no limit.
    rate: f64,
    tokens: f64,
    at: Timestamp,
}

impl Bucket {
    fn new(rate: f64, now: Timestamp) -> Self {
        Self {
            rate,
            tokens: Self::capacity_of(rate),
            at: now,
        }
    }

    /// One second's worth, and at least one token, so a rate below 1/s still sends.
    fn capacity_of(rate: f64) -> f64 {
        rate.max(1.0)
    }

    fn refill(&mut self, now: Timestamp) {
        if now <= self.at {
            return;
        }
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(Self::capacity_of(self.rate));
        self.at = now;
    }

    /// Whole tokens available now; `None` without a limit.
    fn available(&mut self, now: Timestamp) -> Option<u64> {
        if self.rate <= 0.0 {
            return None;
        }
        self.refill(now);
        // Truncation is the point: only whole tokens send a message.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(self.tokens.max(0.0).floor() as u64)
    }

    fn take(&mut self, now: Timestamp) -> bool {
        match self.available(now) {
            None => true,
            Some(0) => false,
            Some(_) => {
                self.tokens -= 1.0;
                true
            }
        }
    }

    /// When the next whole token is there.
    fn next_token(&self) -> Timestamp {
        if self.rate <= 0.0 || self.tokens >= 1.0 {
            return self.at;
        }
        let wait = (1.0 - self.tokens) / self.rate;
        self.at
            .checked_add(SignedDuration::from_secs_f64(wait))
            .unwrap_or(self.at)
    }
}

struct AccountState {
    account: SmtpAccount,
    relay: Arc<SmtpRelay>,
    bucket: Bucket,
    /// Messages sent since midnight UTC of `Routes::day`, and those being handed over now.
    sent_today: u64,
    down_until: Option<Timestamp>,
}

impl AccountState {
    fn new(account: SmtpAccount, defaults: &SmtpDefaults, now: Timestamp) -> Self {
        let relay = Arc::new(SmtpRelay::new(relay_settings(&account.settings, defaults)));
        let bucket = Bucket::new(account.settings.rate_per_second, now);
        Self {
            account,
            relay,
            bucket,
            sent_today: 0,
            down_until: None,
        }
    }

    /// Messages it may take now; `None` without any limit.
    fn capacity(&mut self, now: Timestamp) -> Option<u64> {
        let daily = match self.account.settings.daily_limit {
            0 => None,
            limit => Some(limit.saturating_sub(self.sent_today)),
        };
        match (self.bucket.available(now), daily) {
            (None, None) => None,
            (Some(a), None) | (None, Some(a)) => Some(a),
            (Some(a), Some(b)) => Some(a.min(b)),
        }
    }

    /// When it can take a message again.
    fn available_at(&self, now: Timestamp) -> Timestamp {
        let limit = self.account.settings.daily_limit;
        if limit > 0 && self.sent_today >= limit {
            return next_midnight(now);
        }
        self.bucket.next_token().max(now)
    }

    fn is_down(&self, now: Timestamp) -> bool {
        self.down_until.is_some_and(|until| until > now)
    }
}

fn relay_settings(s: &SmtpAccountSettings, defaults: &SmtpDefaults) -> SmtpSettings {
    SmtpSettings {
        host: s.host.clone(),
        port: s.port,
        tls: match s.tls {
            SmtpTls::None => TlsMode::None,
            SmtpTls::StartTls => TlsMode::StartTls,
            SmtpTls::Tls => TlsMode::Implicit,
        },
        credentials: s.username.clone().zip(s.password.clone()),
        helo: defaults.helo.clone(),
        timeout: defaults.timeout,
        pool_size: defaults.pool_size,
    }
}

fn utc_day(t: Timestamp) -> jiff::civil::Date {
    t.to_zoned(jiff::tz::TimeZone::UTC).date()
}

fn day_start(t: Timestamp) -> Timestamp {
    utc_day(t)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .unwrap_or(t)
}

fn next_midnight(t: Timestamp) -> Timestamp {
    utc_day(t)
        .tomorrow()
        .ok()
        .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .unwrap_or(t)
}

/// One way out for one message, in the order to try them.
#[derive(Clone)]
pub struct Way {
    /// `None` for the server's default transport (the `--smtp-url` relay or the `.eml` folder).
    pub account: Option<Uuid>,
    pub transport: Arc<dyn Transport>,
    /// The sender for mail that names none.
    pub from_email: Email,
    pub from_name: Option<String>,
    /// Whether opens and clicks may be tracked in mail sent this way.
    pub tracking: bool,
}

/// How much the accounts can take now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capacity {
    Unlimited,
    /// At least one message.
    Messages(u64),
    /// Nothing before this time.
    Exhausted(Timestamp),
}

/// The accounts and keys as last read from the store, and each account's bucket and count.
#[derive(Default)]
pub struct Routes {
    accounts: Vec<AccountState>,
    keys: HashMap<String, (DkimKeyRecord, Arc<DkimKey>)>,
    /// The UTC day the `sent_today` counts are for.
    day: Option<jiff::civil::Date>,
    synced_at: Option<Instant>,
}

impl Routes {
    pub fn has_accounts(&self) -> bool {
        !self.accounts.is_empty()
    }

    /// The start of the UTC day of `now`, when the daily counts must be read from the ledger
    /// before they are used.
    pub fn needs_ledger(&self, accounts: &[SmtpAccount], now: Timestamp) -> Option<Timestamp> {
        let stale = self.day != Some(utc_day(now))
            || self
                .synced_at
                .is_none_or(|at| at.elapsed() >= LEDGER_RESYNC)
            || accounts
                .iter()
                .any(|a| !self.accounts.iter().any(|s| s.account.id == a.id));
        let limited = accounts.iter().any(|a| a.settings.daily_limit > 0);
        (stale && limited).then(|| day_start(now))
    }

    /// Takes in what the store holds now. `sent` is the ledger's count per account since the
    /// start of the day, when it was read.
    pub fn update(
        &mut self,
        accounts: Vec<SmtpAccount>,
        keys: Vec<DkimKeyRecord>,
        sent: Option<Vec<(Uuid, u64)>>,
        defaults: &SmtpDefaults,
        now: Timestamp,
    ) {
        let mut old: HashMap<Uuid, AccountState> =
            self.accounts.drain(..).map(|s| (s.account.id, s)).collect();
        let today = utc_day(now);
        let new_day = self.day != Some(today);
        self.accounts = accounts
            .into_iter()
            .map(|account| match old.remove(&account.id) {
                Some(mut state) if state.account.settings == account.settings => {
                    state.account = account;
                    if new_day {
                        state.sent_today = 0;
                    }
                    state
                }
                Some(state) => {
                    // Changed settings: a new pool (the old connections go to the old relay)
                    // and a full bucket; the day's count stays.
                    let mut fresh = AccountState::new(account, defaults, now);
                    fresh.sent_today = if new_day { 0 } else { state.sent_today };
                    fresh
                }
                None => AccountState::new(account, defaults, now),
            })
            .collect();
        self.day = Some(today);
        if let Some(sent) = sent {
            let counts: HashMap<Uuid, u64> = sent.into_iter().collect();
            for state in &mut self.accounts {
                state.sent_today = counts.get(&state.account.id).copied().unwrap_or(0);
            }
            self.synced_at = Some(Instant::now());
        }
        self.update_keys(keys);
    }

    fn update_keys(&mut self, records: Vec<DkimKeyRecord>) {
        let mut old = std::mem::take(&mut self.keys);
        for record in records {
            let kept = old.remove(&record.domain).filter(|(r, _)| *r == record);
            let entry = match kept {
                Some(entry) => entry,
                None => {
                    match DkimKey::from_pem(
                        &record.domain,
                        &record.selector,
                        &record.private_key_pem,
                    ) {
                        Ok(key) => (record, Arc::new(key)),
                        Err(e) => {
                            // Mail from the domain goes out unsigned rather than not at all; the
                            // log says why, once per change of the key.
                            tracing::error!(domain = %record.domain, error = %e,
                                "the stored DKIM key cannot be used; mail from this domain is not signed");
                            continue;
                        }
                    }
                }
            };
            self.keys.insert(entry.0.domain.clone(), entry);
        }
    }

    /// The key that signs mail from `domain`.
    pub fn key_for(&self, domain: &str) -> Option<Arc<DkimKey>> {
        self.keys
            .get(&domain.to_ascii_lowercase())
            .map(|(_, k)| Arc::clone(k))
    }

    /// How many messages the accounts can take now; unlimited without accounts.
    pub fn capacity(&mut self, now: Timestamp) -> Capacity {
        if self.accounts.is_empty() {
            return Capacity::Unlimited;
        }
        let mut total: u64 = 0;
        for state in &mut self.accounts {
            match state.capacity(now) {
                None => return Capacity::Unlimited,
                Some(n) => total = total.saturating_add(n),
            }
        }
        if total > 0 {
            return Capacity::Messages(total);
        }
        let soonest = self
            .accounts
            .iter()
            .map(|s| s.available_at(now))
            .min()
            .unwrap_or(now);
        Capacity::Exhausted(soonest)
    }

    /// The accounts that can take `message_id` now, in the order to try them: the one its roll
    /// picks by weight, then the others by weight, heaviest first; accounts found unreachable
    /// lately come last. Empty when every account is at its limit.
    pub fn ways(&mut self, message_id: Uuid, now: Timestamp) -> Vec<Way> {
        let open: Vec<usize> = (0..self.accounts.len())
            .filter(|&i| self.accounts[i].capacity(now) != Some(0))
            .collect();
        let (up, down): (Vec<usize>, Vec<usize>) = open
            .into_iter()
            .partition(|&i| !self.accounts[i].is_down(now));
        let weights: Vec<u32> = up
            .iter()
            .map(|&i| self.accounts[i].account.settings.weight)
            .collect();
        let mut order = Vec::with_capacity(self.accounts.len());
        let first = pick_weighted(roll(message_id), &weights).map(|k| up[k]);
        order.extend(first);
        let mut rest: Vec<usize> = up.into_iter().filter(|i| Some(*i) != first).collect();
        rest.sort_by_key(|&i| std::cmp::Reverse(self.accounts[i].account.settings.weight));
        order.extend(rest);
        order.extend(down);
        order
            .into_iter()
            .map(|i| {
                let state = &self.accounts[i];
                let s = &state.account.settings;
                Way {
                    account: Some(state.account.id),
                    transport: Arc::clone(&state.relay) as Arc<dyn Transport>,
                    from_email: s.from_email.clone(),
                    from_name: s.from_name.clone(),
                    tracking: s.tracking,
                }
            })
            .collect()
    }

    /// Takes a token of the account's bucket and a place in its daily limit before a message
    /// is handed to it; `false` when it has neither left (or is gone). The place is taken now,
    /// not when the relay accepts: several messages are handed over at once, and each must see
    /// the others' places gone.
    pub fn take(&mut self, account: Uuid, now: Timestamp) -> bool {
        self.state(account).is_some_and(|s| {
            let taken = s.capacity(now) != Some(0) && s.bucket.take(now);
            if taken {
                s.sent_today += 1;
            }
            taken
        })
    }

    /// Gives back the place in the daily limit of a message that did not go out.
    pub fn release(&mut self, account: Uuid) {
        if let Some(s) = self.state(account) {
            s.sent_today = s.sent_today.saturating_sub(1);
        }
    }

    /// The account could not be reached: try the others first for a while.
    pub fn down(&mut self, account: Uuid, now: Timestamp) {
        if let Some(s) = self.state(account) {
            s.down_until = now.checked_add(DOWN_FOR).ok();
        }
    }

    /// When some account can take a message again.
    pub fn available_at(&self, now: Timestamp) -> Timestamp {
        self.accounts
            .iter()
            .map(|s| s.available_at(now))
            .min()
            .unwrap_or(now)
    }

    fn state(&mut self, account: Uuid) -> Option<&mut AccountState> {
        self.accounts.iter_mut().find(|s| s.account.id == account)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Test code.
mod tests {
    use super::*;
    use nudge_core::{Patch, SmtpAccountInput};

    fn account(name: &str, weight: i64, rate: f64, daily: i64) -> SmtpAccount {
        let settings = SmtpAccountSettings::create(SmtpAccountInput {
            name: Some(name.into()),
            host: Some("127.0.0.1".into()),
            port: Some(2525),
            tls: Some("none".into()),
            from_email: Some(format!("{name}@example.com")),
            from_name: Patch::Keep,
            weight: Some(weight),
            rate_per_second: Some(rate),
            daily_limit: Some(daily),
            ..SmtpAccountInput::default()
        })
        .unwrap();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        SmtpAccount {
            id: Uuid::now_v7(),
            settings,
            created_at: at,
            updated_at: at,
        }
    }

    fn t(second: f64) -> Timestamp {
        Timestamp::from_second(1_800_000_000)
            .unwrap()
            .checked_add(SignedDuration::from_secs_f64(second))
            .unwrap()
    }

    fn routes(accounts: Vec<SmtpAccount>, now: Timestamp) -> Routes {
        let mut r = Routes::default();
        r.update(
            accounts,
            Vec::new(),
            Some(Vec::new()),
            &SmtpDefaults::default(),
            now,
        );
        r
    }

    #[test]
    fn a_roll_picks_by_weight() {
        let weights = [3, 1];
        let picks: Vec<_> = (0..8).map(|r| pick_weighted(r, &weights)).collect();
        assert_eq!(
            picks,
            [0, 0, 0, 1, 0, 0, 0, 1].map(Some),
            "three in four land on the first"
        );
        assert_eq!(pick_weighted(5, &[]), None);
        let ids: Vec<Uuid> = (0..4000).map(|_| Uuid::now_v7()).collect();
        let first = ids
            .iter()
            .filter(|id| pick_weighted(roll(**id), &weights) == Some(0))
            .count();
        assert!((2800..3200).contains(&first), "{first} of 4000");
    }

    #[test]
    fn the_picked_account_comes_first_and_the_others_follow_heaviest_first() {
        let (a, b, c) = (
            account("a", 1, 0.0, 0),
            account("b", 5, 0.0, 0),
            account("c", 2, 0.0, 0),
        );
        let ids = [a.id, b.id, c.id];
        let mut r = routes(vec![a, b, c], t(0.0));
        assert_eq!(r.capacity(t(0.0)), Capacity::Unlimited);
        for _ in 0..50 {
            let id = Uuid::now_v7();
            let order: Vec<Uuid> = r
                .ways(id, t(0.0))
                .iter()
                .filter_map(|w| w.account)
                .collect();
            let first = ids[pick_weighted(roll(id), &[1, 5, 2]).unwrap()];
            assert_eq!(order[0], first);
            let rest: Vec<Uuid> = [ids[1], ids[2], ids[0]]
                .into_iter()
                .filter(|x| *x != first)
                .collect();
            assert_eq!(&order[1..], rest);
        }
        r.down(ids[1], t(0.0));
        let order: Vec<Uuid> = r
            .ways(Uuid::now_v7(), t(1.0))
            .iter()
            .filter_map(|w| w.account)
            .collect();
        assert_eq!(
            order.last(),
            Some(&ids[1]),
            "an unreachable account comes last"
        );
        let order: Vec<Uuid> = r
            .ways(Uuid::now_v7(), t(31.0))
            .iter()
            .filter_map(|w| w.account)
            .collect();
        assert_eq!(order.len(), 3);
    }

    #[test]
    fn the_rate_limit_counts_tokens_by_the_clock() {
        let a = account("a", 1, 2.0, 0);
        let id = a.id;
        let mut r = routes(vec![a], t(0.0));
        assert_eq!(r.capacity(t(0.0)), Capacity::Messages(2));
        assert!(r.take(id, t(0.0)) && r.take(id, t(0.0)));
        assert!(!r.take(id, t(0.0)));
        assert!(r.ways(Uuid::now_v7(), t(0.0)).is_empty());
        assert_eq!(r.capacity(t(0.0)), Capacity::Exhausted(t(0.5)));
        assert_eq!(r.capacity(t(0.5)), Capacity::Messages(1));
        assert_eq!(
            r.capacity(t(100.0)),
            Capacity::Messages(2),
            "a second's worth at most"
        );
        // A rate below one per second still sends, one at a time.
        let slow = account("slow", 1, 0.25, 0);
        let id = slow.id;
        let mut r = routes(vec![slow], t(0.0));
        assert!(r.take(id, t(0.0)));
        assert_eq!(r.capacity(t(1.0)), Capacity::Exhausted(t(4.0)));
        assert!(r.take(id, t(4.0)));
    }

    #[test]
    fn the_daily_limit_counts_from_the_ledger_and_resets_at_midnight_utc() {
        let a = account("a", 1, 0.0, 3);
        let id = a.id;
        let now = t(0.0);
        let mut r = Routes::default();
        assert_eq!(
            r.needs_ledger(std::slice::from_ref(&a), now),
            Some(day_start(now))
        );
        r.update(
            vec![a.clone()],
            Vec::new(),
            Some(vec![(id, 2)]),
            &SmtpDefaults::default(),
            now,
        );
        assert_eq!(r.needs_ledger(std::slice::from_ref(&a), now), None);
        assert_eq!(r.capacity(now), Capacity::Messages(1));
        assert!(r.take(id, now));
        let midnight = next_midnight(now);
        assert_eq!(r.capacity(now), Capacity::Exhausted(midnight));
        assert_eq!(
            r.needs_ledger(std::slice::from_ref(&a), midnight),
            Some(midnight)
        );
        r.update(
            vec![a],
            Vec::new(),
            Some(Vec::new()),
            &SmtpDefaults::default(),
            midnight,
        );
        assert_eq!(r.capacity(midnight), Capacity::Messages(3));
    }

    #[test]
    fn a_changed_account_gets_a_new_pool_and_an_unchanged_one_keeps_its_own() {
        let a = account("a", 1, 1.0, 0);
        let mut r = routes(vec![a.clone()], t(0.0));
        let pool = |r: &mut Routes| Arc::as_ptr(&r.accounts[0].relay);
        let before = pool(&mut r);
        assert!(r.take(a.id, t(0.0)));
        r.update(
            vec![a.clone()],
            Vec::new(),
            None,
            &SmtpDefaults::default(),
            t(0.1),
        );
        assert_eq!(pool(&mut r), before);
        assert_eq!(
            r.capacity(t(0.1)),
            Capacity::Exhausted(t(1.0)),
            "same bucket"
        );
        let mut changed = a.clone();
        changed.settings.port = 2526;
        r.update(
            vec![changed],
            Vec::new(),
            None,
            &SmtpDefaults::default(),
            t(0.2),
        );
        assert_ne!(pool(&mut r), before);
        r.update(
            Vec::new(),
            Vec::new(),
            None,
            &SmtpDefaults::default(),
            t(0.3),
        );
        assert!(!r.has_accounts());
        assert_eq!(r.capacity(t(0.3)), Capacity::Unlimited);
    }
}
