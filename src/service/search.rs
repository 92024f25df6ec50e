//! Finding cases: the filters of `GET /api/v1/cases` and of the
//! dashboard's Cases page, read here once for both doors, and the cursor
//! that continues a search. Who may see which case is the case service's
//! rule ([`super::cases::CaseService::find`]).

use serde::Deserialize;

use crate::case::{CaseNumber, Status};
use crate::limits::MAX_SUBJECT;
use crate::people::PersonId;
use crate::sla::Priority;
use crate::store::CaseQuery;

/// The most cases one page may hold.
pub const MAX_PAGE: u32 = 1000;

/// A search as a door receives it: each filter as text, blank meaning
/// "any".
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CaseSearch {
    pub status: Option<String>,
    pub customer: Option<String>,
    pub assignee: Option<String>,
    pub requester: Option<String>,
    pub priority: Option<String>,
    pub q: Option<String>,
    pub before: Option<String>,
    pub limit: Option<u32>,
}

/// A filter that was given and is not blank.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl CaseSearch {
    /// The store's query (`default_limit` cases unless `limit` says, at
    /// most [`MAX_PAGE`]), or what is wrong, naming the filter.
    pub fn query(&self, default_limit: u32) -> Result<CaseQuery, String> {
        let text = given(&self.q).map(str::to_owned);
        if text.as_ref().is_some_and(|t| t.chars().count() > MAX_SUBJECT) {
            return Err(format!("q: at most {MAX_SUBJECT} characters"));
        }
        Ok(CaseQuery {
            status: given(&self.status).map(str::parse::<Status>).transpose()?,
            customer: given(&self.customer).map(str::to_owned),
            assignee: given(&self.assignee)
                .map(str::parse::<PersonId>)
                .transpose()
                .map_err(|e| format!("assignee: {e}"))?,
            requester: given(&self.requester).map(str::to_owned),
            priority: given(&self.priority)
                .map(str::parse::<Priority>)
                .transpose()
                .map_err(|e| format!("priority: {e}"))?,
            text,
            before: given(&self.before)
                .map(str::parse::<CaseNumber>)
                .transpose()
                .map_err(|e| format!("before: {e}"))?,
            seen_by: None,
            limit: self.limit.unwrap_or(default_limit).clamp(1, MAX_PAGE),
        })
    }

    /// The query string (no `?`) of the same search's next page, the one
    /// after case `last`: the filters given, and `before`.
    pub fn next(&self, last: CaseNumber) -> String {
        let mut url = url::form_urlencoded::Serializer::new(String::new());
        let filters = [
            ("status", &self.status),
            ("customer", &self.customer),
            ("assignee", &self.assignee),
            ("requester", &self.requester),
            ("priority", &self.priority),
            ("q", &self.q),
        ];
        for (name, value) in filters {
            if let Some(v) = given(value) {
                url.append_pair(name, v);
            }
        }
        if let Some(limit) = self.limit {
            url.append_pair("limit", &limit.to_string());
        }
        url.append_pair("before", &last.0.to_string());
        url.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(pairs: &[(&str, &str)]) -> CaseSearch {
        serde_urlencoded::from_str(&serde_urlencoded::to_string(pairs).unwrap()).unwrap()
    }

    #[test]
    fn blank_filters_are_no_filters_and_bad_ones_name_themselves() {
        let q = search(&[("status", ""), ("q", "  disk full "), ("limit", "5000")]).query(100).unwrap();
        assert_eq!((q.status, q.text.as_deref(), q.limit), (None, Some("disk full"), MAX_PAGE));
        assert!(search(&[("status", "sleeping")]).query(100).unwrap_err().contains("unknown status"));
        assert!(search(&[("before", "x")]).query(100).unwrap_err().starts_with("before:"));
        assert!(search(&[("assignee", "Not An Id")]).query(100).unwrap_err().starts_with("assignee:"));
    }

    #[test]
    fn the_next_page_keeps_the_filters_and_moves_the_cursor() {
        let s = search(&[("customer", "Acme & Co"), ("q", "100%"), ("before", "900"), ("limit", "50")]);
        assert_eq!(s.next(CaseNumber(850)), "customer=Acme+%26+Co&q=100%25&limit=50&before=850");
    }
}
