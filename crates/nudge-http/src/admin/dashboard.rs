//! `/admin`: the dashboard. For now the contacts by status, as numbers and one stacked SVG bar
//! (dependencies.md §11.2: the view model is computed here, the template only draws it).

use super::session::Current;
use super::{Failure, view};
use crate::AppState;
use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::Response;
use nudge_core::Status;
use nudge_store::ContactFilter;
use serde::Serialize;

/// One status's part of the bar: where it starts and how wide it is, in percent of the whole.
#[derive(Debug, Serialize, PartialEq)]
pub struct Segment {
    pub status: &'static str,
    pub count: u64,
    pub x: f64,
    pub width: f64,
    /// The share, rounded to one decimal, for the table and the tooltip.
    pub percent: f64,
}

/// The bar's segments, in the order of `counts`; a total of zero gives zero widths.
pub fn segments(counts: &[(Status, u64)]) -> Vec<Segment> {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let mut x = 0.0;
    counts
        .iter()
        .map(|&(status, count)| {
            let width = if total == 0 {
                0.0
            } else {
                100.0 * count as f64 / total as f64
            };
            let segment = Segment {
                status: status.as_str(),
                count,
                x: round(x, 3),
                width: round(width, 3),
                percent: round(width, 1),
            };
            x += width;
            segment
        })
        .collect()
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

pub async fn page(
    State(state): State<AppState>,
    Extension(current): Extension<Current>,
    uri: Uri,
) -> Result<Response, Failure> {
    let mut counts = Vec::with_capacity(Status::ALL.len());
    for status in Status::ALL {
        let filter = ContactFilter {
            status: Some(status),
            ..ContactFilter::default()
        };
        counts.push((status, state.store.count_contacts(&filter).await?));
    }
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let ctx = minijinja::context! {
        total,
        statuses => view::serialized(segments(&counts)),
        ..current.context("dashboard", &uri)
    };
    view::page(StatusCode::OK, "dashboard.html", ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_follow_each_other_and_fill_the_bar() {
        let s = segments(&[
            (Status::Subscribed, 3),
            (Status::Pending, 0),
            (Status::Unsubscribed, 1),
        ]);
        let cut: Vec<_> = s.iter().map(|s| (s.status, s.x, s.width)).collect();
        assert_eq!(
            cut,
            vec![
                ("subscribed", 0.0, 75.0),
                ("pending", 75.0, 0.0),
                ("unsubscribed", 75.0, 25.0)
            ]
        );
        let thirds = segments(&[(Status::Subscribed, 1), (Status::Bounced, 2)]);
        assert_eq!((thirds[0].percent, thirds[1].percent), (33.3, 66.7));
        assert!(
            segments(&[(Status::Subscribed, 0)])
                .iter()
                .all(|s| s.width == 0.0)
        );
    }
}
