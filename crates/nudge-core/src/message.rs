//! Outbound messages as a state machine: what state a message may move to, when a failed
//! attempt is tried again, and how an SMTP reply is read.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Where a message is in its life. `Sent`, `Failed` and `Skipped` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Waiting for its first attempt.
    Queued,
    /// Claimed by a dispatcher under a lease.
    Sending,
    Sent,
    /// A temporary failure; the next attempt is scheduled.
    Retrying,
    /// A permanent failure, or temporary failures until the message expired.
    Failed,
    /// The send gate refused it; the rule says why.
    Skipped,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 6] = [
        MessageStatus::Queued,
        MessageStatus::Sending,
        MessageStatus::Sent,
        MessageStatus::Retrying,
        MessageStatus::Failed,
        MessageStatus::Skipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Queued => "queued",
            MessageStatus::Sending => "sending",
            MessageStatus::Sent => "sent",
            MessageStatus::Retrying => "retrying",
            MessageStatus::Failed => "failed",
            MessageStatus::Skipped => "skipped",
        }
    }

    pub fn is_final(self) -> bool {
        matches!(
            self,
            MessageStatus::Sent | MessageStatus::Failed | MessageStatus::Skipped
        )
    }
}

impl FromStr for MessageStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| "must be one of queued, sending, sent, retrying, failed, skipped".into())
    }
}

/// What an SMTP server's reply means for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyClass {
    Accepted,
    /// 4xx, a dropped connection or a time-out: try again later.
    Temporary,
    /// 5xx: the address or the message is refused for good.
    Permanent,
}

/// Reads a three-digit SMTP reply code.
pub fn classify_reply(code: u16) -> ReplyClass {
    match code {
        200..=399 => ReplyClass::Accepted,
        500..=599 => ReplyClass::Permanent,
        _ => ReplyClass::Temporary,
    }
}

/// When failed attempts are tried again: quickly at first, then less often, until the message
/// is older than `expire_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub first: SignedDuration,
    pub max: SignedDuration,
    pub expire_after: SignedDuration,
}

impl Default for RetryPolicy {
    /// 1, 2, 4, ... minutes, at most an hour apart, for up to two days: what a patient MTA does.
    fn default() -> Self {
        Self {
            first: SignedDuration::from_mins(1),
            max: SignedDuration::from_hours(1),
            expire_after: SignedDuration::from_hours(48),
        }
    }
}

impl RetryPolicy {
    /// The time of the next attempt after `attempts` failed ones, or `None` when the message
    /// created at `created` has expired by then.
    pub fn next_attempt(
        &self,
        attempts: u32,
        created: Timestamp,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let doublings = attempts.saturating_sub(1).min(20);
        let factor = 1i32.checked_shl(doublings).unwrap_or(i32::MAX);
        let delay = self
            .first
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max);
        let at = now.checked_add(delay).ok()?;
        let expires = created.checked_add(self.expire_after).ok()?;
        (at <= expires).then_some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_classified_by_their_first_digit() {
        let cases = [
            (250, ReplyClass::Accepted),
            (354, ReplyClass::Accepted),
            (421, ReplyClass::Temporary),
            (451, ReplyClass::Temporary),
            (550, ReplyClass::Permanent),
            (554, ReplyClass::Permanent),
            (0, ReplyClass::Temporary),
        ];
        for (code, class) in cases {
            assert_eq!(classify_reply(code), class, "{code}");
        }
    }

    #[test]
    fn retries_back_off_and_stop_at_expiry() {
        let policy = RetryPolicy::default();
        let created = Timestamp::from_second(1_800_000_000).expect("valid");
        let mins = |m: i64| {
            created
                .checked_add(SignedDuration::from_mins(m))
                .expect("valid")
        };
        let cases = [
            (1, created, Some(mins(1))),
            (2, created, Some(mins(2))),
            (3, created, Some(mins(4))),
            (8, created, Some(mins(60))),
            (40, created, Some(mins(60))),
            (5, mins(47 * 60 + 50), None),
            (5, mins(47 * 60 + 40), Some(mins(47 * 60 + 56))),
        ];
        for (attempts, now, expected) in cases {
            assert_eq!(
                policy.next_attempt(attempts, created, now),
                expected,
                "{attempts}"
            );
        }
    }

    #[test]
    fn final_states() {
        let finals: Vec<_> = MessageStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(
            finals,
            [
                MessageStatus::Sent,
                MessageStatus::Failed,
                MessageStatus::Skipped
            ]
        );
        for s in MessageStatus::ALL {
            assert_eq!(s.as_str().parse(), Ok(s));
        }
    }
}
