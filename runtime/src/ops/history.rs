//! `history`: a page of the committed transcript from the store, forwards
//! (`after_seq`), backwards (`before_seq`) or the tail (`tail`).
//!
//! The live log is a dense run of seqs (`archived_upto + 1 ..= last_seq`: compact
//! and reset only ever move a prefix out), so a page before `N` is a read after
//! `N - 1 - limit`, cut at `N` (`N` capped at `last_seq + 1`): no backwards read in
//! the store is needed.

use sessiond_client::ErrorCode;
use sessiond_client::model::HistoryResponse;
use sessiond_client::ops::History;
use sessiond_store::Message;

use super::{Here, Serve};
use crate::api::views::message_view;
use crate::config::Limits;
use crate::error::{Error, Result};

/// Default page size.
pub(crate) const DEFAULT_PAGE: usize = 100;

/// A page size, checked against the node's limit.
pub(crate) fn page_limit(limits: &Limits, limit: Option<usize>) -> Result<usize> {
    let max = limits.max_history_page;
    let limit = limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > max {
        return Err(Error::InvalidRequest(format!(
            "limit must be between 1 and {max}"
        )));
    }
    Ok(limit)
}

/// Which page: the three ways of paging are exclusive.
enum Page {
    After { after: u64, limit: usize },
    Before { before: u64, limit: usize },
    Tail(usize),
}

/// The page `q` asks for, checked.
fn page(q: &History, limits: &Limits) -> Result<Page> {
    {
        match (q.after_seq, q.before_seq, q.tail) {
            (_, Some(_), Some(_)) | (Some(_), _, Some(_)) => Err(Error::InvalidRequest(
                "tail cannot be combined with after_seq or before_seq".into(),
            )),
            (Some(_), Some(_), None) => Err(Error::InvalidRequest(
                "after_seq and before_seq cannot be combined: page forwards or backwards".into(),
            )),
            (None, None, Some(tail)) => {
                if q.limit.is_some() {
                    return Err(Error::InvalidRequest(
                        "tail is the page size: leave limit out".into(),
                    ));
                }
                Ok(Page::Tail(page_limit(limits, Some(tail)).map_err(
                    |_| {
                        Error::InvalidRequest(format!(
                            "tail must be between 1 and {}",
                            limits.max_history_page
                        ))
                    },
                )?))
            }
            (None, Some(before), None) => Ok(Page::Before {
                before,
                limit: page_limit(limits, q.limit)?,
            }),
            (after, None, None) => Ok(Page::After {
                after: after.unwrap_or(0),
                limit: page_limit(limits, q.limit)?,
            }),
        }
    }
}

impl Serve for History {
    const ERRORS: &'static [(ErrorCode, &'static str)] = &[(
        ErrorCode::InvalidRequest,
        "`after_seq`, `before_seq` and `tail` are combined, `tail` with `limit`, or `limit` or `tail` is out of 1 to the page limit (1000 by default)",
    )];

    fn check(&self, limits: &Limits) -> Result<()> {
        page(self, limits).map(drop)
    }

    async fn serve(self, here: Here<'_>) -> Result<HistoryResponse> {
        let store = &here.node.backend().sessions;
        let (tenant, id) = (here.tenant, here.id);
        // Whether the session is known to exist (read its meta) besides the page.
        let (messages, known): (Vec<Message>, bool) = match page(&self, &here.node.config().limits)?
        {
            Page::After { after, limit } => {
                (store.read_log(tenant, id, after, limit).await?, false)
            }
            Page::Before { before, limit } => {
                // Past the end means "the last `limit`".
                let meta = here.node.get_session(tenant, id).await?;
                let before = before.min(meta.last_seq + 1);
                let after = before.saturating_sub(1).saturating_sub(limit as u64);
                let mut page = store.read_log(tenant, id, after, limit).await?;
                page.retain(|m| m.seq < before);
                (page, true)
            }
            Page::Tail(limit) => {
                let meta = here.node.get_session(tenant, id).await?;
                let after = meta.last_seq.saturating_sub(limit as u64);
                (store.read_log(tenant, id, after, limit).await?, true)
            }
        };
        if messages.is_empty() && !known {
            // Tell an empty page of a real session from an unknown session.
            here.node.get_session(tenant, id).await?;
        }
        Ok(HistoryResponse {
            messages: messages.iter().map(message_view).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(q: History) -> Result<Page> {
        super::page(&q, &Limits::default())
    }

    #[test]
    fn the_three_ways_of_paging_exclude_each_other() {
        assert!(matches!(
            page(History::default()),
            Ok(Page::After {
                after: 0,
                limit: DEFAULT_PAGE
            })
        ));
        let back = History {
            before_seq: Some(10),
            limit: Some(3),
            ..History::default()
        };
        assert!(matches!(
            page(back),
            Ok(Page::Before {
                before: 10,
                limit: 3
            })
        ));
        let tail = History {
            tail: Some(5),
            ..History::default()
        };
        assert!(matches!(page(tail), Ok(Page::Tail(5))));
        for bad in [
            History {
                after_seq: Some(1),
                before_seq: Some(5),
                ..History::default()
            },
            History {
                tail: Some(2),
                before_seq: Some(5),
                ..History::default()
            },
            History {
                tail: Some(2),
                after_seq: Some(5),
                ..History::default()
            },
            History {
                tail: Some(2),
                limit: Some(5),
                ..History::default()
            },
            History {
                tail: Some(0),
                ..History::default()
            },
            History {
                tail: Some(100_000),
                ..History::default()
            },
            History {
                before_seq: Some(5),
                limit: Some(0),
                ..History::default()
            },
        ] {
            let e = page(bad.clone())
                .err()
                .unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(
                e.code(),
                sessiond_client::ErrorCode::InvalidRequest,
                "{bad:?}"
            );
        }
    }
}
